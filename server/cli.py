"""`liaison` command line: serve, demo, migrate, users, audit."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from consult_notes.rotation import BatchHook, RotationReport, rewrap_all
from consult_notes.store import NoteStore
from server.app import create_app
from server.audit import Action, Actor, AuditUnavailable, Event, Outcome
from server.auth.roles import Role
from server.db.engine import create_engine
from server.db.migrate import (
    current_revision,
    ensure_current,
    head_revision,
    upgrade,
)
from server.errors import LiaisonError
from server.http import AccessLogger
from server.logs import configure_logging
from server.settings import ConfigError, Settings, load_settings
from server.shutdown import serve_until_signalled
from server.state import open_services

log = logging.getLogger("liaison.cli")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"liaison: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.logging)
    try:
        return int(args.run(settings, args) or 0)
    except LiaisonError as exc:
        print(f"liaison: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liaison", description="Liaison telehealth server")
    parser.add_argument("--config", type=Path, help="a TOML file layered over config/liaison.toml")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(run=cmd_serve)

    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate.set_defaults(run=cmd_migrate)

    demo = commands.add_parser("demo", help="migrate, seed demo data and serve")
    demo.add_argument("--no-serve", action="store_true", help="seed only")
    demo.set_defaults(run=cmd_demo)

    users = commands.add_parser("users", help="manage accounts")
    user_commands = users.add_subparsers(dest="users_command", required=True)
    add = user_commands.add_parser("add", help="create an account (e.g. the first admin)")
    add.add_argument("username")
    add.add_argument("--role", choices=[r.value for r in Role], required=True)
    add.add_argument("--name", help="display name (defaults to the username)")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    add.set_defaults(run=cmd_users_add)

    audit = commands.add_parser("audit", help="the audit trail")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser(
        "verify", help="check the hash chain; exit 1 listing changed, removed or inserted rows"
    )
    verify.add_argument("--batch", type=int, default=1000, help="events read per query")
    verify.set_defaults(run=cmd_audit_verify)

    probe = commands.add_parser(
        "probe", help="check a running server from outside, as a browser would (aiortc)"
    )
    who = probe.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="sign in as this user and run the device and network check")
    who.add_argument("--link", help="a patient join link: pass the steps and join the visit")
    probe.add_argument("--url", help="the server, with --user (default: server.public_url)")
    probe.add_argument("--password-stdin", action="store_true", help="with --user")
    probe.add_argument("--totp", help="with --user, when the account has a second factor")
    probe.add_argument("--dob", help="with --link: the patient's date of birth, YYYY-MM-DD")
    probe.add_argument("--state", default="CA", help="with --link: where the patient is")
    probe.add_argument("--phone", default="+1 415 555 0100", help="with --link: callback phone")
    probe.add_argument("--wait", type=float, default=300, help="seconds to wait for admission")
    probe.set_defaults(run=cmd_probe)

    keys = commands.add_parser("keys", help="the key ring that encrypts consult notes")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    rotate = key_commands.add_parser(
        "rotate",
        help="add a key-encryption key and re-wrap every note's data key under it "
        "(safe while the server serves; interrupted runs resume with --resume)",
    )
    rotate.add_argument(
        "--resume", action="store_true", help="re-wrap under the current key; add no key"
    )
    rotate.add_argument("--batch-size", type=int, default=100, help="notes per transaction")
    rotate.add_argument(
        "--settle",
        type=float,
        default=None,
        help="seconds to wait, then sweep again for notes servers sealed under the old key "
        "before they reloaded the ring (default: notes.reload_interval_s + 5; 0 to skip)",
    )
    rotate.set_defaults(run=cmd_keys_rotate)
    return parser


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    asyncio.run(_check_schema(settings))
    serve(settings, args.host, args.port)
    return 0


async def _check_schema(settings: Settings) -> None:
    engine = create_engine(settings.database)
    try:
        await ensure_current(engine)
    finally:
        await engine.dispose()


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully (server/shutdown.py)."""
    host = host or settings.server.host
    port = port if port is not None else settings.server.port
    grace_s = settings.cluster.shutdown_grace_s
    log.info("serving", extra={"url": f"http://{host}:{port}"})
    finished = asyncio.run(
        serve_until_signalled(
            create_app(settings),
            host,
            port,
            grace_s,
            access_log_class=AccessLogger,
            access_log=logging.getLogger("liaison.access"),
        )
    )
    if not finished:
        # Cut off at the grace: what is left (database worker threads among it) could keep
        # the interpreter from exiting, and the promise is to be gone within the grace.
        logging.shutdown()
        os._exit(1)


def cmd_probe(settings: Settings, args: argparse.Namespace) -> int:
    from signaling.probe_run import ProbeFailed, probe_as_patient, probe_as_user

    try:
        if args.user:
            if args.password_stdin:
                password = sys.stdin.readline().rstrip("\n")
            else:
                password = getpass.getpass("Password: ")
            url = args.url or settings.server.public_url
            report = asyncio.run(probe_as_user(url, args.user, password, args.totp))
        else:
            if not args.dob:
                print("liaison: --link needs --dob", file=sys.stderr)
                return 2
            report = asyncio.run(
                probe_as_patient(args.link, args.dob, args.state, args.phone, args.wait)
            )
    except (ProbeFailed, OSError, TimeoutError) as exc:
        print(f"liaison probe: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    print("\n".join(report.lines))
    return 0


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    asyncio.run(migrate(settings))
    return 0


async def migrate(settings: Settings) -> None:
    engine = create_engine(settings.database)
    try:
        before = await current_revision(engine)
        await upgrade(engine)
        print(f"database schema: {before or 'empty'} -> {head_revision()}")
    finally:
        await engine.dispose()


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from server.demo import seed_demo

    asyncio.run(migrate(settings))
    print(asyncio.run(seed_demo(settings)))
    if not args.no_serve:
        serve(settings)
    return 0


def cmd_users_add(settings: Settings, args: argparse.Namespace) -> int:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("liaison: the passwords differ", file=sys.stderr)
            return 1
    user = asyncio.run(_add_user(settings, args.username, args.name, Role(args.role), password))
    print(f"created {user}")
    return 0


async def _add_user(
    settings: Settings, username: str, name: str | None, role: Role, password: str
) -> str:
    async with open_services(settings) as svc:
        # No one is signed in at the command line: the trail says the system made it.
        user = await svc.users.create(username, name or username, role, password, by=Actor.system())
    return f"{user.username} ({user.role}, id {user.id})"


def cmd_audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_audit_verify(settings, args.batch))


