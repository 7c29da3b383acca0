"""The audit trail on a real database: one chain under concurrent writers (two engines, two
processes), group commit, clean shutdown, verification that names each changed, removed and
inserted row, the login events, a patient's access log, and `liaison audit verify`."""

from __future__ import annotations

import asyncio
import itertools
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from server.audit import (
    GENESIS_HASH,
    Action,
    Actor,
    AuditLog,
    AuditUnavailable,
    Event,
    Outcome,
    ProblemKind,
    VerifyReport,
    verify_chain,
)
from server.audit.chain import Link, link_hash
from server.auth.roles import Role
from server.clock import FakeClock
from server.db.engine import create_engine, session_factory
from server.db.models import AuditEvent, Patient, User, Visit, VisitLink
from server.logs import request_id_var
from server.settings import DatabaseSettings, Settings
from server.state import SERVICES
from tests.conftest import (
    PASSWORD,
    AppFactory,
    make_settings,
    migrate,
    migrate_url,
    wrong_totp_code,
)
from tests.integration.test_database import PROJECT, run_cli

DOCTOR = Actor.user(1, Role.PSYCHIATRIST)


@dataclass
class Trail:
    settings: Settings
    engine: AsyncEngine
    db: async_sessionmaker[AsyncSession]


@pytest.fixture
async def trail(tmp_path: Path) -> AsyncIterator[Trail]:
    settings = make_settings(tmp_path)
    await migrate(settings)
    engine = create_engine(settings.database)
    yield Trail(settings, engine, session_factory(engine))
    await engine.dispose()


@pytest.fixture
async def audit(trail: Trail, clock: FakeClock) -> AsyncIterator[AuditLog]:
    async with AuditLog(trail.db, clock) as log:
        yield log


def read(n: int, patient_id: int | None = 7, actor: Actor = DOCTOR) -> Event:
    return Event(Action.RECORD_READ, actor, patient_id=patient_id, target=f"thing:{n}")


async def record_many(audit: AuditLog, n: int) -> None:
    await asyncio.gather(*(audit.record(read(i)) for i in range(1, n + 1)))


async def rows(trail: Trail) -> list[AuditEvent]:
    async with trail.db() as db:
        return list((await db.scalars(select(AuditEvent).order_by(AuditEvent.seq))).all())


async def row_at(trail: Trail, seq: int) -> AuditEvent:
    async with trail.db() as db:
        return (await db.scalars(select(AuditEvent).where(AuditEvent.seq == seq))).one()


async def tamper(trail: Trail, sql: str, **params: Any) -> None:
    """What someone with write access to the database file could do."""
    async with trail.engine.begin() as conn:
        await conn.execute(text(sql), params)


async def forge(trail: Trail, seq: int, prev_hash: str, copy_of: int, **changes: Any) -> int:
    """Insert a row hashed exactly as the writer would, copied from another; returns its id."""
    source = await row_at(trail, copy_of)
    fields = {
        name: getattr(source, name)
        for name in (
            "at", "actor", "actor_role", "action", "patient_id", "target", "outcome",
            "client_address", "request_id", "detail",
        )
    }  # fmt: skip
    fields.update(changes)
    link = Link(seq=seq, prev_hash=prev_hash, **fields)
    async with trail.db.begin() as db:
        row = AuditEvent(seq=seq, prev_hash=prev_hash, hash=link_hash(link), **fields)
        db.add(row)
        await db.flush()
        return row.id


async def rehash(trail: Trail, seq: int) -> None:
    """Recompute a row's hash after tampering, as a forger who knows the scheme would."""
    row = await row_at(trail, seq)
    link = Link(**{name: getattr(row, name) for name in Link.__dataclass_fields__})
    await tamper(
        trail, "UPDATE audit_events SET hash = :h WHERE id = :id", h=link_hash(link), id=row.id
    )


async def verify(trail: Trail) -> VerifyReport:
    """Verify in batches of several sizes: the findings must not depend on batch boundaries."""
    reports = [await verify_chain(trail.db, batch_size=size) for size in (1, 4, 1000)]
    assert reports[0] == reports[1] == reports[2]
    return reports[0]


