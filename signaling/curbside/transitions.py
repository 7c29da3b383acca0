"""Every step of a request's routing: ``(state, ..., now) -> Transition(state, effects)``.

No function here mutates its input, does I/O or reads a clock::

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

A transition that changes nothing returns the very same state (``changed`` is false, version
unchanged): the store then writes nothing and the handler sends nothing. Every one that changes
something bumps ``version`` exactly once (:func:`_commit`), which is what the store's
compare-and-set keys on.

Late accepts
    A psychiatrist whose ring stopped because the request escalated (not one who declined or
    disconnected) may still accept while the request is ringing anyone: a click that crossed the
    escalation on the wire should get the call, not an error.

Roles and care-team access are the service's business; this module checks only who is a party
to the consult.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Final

from signaling.curbside.effects import (
    Effect,
    Escalated,
    QueuedWritten,
    Ring,
    StatusForPcp,
    StopReason,
    StopRinging,
    Taken,
)
from signaling.curbside.errors import (
    AlreadyAnswered,
    AlreadyTaken,
    CurbsideConflict,
    ImplausibleMinutes,
    NotParticipant,
    NotRinging,
    NotRung,
    RequestCancelled,
)
from signaling.curbside.inputs import (
    ConsultRequest,
    Mode,
    OnCall,
    Presence,
    RoutingPolicy,
    Tier,
    aware,
)
from signaling.curbside.state import (
    CANCELLABLE,
    MAX_WRITTEN_MINUTES,
    CurbsideState,
    Status,
)
from signaling.curbside.times import minutes_possible


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
    now = aware(now)
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
    now = aware(now)
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
    now = aware(now)
    if state.status is not Status.RINGING:
        return Transition(state)  # lost a race with accept, cancel or escalation: nothing to do
    if psychiatrist_id not in state.rung:
        raise NotRung("This request was not offered to you.", detail=_where(state))
    return _withdraw(state, psychiatrist_id, roster, now, declined=True)


def drop(
    state: CurbsideState, psychiatrist_id: int, roster: Iterable[OnCall], now: datetime
) -> Transition:
    """A ringing psychiatrist disconnected or became busy: stop waiting for them."""
    now = aware(now)
    if state.status is not Status.RINGING or psychiatrist_id not in state.ringing:
        return Transition(state)  # presence events are facts, not requests: never an error
    return _withdraw(state, psychiatrist_id, roster, now, declined=False)


def tick(state: CurbsideState, roster: Iterable[OnCall], now: datetime) -> Transition:
    """Escalate a request whose ring deadline has passed. Safe to call any time, any number of
    times, from any process: only the first call after a deadline changes anything."""
    now = aware(now)
    if (
        state.status is not Status.RINGING
        or state.ring_deadline is None
        or now < state.ring_deadline
    ):
        return Transition(state)
    effects: list[Effect] = []
    return _commit(state, _route_onward(state, list(roster), now, effects), effects)


def cancel(state: CurbsideState, pcp_id: int, now: datetime) -> Transition:
    now = aware(now)
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
    now = aware(now)
    _require_party(state, user_id)
    if state.status in (Status.IN_CALL, Status.DOCUMENTING, Status.COMPLETED):
        return Transition(state)
    _require_status(state, Status.ACCEPTED)
    effects: list[Effect] = [_tell_pcp(state, Status.IN_CALL, "The call is connected.")]
    new = dataclasses.replace(state, status=Status.IN_CALL, call_started_at=now)
    return _commit(state, new, effects)


def end_call(state: CurbsideState, user_id: int, now: datetime) -> Transition:
    """Either party hangs up; the psychiatrist then documents the recommendation."""
    now = aware(now)
    _require_party(state, user_id)
    if state.status in (Status.DOCUMENTING, Status.COMPLETED):
        return Transition(state)
    _require_status(state, Status.IN_CALL)
    detail = "The call ended. The psychiatrist is writing the recommendation."
    new = dataclasses.replace(state, status=Status.DOCUMENTING, call_ended_at=now)
    return _commit(state, new, [_tell_pcp(state, Status.DOCUMENTING, detail)])


def complete(state: CurbsideState, psychiatrist_id: int, now: datetime) -> Transition:
    """The accepting psychiatrist has signed the recommendation note."""
    now = aware(now)
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
    now = aware(now)
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
    now = aware(now)
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


def acknowledge(state: CurbsideState, pcp_id: int, now: datetime) -> Transition:
    now = aware(now)
    _require(pcp_id == state.request.pcp_id, state, "Only the requesting clinician can do this.")
    if state.status is Status.ACKNOWLEDGED:
        return Transition(state)
    _require_status(state, Status.ANSWERED)
    new = dataclasses.replace(state, status=Status.ACKNOWLEDGED, acknowledged_at=now)
    return _commit(state, new, [_tell_pcp(state, Status.ACKNOWLEDGED, "You acknowledged it.")])


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