async def _audit_verify(settings: Settings, batch_size: int) -> int:
    from server.audit import verify_chain
    from server.db.engine import session_factory

    if batch_size < 1:
        print("liaison: --batch must be at least 1", file=sys.stderr)
        return 2
    engine = create_engine(settings.database)
    try:
        await ensure_current(engine)
        report = await verify_chain(session_factory(engine), batch_size=batch_size)
    finally:
        await engine.dispose()
    head = f"head seq {report.head_seq}, hash {report.head_hash}"
    if report.ok:
        # The head hash is worth keeping elsewhere: it anchors everything before it.
        print(f"audit trail intact: {report.events_checked} events, {head}")
        return 0
    count = len(report.problems) + report.problems_not_listed
    print(f"audit trail NOT intact: {count} problems in {report.events_checked} events, {head}")
    for problem in report.problems:
        print(f"  {problem}")
    if report.problems_not_listed:
        print(f"  ... and {report.problems_not_listed} more")
    return 1


def cmd_keys_rotate(settings: Settings, args: argparse.Namespace) -> int:
    settle = settings.notes.reload_interval_s + 5 if args.settle is None else args.settle
    report = asyncio.run(
        rotate_keys(settings, resume=args.resume, batch_size=args.batch_size, settle_s=settle)
    )
    print(
        f"notes re-wrapped under {report.target}: {report.rewrapped} in {report.seconds:.2f} s "
        f"({report.rate:.0f}/s), {report.skipped} changed meanwhile, {report.remaining} left"
    )
    if report.remaining:
        print("run `liaison keys rotate --resume` to re-wrap the rest")
        return 1
    return 0


async def rotate_keys(
    settings: Settings,
    *,
    resume: bool = False,
    batch_size: int = 100,
    max_batches: int | None = None,
    settle_s: float = 0.0,
    on_batch: BatchHook | None = None,
) -> RotationReport:
    """``liaison keys rotate``: add a key (saved before use) unless resuming, then re-wrap.

    The trail gets ``keys.add`` as soon as the new key is saved (servers seal new notes under
    it from their next reload, whether or not the re-wrapping finishes), then ``keys.rotate``
    for each run of re-wrapping: what it re-wrapped and what is left, or, if it failed part
    way, outcome ``error`` and how far it got."""
    async with open_services(settings) as svc:
        keys = svc.notes_keys
        ring = await keys.reload()
        if not resume:
            if keys.path is None:
                raise LiaisonError(
                    "The key ring comes from LIAISON_NOTES__KEYRING: publish a ring with a new "
                    "current key to every server, then run `liaison keys rotate --resume`."
                )
            previous = ring.current_id
            ring = ring.with_new_key()
            await asyncio.to_thread(ring.save, keys.path)
            await svc.audit.record(
                Event(
                    Action.KEYS_ADD,
                    Actor.system(),
                    target=f"kek:{ring.current_id}",
                    detail={"previous": previous},
                )
            )
            await keys.reload()
        store = NoteStore(keys)
        progress = RotationReport(ring.current_id)

        async def batch_done(report: RotationReport) -> None:
            nonlocal progress
            progress = report
            if on_batch is not None:
                await on_batch(report)

        def rotated(outcome: Outcome, **detail: bool | int | str) -> Event:
            return Event(
                Action.KEYS_ROTATE,
                Actor.system(),
                outcome=outcome,
                target=f"kek:{ring.current_id}",
                detail={"resumed": resume, **detail},
            )

        try:
            report = await rewrap_all(
                svc.db,
                store,
                ring,
                batch_size=batch_size,
                max_batches=max_batches,
                on_batch=batch_done,
            )
            if settle_s > 0 and not report.interrupted:
                # Servers that had not reloaded the ring yet may have sealed notes under the
                # old key meanwhile: they have reloaded by now, so one more sweep catches those.
                await asyncio.sleep(settle_s)
                sweep = await rewrap_all(svc.db, store, ring, batch_size=batch_size)
                report.rewrapped += sweep.rewrapped
                report.skipped = sweep.skipped
                report.remaining = sweep.remaining
        except Exception as exc:
            # The trail says how far it got; the error itself is what the operator must see.
            with contextlib.suppress(AuditUnavailable):
                await svc.audit.record(
                    rotated(Outcome.ERROR, rewrapped=progress.rewrapped, error=_kind(exc))
                )
            raise
        await svc.audit.record(
            rotated(Outcome.OK, rewrapped=report.rewrapped, remaining=report.remaining)
        )
    return report


def _kind(exc: BaseException) -> str:
    return type(exc).__name__[:64]


if __name__ == "__main__":
    sys.exit(main())