def found(report: VerifyReport) -> list[tuple[str, int | None, int | None]]:
    return [
        (p.kind.value, p.seq, p.last_seq if p.kind is ProblemKind.REMOVED else p.row_id)
        for p in report.problems
    ]


# --- One chain -------------------------------------------------------------------------------


async def test_an_empty_trail_verifies(trail: Trail) -> None:
    report = await verify(trail)
    assert report.ok
    assert (report.events_checked, report.head_seq, report.head_hash) == (0, 0, GENESIS_HASH)


async def test_a_chain_of_events_verifies_link_by_link(
    trail: Trail, audit: AuditLog, clock: FakeClock
) -> None:
    await record_many(audit, 30)
    chain = await rows(trail)
    assert [r.seq for r in chain] == list(range(1, 31))
    assert chain[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(chain))
    assert all(r.at == clock.now for r in chain)
    report = await verify(trail)
    assert report.ok, report.problems
    assert (report.events_checked, report.head_seq, report.head_hash) == (30, 30, chain[-1].hash)


async def test_the_log_stamps_time_and_request_id_unless_given(
    trail: Trail, audit: AuditLog, clock: FakeClock
) -> None:
    token = request_id_var.set("req-1234")
    try:
        await audit.record(read(1))
    finally:
        request_id_var.reset(token)
    earlier = clock.now - timedelta(minutes=5)
    await audit.record(Event(Action.LOGOUT, DOCTOR, at=earlier, request_id="given"))
    first, second = await rows(trail)
    assert (first.at, first.request_id) == (clock.now, "req-1234")
    assert (second.at, second.request_id) == (earlier, "given")


# --- Tampering ---------------------------------------------------------------------------------


@pytest.fixture
async def twelve(trail: Trail, audit: AuditLog) -> dict[int, int]:
    """A trail of twelve events; returns seq -> row id."""
    await record_many(audit, 12)
    return {r.seq: r.id for r in await rows(trail)}


@pytest.mark.parametrize(
    "assignment",
    [
        "actor = 'user:99'",
        "actor_role = 'admin'",
        "action = 'record.write'",
        "patient_id = 8",
        "patient_id = NULL",
        "target = 'thing:70'",
        "outcome = 'denied'",
        "client_address = '203.0.113.9'",
        "detail = '{\"x\": 0}'",
        "at = '2026-01-05 09:00:01.000000'",
        "hash = '" + "a" * 64 + "'",
        "prev_hash = '" + "b" * 64 + "'",
    ],
)
async def test_it_names_a_changed_row(
    trail: Trail, twelve: dict[int, int], assignment: str
) -> None:
    await tamper(trail, f"UPDATE audit_events SET {assignment} WHERE seq = 7")  # noqa: S608
    report = await verify(trail)
    assert found(report) == [("changed", 7, twelve[7])]


async def test_it_names_a_row_changed_and_rehashed(trail: Trail, twelve: dict[int, int]) -> None:
    await tamper(trail, "UPDATE audit_events SET outcome = 'denied' WHERE seq = 7")
    await rehash(trail, 7)
    report = await verify(trail)
    assert found(report) == [("changed", 7, twelve[7])]
    assert "re-hashed" in report.problems[0].reason


async def test_it_names_the_last_row_changed_and_rehashed(
    trail: Trail, twelve: dict[int, int]
) -> None:
    await tamper(trail, "UPDATE audit_events SET actor = 'system' WHERE seq = 12")
    await rehash(trail, 12)
    assert found(await verify(trail)) == [("changed", 12, twelve[12])]


async def test_it_names_a_first_row_rewritten_from_another_start(
    trail: Trail, twelve: dict[int, int]
) -> None:
    await tamper(trail, "UPDATE audit_events SET prev_hash = :h WHERE seq = 1", h="c" * 64)
    await rehash(trail, 1)
    # Its own hash changed too, so the second row's link to it breaks: one changed row.
    assert found(await verify(trail)) == [("changed", 1, twelve[1])]


