"""A visit's lifecycle status, and the changes a clinician makes over HTTP.

    SCHEDULED <-> WAITING -> IN_PROGRESS -> COMPLETED     the live room drives these
    SCHEDULED | WAITING -> CANCELLED                      a clinician, before the call starts
    SCHEDULED -> NO_SHOW                                  a clinician, once the start time has
                                                          passed and nobody is waiting

The live room (signaling/rooms.py) holds the same values; ``visits.status`` is its durable copy,
written with the room state. WAITING means a patient or guest is connected, so a visit with
someone in the waiting room cannot be marked a no-show from here.
"""

from __future__ import annotations

from enum import StrEnum

from server.errors import Conflict, Gone


class VisitStatus(StrEnum):
    SCHEDULED = "scheduled"
    WAITING = "waiting"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({VisitStatus.COMPLETED, VisitStatus.NO_SHOW, VisitStatus.CANCELLED})
# The statuses whose room may still hold someone, as stored values, for SQL `IN (...)`.
OPEN_VALUES = tuple(s.value for s in VisitStatus if s not in TERMINAL)
CANCELLABLE = frozenset({VisitStatus.SCHEDULED, VisitStatus.WAITING})
NO_SHOW_FROM = frozenset({VisitStatus.SCHEDULED})


def closed_error(status: VisitStatus) -> Gone:
    """What a link holder is told about a visit that is over."""
    if status is VisitStatus.CANCELLED:
        return Gone(
            "This visit has been cancelled. Contact the clinic to book a new time.",
            code="visit_cancelled",
        )
    return Gone(
        "This visit has ended. If you still need to be seen, contact the clinic.",
        code="visit_ended",
    )


def check_cancel(status: VisitStatus) -> None:
    if status in CANCELLABLE:
        return
    if status is VisitStatus.IN_PROGRESS:
        raise Conflict("This visit has started; end it from the call.", code="visit_started")
    raise Conflict("This visit is already over.", code="visit_closed")


def check_no_show(status: VisitStatus) -> None:
    if status in NO_SHOW_FROM:
        return
    if status is VisitStatus.WAITING:
        raise Conflict(
            "Someone is in the waiting room: admit or deny them first.",
            code="participant_waiting",
        )
    if status is VisitStatus.IN_PROGRESS:
        raise Conflict("This visit has started.", code="visit_started")
    raise Conflict("This visit is already over.", code="visit_closed")
