"""When a clinic visit is marked a no-show without anyone deciding it. Pure: the no-show task
(server/clinics/no_show_task.py) applies this rule to what it reads, and restates it in the
compare-and-set that marks the visit.

A booked clinic visit is marked a no-show ``clinic.auto_no_show_after_minutes`` after its slot
*ends* (0: never automatically) when its patient never checked in. Checked in means the patient
themselves: they are in the room or were in it (in the waiting room, in the call, away from
either within the reconnect grace), or they opened their join link at all. The room forgets a
patient once their grace is over, so the opened link is the durable sign that they turned up: a
patient who reached the waiting room and gave up is not a no-show, and the psychiatrist decides
what to record for them (by hand, as before). Nobody else's presence counts: the clinician who
opens the room and waits is the usual no-show, and a guest (an interpreter, a relative) may
come without the patient. A call a guest and a clinician held has started the visit, so it is
no longer scheduled and the rule never reaches it.

Only clinic bookings are marked: a visit of a session has a slot the patient was invited to, a
board and a session report that otherwise say "scheduled" for ever. A one-off video visit has
neither, its clinician scheduled it and closes it, and a curbside call is a visit too, whose
start is when the call was placed, not an appointment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from server.clinics.kinds import BookingStatus
from server.visits.status import NO_SHOW_FROM, VisitStatus
from signaling import rooms

# How far past its deadline a visit is still looked at: a process that was down catches up on
# a day's visits; an older one still "scheduled" is left to the clinic (turning the setting on
# does not rewrite last year's visits).
CATCH_UP = timedelta(days=1)
_THERE = frozenset({rooms.Presence.WAITING, rooms.Presence.IN_CALL, rooms.Presence.AWAY})


class NoShowSkip(StrEnum):
    """Why a visit is not marked (a log field, never shown to anyone)."""

    NOT_BOOKED = "not_booked"  # the booking was cancelled or moved to another slot
    NOT_SCHEDULED = "not_scheduled"  # waiting, in the call, or already over
    NOT_YET = "not_yet"
    CHECKED_IN = "checked_in"
    LINK_OPENED = "link_opened"


@dataclass(frozen=True, slots=True)
class NoShowFacts:
    booking_status: BookingStatus
    visit_status: VisitStatus
    start: datetime
    duration: timedelta
    # The room (visits.room_state, JSON) as last saved; None when nobody has ever joined it.
    room_state: str | None
    # Some patient link of the visit was exchanged for a visit session, even a revoked one.
    patient_link_opened: bool


def no_show_deadline(start: datetime, duration: timedelta, after: timedelta) -> datetime:
    """When the visit is marked if nobody checked in: ``after`` past the end of its slot."""
    return start + duration + after


def no_show_window(now: datetime, after: timedelta) -> tuple[datetime, datetime] | None:
    """``(earliest, latest)``: only a visit starting after ``earliest`` and no later than
    ``latest`` can be due (every slot lasts a while, so ``latest`` is generous). None when the
    setting is 0: automatic no-shows are off. The task selects by it in SQL."""
    if after <= timedelta(0):
        return None
    latest = now - after
    return latest - CATCH_UP, latest


def room_checked_in(room_state: str | None) -> bool:
    """Whether the patient is in the room or has been in the call: the durable room status
    (WAITING, IN_PROGRESS) says so only while they are connected. Attendance lists everyone
    who was in the call, the clinician waiting alone included, and ``started_at`` is set by a
    guest's call too, so neither counts by itself."""
    if room_state is None:
        return False
    state = rooms.RoomState.from_dict(json.loads(room_state))
    if any(a.kind is rooms.Kind.PATIENT for a in state.attendance):
        return True
    # Not REMOVED: a link replaced by a reminder is removed from the roster unopened.
    return any(p.kind is rooms.Kind.PATIENT and p.presence in _THERE for p in state.participants)


def no_show_skip(facts: NoShowFacts, now: datetime, after: timedelta) -> NoShowSkip | None:
    """None when the visit is due to be marked a no-show now; otherwise why not. ``after`` must
    be positive (the caller checks the setting is on, through :func:`no_show_window`)."""
    if facts.booking_status is not BookingStatus.BOOKED:
        return NoShowSkip.NOT_BOOKED
    if facts.visit_status not in NO_SHOW_FROM:
        return NoShowSkip.NOT_SCHEDULED
    if now < no_show_deadline(facts.start, facts.duration, after):
        return NoShowSkip.NOT_YET
    if facts.patient_link_opened:
        return NoShowSkip.LINK_OPENED
    if room_checked_in(facts.room_state):
        return NoShowSkip.CHECKED_IN
    return None