@pytest.mark.parametrize(
    ("deleted", "expected"),
    [
        ([7], [("removed", 7, 7)]),
        ([7, 8], [("removed", 7, 8)]),
        ([1], [("removed", 1, 1)]),
        ([12], [("removed", 12, 12)]),
        ([11, 12], [("removed", 11, 12)]),
        ([3, 9], [("removed", 3, 3), ("removed", 9, 9)]),
    ],
)
async def test_it_names_removed_rows(
    trail: Trail,
    twelve: dict[int, int],
    deleted: list[int],
    expected: list[tuple[str, int, int]],
) -> None:
    for seq in deleted:
        await tamper(trail, "DELETE FROM audit_events WHERE seq = :s", s=seq)
    assert found(await verify(trail)) == expected


async def test_it_sees_a_removal_that_was_stitched_over(
    trail: Trail, twelve: dict[int, int]
) -> None:
    await tamper(trail, "DELETE FROM audit_events WHERE seq = 7")
    await tamper(
        trail,
        "UPDATE audit_events SET prev_hash = (SELECT hash FROM audit_events WHERE seq = 6) "
        "WHERE seq = 8",
    )
    await rehash(trail, 8)
    assert found(await verify(trail)) == [("removed", 7, 7), ("changed", 8, twelve[8])]


async def test_it_names_a_forged_row_beyond_the_head(trail: Trail, twelve: dict[int, int]) -> None:
    last = await row_at(trail, 12)
    forged = await forge(trail, 13, last.hash, copy_of=12, actor="user:2")
    report = await verify(trail)
    assert found(report) == [("inserted", 13, forged)]
    assert "beyond the head" in report.problems[0].reason


@pytest.mark.parametrize("changes", [{"actor": "user:2"}, {}], ids=["forged", "exact-copy"])
async def test_it_names_a_second_row_at_a_seq(
    trail: Trail, twelve: dict[int, int], changes: dict[str, str]
) -> None:
    # The unique index is the first obstacle; someone with the file can drop it.
    await tamper(trail, "DROP INDEX ix_audit_events_seq")
    previous = await row_at(trail, 6)
    forged = await forge(trail, 7, previous.hash, copy_of=7, **changes)
    assert found(await verify(trail)) == [("inserted", 7, forged)]


async def test_it_names_a_row_outside_the_chain(trail: Trail, twelve: dict[int, int]) -> None:
    forged = await forge(trail, 0, GENESIS_HASH, copy_of=3)
    assert found(await verify(trail)) == [("inserted", 0, forged)]


async def test_it_names_both_rows_of_a_swap(trail: Trail, twelve: dict[int, int]) -> None:
    await tamper(trail, "UPDATE audit_events SET seq = -5 WHERE seq = 5")
    await tamper(trail, "UPDATE audit_events SET seq = 5 WHERE seq = 6")
    await tamper(trail, "UPDATE audit_events SET seq = 6 WHERE seq = -5")
    assert found(await verify(trail)) == [("changed", 5, twelve[6]), ("changed", 6, twelve[5])]


async def test_it_names_every_kind_at_once(trail: Trail, twelve: dict[int, int]) -> None:
    await tamper(trail, "UPDATE audit_events SET target = 'thing:99' WHERE seq = 2")
    await tamper(trail, "DELETE FROM audit_events WHERE seq = 5")
    forged = await forge(trail, 13, (await row_at(trail, 12)).hash, copy_of=12)
    assert found(await verify(trail)) == [
        ("changed", 2, twelve[2]),
        ("removed", 5, 5),
        ("inserted", 13, forged),
    ]


async def test_it_reports_a_missing_head(trail: Trail, twelve: dict[int, int]) -> None:
    await tamper(trail, "DELETE FROM audit_chain_head")
    assert found(await verify(trail)) == [("head", None, None)]


async def test_it_lists_a_bounded_number_of_problems(trail: Trail, twelve: dict[int, int]) -> None:
    await tamper(trail, "UPDATE audit_events SET outcome = 'error'")
    report = await verify_chain(trail.db, max_problems=5)
    assert len(report.problems) == 5 and report.problems_not_listed == 7
    assert not report.ok


