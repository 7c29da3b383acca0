"""What the signaling server uses: the room state's compare-and-set, the visit's status and
Encounter kept in step with the room, the roster, and clinicians' identities in a room."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from server.clock import FakeClock
from server.errors import Forbidden, NotFound
from server.state import SERVICES
from server.visits.lifecycle import (
    Attendee,
    RoomOutcome,
    encounter_of,
    load_room,
    record_room_outcome,
    save_room_state,
)
from server.visits.participants import ParticipantKind
from server.visits.status import VisitStatus
from tests.conftest import Persona, SignIn
from tests.integration.visit_support import (
    Client,
    Clinic,
    Holders,
    error_code,
    ok_json,
    set_up_clinic,
)


@pytest.fixture
async def clinic(app_client: Client, clock: FakeClock, sign_in: SignIn) -> Clinic:
    return await set_up_clinic(app_client, clock, sign_in)


@pytest.fixture
async def holders(app_client: Client) -> AsyncIterator[Holders]:
    async with Holders(app_client) as made:
        yield made


@pytest.fixture
async def visit(clinic: Clinic) -> Any:
    return await clinic.schedule(start_in=timedelta(minutes=-1))


async def test_the_room_state_is_saved_with_a_compare_and_set(clinic: Clinic, visit: Any) -> None:
    db, visit_id = clinic.client.app[SERVICES].db, visit["visit"]["id"]
    async with db.begin() as tx:
        room = await load_room(tx, visit_id)
        assert room.status is VisitStatus.SCHEDULED
        seen = room.room_version  # the live side may have created the room already
        assert await save_room_state(tx, visit_id, seen, '{"v": 1}') is True
        assert await save_room_state(tx, visit_id, seen, '{"v": "stale"}') is False
    async with db() as tx:
        room = await load_room(tx, visit_id)
    assert (room.room_state, room.room_version) == ('{"v": 1}', seen + 1)


async def test_cancelling_over_http_makes_a_stale_room_save_fail(
    clinic: Clinic, visit: Any
) -> None:
    db, visit_id = clinic.client.app[SERVICES].db, visit["visit"]["id"]
    async with db() as tx:
        seen = await load_room(tx, visit_id)
    await ok_json(await clinic.psychiatrist.post(f"/api/v1/visits/{visit_id}/cancel"))
    async with db.begin() as tx:
        assert await save_room_state(tx, visit_id, seen.room_version, "{}") is False
        reloaded = await load_room(tx, visit_id)
    assert reloaded.status is VisitStatus.CANCELLED


async def test_the_room_outcome_opens_and_closes_the_encounter(
    clinic: Clinic, visit: Any, holders: Holders
) -> None:
    db, visit_id = clinic.client.app[SERVICES].db, visit["visit"]["id"]
    link_id = visit["patient_link"]["link"]["id"]
    started = clinic.clock.now
    doctor = Attendee(
        f"user:{clinic.psychiatrist.user_id}", ParticipantKind.CLINICIAN, "Dr.Rivera", started
    )
    patient = Attendee(f"link:{link_id}", ParticipantKind.PATIENT, "Jordan A.", started)
    async with db.begin() as tx:
        await record_room_outcome(tx, visit_id, RoomOutcome(VisitStatus.WAITING, None, None))
        assert await encounter_of(tx, visit_id) is None  # nothing started yet
    async with db.begin() as tx:
        await record_room_outcome(
            tx, visit_id, RoomOutcome(VisitStatus.IN_PROGRESS, started, None, [doctor, patient])
        )
    detail = await ok_json(await clinic.psychiatrist.get(f"/api/v1/visits/{visit_id}"))
    assert detail["status"] == "in_progress"
    ended = started + timedelta(minutes=25)
    async with db.begin() as tx:
        await record_room_outcome(
            tx, visit_id, RoomOutcome(VisitStatus.COMPLETED, started, ended, [doctor, patient])
        )
    async with db() as tx:
        encounter = await encounter_of(tx, visit_id)
    assert encounter is not None
    assert (encounter.kind, encounter.started_at, encounter.ended_at) == ("visit", started, ended)
    assert encounter.patient_id == clinic.patient_id
    assert [p["participant_id"] for p in json.loads(encounter.participants)] == [
        doctor.participant_id,
        patient.participant_id,
    ]
    response = await holders().exchange(visit["patient_link"]["url"])
    assert await error_code(response, 410) == "visit_ended"


async def test_the_roster_lists_clinicians_and_live_links(clinic: Clinic, visit: Any) -> None:
    visits, visit_id = clinic.client.app[SERVICES].visits, visit["visit"]["id"]
    guest = await ok_json(
        await clinic.psychiatrist.post(
            f"/api/v1/visits/{visit_id}/links",
            json={"guest_role": "interpreter", "display_name": "Luis"},
        ),
        201,
    )
    await ok_json(await clinic.psychiatrist.post(f"/api/v1/visits/{visit_id}/patient-link"), 201)
    roster = await visits.roster(visit_id)
    assert roster.status is VisitStatus.SCHEDULED
    assert [(c.participant_id, c.kind) for c in roster.clinicians] == [
        (f"user:{clinic.psychiatrist.user_id}", ParticipantKind.CLINICIAN)
    ]
    # The first patient link was replaced, so it is not on the roster.
    assert [(link.kind, link.display_name) for link in roster.links] == [
        (ParticipantKind.GUEST, "Luis"),
        (ParticipantKind.PATIENT, "Jordan A."),
    ]
    assert roster.links[0].participant_id == f"link:{guest['link']['id']}"
    with pytest.raises(NotFound):
        await visits.roster(9999)


async def test_only_the_visits_own_clinicians_get_an_identity_in_its_room(
    clinic: Clinic, visit: Any
) -> None:
    visits, visit_id = clinic.client.app[SERVICES].visits, visit["visit"]["id"]

    async def identity_of(persona: Persona) -> Any:
        who = await clinic.client.app[SERVICES].sessions.resolve(
            persona.http.cookie_jar.filter_cookies(clinic.client.make_url(""))[
                "liaison_session"
            ].value
        )
        return await visits.clinician_identity(who, visit_id)

    mine = await identity_of(clinic.psychiatrist)
    assert mine.participant_id == f"user:{clinic.psychiatrist.user_id}"
    assert mine.kind is ParticipantKind.CLINICIAN and mine.ready_for_room is True
    for other in (clinic.pcp, clinic.outsider, clinic.admin, clinic.patient_user):
        with pytest.raises(Forbidden) as refused:
            await identity_of(other)
        assert refused.value.code == "not_on_visit"
