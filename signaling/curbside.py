"""Curbside consult routing: a pure state machine, with no I/O and no clock of its own.

A PCP with a patient in the room asks for a psychiatrist. ``open_request`` turns the request
into a :class:`CurbsideState`; every later event is a function
``(state, ..., now) -> Transition(state, effects)`` that never mutates its input::

    call now: RINGING(primary) ─timeout/nobody─► RINGING(backup) ─timeout/nobody─► QUEUED_WRITTEN
                 │ accept                         │ accept
                 ▼                                ▼
              ACCEPTED ─call_connected─► IN_CALL ─end_call─► DOCUMENTING ─complete─► COMPLETED
    written:  QUEUED_WRITTEN ─answer_written─► ANSWERED ─acknowledge─► ACKNOWLEDGED
                 ↺ start_writing (a psychiatrist opens the answer form: their time starts)
    cancel:   RINGING | ACCEPTED | QUEUED_WRITTEN ─► CANCELLED

Ringing a tier rings every *available* on-call psychiatrist of that tier at once, filtered to
those licensed in the patient's state when the request names one and the rule is on. A tier
with nobody to ring is skipped at once, and so is a tier whose ringing set empties because
everyone declined or went away. A call-now request that nobody takes becomes a written consult
and the PCP is told so: a request is never dropped silently. Cancelling stops at the point where
a psychiatrist has started talking or writing, because from then on the work is real (and
billable); the PCP ends the call or acknowledges the answer instead.

Many processes, one truth
    Nothing here lives in one process's memory. A state is a plain value that round-trips
    through JSON (``to_dict``/``from_dict``) and carries a ``version`` bumped by every change. The
    store applies a transition with ``UPDATE ... WHERE id = ? AND version = ?`` and, when that
    touches no row, reloads and calls the function again. So two accepts that race are applied
    one after the other: the first wins, the second sees ``accepted_by`` set and fails with
    ``already_taken``; the winner's own retry is a no-op. Time-based escalation is the
    transition :func:`tick`, which any scheduler in any process may call as often as it likes: it
    acts only once the ``ring_deadline`` stored in the state has passed, and the next deadline
    moves forward, so a repeated tick changes nothing. The ring timeout, licence rule and written
    answer target are copied into the state when the request opens, so every process treats one
    request alike even while a configuration change rolls out.

    A transition that changes nothing returns the very same state (``changed`` is false, version
    unchanged): the store then writes nothing and the handler sends nothing.

Consultant time
    A call's time is measured: talking from ``call_connected`` to ``end_call``, documenting from
    there to ``complete``. A written answer's is measured from the answering psychiatrist's
    :func:`start_writing` (the first time they opened the answer form; each psychiatrist has
    their own start, and only the answerer's counts) to :func:`answer_written`, which also takes
    the minutes the psychiatrist attests. Interprofessional consult codes are billed on the
    minutes the consultant attests, so an attested figure wins over the measured one; it is
    refused when it could not be true (more than :data:`MAX_WRITTEN_MINUTES`, or more minutes
    than have passed since the PCP asked).

Late accepts
    A psychiatrist whose ring stopped because the request escalated (not one who declined or
    disconnected) may still accept while the request is ringing anyone: a click that crossed the
    escalation on the wire should get the call, not an error.

Errors (client-safe ``code`` in brackets)::

    Conflict (409)
    └── CurbsideConflict       [invalid_state]     the status does not allow this step
        ├── AlreadyTaken       [already_taken]     another psychiatrist accepted first
        ├── RequestCancelled   [cancelled]         the PCP cancelled the request
        ├── NotRinging         [not_ringing]       the call-now phase is over (written queue)
        └── AlreadyAnswered    [already_answered]  another psychiatrist answered in writing
    ValidationFailed (422)
    └── ImplausibleMinutes     [invalid_minutes]   attested minutes out of range or impossible
    Forbidden (403)
    ├── NotRung                [not_rung]          never rung, or declined or dropped since
    └── NotParticipant         [not_participant]   not the requesting PCP / accepting psychiatrist

Roles and care-team access are the service's business; this module checks only who is a party
to the consult. A ``now`` that is not timezone-aware is a programming error (``ValueError``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final, TypeVar

from server.errors import Conflict, Forbidden, ValidationFailed

T = TypeVar("T")

# Shape of to_dict(); bump it (and migrate) when the shape changes. 2: writing_started and
# attested_minutes (migration 0009 rewrote the stored format-1 states).
FORMAT: Final = 2
# The most minutes one written answer may be attested at: e-consult codes top out at "31
# minutes or more", and a figure beyond a few hours is a typing slip, not a consult.
MAX_WRITTEN_MINUTES: Final = 240


class Urgency(StrEnum):
    ROUTINE = "routine"
    URGENT = "urgent"
    EMERGENT = "emergent"


class Mode(StrEnum):
    CALL_NOW = "call_now"
    WRITTEN = "written"


class Tier(StrEnum):
    PRIMARY = "primary"
    BACKUP = "backup"


class Presence(StrEnum):
    AVAILABLE = "available"
    BUSY = "busy"
    OFFLINE = "offline"


class Status(StrEnum):
    RINGING = "ringing"
    ACCEPTED = "accepted"
    IN_CALL = "in_call"
    DOCUMENTING = "documenting"
    COMPLETED = "completed"
    QUEUED_WRITTEN = "queued_written"
    ANSWERED = "answered"
    ACKNOWLEDGED = "acknowledged"
    CANCELLED = "cancelled"


class StopReason(StrEnum):
    TAKEN = "taken"
    CANCELLED = "cancelled"
    ESCALATED = "escalated"


CANCELLABLE: Final = frozenset({Status.RINGING, Status.ACCEPTED, Status.QUEUED_WRITTEN})
TERMINAL: Final = frozenset({Status.COMPLETED, Status.ACKNOWLEDGED, Status.CANCELLED})
DEFAULT_ANSWER_TARGETS: Final[Mapping[Urgency, timedelta]] = MappingProxyType(
    {
        Urgency.EMERGENT: timedelta(hours=1),
        Urgency.URGENT: timedelta(hours=4),
        Urgency.ROUTINE: timedelta(hours=72),
    }
)


# -- errors -------------------------------------------------------------------------------------


class CurbsideConflict(Conflict):
    default_code = "invalid_state"


class AlreadyTaken(CurbsideConflict):
    default_code = "already_taken"


class RequestCancelled(CurbsideConflict):
    default_code = "cancelled"


class NotRinging(CurbsideConflict):
    default_code = "not_ringing"


class AlreadyAnswered(CurbsideConflict):
    default_code = "already_answered"


class ImplausibleMinutes(ValidationFailed):
    default_code = "invalid_minutes"


class NotRung(Forbidden):
    default_code = "not_rung"


class NotParticipant(Forbidden):
    default_code = "not_participant"


# -- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConsultRequest:
    """What routing needs to know about a request. The question and clinical context stay in
    the record; nothing here is PHI beyond the patient's id and state of residence."""

    id: int
    pcp_id: int
    patient_id: int
    urgency: Urgency
    mode: Mode
    created_at: datetime
    patient_state: str | None = None  # two-letter code, e.g. "CA"

    def __post_init__(self) -> None:
        _aware(self.created_at)
        code = self.patient_state
        valid = isinstance(code, str) and len(code) == 2 and code.isascii() and code.isalpha()
        if code is not None and not valid:
            raise ValueError(f"patient_state must be a two-letter code, not {code!r}")