async def test_it_verifies_while_writers_append(trail: Trail, audit: AuditLog) -> None:
    await record_many(audit, 50)
    stop = asyncio.Event()

    async def keep_writing() -> int:
        n = 0
        while not stop.is_set():
            n += 1
            await audit.record(read(1000 + n))
        return n

    writer = asyncio.create_task(keep_writing())
    try:
        reports = [await verify_chain(trail.db, batch_size=7) for _ in range(5)]
    finally:
        stop.set()
        appended = await writer
    assert appended > 0
    assert all(r.ok for r in reports), [r.problems for r in reports]
    assert (await verify(trail)).events_checked == 50 + appended


# --- Concurrent writers, on a SQLite file and on PostgreSQL (shared_database_url) ----------------


@asynccontextmanager
async def open_db(url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(DatabaseSettings(url=url))
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def targets_in_order(db: async_sessionmaker[AsyncSession]) -> list[tuple[int, str]]:
    async with db() as session:
        found = await session.execute(
            select(AuditEvent.seq, AuditEvent.target).order_by(AuditEvent.seq)
        )
        return [(seq, target or "") for seq, target in found.all()]


async def test_two_engines_write_one_gap_free_chain(
    shared_database_url: str, clock: FakeClock
) -> None:
    """20 tasks x 50 events through two AuditLogs on two engines (as two processes would
    have), a tenth of them appended inside the writer's own transaction."""
    async with open_db(shared_database_url) as db_one, open_db(shared_database_url) as db_two:
        async with AuditLog(db_one, clock) as one, AuditLog(db_two, clock) as two:

            async def writer(w: int) -> None:
                log, db = (one, db_one) if w % 2 else (two, db_two)
                for i in range(50):
                    event = read(w * 100 + i)
                    if i % 10 == 0:
                        async with db.begin() as session:
                            await log.record_in(session, event)
                    else:
                        await log.record(event)

            await asyncio.gather(*(writer(w) for w in range(20)))
            assert one.events_flushed + two.events_flushed == 900
            assert one.flushes + two.flushes < 900
        chain = await targets_in_order(db_one)
        assert [seq for seq, _ in chain] == list(range(1, 1001))
        assert len({target for _, target in chain}) == 1000
        report = await verify_chain(db_two, batch_size=64)
        assert report.ok, report.problems


WRITER_PROCESS = """
import asyncio, sys
from server.audit import Action, Actor, AuditLog, Event
from server.clock import utc_now
from server.db.engine import create_engine, session_factory
from server.settings import DatabaseSettings

async def main(url: str, name: str, waves: int, per_wave: int) -> None:
    engine = create_engine(DatabaseSettings(url=url))
    async with AuditLog(session_factory(engine), utc_now) as log:
        for wave in range(waves):
            await asyncio.gather(*(
                log.record(Event(Action.RECORD_READ, Actor.system(), target=f"{name}:{wave}:{i}"))
                for i in range(per_wave)
            ))
    await engine.dispose()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
"""


async def test_separate_processes_write_one_chain(shared_database_url: str) -> None:
    names, waves, per_wave = ["a", "b", "c"], 10, 20
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", WRITER_PROCESS, shared_database_url, name,
            str(waves), str(per_wave),
            cwd=PROJECT, env={**os.environ, "PYTHONPATH": str(PROJECT)},
            stderr=asyncio.subprocess.PIPE,
        )
        for name in names
    ]  # fmt: skip
    for process in processes:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=50)
        assert process.returncode == 0, stderr.decode()
    async with open_db(shared_database_url) as db:
        chain = await targets_in_order(db)
        total = len(names) * waves * per_wave
        assert [seq for seq, _ in chain] == list(range(1, total + 1))
        report = await verify_chain(db, batch_size=100)
        assert report.ok, report.problems


async def test_a_transaction_holding_the_head_cannot_stall_the_log(
    shared_database_url: str,
) -> None:
    """Misuse (record_in, then record() in the same transaction) fails that record() after
    the lock timeout, rather than stopping the process's audit writes for good."""
    if shared_database_url.startswith("sqlite"):
        pytest.skip("on SQLite the engine's 30 s busy timeout bounds this wait")
    async with (
        open_db(shared_database_url) as db,
        AuditLog(db, FakeClock(), lock_timeout_s=0.2) as log,
    ):
        async with db.begin() as session:
            await log.record_in(session, read(1))
            with pytest.raises(AuditUnavailable):
                await asyncio.wait_for(log.record(read(2)), timeout=20)
        await log.record(read(3))
        assert [target for _, target in await targets_in_order(db)] == ["thing:1", "thing:3"]
        assert (await verify_chain(db)).ok


