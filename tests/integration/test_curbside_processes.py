"""Two server processes, one truth: two sets of services over two engines on one database (a
SQLite file; PostgreSQL too when LIAISON_TEST_POSTGRES_URL is set, as `make test` does), as two
`liaison serve` processes behind a load balancer would be, agree on presence and give exactly
one winner when their psychiatrists accept the same request at the same moment."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
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
from tests.conftest import PASSWORD, make_settings

pytestmark = pytest.mark.timeout(120)
ROUNDS = 5


@dataclass(frozen=True)
class Who:
    user_id: int
    role: Role


@dataclass(frozen=True)
class Clinic:
    asker: Who  # the PCP
    patient_id: int
    on_call: list[Who]  # psychiatrists, one per tier asked for, licensed in CA


async def clinic(svc: Services, clock: FakeClock, *tiers: cs.Tier) -> Clinic:
    admin = await svc.users.create("admin", "Admin", Role.ADMIN, PASSWORD)
    pcp = await svc.users.create("dr.chen", "Dr. Chen", Role.PCP, PASSWORD)
    asker = Who(pcp.id, Role.PCP)
    patient = await svc.patients.create(
        asker, NewPatient("Jordan", "Alvarez", date(1988, 4, 12), "en", "CA", "+1 415 555 0134")
    )
    on_call = []
    for n, tier in enumerate(tiers):
        user = await svc.users.create(f"dr.{n}", f"Dr. {n}", Role.PSYCHIATRIST, PASSWORD)
        who = Who(user.id, Role.PSYCHIATRIST)
        await svc.curbside.oncall.add_shift(
            Who(admin.id, Role.ADMIN), user.id, tier, clock.now, clock.now + timedelta(hours=8)
        )
        await svc.curbside.oncall.set_licenses(who, ["CA"])
        on_call.append(who)
    return Clinic(asker, patient.patient.id, on_call)


@pytest.fixture
async def two(
    shared_database_url: str, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[tuple[Services, Services]]:
    """Two processes' services on one database: a SQLite file, or a PostgreSQL database."""
    async with AsyncExitStack() as stack:
        settings = make_settings(tmp_path, LIAISON_DATABASE__URL=shared_database_url)
        a = await stack.enter_async_context(open_services(settings, clock))
        b = await stack.enter_async_context(open_services(settings, clock))
        yield a, b


async def test_two_processes_accepting_at_once_give_one_winner(
    two: tuple[Services, Services], clock: FakeClock
) -> None:
    a, b = two
    c = await clinic(a, clock, cs.Tier.PRIMARY, cs.Tier.PRIMARY)
    p1, p2 = c.on_call
    # Each psychiatrist's dashboard is on a different process; each process sees both.
    await a.curbside.oncall.presence.watch("socket-on-a", p1.user_id)
    await b.curbside.oncall.presence.watch("socket-on-b", p2.user_id)
    for svc in (a, b):
        roster = await svc.curbside.oncall.roster()
        assert {(m.psychiatrist_id, m.presence) for m in roster} == {
            (p1.user_id, cs.Presence.AVAILABLE),
            (p2.user_id, cs.Presence.AVAILABLE),
        }

    winners: set[int] = set()
    for _ in range(ROUNDS):
        rid = await a.curbside.open(c.asker, c.patient_id, _consult(cs.Mode.CALL_NOW))
        assert (await b.curbside.store.load(rid)).ringing == {p1.user_id, p2.user_id}

        results = await asyncio.gather(
            a.curbside.accept(p1, rid), b.curbside.accept(p2, rid), return_exceptions=True
        )
        visits = [r for r in results if isinstance(r, int)]
        refused = [r for r in results if isinstance(r, cs.AlreadyTaken)]
        assert len(visits) == 1 and len(refused) == 1, results
        winner = p1 if isinstance(results[0], int) else p2
        assert (await a.curbside.store.load(rid)).accepted_by == winner.user_id
        winners.add(winner.user_id)
        async with b.db() as db:
            row = await db.get(ConsultRequest, rid)
            calls = await db.scalar(
                select(func.count()).select_from(Visit).where(Visit.id == visits[0])
            )
        assert row is not None and row.visit_id == visits[0] and calls == 1
        # The winner's retry is a no-op that returns the same call.
        assert await b.curbside.accept(winner, rid) == visits[0]
        await b.curbside.cancel(c.asker, rid)  # frees the winner for the next round

    async with a.db() as db:
        total = await db.scalar(select(func.count()).select_from(Visit))
    assert total == ROUNDS
    assert winners <= {p1.user_id, p2.user_id}


async def test_a_request_ticked_by_two_processes_escalates_once(
    two: tuple[Services, Services], clock: FakeClock
) -> None:
    a, b = two
    c = await clinic(a, clock, cs.Tier.PRIMARY, cs.Tier.BACKUP)
    primary, backup = c.on_call
    for who in c.on_call:
        await b.curbside.oncall.presence.watch(f"socket-{who.user_id}", who.user_id)
    rid = await a.curbside.open(c.asker, c.patient_id, _consult(cs.Mode.CALL_NOW))
    clock.advance(40)
    await b.curbside.oncall.presence.touch({})  # process b's heartbeat keeps its sockets fresh

    clock.advance(20)
    moved = await asyncio.gather(a.curbside.tick(), b.curbside.tick(), a.curbside.tick())
    assert sum(moved) == 1
    state = await a.curbside.store.load(rid)
    assert state.tier is cs.Tier.BACKUP and state.ringing == {backup.user_id}
    assert primary.user_id in state.rung and state.version == 2


async def test_presence_goes_stale_when_its_process_stops_touching_it(
    two: tuple[Services, Services], clock: FakeClock
) -> None:
    a, b = two
    (psychiatrist,) = (await clinic(a, clock, cs.Tier.PRIMARY)).on_call
    presence_a = a.curbside.oncall.presence

    async def seen_by_b() -> cs.Presence:
        (member,) = await b.curbside.oncall.roster()
        return member.presence

    await presence_a.watch("socket-on-a", psychiatrist.user_id)
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


def _consult(mode: cs.Mode) -> NewConsult:
    return NewConsult(
        question="Lithium level 1.3 with tremor: hold, reduce, or check again?",
        urgency=cs.Urgency.EMERGENT,
        mode=mode,
        patient_consented=True,
    )
