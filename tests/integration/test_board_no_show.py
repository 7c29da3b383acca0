"""The clinic board says who marked a no-show: the no-show rule (audited as ``system``, reason
``not_checked_in``) with the time by which nobody had checked in, or the clinician by name."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from server.clinics.no_show_task import NO_SHOW_TASK
from server.clock import FakeClock
from tests.conftest import AppFactory, SignIn
from tests.integration.clinic_support import BASE, set_up_clinic_session
from tests.integration.visit_support import ok_json

pytestmark = pytest.mark.timeout(120)
QUIET = {"LIAISON_OUTBOX__SCAN_INTERVAL_S": "3600"}  # the test ticks the task itself
AFTER = timedelta(minutes=15)  # the default clinic.auto_no_show_after_minutes
SLOT = timedelta(minutes=20)


async def test_the_board_tells_an_automatic_no_show_from_a_clinicians(
    make_app: AppFactory, clock: FakeClock, sign_in: SignIn
) -> None:
    client = await make_app(**QUIET)
    made = await set_up_clinic_session(client, clock, sign_in, timedelta(minutes=5))
    clinic, session = made.clinic, made.session
    slots = [datetime.fromisoformat(s) for s in session["slots"]]
    visits = []
    for slot in session["slots"][:3]:
        booked = await clinic.care_manager.post(
            f"{BASE}/sessions/{session['id']}/bookings",
            json={"patient_id": made.patient_id, "slot_start": slot},
        )
        visits.append((await ok_json(booked, 201))["visit_id"])
    auto, by_hand, open_ = visits

    board_path = f"{BASE}/sessions/{session['id']}/board"

    async def until(when: datetime) -> None:
        # In steps the sign-ins outlast: the psychiatrist looks at the board meanwhile.
        while clock.now < when:
            clock.now = min(when, clock.now + timedelta(minutes=10))
            await ok_json(await clinic.psychiatrist.get(board_path))

    # The second slot has begun: the psychiatrist marks that visit by hand.
    await until(slots[1] + timedelta(minutes=1))
    await ok_json(await clinic.psychiatrist.post(f"/api/v1/visits/{by_hand}/no-show"))
    # The first slot's deadline passes with nobody checked in: the rule marks it.
    deadline = slots[0] + SLOT + AFTER
    await until(deadline)
    assert await client.app[NO_SHOW_TASK].tick() == [auto]

    board = await ok_json(await clinic.psychiatrist.get(board_path))
    rows = {r["visit_id"]: r for r in board["rows"]}
    assert rows[auto]["status"] == "no_show"
    assert rows[auto]["no_show"]["automatic"] is True
    assert rows[auto]["no_show"]["marked_by_name"] is None
    assert datetime.fromisoformat(rows[auto]["no_show"]["not_checked_in_by"]) == deadline
    assert rows[by_hand]["status"] == "no_show"
    assert rows[by_hand]["no_show"]["automatic"] is False
    assert rows[by_hand]["no_show"]["marked_by_name"] == "Dr.Rivera"
    assert rows[by_hand]["no_show"]["not_checked_in_by"] is None
    assert rows[open_]["status"] == "scheduled"
    assert rows[open_]["no_show"] is None