# --- Group commit and lifecycle -----------------------------------------------------------------


async def test_concurrent_records_share_commits_and_return_once_durable(
    trail: Trail, audit: AuditLog
) -> None:
    reader_engine = create_engine(trail.settings.database)  # sees committed rows only
    reader = session_factory(reader_engine)

    async def one(i: int) -> None:
        await audit.record(read(i))
        async with reader() as db:
            count = await db.scalar(select(func.count()).where(AuditEvent.target == f"thing:{i}"))
        assert count == 1

    try:
        await asyncio.gather(*(one(i) for i in range(200)))
    finally:
        await reader_engine.dispose()
    assert audit.events_flushed == 200
    assert audit.flushes <= 10, audit.flushes


async def test_a_batch_holds_at_most_max_batch_events(trail: Trail, clock: FakeClock) -> None:
    async with AuditLog(trail.db, clock, max_batch=50) as log:
        await record_many(log, 200)
        assert log.flushes >= 4
    assert (await verify(trail)).events_checked == 200


async def test_closing_writes_what_is_queued_and_then_refuses(
    trail: Trail, clock: FakeClock
) -> None:
    log = AuditLog(trail.db, clock)
    await log.start()
    waiting = [asyncio.create_task(log.record(read(i))) for i in range(100)]
    await asyncio.sleep(0)  # one turn of the loop: each task queues its event
    assert log.queued == 100
    await log.close()
    assert all(task.done() and task.exception() is None for task in waiting)
    assert len(await rows(trail)) == 100
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "audit-flusher"]
    with pytest.raises(AuditUnavailable):
        await log.record(read(101))


async def test_a_cancelled_caller_still_gets_its_event_written(
    trail: Trail, audit: AuditLog
) -> None:
    caller = asyncio.create_task(audit.record(read(1)))
    await asyncio.sleep(0)  # queued
    caller.cancel()
    await audit.record(read(2))  # flushed after (or with) the first
    assert [r.target for r in await rows(trail)] == ["thing:1", "thing:2"]


async def test_a_failed_append_fails_its_callers_and_the_log_recovers(
    trail: Trail, audit: AuditLog
) -> None:
    await record_many(audit, 3)
    head = await row_at(trail, 3)
    await tamper(trail, "DELETE FROM audit_chain_head")
    with pytest.raises(AuditUnavailable) as raised:
        await audit.record(read(4))
    assert raised.value.status == 503 and raised.value.code == "audit_unavailable"
    await tamper(
        trail, "INSERT INTO audit_chain_head (id, seq, hash) VALUES (1, 3, :h)", h=head.hash
    )
    await audit.record(read(5))
    assert [r.target for r in await rows(trail)] == ["thing:1", "thing:2", "thing:3", "thing:5"]
    assert (await verify(trail)).ok


async def test_record_in_commits_and_rolls_back_with_the_change(
    trail: Trail, audit: AuditLog
) -> None:
    async with trail.db.begin() as db:
        await audit.record_in(db, read(1), read(2))
    with pytest.raises(RuntimeError):
        async with trail.db.begin() as db:
            await audit.record_in(db, read(3))
            raise RuntimeError("the change failed")
    await audit.record(read(4))
    assert [(r.seq, r.target) for r in await rows(trail)] == [
        (1, "thing:1"),
        (2, "thing:2"),
        (3, "thing:4"),
    ]
    assert (await verify(trail)).ok


# --- A patient's access log ----------------------------------------------------------------------