@dataclass(frozen=True, slots=True)
class OnCall:
    """One psychiatrist on call right now, as the caller's roster snapshot sees them."""

    psychiatrist_id: int
    tier: Tier
    presence: Presence
    licensed_states: frozenset[str] = frozenset()

    def licensed_in(self, state_code: str) -> bool:
        return state_code.upper() in {code.upper() for code in self.licensed_states}


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    ring_timeout: timedelta = timedelta(seconds=60)
    require_license_match: bool = True
    answer_targets: Mapping[Urgency, timedelta] = field(
        default_factory=lambda: DEFAULT_ANSWER_TARGETS
    )

    def __post_init__(self) -> None:
        if self.ring_timeout <= timedelta(0):
            raise ValueError("ring_timeout must be positive")
        for urgency in Urgency:
            if self.answer_targets.get(urgency, timedelta(0)) <= timedelta(0):
                raise ValueError(f"answer_targets needs a positive target for {urgency}")


# -- effects: what the handler must do after the store has committed the new state ---------------


@dataclass(frozen=True, slots=True)
class Ring:
    request: ConsultRequest
    psychiatrist_ids: tuple[int, ...]
    tier: Tier


@dataclass(frozen=True, slots=True)
class StopRinging:
    """Tell these dashboards to drop the request (for the winner after a cancel, too)."""

    request_id: int
    psychiatrist_ids: tuple[int, ...]
    reason: StopReason


