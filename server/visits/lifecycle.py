"""Keeping the visit record in step with the live room, for the signaling server's room store.

The room store saves a visit's room state (``visits.room_state``) with a compare-and-set on
``visits.room_version``. In the same transaction it calls :func:`record_room_outcome`, so the
durable record (the visit's status, and its Encounter with the real start, end and participants)
never disagrees with the room it was derived from::

    async with db.begin() as tx:
        saved = await save_room_state(tx, visit_id, expected_version, json.dumps(state.to_dict()))
        if saved:
            await record_room_outcome(tx, visit_id, RoomOutcome(...from the state...))

A visit cancelled or marked a no-show over HTTP bumps ``room_version`` too, so a store that read
the room before that fails its compare-and-set, reloads, and finds ``visits.status`` terminal.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Encounter, Visit
from server.errors import NotFound
from server.visits.participants import ParticipantKind
from server.visits.status import VisitStatus

ENCOUNTER_KIND = "visit"


@dataclass(frozen=True)
class StoredRoom:
    visit_id: int
    status: VisitStatus
    room_state: str | None  # JSON, as the room store wrote it; None before the first save
    room_version: int


@dataclass(frozen=True)
class Attendee:
    """Someone who was in the call, as the Encounter records them."""

    participant_id: str
    kind: ParticipantKind
    display_name: str
    first_in_call_at: datetime


@dataclass(frozen=True)
class RoomOutcome:
    status: VisitStatus
    started_at: datetime | None  # when a clinician and the patient or a guest were first in
    ended_at: datetime | None  # set once the visit is over
    attendance: Sequence[Attendee] = ()


async def load_room(db: AsyncSession, visit_id: int) -> StoredRoom:
    row = (
        await db.execute(
            select(Visit.status, Visit.room_state, Visit.room_version).where(Visit.id == visit_id)
        )
    ).first()
    if row is None:
        raise NotFound("No such visit.", code="visit_not_found")
    status, room_state, room_version = row
    return StoredRoom(visit_id, VisitStatus(status), room_state, room_version)


async def save_room_state(
    db: AsyncSession, visit_id: int, expected_version: int, room_state: str
) -> bool:
    """Write the room state if nobody has since ``expected_version``; True if written. The
    version becomes ``expected_version + 1``."""
    written = (
        await db.execute(
            update(Visit)
            .where(Visit.id == visit_id, Visit.room_version == expected_version)
            .values(room_state=room_state, room_version=expected_version + 1)
            .returning(Visit.id)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()
    return written is not None


async def record_room_outcome(db: AsyncSession, visit_id: int, outcome: RoomOutcome) -> None:
    """Mirror the room's status on the visit, and open, update or close its Encounter."""
    visit = await db.get(Visit, visit_id)
    if visit is None:
        raise NotFound("No such visit.", code="visit_not_found")
    visit.status = outcome.status.value
    if outcome.status is VisitStatus.CANCELLED and visit.cancelled_at is None:
        visit.cancelled_at = outcome.ended_at
    if outcome.started_at is None:
        return
    await record_encounter(
        db,
        visit,
        ENCOUNTER_KIND,
        outcome.started_at,
        attendance=outcome.attendance,
        ended_at=outcome.ended_at,
    )


async def record_encounter(
    db: AsyncSession,
    visit: Visit,
    kind: str,
    started_at: datetime,
    *,
    attendance: Sequence[Attendee] | None = None,
    ended_at: datetime | None = None,
) -> Encounter:
    """Open the visit's Encounter (of ``kind``: a video visit's, or a curbside call's) or bring
    it up to date: who attended, and when it ended (set once). An existing one keeps its kind."""
    encounter = await encounter_of(db, visit.id)
    if encounter is None:
        encounter = Encounter(
            patient_id=visit.patient_id, visit_id=visit.id, kind=kind, started_at=started_at
        )
        db.add(encounter)
    if attendance is not None:
        encounter.participants = participants_json(attendance)
    if ended_at is not None and encounter.ended_at is None:
        encounter.ended_at = ended_at
    await db.flush()
    return encounter


async def encounter_of(db: AsyncSession, visit_id: int) -> Encounter | None:
    return (
        await db.execute(select(Encounter).where(Encounter.visit_id == visit_id))
    ).scalar_one_or_none()


def participants_json(attendance: Sequence[Attendee]) -> str:
    """``Encounter.participants``: who took part, as JSON."""
    return json.dumps([_attendee_json(a) for a in attendance])


def _attendee_json(a: Attendee) -> dict[str, str]:
    return {
        "participant_id": a.participant_id,
        "kind": a.kind.value,
        "display_name": a.display_name,
        "first_in_call_at": a.first_in_call_at.isoformat(),
    }
