"""Two server processes, one truth: two sets of services over two engines on one SQLite file
(as two `liaison serve` processes behind a load balancer would be) agree on presence and give
exactly one winner when their psychiatrists accept the same request at the same moment."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from server.auth.roles import Role
from server.clock import FakeClock
from server.curbside.service import NewConsult
from server.db.models import ConsultRequest, Presence, Visit
from server.record.patients import NewPatient
from server.state import Services, open_services
from signaling import curbside as cs
from tests.conftest import PASSWORD, make_settings, migrate

pytestmark = pytest.mark.timeout(120)
ROUNDS = 5


@dataclass(frozen=True)
class Who:
    user_id: int
    role: Role


@pytest.fixture
async def two(tmp_path: Path, clock: FakeClock) -> AsyncIterator[tuple[Services, Services]]:
    settings = make_settings(tmp_path)
    await migrate(settings)
    async with open_services(settings, clock) as a, open_services(settings, clock) as b:
        yield a, b


async def test_two_processes_accepting_at_once_give_one_winner(
    two: tuple[Services, Services], clock: FakeClock
) -> None:
    a, b = two
    admin = await a.users.create("admin", "Admin", Role.ADMIN, PASSWORD)
    pcp = await a.users.create("dr.chen", "Dr. Chen", Role.PCP, PASSWORD)
    p1 = await a.users.create("dr.ahmed", "Dr. Ahmed", Role.PSYCHIATRIST, PASSWORD)
    p2 = await b.users.create("dr.baker", "Dr. Baker", Role.PSYCHIATRIST, PASSWORD)
    asker = Who(pcp.id, Role.PCP)
    patient = await a.patients.create(
        asker,
        NewPatient("Jordan", "Alvarez", date(1988, 4, 12), "en", "CA", "+1 415 555 0134"),
    )
    for user in (p1, p2):
        await a.curbside.oncall.add_shift(
            Who(admin.id, Role.ADMIN),
            user.id,
            cs.Tier.PRIMARY,
            clock.now - timedelta(minutes=5),
            clock.now + timedelta(hours=8),
        )
        await b.curbside.oncall.set_licenses(Who(user.id, Role.PSYCHIATRIST), ["CA"])
    # Each psychiatrist's dashboard is on a different process; each process sees both.
    await a.curbside.oncall.presence.connected("socket-on-a", p1.id)
    await b.curbside.oncall.presence.connected("socket-on-b", p2.id)
    for svc in (a, b):
        roster = await svc.curbside.oncall.roster()
        assert {(m.psychiatrist_id, m.presence) for m in roster} == {
            (p1.id, cs.Presence.AVAILABLE),
            (p2.id, cs.Presence.AVAILABLE),
        }

    winners: list[int] = []
    for _ in range(ROUNDS):
        rid = await a.curbside.open(asker, patient.patient.id, _consult(cs.Mode.CALL_NOW))
        assert (await b.curbside.store.load(rid)).ringing == {p1.id, p2.id}

        results = await asyncio.gather(
            a.curbside.accept(Who(p1.id, Role.PSYCHIATRIST), rid),
            b.curbside.accept(Who(p2.id, Role.PSYCHIATRIST), rid),
            return_exceptions=True,
        )
        visits = [r for r in results if isinstance(r, int)]
        refused = [r for r in results if isinstance(r, cs.AlreadyTaken)]
        assert len(visits) == 1 and len(refused) == 1, results
        state = await a.curbside.store.load(rid)
        winners.append(state.accepted_by or 0)
        async with b.db() as db:
            row = await db.get(ConsultRequest, rid)
            calls = await db.scalar(
                select(func.count()).select_from(Visit).where(Visit.id == visits[0])
            )
        assert row is not None and row.visit_id == visits[0] and calls == 1
        # The winner's retry is a no-op that returns the same call.
        winner = Who(state.accepted_by or 0, Role.PSYCHIATRIST)
        assert await b.curbside.accept(winner, rid) == visits[0]
        await b.curbside.cancel(asker, rid)  # frees the winner for the next round

    async with a.db() as db:
        total = await db.scalar(select(func.count()).select_from(Visit))
    assert total == ROUNDS
    assert set(winners) <= {p1.id, p2.id}


async def test_a_request_ticked_by_two_processes_escalates_once(
    two: tuple[Services, Services], clock: FakeClock
) -> None:
    a, b = two
    admin = await a.users.create("admin", "Admin", Role.ADMIN, PASSWORD)
    pcp = await a.users.create("dr.chen", "Dr. Chen", Role.PCP, PASSWORD)
    primary = await a.users.create("dr.ahmed", "Dr. Ahmed", Role.PSYCHIATRIST, PASSWORD)
    backup = await a.users.create("dr.baker", "Dr. Baker", Role.PSYCHIATRIST, PASSWORD)
    asker = Who(pcp.id, Role.PCP)
    patient = await a.patients.create(
        asker, NewPatient("Sam", "Ortiz", date(1990, 2, 3), "en", "CA", "+1 775 555 0199")
    )
    for user, tier in ((primary, cs.Tier.PRIMARY), (backup, cs.Tier.BACKUP)):
        await a.curbside.oncall.add_shift(
            Who(admin.id, Role.ADMIN), user.id, tier, clock.now, clock.now + timedelta(hours=1)
        )
        await a.curbside.oncall.set_licenses(Who(user.id, Role.PSYCHIATRIST), ["CA"])
        await b.curbside.oncall.presence.connected(f"socket-{user.id}", user.id)
    rid = await a.curbside.open(asker, patient.patient.id, _consult(cs.Mode.CALL_NOW))
    clock.advance(40)
    await b.curbside.oncall.presence.touch({})  # process b's heartbeat keeps its sockets fresh

    clock.advance(20)
    moved = await asyncio.gather(a.curbside.tick(), b.curbside.tick(), a.curbside.tick())
    assert sum(moved) == 1
    state = await a.curbside.store.load(rid)
    assert state.tier is cs.Tier.BACKUP and state.ringing == {backup.id}
    assert state.version == 2


def _consult(mode: cs.Mode) -> NewConsult:
    return NewConsult(
        question="Lithium level 1.3 with tremor: hold, reduce, or check again?",
        urgency=cs.Urgency.EMERGENT,
        mode=mode,
        patient_consented=True,
    )


async def test_presence_goes_stale_when_its_process_stops_touching_it(
    two: tuple[Services, Services], clock: FakeClock
) -> None:
    a, b = two
    admin = await a.users.create("admin", "Admin", Role.ADMIN, PASSWORD)
    psychiatrist = await a.users.create("dr.ahmed", "Dr. Ahmed", Role.PSYCHIATRIST, PASSWORD)
    await a.curbside.oncall.add_shift(
        Who(admin.id, Role.ADMIN),
        psychiatrist.id,
        cs.Tier.PRIMARY,
        clock.now,
        clock.now + timedelta(hours=1),
    )
    presence_a = a.curbside.oncall.presence

    async def seen_by_b() -> cs.Presence:
        (member,) = await b.curbside.oncall.roster()
        return member.presence

    await presence_a.connected("socket-on-a", psychiatrist.id)
    assert await seen_by_b() is cs.Presence.AVAILABLE
    clock.advance(31)  # process a stopped touching its rows (it died, or hung)
    assert await seen_by_b() is cs.Presence.OFFLINE
    await presence_a.touch({"socket-on-a": None})
    assert await seen_by_b() is cs.Presence.AVAILABLE

    async with a.db.begin() as db:  # purged by another process during a long pause
        await db.execute(delete(Presence))
    await presence_a.touch({"socket-on-a": 42})
    assert await seen_by_b() is cs.Presence.BUSY  # back, and in visit 42's room

    await presence_a.disconnected("socket-on-a")
    assert await seen_by_b() is cs.Presence.OFFLINE