@dataclass(frozen=True, slots=True)
class Taken:
    """Put the winner and the PCP in a fresh room."""

    request_id: int
    psychiatrist_id: int
    pcp_id: int


@dataclass(frozen=True, slots=True)
class Escalated:
    request_id: int
    tier: Tier


@dataclass(frozen=True, slots=True)
class QueuedWritten:
    request_id: int
    due_at: datetime


@dataclass(frozen=True, slots=True)
class StatusForPcp:
    """Sent on every status change; ``detail`` is plain language without names or PHI."""

    request_id: int
    pcp_id: int
    status: Status
    detail: str
    psychiatrist_id: int | None = None


Effect = Ring | StopRinging | Taken | Escalated | QueuedWritten | StatusForPcp


# -- state --------------------------------------------------------------------------------------

_TIMES: Final = (
    "ringing_started_at",
    "ringing_ended_at",
    "escalated_at",
    "accepted_at",
    "call_started_at",
    "call_ended_at",
    "completed_at",
    "queued_at",
    "answered_at",
    "acknowledged_at",
    "cancelled_at",
)
_ID_SETS: Final = ("ringing", "rung", "declined", "dropped")


@dataclass(frozen=True, slots=True)
class CurbsideState:
    request: ConsultRequest
    status: Status
    version: int
    ring_timeout_s: float
    require_license_match: bool
    answer_due_at: datetime  # written-answer target, counted from when the PCP asked
    tier: Tier | None = None  # the tier ringing now
    ring_deadline: datetime | None = None  # tick() escalates at or after this instant
    ringing: frozenset[int] = frozenset()  # rung now and still able to answer
    rung: frozenset[int] = frozenset()  # everyone ever rung for this request
    declined: frozenset[int] = frozenset()
    dropped: frozenset[int] = frozenset()  # disconnected or went busy while ringing
    accepted_by: int | None = None
    answered_by: int | None = None
    ringing_started_at: datetime | None = None
    ringing_ended_at: datetime | None = None
    escalated_at: datetime | None = None  # first left the primary tier
    accepted_at: datetime | None = None
    call_started_at: datetime | None = None
    call_ended_at: datetime | None = None
    completed_at: datetime | None = None
    queued_at: datetime | None = None
    answered_at: datetime | None = None
    acknowledged_at: datetime | None = None
    cancelled_at: datetime | None = None
    # (psychiatrist id, when they first opened the answer form), one pair each, by id.
    writing_started: tuple[tuple[int, datetime], ...] = ()
    attested_minutes: int | None = None  # what the written answer's author attested

    def writing_started_by(self, psychiatrist_id: int) -> datetime | None:
        return next((at for uid, at in self.writing_started if uid == psychiatrist_id), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible; id sets become sorted lists so equal states serialise identically."""
        return {"format": FORMAT, **_encode_fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CurbsideState:
        """The inverse of :meth:`to_dict`; ``ValueError`` for anything it would not write."""
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown curbside state format {data.get('format')!r}")
        return cls(**_decode_fields(data, _STATE_DECODERS, extra={"format"}))


@dataclass(frozen=True, slots=True)
class Transition:
    state: CurbsideState
    effects: tuple[Effect, ...] = ()
    changed: bool = False


# -- transitions --------------------------------------------------------------------------------


def open_request(
    request: ConsultRequest, roster: Iterable[OnCall], policy: RoutingPolicy, now: datetime
) -> Transition:
    """Start routing: ring the first tier with anyone to ring, or queue a written consult."""
    now = _aware(now)
    state = CurbsideState(
        request=request,
        status=Status.RINGING,  # provisional: _route_onward or _queue decides
        version=1,
        ring_timeout_s=policy.ring_timeout.total_seconds(),
        require_license_match=policy.require_license_match,
        answer_due_at=request.created_at + policy.answer_targets[request.urgency],
    )
    effects: list[Effect] = []
    if request.mode is Mode.WRITTEN:
        state = _queue(state, now, effects, "Your request is in the written consult queue.")
    else:
        state = _route_onward(state, list(roster), now, effects)
    return Transition(state, tuple(effects), changed=True)


def accept(state: CurbsideState, psychiatrist_id: int, now: datetime) -> Transition:
    """First accept wins; anyone after it gets ``already_taken``; the winner's retry is a no-op."""
    now = _aware(now)
    if state.status is Status.CANCELLED:
        raise RequestCancelled("This request was cancelled.", detail=_where(state))
    if state.accepted_by is not None:
        if state.accepted_by == psychiatrist_id:
            return Transition(state)
        raise AlreadyTaken("Another psychiatrist has already taken this.", detail=_where(state))
    if state.status is not Status.RINGING:
        raise NotRinging("This request is no longer ringing.", detail=_where(state))
    if psychiatrist_id not in state.rung - state.declined - state.dropped:
        raise NotRung("This request was not offered to you.", detail=_where(state))
    others = tuple(sorted(state.ringing - {psychiatrist_id}))
    effects: list[Effect] = []
    if others:
        effects.append(StopRinging(state.request.id, others, StopReason.TAKEN))
    effects.append(Taken(state.request.id, psychiatrist_id, state.request.pcp_id))
    detail = "A psychiatrist accepted. Connecting the call."
    effects.append(_tell_pcp(state, Status.ACCEPTED, detail, psychiatrist_id))
    new = dataclasses.replace(
        _stop_ringing(state, now),
        status=Status.ACCEPTED,
        accepted_by=psychiatrist_id,
        accepted_at=now,
    )
    return _commit(state, new, effects)


def decline(
    state: CurbsideState, psychiatrist_id: int, roster: Iterable[OnCall], now: datetime
) -> Transition:
    """The psychiatrist says no. The last one of a tier to say no moves the request on at once."""
    now = _aware(now)
    if state.status is not Status.RINGING:
        return Transition(state)  # lost a race with accept, cancel or escalation: nothing to do
    if psychiatrist_id not in state.rung:
        raise NotRung("This request was not offered to you.", detail=_where(state))
    return _withdraw(state, psychiatrist_id, roster, now, declined=True)


def drop(
    state: CurbsideState, psychiatrist_id: int, roster: Iterable[OnCall], now: datetime
) -> Transition:
    """A ringing psychiatrist disconnected or became busy: stop waiting for them."""
    now = _aware(now)
    if state.status is not Status.RINGING or psychiatrist_id not in state.ringing:
        return Transition(state)  # presence events are facts, not requests: never an error
    return _withdraw(state, psychiatrist_id, roster, now, declined=False)


def tick(state: CurbsideState, roster: Iterable[OnCall], now: datetime) -> Transition:
    """Escalate a request whose ring deadline has passed. Safe to call any time, any number of
    times, from any process: only the first call after a deadline changes anything."""
    now = _aware(now)
    if (
        state.status is not Status.RINGING
        or state.ring_deadline is None
        or now < state.ring_deadline
    ):
        return Transition(state)
    effects: list[Effect] = []
    return _commit(state, _route_onward(state, list(roster), now, effects), effects)


def cancel(state: CurbsideState, pcp_id: int, now: datetime) -> Transition:
    now = _aware(now)
    _require(pcp_id == state.request.pcp_id, state, "Only the requesting clinician can cancel.")
    if state.status is Status.CANCELLED:
        return Transition(state)
    if state.status not in CANCELLABLE:
        raise CurbsideConflict(
            "This consult has already started and can no longer be cancelled.",
            detail=_where(state),
        )
    effects: list[Effect] = []
    notify = state.ringing | ({state.accepted_by} if state.accepted_by is not None else set())
    if notify:
        effects.append(StopRinging(state.request.id, tuple(sorted(notify)), StopReason.CANCELLED))
    effects.append(_tell_pcp(state, Status.CANCELLED, "You cancelled this request."))
    new = dataclasses.replace(
        _stop_ringing(state, now) if state.status is Status.RINGING else state,
        status=Status.CANCELLED,
        cancelled_at=now,
    )
    return _commit(state, new, effects)


def call_connected(state: CurbsideState, user_id: int, now: datetime) -> Transition:
    """Either party reports that the call is up; the first report starts the talk time."""
    now = _aware(now)
    _require_party(state, user_id)
    if state.status in (Status.IN_CALL, Status.DOCUMENTING, Status.COMPLETED):
        return Transition(state)
    _require_status(state, Status.ACCEPTED)
    effects: list[Effect] = [_tell_pcp(state, Status.IN_CALL, "The call is connected.")]
    new = dataclasses.replace(state, status=Status.IN_CALL, call_started_at=now)
    return _commit(state, new, effects)


def end_call(state: CurbsideState, user_id: int, now: datetime) -> Transition:
    """Either party hangs up; the psychiatrist then documents the recommendation."""
    now = _aware(now)
    _require_party(state, user_id)
    if state.status in (Status.DOCUMENTING, Status.COMPLETED):
        return Transition(state)
    _require_status(state, Status.IN_CALL)
    detail = "The call ended. The psychiatrist is writing the recommendation."
    new = dataclasses.replace(state, status=Status.DOCUMENTING, call_ended_at=now)
    return _commit(state, new, [_tell_pcp(state, Status.DOCUMENTING, detail)])


def complete(state: CurbsideState, psychiatrist_id: int, now: datetime) -> Transition:
    """The accepting psychiatrist has signed the recommendation note."""
    now = _aware(now)
    _require(psychiatrist_id == state.accepted_by, state, "Only the consultant can complete this.")
    if state.status is Status.COMPLETED:
        return Transition(state)
    _require_status(state, Status.DOCUMENTING)
    detail = "The recommendation is in the patient's record."
    new = dataclasses.replace(state, status=Status.COMPLETED, completed_at=now)
    return _commit(state, new, [_tell_pcp(state, Status.COMPLETED, detail)])


def start_writing(state: CurbsideState, psychiatrist_id: int, now: datetime) -> Transition:
    """A psychiatrist opened the answer form of a queued request: their time starts. Opening it
    again (a reload, another tab, another day) keeps the first start."""
    now = _aware(now)
    if _answered_already(state, psychiatrist_id) or state.writing_started_by(psychiatrist_id):
        return Transition(state)
    _require_status(state, Status.QUEUED_WRITTEN)
    started = tuple(sorted((*state.writing_started, (psychiatrist_id, now))))
    return _commit(state, dataclasses.replace(state, writing_started=started), [])


def answer_written(
    state: CurbsideState, psychiatrist_id: int, now: datetime, minutes: int | None = None
) -> Transition:
    """A psychiatrist answered a queued request (the recommendation itself is stored elsewhere),
    attesting ``minutes`` spent on it if they say."""
    now = _aware(now)
    if _answered_already(state, psychiatrist_id):
        return Transition(state)
    _require_status(state, Status.QUEUED_WRITTEN)
    if minutes is not None:
        _check_minutes(state, minutes, now)
    detail = "A psychiatrist answered your request in writing."
    effects: list[Effect] = [_tell_pcp(state, Status.ANSWERED, detail, psychiatrist_id)]
    new = dataclasses.replace(
        state,
        status=Status.ANSWERED,
        answered_by=psychiatrist_id,
        answered_at=now,
        attested_minutes=minutes,
    )
    return _commit(state, new, effects)


def minutes_possible(state: CurbsideState, now: datetime) -> int:
    """The most minutes an answer written at ``now`` may be attested at: what has passed since
    the PCP asked, the last minute begun counting whole (at least 1), and never past
    :data:`MAX_WRITTEN_MINUTES`."""
    elapsed = (_aware(now) - state.request.created_at).total_seconds()
    return min(MAX_WRITTEN_MINUTES, max(1, math.ceil(elapsed / 60)))


def acknowledge(state: CurbsideState, pcp_id: int, now: datetime) -> Transition:
    now = _aware(now)
    _require(pcp_id == state.request.pcp_id, state, "Only the requesting clinician can do this.")
    if state.status is Status.ACKNOWLEDGED:
        return Transition(state)
    _require_status(state, Status.ANSWERED)
    new = dataclasses.replace(state, status=Status.ACKNOWLEDGED, acknowledged_at=now)
    return _commit(state, new, [_tell_pcp(state, Status.ACKNOWLEDGED, "You acknowledged it.")])


# -- queries ------------------------------------------------------------------------------------


def is_overdue(state: CurbsideState, now: datetime) -> bool:
    """A queued written consult is overdue from the instant its target has fully elapsed."""
    return state.status is Status.QUEUED_WRITTEN and _aware(now) >= state.answer_due_at


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


# -- internals ----------------------------------------------------------------------------------

_NEXT_TIER: Final[Mapping[Tier | None, Tier | None]] = MappingProxyType(
    {None: Tier.PRIMARY, Tier.PRIMARY: Tier.BACKUP, Tier.BACKUP: None}
)


def _route_onward(
    state: CurbsideState, roster: list[OnCall], now: datetime, effects: list[Effect]
) -> CurbsideState:
    """Leave the tier ringing now (if any) for the next tier with someone to ring, else the
    written queue. Tiers with nobody to ring are passed over without waiting."""
    if state.ringing:
        stopped = tuple(sorted(state.ringing))
        effects.append(StopRinging(state.request.id, stopped, StopReason.ESCALATED))
    tier = _NEXT_TIER[state.tier]
    while tier is not None:
        if tier is Tier.BACKUP:
            effects.append(Escalated(state.request.id, tier))
            state = dataclasses.replace(state, escalated_at=state.escalated_at or now)
        ids = _eligible(state, roster, tier)
        if ids:
            effects.append(Ring(state.request, ids, tier))
            word = "psychiatrist" if len(ids) == 1 else "psychiatrists"
            detail = f"Ringing {len(ids)} {tier} on-call {word}."
            effects.append(_tell_pcp(state, Status.RINGING, detail))
            return dataclasses.replace(
                state,
                status=Status.RINGING,
                tier=tier,
                ringing=frozenset(ids),
                rung=state.rung | frozenset(ids),
                ring_deadline=now + timedelta(seconds=state.ring_timeout_s),
                ringing_started_at=state.ringing_started_at or now,
            )
        tier = _NEXT_TIER[tier]
    detail = (
        "No on-call psychiatrist could take the call now. Your request has moved to the "
        "written consult queue and a psychiatrist will answer in writing."
    )
    return _queue(_stop_ringing(state, now), now, effects, detail)


def _eligible(state: CurbsideState, roster: list[OnCall], tier: Tier) -> tuple[int, ...]:
    request = state.request
    # Nobody is rung twice for one request, and a PCP who is also a psychiatrist is not rung
    # for their own question.
    skip = state.rung | state.declined | state.dropped | {request.pcp_id}
    licence = request.patient_state if state.require_license_match else None
    return tuple(
        sorted(
            {
                member.psychiatrist_id
                for member in roster
                if member.tier == tier
                and member.presence == Presence.AVAILABLE
                and member.psychiatrist_id not in skip
                and (licence is None or member.licensed_in(licence))
            }
        )
    )


def _withdraw(
    state: CurbsideState,
    psychiatrist_id: int,
    roster: Iterable[OnCall],
    now: datetime,
    *,
    declined: bool,
) -> Transition:
    was_ringing = psychiatrist_id in state.ringing
    gone = frozenset({psychiatrist_id})
    new = dataclasses.replace(
        state,
        ringing=state.ringing - gone,
        declined=state.declined | gone if declined else state.declined,
        dropped=state.dropped if declined else state.dropped | gone,
    )
    effects: list[Effect] = []
    if was_ringing and not new.ringing:
        new = _route_onward(new, list(roster), now, effects)
    return _commit(state, new, effects)


def _queue(
    state: CurbsideState, now: datetime, effects: list[Effect], detail: str
) -> CurbsideState:
    effects.append(QueuedWritten(state.request.id, state.answer_due_at))
    effects.append(_tell_pcp(state, Status.QUEUED_WRITTEN, detail))
    return dataclasses.replace(state, status=Status.QUEUED_WRITTEN, queued_at=now)


def _stop_ringing(state: CurbsideState, now: datetime) -> CurbsideState:
    return dataclasses.replace(
        state, tier=None, ringing=frozenset(), ring_deadline=None, ringing_ended_at=now
    )


def _commit(old: CurbsideState, new: CurbsideState, effects: list[Effect]) -> Transition:
    """The one place a version moves: once per transition that changed anything."""
    if new == old:
        return Transition(old)
    return Transition(dataclasses.replace(new, version=old.version + 1), tuple(effects), True)


def _tell_pcp(
    state: CurbsideState, status: Status, detail: str, psychiatrist_id: int | None = None
) -> StatusForPcp:
    return StatusForPcp(state.request.id, state.request.pcp_id, status, detail, psychiatrist_id)


def _answered_already(state: CurbsideState, psychiatrist_id: int) -> bool:
    """True if this psychiatrist's answer is in (a retry: nothing to do); ``already_answered``
    if someone else's is."""
    if state.status not in (Status.ANSWERED, Status.ACKNOWLEDGED):
        return False
    if state.answered_by == psychiatrist_id:
        return True
    raise AlreadyAnswered("Another psychiatrist has already answered.", detail=_where(state))


def _check_minutes(state: CurbsideState, minutes: int, now: datetime) -> None:
    possible = minutes_possible(state, now)
    if isinstance(minutes, bool) or not 1 <= minutes <= possible:
        raise ImplausibleMinutes(
            f"Give the minutes you spent as a whole number from 1 to {possible}: no more than "
            f"have passed since the request was asked, and at most {MAX_WRITTEN_MINUTES}.",
            detail=f"{_where(state)} minutes={minutes!r}",
        )


def _require(condition: bool, state: CurbsideState, message: str) -> None:
    if not condition:
        raise NotParticipant(message, detail=_where(state))


def _require_party(state: CurbsideState, user_id: int) -> None:
    parties = {state.request.pcp_id, state.accepted_by}
    _require(user_id in parties, state, "You are not part of this consult.")


def _require_status(state: CurbsideState, expected: Status) -> None:
    if state.status is Status.CANCELLED:
        raise RequestCancelled("This request was cancelled.", detail=_where(state))
    if state.status is not expected:
        raise CurbsideConflict(
            "This step is not possible in the request's current state.", detail=_where(state)
        )


def _where(state: CurbsideState) -> str:
    return f"curbside request {state.request.id} v{state.version} status={state.status}"


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("curbside times must be timezone-aware (UTC)")
    return moment.astimezone(UTC)


def _span(start: datetime | None, end: datetime | None) -> timedelta | None:
    return None if start is None or end is None else end - start


# -- serialisation ------------------------------------------------------------------------------


def _encode(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_encode(item) for item in value]
    if isinstance(value, ConsultRequest):
        return _encode_fields(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, StrEnum):
        return value.value
    return value


def _encode_fields(obj: ConsultRequest | CurbsideState) -> dict[str, Any]:
    return {f.name: _encode(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def _decode_fields(
    data: Any, decoders: Mapping[str, Callable[[Any], Any]], extra: Iterable[str] = ()
) -> dict[str, Any]:
    # Exact keys both ways: a field the decoder table forgot would otherwise fall back to its
    # default without a word.
    if not isinstance(data, Mapping) or set(data) != set(decoders) | set(extra):
        raise ValueError(f"curbside state has unexpected shape: {data!r}")
    return {name: decode(data[name]) for name, decode in decoders.items()}


def _optional(decode: Callable[[Any], T]) -> Callable[[Any], T | None]:
    return lambda value: None if value is None else decode(value)


def _time(text: Any) -> datetime:
    if not isinstance(text, str):
        raise ValueError(f"expected an ISO 8601 time, got {text!r}")
    return _aware(datetime.fromisoformat(text))


def _ids(values: Any) -> frozenset[int]:
    if not isinstance(values, list):
        raise ValueError(f"expected a list of ids, got {values!r}")
    return frozenset(_int(value) for value in values)


def _int(value: Any) -> int:
    # bool is an int to Python, but never an id or a version.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"expected a positive number of seconds, got {value!r}")
    return float(value)


def _instance(kind: type[T]) -> Callable[[Any], T]:
    def check(value: Any) -> T:
        if not isinstance(value, kind):
            raise ValueError(f"expected {kind.__name__}, got {value!r}")
        return value

    return check


def _starts(values: Any) -> tuple[tuple[int, datetime], ...]:
    if not isinstance(values, list) or not all(
        isinstance(pair, list) and len(pair) == 2 for pair in values
    ):
        raise ValueError(f"expected a list of [id, time] pairs, got {values!r}")
    starts = tuple(sorted((_int(uid), _time(at)) for uid, at in values))
    if len({uid for uid, _ in starts}) != len(starts):
        raise ValueError(f"one start per psychiatrist, got {values!r}")
    return starts


def _minutes(value: Any) -> int:
    minutes = _int(value)
    if not 1 <= minutes <= MAX_WRITTEN_MINUTES:
        raise ValueError(
            f"expected attested minutes within 1..{MAX_WRITTEN_MINUTES}, got {value!r}"
        )
    return minutes


_bool = _instance(bool)
_str = _instance(str)


_REQUEST_DECODERS: Final[Mapping[str, Callable[[Any], Any]]] = MappingProxyType(
    {
        "id": _int,
        "pcp_id": _int,
        "patient_id": _int,
        "urgency": Urgency,
        "mode": Mode,
        "created_at": _time,
        "patient_state": _optional(_str),
    }
)
_STATE_DECODERS: Final[Mapping[str, Callable[[Any], Any]]] = MappingProxyType(
    {
        "request": lambda data: ConsultRequest(**_decode_fields(data, _REQUEST_DECODERS)),
        "status": Status,
        "version": _int,
        "ring_timeout_s": _seconds,
        "require_license_match": _bool,
        "answer_due_at": _time,
        "tier": _optional(Tier),
        "ring_deadline": _optional(_time),
        "accepted_by": _optional(_int),
        "answered_by": _optional(_int),
        "writing_started": _starts,
        "attested_minutes": _optional(_minutes),
        **dict.fromkeys(_ID_SETS, _ids),
        **dict.fromkeys(_TIMES, _optional(_time)),
    }
)