async def test_a_patient_sees_who_accessed_their_record(
    trail: Trail, audit: AuditLog, clock: FakeClock
) -> None:
    now = clock.now
    async with trail.db.begin() as db:
        doctor = User(
            username="dr.rivera", display_name="Dr Ana Rivera", role="psychiatrist",
            password_hash="x", created_at=now,
        )  # fmt: skip
        patient = Patient(
            mrn="MRN-1", given_name="Sam", family_name="Lee", date_of_birth=date(1990, 1, 2),
            preferred_language="en", state="WA", phone="555-0100", created_at=now,
        )  # fmt: skip
        db.add_all([doctor, patient])
        await db.flush()
        visit = Visit(
            patient_id=patient.id, scheduled_start=now, duration_minutes=30,
            created_by=doctor.id, created_at=now,
        )  # fmt: skip
        db.add(visit)
        await db.flush()
        link = VisitLink(
            visit_id=visit.id, token_hash="h" * 64, kind="guest", guest_role="interpreter",
            display_name="Interpreter Maria", expires_at=now, created_by=doctor.id,
            created_at=now,
        )  # fmt: skip
        db.add(link)
        await db.flush()
    by_doctor = Actor.user(doctor.id, Role.PSYCHIATRIST)
    await audit.record(Event(Action.RECORD_READ, by_doctor, patient_id=patient.id))
    await audit.record(read(2, patient_id=patient.id + 1, actor=by_doctor))  # someone else's
    await audit.record(Event(Action.VISIT_JOIN, Actor.link(link.id, "interpreter"),
                             patient_id=patient.id, target=f"visit:{visit.id}"))  # fmt: skip
    await audit.record(
        Event(Action.NOTE_READ, Actor.user(999, Role.PCP), patient_id=patient.id,
              target="note:5", outcome=Outcome.DENIED, client_address="192.0.2.1")
    )  # fmt: skip
    await audit.record(Event(Action.LOGIN, by_doctor))

    newest = await audit.accesses_for_patient(patient.id, limit=2)
    assert [(a.seq, a.action, a.actor_name, a.outcome) for a in newest] == [
        (4, "note.read", None, "denied"),
        (3, "visit.join", "Interpreter Maria", "ok"),
    ]
    older = await audit.accesses_for_patient(patient.id, limit=2, before_seq=newest[-1].seq)
    assert [(a.seq, a.actor, a.actor_role, a.actor_name) for a in older] == [
        (1, f"user:{doctor.id}", "psychiatrist", "Dr Ana Rivera")
    ]
    assert older[0].at == now and older[0].target is None
    assert not hasattr(older[0], "client_address")
    assert await audit.accesses_for_patient(patient.id + 5) == []


# --- Sign-in events ------------------------------------------------------------------------------


async def test_sign_in_and_out_are_audited_without_secrets(make_app: AppFactory) -> None:
    client: TestClient = await make_app(LIAISON_SECURITY__LOGIN_FAILURES_PER_ACCOUNT="2")  # type: ignore[type-arg]
    svc = client.app[SERVICES]
    rivera = await svc.users.create("dr.rivera", "Dr Rivera", Role.PSYCHIATRIST, PASSWORD)
    gone = await svc.users.create("dr.gone", "Dr Gone", Role.PCP, PASSWORD)
    await svc.users.set_disabled(gone.id, True)
    login = "/api/v1/auth/login"

    ok = await client.post(login, json={"username": "dr.rivera", "password": PASSWORD})
    assert ok.status == 200
    token = ok.cookies["liaison_session"].value
    csrf = (await ok.json())["csrf_token"]
    assert (await client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})).status == 204
    wrong_password = "Wrong-Pa55word-123"
    for _ in range(2):
        failed = await client.post(
            login, json={"username": "dr.rivera", "password": wrong_password}
        )
        assert failed.status == 401
    throttled = await client.post(login, json={"username": "dr.rivera", "password": PASSWORD})
    assert throttled.status == 429
    unknown = await client.post(login, json={"username": "dr.nobody", "password": wrong_password})
    assert unknown.status == 401
    disabled = await client.post(login, json={"username": "dr.gone", "password": PASSWORD})
    assert disabled.status == 403

    async with svc.db() as db:
        chain = list((await db.scalars(select(AuditEvent).order_by(AuditEvent.seq))).all())
    summary = [(e.action, e.actor, e.actor_role, e.outcome, e.detail) for e in chain]
    me, other = f"user:{rivera.id}", f"user:{gone.id}"
    assert summary == [
        ("user.create", "system", "system", "ok", '{"role":"psychiatrist"}'),
        ("user.create", "system", "system", "ok", '{"role":"pcp"}'),
        ("user.disable", "system", "system", "ok", '{"role":"pcp"}'),
        ("login", me, "psychiatrist", "ok", "{}"),
        ("logout", me, "psychiatrist", "ok", "{}"),
        ("login_failed", me, "psychiatrist", "denied", '{"reason":"credentials"}'),
        ("login_failed", me, "psychiatrist", "denied", '{"reason":"credentials"}'),
        ("login_failed", me, "psychiatrist", "denied", '{"reason":"throttled"}'),
        ("login_failed", "anonymous", "anonymous", "denied", '{"reason":"credentials"}'),
        ("login_failed", other, "pcp", "denied", '{"reason":"disabled"}'),
    ]
    signed_in = chain[3:]
    assert signed_in[0].target == signed_in[1].target
    assert (signed_in[0].target or "").startswith("session:")
    assert signed_in[0].client_address == "127.0.0.1"
    assert all(e.request_id for e in signed_in)  # ties each event to its access-log line
    everything = repr([vars(e) for e in chain])
    for secret in (PASSWORD, wrong_password, token, "dr.rivera", "dr.nobody", "dr.gone"):
        assert secret not in everything
    assert (await verify_chain(svc.db)).ok


