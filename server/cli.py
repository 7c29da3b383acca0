"""`liaison` command line: serve, demo, migrate, users."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from server.app import create_app
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
    host = host or settings.server.host
    port = port if port is not None else settings.server.port
    log.info("serving", extra={"url": f"http://{host}:{port}"})
    web.run_app(
        create_app(settings),
        host=host,
        port=port,
        access_log_class=AccessLogger,
        access_log=logging.getLogger("liaison.access"),
        print=None,
    )


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
        user = await svc.users.create(username, name or username, role, password)
    return f"{user.username} ({user.role}, id {user.id})"


if __name__ == "__main__":
    sys.exit(main())
