"""A clinic board row's status, from the visit's durable status and its live room. Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from server.visits.status import VisitStatus
from signaling import rooms


class BoardStatus(StrEnum):
    SCHEDULED = "scheduled"
    WAITING = "waiting"  # checked in: in the waiting room (or briefly away from it)
    IN_VISIT = "in_visit"
    DONE = "done"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Live:
    status: BoardStatus
    waiting_since: datetime | None
    # The patient's participant id in the room, for `lobby:admit`.
    patient_participant_id: str | None
    # Connections of patients and guests waiting now: where "running late" notices go.
    waiting_connections: tuple[str, ...]


_BY_VISIT = {
    VisitStatus.SCHEDULED: BoardStatus.SCHEDULED,
    VisitStatus.WAITING: BoardStatus.WAITING,
    VisitStatus.IN_PROGRESS: BoardStatus.IN_VISIT,
    VisitStatus.COMPLETED: BoardStatus.DONE,
    VisitStatus.NO_SHOW: BoardStatus.NO_SHOW,
    VisitStatus.CANCELLED: BoardStatus.CANCELLED,
}


def live_status(visit_status: str, room_state: str | None) -> Live:
    status = _BY_VISIT[VisitStatus(visit_status)]
    state = rooms.RoomState.from_dict(json.loads(room_state)) if room_state else None
    if state is None:
        return Live(status, None, None, ())
    patient = next((p for p in state.participants if p.kind is rooms.Kind.PATIENT), None)
    waiting = [
        p
        for p in state.participants
        if p.kind is not rooms.Kind.CLINICIAN and p.presence is rooms.Presence.WAITING
    ]
    since = patient.waiting_since if patient is not None and status is BoardStatus.WAITING else None
    return Live(
        status,
        since,
        patient.participant_id if patient is not None else None,
        tuple(p.conn_id for p in waiting if p.conn_id is not None),
    )
