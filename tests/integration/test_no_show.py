"""The automatic no-show (server/clinics/no_show_task.py) through the real server: a booked
visit nobody came to is marked at its deadline, audited as the system, and the psychiatrist's
open board hears of it; a patient who checked in, even late and gone again, is never marked;
two server processes on one database (SQLite, and PostgreSQL under `make test`) mark each
visit once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from server.audit import Action
from server.clinics.no_show_task import NO_SHOW_TASK, REASON, NoShowTask
from server.clock import FakeClock
from server.db.models import AuditEvent, Visit
from server.state import Services, open_services
from server.visits.status import VisitStatus
from signaling.probe import ProbeClient
from tests.conftest import AppFactory, SignIn, make_settings, migrate
from tests.integration.clinic_support import (
    BASE,
    ClinicSession,
    poll,
    set_up_clinic_session,
    two_processes,
)
from tests.integration.test_reminders import book_visits
from tests.integration.visit_support import Client, Holders, ok_json, ready_patient

pytestmark = pytest.mark.timeout(120)
# The background loops never fire during a test: the tests tick the task themselves.
QUIET = {"LIAISON_OUTBOX__SCAN_INTERVAL_S": "3600"}
AFTER = timedelta(minutes=15)
SLOT = timedelta(minutes=20)  # clinic_support's sessions
SECOND = timedelta(seconds=1)


async def no_show_events(svc: Services, visit_id: int) -> list[AuditEvent]:
    async with svc.db() as db:
        found = await db.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.action == Action.RECORD_WRITE.value,
                AuditEvent.target == f"visit:{visit_id}",
            )
            .order_by(AuditEvent.seq)
        )
        return [e for e in found if json.loads(e.detail).get("status") == "no_show"]


async def statuses(svc: Services) -> dict[int, str]:
    async with svc.db() as db:
        return {i: status for i, status in await db.execute(select(Visit.id, Visit.status))}


# --- two processes ---------------------------------------------------------------------------


@pytest.fixture
async def two(
    shared_database_url: str, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[tuple[Services, Services]]:
    """Two processes' services on one database."""
    async with two_processes(shared_database_url, tmp_path, clock, **QUIET) as both:
        yield both


def task_of(svc: Services) -> NoShowTask:
    return NoShowTask(svc.db, svc.settings, svc.clock, svc.audit, svc.visit_events)


async def test_two_processes_mark_each_visit_once_with_one_audit_event(
    two: tuple[Services, Services], clock: FakeClock
) -> None:
    a, b = two
    start = await book_visits(a, clock, 5)  # five 10-minute slots
    last_end = start + 5 * timedelta(minutes=10)
    clock.now = last_end + AFTER - SECOND
    assert len(await task_of(a).tick()) == 4  # the last slot's visit is not due yet
    clock.now = last_end + AFTER
    first, second = await asyncio.gather(task_of(a).tick(), task_of(b).tick())
    assert len(first) + len(second) == 1
    marked = await statuses(a)
    assert set(marked.values()) == {"no_show"}
    for visit_id in marked:
        (event,) = await no_show_events(a, visit_id)
        assert (event.actor, event.actor_role) == ("system", "system")
        assert json.loads(event.detail) == {
            "status": "no_show",
            "reason": REASON,
            "after_minutes": 15,
        }
    assert list(await asyncio.gather(task_of(a).tick(), task_of(b).tick())) == [[], []]


async def test_both_processes_racing_on_every_visit_mark_each_once(
    two: tuple[Services, Services], clock: FakeClock
) -> None:
    a, b = two
    start = await book_visits(a, clock, 5)
    clock.now = start + 5 * timedelta(minutes=10) + AFTER
    first, second = await asyncio.gather(task_of(a).tick(), task_of(b).tick())
    assert sorted(first + second) == sorted(await statuses(a))
    assert not set(first) & set(second)
    for visit_id in first + second:
        assert len(await no_show_events(a, visit_id)) == 1