async def test_a_missing_or_wrong_second_factor_is_audited(
    make_app: AppFactory, clock: FakeClock
) -> None:
    import pyotp

    client: TestClient = await make_app()  # type: ignore[type-arg]
    svc = client.app[SERVICES]
    user = await svc.users.create("dr.rivera", "Dr Rivera", Role.PSYCHIATRIST, PASSWORD)
    secret = pyotp.random_base32()
    async with svc.db.begin() as db:
        row = await db.get(User, user.id)
        assert row is not None
        row.totp_secret, row.totp_enabled_at = secret, datetime(2026, 1, 1, tzinfo=UTC)
    login = "/api/v1/auth/login"
    missing = await client.post(login, json={"username": "dr.rivera", "password": PASSWORD})
    assert (await missing.json())["error"]["code"] == "totp_required"
    wrong = await client.post(
        login,
        json={
            "username": "dr.rivera",
            "password": PASSWORD,
            "totp_code": wrong_totp_code(secret, clock()),
        },
    )
    assert (await wrong.json())["error"]["code"] == "invalid_totp"
    async with svc.db() as db:
        details = list(
            await db.scalars(
                select(AuditEvent.detail)
                .where(AuditEvent.action == Action.LOGIN_FAILED)
                .order_by(AuditEvent.seq)
            )
        )
    assert details == ['{"reason":"totp","totp":"missing"}', '{"reason":"totp","totp":"wrong"}']


# --- The command line ----------------------------------------------------------------------------


def test_cli_audit_verify_passes_an_intact_trail_and_names_tampering(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"  # the file run_cli points at

    async def write() -> None:
        await migrate_url(url)
        engine = create_engine(DatabaseSettings(url=url))
        async with AuditLog(session_factory(engine), FakeClock()) as log:
            await record_many(log, 6)
        await engine.dispose()

    asyncio.run(write())
    intact = run_cli(tmp_path, "audit", "verify")
    assert intact.returncode == 0, intact.stderr
    assert "audit trail intact: 6 events, head seq 6" in intact.stdout

    with sqlite3.connect(tmp_path / "cli.db") as db:
        db.execute("UPDATE audit_events SET actor = 'user:2' WHERE seq = 2")
        db.execute("DELETE FROM audit_events WHERE seq = 4")
        db.execute(
            "INSERT INTO audit_events (seq, at, actor, actor_role, action, outcome, detail, "
            "prev_hash, hash) SELECT 7, at, actor, actor_role, action, outcome, detail, hash, "
            "hash FROM audit_events WHERE seq = 6"
        )
    db.close()
    broken = run_cli(tmp_path, "audit", "verify", "--batch", "2")
    assert broken.returncode == 1, broken.stderr
    lines = broken.stdout.splitlines()
    assert lines[0].startswith("audit trail NOT intact: 3 problems in 6 events")
    assert lines[1].split(":")[0] == "  changed  seq 2 (row id 2)"
    assert lines[2].split(":")[0] == "  removed  seq 4"
    assert lines[3].split(":")[0] == "  inserted seq 7 (row id 7)"
