"""A clinic board row's status, from the visit's durable status and its live room (pure), and
who marked a no-show.

No column says whether a no-show was marked by a clinician or by the no-show rule
(server/clinics/no_show_task.py); the audit event written in the same transaction as the marking
does: actor ``system`` with reason ``not_checked_in``, or ``user:<id>``. :func:`no_show_marks`
reads those events for the board's no-show rows; :func:`mark_of` decides from one, purely.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.audit import Action
from server.clinics.no_show import no_show_deadline
from server.db.models import AuditEvent, User, Visit
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


@dataclass(frozen=True, slots=True)
class NoShowMark:
    """Who marked a visit a no-show, and when."""

    marked_at: datetime
    # The marking clinician's user id; None when the no-show rule marked it.
    marked_by: int | None
    # For the rule's marking: the time by which nobody had checked in (the slot's end plus the
    # configured delay, as it was when marked).
    not_checked_in_by: datetime | None

    @property
    def automatic(self) -> bool:
        return self.marked_by is None


def mark_of(
    actor: str, detail: Mapping[str, Any], at: datetime, start: datetime, duration: timedelta
) -> NoShowMark | None:
    """The marking an audit event on a visit records, or None if it is not a no-show marking."""
    if detail.get("status") != VisitStatus.NO_SHOW.value:
        return None
    if actor == "system":
        after = detail.get("after_minutes")
        by = (
            no_show_deadline(start, duration, timedelta(minutes=after))
            if isinstance(after, int)
            else None
        )
        return NoShowMark(at, None, by)
    kind, _, user_id = actor.partition(":")
    if kind != "user" or not user_id.isdigit():
        return None
    return NoShowMark(at, int(user_id), None)


async def no_show_marks(
    db: AsyncSession, visits: Sequence[tuple[int, int]]
) -> tuple[dict[int, NoShowMark], dict[int, str]]:
    """For ``(visit_id, patient_id)`` pairs of no-show visits: each one's marking, by visit id,
    and the markers' display names, by user id. A visit without its event (none is expected)
    is left out."""
    if not visits:
        return {}, {}
    targets = {f"visit:{visit_id}": visit_id for visit_id, _ in visits}
    slots = {
        v.id: (v.scheduled_start, timedelta(minutes=v.duration_minutes))
        for v in (
            await db.execute(
                select(Visit.id, Visit.scheduled_start, Visit.duration_minutes).where(
                    Visit.id.in_(list(targets.values()))
                )
            )
        ).all()
    }
    events = await db.execute(
        select(AuditEvent.target, AuditEvent.actor, AuditEvent.detail, AuditEvent.at)
        # By patient first: the trail's index is (patient_id, seq).
        .where(
            AuditEvent.patient_id.in_({patient_id for _, patient_id in visits}),
            AuditEvent.target.in_(list(targets)),
            AuditEvent.action == Action.RECORD_WRITE.value,
        )
        .order_by(AuditEvent.seq)
    )
    marks: dict[int, NoShowMark] = {}
    for target, actor, detail, at in events.all():
        visit_id = targets[target or ""]  # the query matched it: never None here
        mark = mark_of(actor, json.loads(detail), at, *slots[visit_id])
        if mark is not None:
            marks[visit_id] = mark  # the latest wins
    users = {m.marked_by for m in marks.values() if m.marked_by is not None}
    names: dict[int, str] = {}
    if users:
        rows = await db.execute(select(User.id, User.display_name).where(User.id.in_(users)))
        names = {uid: name for uid, name in rows.all()}
    return marks, names
