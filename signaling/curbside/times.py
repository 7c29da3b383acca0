"""Time on a consult: the written-answer target, the minutes an answer may be attested at, and
the durations reporting and billing read.

A call's time is measured: talking from ``call_connected`` to ``end_call``, documenting from
there to ``complete``. A written answer's is measured from the answering psychiatrist's
``start_writing`` (the first time they opened the answer form; each psychiatrist has their own
start, and only the answerer's counts) to ``answer_written``, which also takes the minutes the
psychiatrist attests. Interprofessional consult codes are billed on the minutes the consultant
attests, so an attested figure wins over the measured one; it is refused when it could not be
true (more than :data:`MAX_WRITTEN_MINUTES`, or more minutes than have passed since the PCP
asked: :func:`minutes_possible`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from signaling.curbside.inputs import aware
from signaling.curbside.state import MAX_WRITTEN_MINUTES, CurbsideState, Status


def is_overdue(state: CurbsideState, now: datetime) -> bool:
    """A queued written consult is overdue from the instant its target has fully elapsed."""
    return state.status is Status.QUEUED_WRITTEN and aware(now) >= state.answer_due_at


def minutes_possible(state: CurbsideState, now: datetime) -> int:
    """The most minutes an answer written at ``now`` may be attested at: what has passed since
    the PCP asked, the last minute begun counting whole (at least 1), and never past
    :data:`MAX_WRITTEN_MINUTES`."""
    elapsed = (aware(now) - state.request.created_at).total_seconds()
    return min(MAX_WRITTEN_MINUTES, max(1, math.ceil(elapsed / 60)))


@dataclass(frozen=True, slots=True)
class ConsultTimes:
    """Durations for reporting; ``None`` where that phase has not happened (or not ended)."""

    to_answer: timedelta | None  # request opened -> accepted (call) or answered (written)
    ringing: timedelta | None
    talking: timedelta | None
    documenting: timedelta | None
    # Written answers: from the author opening the answer form to sending it (measured), and
    # what the author attested.
    writing: timedelta | None = None
    attested: timedelta | None = None


def consult_times(state: CurbsideState) -> ConsultTimes:
    answered = state.accepted_at or state.answered_at
    author = state.answered_by
    started = None if author is None else state.writing_started_by(author)
    attested = state.attested_minutes
    return ConsultTimes(
        to_answer=_span(state.request.created_at, answered),
        ringing=_span(state.ringing_started_at, state.ringing_ended_at),
        talking=_span(state.call_started_at, state.call_ended_at),
        documenting=_span(state.call_ended_at, state.completed_at),
        writing=_span(started, state.answered_at),
        attested=None if attested is None else timedelta(minutes=attested),
    )


def _span(start: datetime | None, end: datetime | None) -> timedelta | None:
    return None if start is None or end is None else end - start
