"""The audit trail of what happens in a visit's live room: someone admitted from the waiting
room, and the visit ended.

The signaling server saves every room change with a compare-and-set (signaling/room_store.py)
and, once the save has succeeded, says here what the change did. An admit the room refuses
(already admitted, not waiting, the call full) raises before anything is saved, and ending an
ended visit is refused the same way, so each admission and each ending is written once.

Only an ending with the call held (completed) is a ``visit.end``: a visit cancelled or marked a
no-show is audited by whoever decided it (server/visits/service.py over HTTP, the consult for a
curbside call withdrawn), in that decision's own transaction.

The room's transaction knows nothing of the trail, so these are written just after it commits
(group commit). Should the trail be unavailable, the change stands and the caller hears
``audit_unavailable``: the flusher has logged the failure.

Who acted is the socket whose event made the change, or nobody (``system``: a timer). A change
made over HTTP that the live side carries out further down the same call (a curbside call hung
up through its endpoint) has no socket to name, so the service names its user with
:func:`acting`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.audit import Action, Actor, AuditLog, Event
from server.db.models import Visit


@dataclass(frozen=True, slots=True)
class Admitted:
    """A patient or guest let into the call (their participant id, "link:<id>")."""

    participant_id: str


@dataclass(frozen=True, slots=True)
class Ended:
    """The visit's call ended: the room closed as completed."""


RoomChange = Admitted | Ended

_acting: ContextVar[Actor | None] = ContextVar("room_audit_acting", default=None)


@contextmanager
def acting(by: Actor) -> Iterator[None]:
    """Room changes audited inside this block (in this task) are ``by``'s."""
    token = _acting.set(by)
    try:
        yield
    finally:
        _acting.reset(token)


class RoomAudit:
    def __init__(self, db: async_sessionmaker[AsyncSession], audit: AuditLog) -> None:
        self._db = db
        self._audit = audit

    async def record(self, visit_id: int, by: Actor, changes: Sequence[RoomChange]) -> None:
        """Write one event per change, as ``by`` (the clinician who made it), or as whoever
        :func:`acting` names."""
        if not changes:
            return
        by = _acting.get() or by
        async with self._db() as db:
            patient_id = await db.scalar(select(Visit.patient_id).where(Visit.id == visit_id))
        target = f"visit:{visit_id}"
        for change in changes:
            match change:
                case Admitted(participant_id=participant):
                    # The participant by id only: a link holder's name is personal data.
                    event = Event(
                        Action.VISIT_ADMIT,
                        by,
                        patient_id=patient_id,
                        target=target,
                        detail={"participant_id": participant},
                    )
                case Ended():
                    event = Event(Action.VISIT_END, by, patient_id=patient_id, target=target)
            await self._audit.record(event)
