"""Consult time, interprofessional billing checks and the admin's figures. Pure: the caller
loads the facts (routing states, visit dates) and passes them in.

Billing checks, after the usual interprofessional consult rules (a practice's biller decides;
these are flags, not verdicts)::

    no_consent                    the patient's consent to the consult was not recorded
    face_to_face_with_consultant  the consultant saw the patient in a video visit within the
                                  window (default 14 days) before or after the consult
    repeat_consult                the patient had another answered consult within the window
                                  (default 7 days) before this one
    not_answered                  nobody took or answered it (nothing to report)

Time per consult comes from the routing state (``signaling.curbside.consult_times``): ringing,
talking, documenting for a call; writing (the author's answer form open to the answer sent) and
the minutes the author attested for a written answer. The consultant's minutes are, in order:
the attested minutes (the consultant's own attestation is what the codes bill on); talking plus
documenting; the measured writing time; none (nobody answered, or an answer with neither). The
measured writing time counts only up to ``MAX_WRITTEN_MINUTES``, the most an answer may be
attested at: the form opened on Monday and answered on Wednesday measures the days it stood
open, not the consultant's work, and a practice bills from these figures. Each figure says
where it came from (:class:`MinutesSource`), so that a biller tells a measured figure from an
attested one.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from signaling import curbside as cs


class BillingFlag(StrEnum):
    NO_CONSENT = "no_consent"
    FACE_TO_FACE_WITH_CONSULTANT = "face_to_face_with_consultant"
    REPEAT_CONSULT = "repeat_consult"
    NOT_ANSWERED = "not_answered"


@dataclass(frozen=True, slots=True)
class BillingRules:
    face_to_face_window: timedelta
    repeat_window: timedelta


def was_answered(state: cs.CurbsideState) -> bool:
    return state.accepted_by is not None or state.answered_by is not None


def billing_flags(
    state: cs.CurbsideState,
    consent_recorded_at: datetime | None,
    consultant_visits: Iterable[datetime],
    earlier_consults: Iterable[datetime],
    rules: BillingRules,
) -> tuple[BillingFlag, ...]:
    """``consultant_visits``: starts of the patient's video visits with the consultant (not
    this consult's own call); ``earlier_consults``: when the patient's other answered consults
    were asked."""
    asked = state.request.created_at
    flags: list[BillingFlag] = []
    if consent_recorded_at is None:
        flags.append(BillingFlag.NO_CONSENT)
    if not was_answered(state):
        flags.append(BillingFlag.NOT_ANSWERED)
    if any(abs(start - asked) <= rules.face_to_face_window for start in consultant_visits):
        flags.append(BillingFlag.FACE_TO_FACE_WITH_CONSULTANT)
    if any(timedelta(0) < asked - other <= rules.repeat_window for other in earlier_consults):
        flags.append(BillingFlag.REPEAT_CONSULT)
    return tuple(flags)


class MinutesSource(StrEnum):
    """Where a consult's consultant minutes come from."""

    ATTESTED = "attested"  # the consultant's own figure for a written answer
    MEASURED_CALL = "measured_call"  # talking plus documenting
    MEASURED_WRITING = "measured_writing"  # answer form opened to answer sent, not attested


@dataclass(frozen=True, slots=True)
class ConsultantTime:
    minutes: float
    source: MinutesSource


# The most measured writing counted, as for an attested figure (cs.minutes_possible).
MAX_MEASURED_WRITING = timedelta(minutes=cs.MAX_WRITTEN_MINUTES)


def consultant_time(times: cs.ConsultTimes) -> ConsultantTime | None:
    """The consultant's minutes on a consult and their source; None when there are none, or
    the only figure is a measured writing time too long to be the consultant's work."""
    if times.attested is not None:
        spent, source = times.attested, MinutesSource.ATTESTED
    elif times.talking is not None:
        spent = times.talking + (times.documenting or timedelta(0))
        source = MinutesSource.MEASURED_CALL
    elif times.writing is not None and times.writing <= MAX_MEASURED_WRITING:
        spent, source = times.writing, MinutesSource.MEASURED_WRITING
    else:
        return None
    return ConsultantTime(spent.total_seconds() / 60, source)


def consultant_minutes(times: cs.ConsultTimes) -> float | None:
    time = consultant_time(times)
    return None if time is None else time.minutes


@dataclass(frozen=True, slots=True)
class Metrics:
    requests: int
    call_now: int
    written: int
    cancelled: int
    answered: int
    time_to_answer_median_s: float | None
    time_to_answer_p90_s: float | None
    # Shares of the call-now requests that left the primary tier, and that nobody took on the
    # phone so that they went to the written queue.
    share_escalated: float | None
    share_unanswered_then_written: float | None
    # Share of the requests not cancelled that have no answer yet (call or written).
    share_unanswered: float | None
    # The consultant's minutes per consult that has any: calls that connected, written answers
    # with attested or plausible measured time (see consultant_time).
    minutes_per_consult: float | None
    ringing_median_s: float | None


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest rank: the smallest value with at least ``share`` of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def summarise(states: Sequence[cs.CurbsideState]) -> Metrics:
    call_now = [s for s in states if s.request.mode is cs.Mode.CALL_NOW]
    live = [s for s in states if s.status is not cs.Status.CANCELLED]
    times = [cs.consult_times(s) for s in states]
    to_answer = [t.to_answer.total_seconds() for t in times if t.to_answer is not None]
    ringing = [t.ringing.total_seconds() for t in times if t.ringing is not None]
    minutes = [m for m in map(consultant_minutes, times) if m is not None]
    return Metrics(
        requests=len(states),
        call_now=len(call_now),
        written=len(states) - len(call_now),
        cancelled=len(states) - len(live),
        answered=sum(was_answered(s) for s in states),
        time_to_answer_median_s=statistics.median(to_answer) if to_answer else None,
        time_to_answer_p90_s=percentile(to_answer, 0.9),
        share_escalated=_share(sum(s.escalated_at is not None for s in call_now), len(call_now)),
        share_unanswered_then_written=_share(
            sum(s.queued_at is not None for s in call_now), len(call_now)
        ),
        share_unanswered=_share(sum(not was_answered(s) for s in live), len(live)),
        minutes_per_consult=statistics.fmean(minutes) if minutes else None,
        ringing_median_s=statistics.median(ringing) if ringing else None,
    )


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None
