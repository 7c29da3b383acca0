"""The room store as two server processes use it (no room cache, as in a cluster): reads made
at once are answered by shared queries, yet each sees what was committed before it was asked.

Two processes' services share one database (a SQLite file, and PostgreSQL when
LIAISON_TEST_POSTGRES_URL is set): a change saved by one is what the other's next read
answers, however many reads it has in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from server.auth.roles import Role
from server.clock import FakeClock
from server.demo import DemoActor
from server.errors import NotFound
from server.record.patients import NewPatient, TeamRole
from server.state import Services, open_services
from server.visits.service import NewVisit
from signaling import rooms
from signaling.room_store import RoomStore
from tests.conftest import PASSWORD, make_settings

MISSING_VISIT = 987_654


@dataclass(frozen=True)
class Process:
    services: Services
    store: RoomStore


@pytest.fixture
async def two(
    shared_database_url: str, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[tuple[Process, Process]]:
    async with AsyncExitStack() as stack:
        settings = make_settings(tmp_path, LIAISON_DATABASE__URL=shared_database_url)
        processes = []
        for _ in range(2):
            svc = await stack.enter_async_context(open_services(settings, clock))
            store = RoomStore(
                svc.db, settings.signaling, clock, svc.visits.roster, cache_rooms=False
            )
            processes.append(Process(svc, store))
        yield processes[0], processes[1]


async def visits_with_two_psychiatrists(svc: Services, clock: FakeClock, count: int) -> list[int]:
    rivera = await svc.users.create("dr.rivera", "Dr. Rivera", Role.PSYCHIATRIST, PASSWORD)
    okafor = await svc.users.create("dr.okafor", "Dr. Okafor", Role.PSYCHIATRIST, PASSWORD)
    who = DemoActor(rivera.id, Role.PSYCHIATRIST)
    patient = await svc.patients.create(
        who, NewPatient("Jordan", "Alvarez", date(1988, 4, 12), "es", "CA", "4155550134")
    )
    await svc.patients.add_to_care_team(who, patient.patient.id, okafor.id, TeamRole.PSYCHIATRIST)
    visit_ids = []
    for _ in range(count):
        view, _ = await svc.visits.schedule(
            who, NewVisit(patient.patient.id, clock.now, 30, [rivera.id, okafor.id])
        )
        visit_ids.append(view.visit.id)
    return visit_ids


async def both_in_call(store: RoomStore, visit_id: int) -> str:
    """Dr. Rivera on connection A and Dr. Okafor on B (clinicians go straight into the call);
    returns Dr. Okafor's participant id."""
    state = await store.load(visit_id)
    rivera, okafor = (
        p.participant_id for p in state.participants if p.kind is rooms.Kind.CLINICIAN
    )
    await store.apply(visit_id, lambda s, now: rooms.join(s, "A", rivera, now))
    await store.apply(visit_id, lambda s, now: rooms.join(s, "B", okafor, now))
    assert rooms.can_signal(await store.load(visit_id), "A", "B")
    return okafor


async def test_a_read_sees_a_change_saved_by_another_process_while_its_reads_are_in_flight(
    two: tuple[Process, Process], clock: FakeClock
) -> None:
    a, b = two
    visit_id, other_visit = await visits_with_two_psychiatrists(a.services, clock, 2)
    okafor = await both_in_call(a.store, visit_id)
    await both_in_call(a.store, other_visit)
    stop = asyncio.Event()

    async def keep_reading(room: int) -> None:
        while not stop.is_set():
            await a.store.load(room)

    readers = [asyncio.create_task(keep_reading(v)) for v in (visit_id, other_visit) * 10]
    try:
        for _ in range(10):
            # B leaves on the other process; the next relay check on A must refuse at once.
            await b.store.apply(visit_id, lambda s, now: rooms.leave(s, "B", now))
            assert not rooms.can_signal(await a.store.load(visit_id), "A", "B")
            await b.store.apply(visit_id, lambda s, now: rooms.join(s, "B", okafor, now))
            assert rooms.can_signal(await a.store.load(visit_id), "A", "B")
    finally:
        stop.set()
        for task in readers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    # The other room never moved.
    assert rooms.can_signal(await a.store.load(other_visit), "A", "B")


async def test_reads_at_once_each_get_their_own_room_and_a_missing_visit_fails_alone(
    two: tuple[Process, Process], clock: FakeClock
) -> None:
    a, _ = two
    visit_ids = await visits_with_two_psychiatrists(a.services, clock, 3)
    for visit_id in visit_ids:
        await both_in_call(a.store, visit_id)
    asked = [*visit_ids, MISSING_VISIT, *visit_ids]
    results = await asyncio.gather(*(a.store.load(v) for v in asked), return_exceptions=True)
    for visit_id, result in zip(asked, results, strict=True):
        if visit_id == MISSING_VISIT:
            assert isinstance(result, NotFound) and result.code == "visit_not_found"
        else:
            assert isinstance(result, rooms.RoomState) and result.visit_id == visit_id
            assert rooms.can_signal(result, "A", "B")