async def test_visits_skipped_as_not_due_never_hide_a_due_one_behind_them(
    shared_database_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    # More visits than a page that the rule skips come first in the scan's order: slots not
    # over yet, as a longer session's beside a short one. Starting at the same moment (two
    # psychiatrists' sessions), they also page on the id. The due visit behind them is marked.
    settings = make_settings(tmp_path, LIAISON_DATABASE__URL=shared_database_url, **QUIET)
    async with open_services(settings, clock) as svc:
        start = await book_visits(svc, clock, 4)
        ids = sorted(await statuses(svc))
        long, due = ids[:3], ids[3]
        async with svc.db.begin() as db:
            await db.execute(update(Visit).values(scheduled_start=start))
            await db.execute(update(Visit).where(Visit.id.in_(long)).values(duration_minutes=180))
        clock.now = start + timedelta(minutes=10) + AFTER
        task = NoShowTask(svc.db, svc.settings, svc.clock, svc.audit, svc.visit_events, batch=2)
        assert await task.tick() == [due]
        assert await task.tick() == []
        clock.now = start + timedelta(minutes=180) + AFTER
        assert sorted(await task.tick()) == long
        assert set((await statuses(svc)).values()) == {"no_show"}


async def test_zero_minutes_marks_nothing(tmp_path: Path, clock: FakeClock) -> None:
    settings = make_settings(tmp_path, LIAISON_CLINIC__AUTO_NO_SHOW_AFTER_MINUTES="0", **QUIET)
    await migrate(settings)
    async with open_services(settings, clock) as svc:
        start = await book_visits(svc, clock, 2)
        clock.now = start + timedelta(days=1)
        assert await task_of(svc).tick() == []
        assert set((await statuses(svc)).values()) == {"scheduled"}


# --- through the real server -----------------------------------------------------------------


class Setup(ClinicSession):
    def slot_end(self, slot: int) -> datetime:
        return datetime.fromisoformat(self.session["slots"][slot]) + SLOT

    async def board(self) -> dict[int, str]:
        """Each booking's status on the psychiatrist's board."""
        rows = (
            await ok_json(
                await self.clinic.psychiatrist.get(f"{BASE}/sessions/{self.session['id']}/board")
            )
        )["rows"]
        return {r["visit_id"]: r["status"] for r in rows}

    async def until(self, when: datetime) -> None:
        """Move the clock to ``when`` in steps the psychiatrist's sign-in outlasts (they look at
        the board between steps, as they would)."""
        clock = self.clinic.clock
        while clock.now < when:
            clock.now = min(when, clock.now + timedelta(minutes=10))
            await self.board()

    async def tick(self) -> list[int]:
        return await self.clinic.client.app[NO_SHOW_TASK].tick()


@pytest.fixture
async def setup(make_app: AppFactory, clock: FakeClock, sign_in: SignIn) -> Setup:
    client: Client = await make_app(**QUIET)
    made = await set_up_clinic_session(client, clock, sign_in, timedelta(minutes=5))
    return Setup(made.clinic, made.session, made.patient_id)


def _cookie(persona: Any) -> str:
    from yarl import URL

    jar = persona.http.cookie_jar.filter_cookies(URL(persona.base_url))
    value: str = jar["liaison_session"].value
    return value


async def _true(value: bool) -> bool:
    return value


async def test_a_visit_nobody_came_to_is_marked_and_the_open_board_hears_of_it(
    setup: Setup,
) -> None:
    missed = (await setup.book(0))["visit_id"]
    arrived = (await setup.book(1))["visit_id"]
    clinic = setup.clinic
    base = str(clinic.client.make_url("")).rstrip("/")
    await setup.until(setup.slot_end(0) + AFTER - SECOND)
    assert await setup.tick() == []

    psych = ProbeClient(base, {"liaison_session": _cookie(clinic.psychiatrist)}, send_video=False)
    pings: list[dict[str, Any]] = []
    psych.sio.on("clinic:board", lambda data: pings.append(data), namespace="/rtc")
    try:
        await psych.connect()
        await setup.until(setup.slot_end(0) + AFTER)
        assert await setup.tick() == [missed]
        await poll(lambda: _true(bool(pings)))
        assert pings[-1] == {"session_id": setup.session["id"]}
        assert await setup.board() == {missed: "no_show", arrived: "scheduled"}
        (event,) = await no_show_events(setup.svc, missed)
        assert event.actor == "system"
        assert await setup.tick() == []
    finally:
        await psych.close()


async def test_a_psychiatrist_waiting_in_the_room_for_nobody_does_not_stop_the_marking(
    setup: Setup,
) -> None:
    # The usual no-show: the psychiatrist opens the room on time and waits; the patient never
    # comes. The psychiatrist's own attendance is no check-in.
    booked = (await setup.book(0))["visit_id"]
    clinic = setup.clinic
    base = str(clinic.client.make_url("")).rstrip("/")
    psych = ProbeClient(base, {"liaison_session": _cookie(clinic.psychiatrist)}, send_video=False)
    try:
        await psych.connect()
        assert (await psych.join(booked))["presence"] == "in_call"
        await setup.until(setup.slot_end(0) + AFTER)
        assert await setup.tick() == [booked]
        assert await setup.board() == {booked: "no_show"}
    finally:
        await psych.close()


async def test_a_patient_who_checked_in_late_is_never_marked(setup: Setup) -> None:
    booked = (await setup.book(0))["visit_id"]
    clinic = setup.clinic
    base = str(clinic.client.make_url("")).rstrip("/")
    async with Holders(clinic.client) as holders:
        # Late: the slot is over when the patient opens the link from the invitation.
        await setup.until(setup.slot_end(0) + timedelta(minutes=5))
        url = next(w for w in next(setup.outbox.glob("*.eml")).read_text().split() if "/join#" in w)
        holder = await ready_patient(clinic, holders, url)
        patient = ProbeClient(base, {"liaison_visit": holder.session_token}, send_video=False)
        try:
            await patient.connect()
            assert (await patient.join(booked))["presence"] == "waiting"
            await setup.until(setup.slot_end(0) + AFTER + timedelta(minutes=5))
            assert await setup.tick() == []
            assert await setup.board() == {booked: "waiting"}
            await patient.close()

            async def gone() -> bool:
                return (await setup.board())[booked] != "waiting"

            await poll(gone)
        finally:
            await patient.close()
    # Gone from the waiting room, the visit is "scheduled" again, but the patient came.
    assert await setup.tick() == []
    assert (await statuses(setup.svc))[booked] == VisitStatus.SCHEDULED.value
    assert await no_show_events(setup.svc, booked) == []


async def test_a_patient_who_opened_their_link_is_left_to_the_psychiatrist(setup: Setup) -> None:
    # They may have waited and given up before the room's grace forgot them: the link says
    # they turned up, and the psychiatrist decides what to record.
    booked = (await setup.book(0))["visit_id"]
    async with Holders(setup.clinic.client) as holders:
        url = next(w for w in next(setup.outbox.glob("*.eml")).read_text().split() if "/join#" in w)
        await ready_patient(setup.clinic, holders, url)
    await setup.until(setup.slot_end(0) + AFTER + timedelta(hours=1))
    assert await setup.tick() == []
    assert await setup.board() == {booked: "scheduled"}
    marked = await ok_json(await setup.clinic.psychiatrist.post(f"/api/v1/visits/{booked}/no-show"))
    assert marked["status"] == "no_show"
    (event,) = await no_show_events(setup.svc, booked)
    assert event.actor == f"user:{setup.clinic.psychiatrist.user_id}"
