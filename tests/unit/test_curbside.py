"""Curbside routing: ringing, first-accept-wins, escalation on time, the written queue.

Time comes from a FakeClock and moves only when a test says so. Personas: the PCP (7) asks
about a patient in California; primaries 101 and 102 are licensed there, 103 only in New York,
104 is busy and 105 offline; backups 201 (CA) and 202 (NY).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.clock import FakeClock
from server.errors import Conflict, Forbidden, LiaisonError
from signaling import curbside as cs
from signaling.curbside import (
    ConsultRequest,
    CurbsideState,
    Escalated,
    Mode,
    OnCall,
    Presence,
    QueuedWritten,
    Ring,
    RoutingPolicy,
    Status,
    StatusForPcp,
    StopReason,
    StopRinging,
    Taken,
    Tier,
    Transition,
    Urgency,
)

PCP = 7
PATIENT = 900
P1, P2, P3, P4, P5 = 101, 102, 103, 104, 105
B1, B2 = 201, 202
OUTSIDER = 999
E = TypeVar("E")

ROSTER = (
    OnCall(P1, Tier.PRIMARY, Presence.AVAILABLE, frozenset({"CA"})),
    OnCall(P2, Tier.PRIMARY, Presence.AVAILABLE, frozenset({"CA", "NY"})),
    OnCall(P3, Tier.PRIMARY, Presence.AVAILABLE, frozenset({"NY"})),
    OnCall(P4, Tier.PRIMARY, Presence.BUSY, frozenset({"CA"})),
    OnCall(P5, Tier.PRIMARY, Presence.OFFLINE, frozenset({"CA"})),
    OnCall(B1, Tier.BACKUP, Presence.AVAILABLE, frozenset({"CA"})),
    OnCall(B2, Tier.BACKUP, Presence.AVAILABLE, frozenset({"NY"})),
)
BACKUPS_ONLY = tuple(m for m in ROSTER if m.tier is Tier.BACKUP)
PRIMARIES_ONLY = tuple(m for m in ROSTER if m.tier is Tier.PRIMARY)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_request(
    clock: FakeClock,
    *,
    mode: Mode = Mode.CALL_NOW,
    urgency: Urgency = Urgency.URGENT,
    patient_state: str | None = "CA",
) -> ConsultRequest:
    return ConsultRequest(
        id=1,
        pcp_id=PCP,
        patient_id=PATIENT,
        urgency=urgency,
        mode=mode,
        created_at=clock(),
        patient_state=patient_state,
    )


def open_call(
    clock: FakeClock,
    roster: tuple[OnCall, ...] = ROSTER,
    policy: RoutingPolicy | None = None,
    **request: Any,
) -> Transition:
    return cs.open_request(
        make_request(clock, **request), roster, policy or RoutingPolicy(), clock()
    )


def of_type(transition: Transition, kind: type[E]) -> list[E]:
    return [effect for effect in transition.effects if isinstance(effect, kind)]


def assert_unchanged(before: CurbsideState, transition: Transition) -> None:
    assert transition.state is before
    assert not transition.changed
    assert transition.effects == ()


def roundtrip(state: CurbsideState) -> CurbsideState:
    return CurbsideState.from_dict(json.loads(json.dumps(state.to_dict())))


class CasStore:
    """What the database store does: load a row, and write it back only if the version it
    loaded is still the version stored (``UPDATE ... WHERE version = ?``)."""

    def __init__(self, state: CurbsideState) -> None:
        self.row = state.to_dict()

    def load(self) -> CurbsideState:
        return CurbsideState.from_dict(self.row)

    def compare_and_set(self, loaded: CurbsideState, transition: Transition) -> bool:
        if self.row["version"] != loaded.version:
            return False
        if transition.changed:
            self.row = transition.state.to_dict()
        return True

    def apply(self, step: Callable[[CurbsideState], Transition]) -> Transition:
        while True:
            loaded = self.load()
            transition = step(loaded)
            if self.compare_and_set(loaded, transition):
                return transition


# -- opening and ringing ------------------------------------------------------------------------


def test_it_rings_every_available_primary_licensed_in_the_patients_state(
    clock: FakeClock,
) -> None:
    t = open_call(clock)
    assert t.changed
    assert t.state.status is Status.RINGING
    assert t.state.tier is Tier.PRIMARY
    assert t.state.version == 1
    assert t.state.ring_deadline == clock() + timedelta(seconds=60)
    assert of_type(t, Ring) == [Ring(t.state.request, (P1, P2), Tier.PRIMARY)]
    [status] = of_type(t, StatusForPcp)
    assert status.status is Status.RINGING
    assert status.detail == "Ringing 2 primary on-call psychiatrists."


def test_it_rings_without_the_licence_filter_when_the_rule_is_off(clock: FakeClock) -> None:
    t = open_call(clock, policy=RoutingPolicy(require_license_match=False))
    assert of_type(t, Ring)[0].psychiatrist_ids == (P1, P2, P3)
    assert not t.state.require_license_match


def test_it_rings_every_available_primary_when_the_request_names_no_state(
    clock: FakeClock,
) -> None:
    t = open_call(clock, patient_state=None)
    assert of_type(t, Ring)[0].psychiatrist_ids == (P1, P2, P3)


def test_it_matches_licences_whatever_their_case(clock: FakeClock) -> None:
    roster = (OnCall(P1, Tier.PRIMARY, Presence.AVAILABLE, frozenset({"ca"})),)
    t = open_call(clock, roster, patient_state="Ca")
    assert of_type(t, Ring)[0].psychiatrist_ids == (P1,)
    assert of_type(t, StatusForPcp)[0].detail == "Ringing 1 primary on-call psychiatrist."


def test_it_never_rings_the_requesting_pcp(clock: FakeClock) -> None:
    roster = (*ROSTER, OnCall(PCP, Tier.PRIMARY, Presence.AVAILABLE, frozenset({"CA"})))
    t = open_call(clock, roster)
    assert PCP not in t.state.ringing


def test_it_rings_the_backup_at_once_when_no_primary_is_available(clock: FakeClock) -> None:
    t = open_call(clock, BACKUPS_ONLY)
    assert [type(e) for e in t.effects] == [Escalated, Ring, StatusForPcp]
    assert of_type(t, Escalated) == [Escalated(1, Tier.BACKUP)]
    assert of_type(t, Ring)[0].psychiatrist_ids == (B1,)
    assert t.state.tier is Tier.BACKUP
    assert t.state.escalated_at == clock()
    assert t.state.ring_deadline == clock() + timedelta(seconds=60)


def test_it_queues_a_written_consult_at_once_when_nobody_is_available(clock: FakeClock) -> None:
    roster = tuple(dataclasses.replace(m, presence=Presence.OFFLINE) for m in ROSTER)
    t = open_call(clock, roster)
    assert t.state.status is Status.QUEUED_WRITTEN
    assert t.state.queued_at == clock()
    assert not of_type(t, Ring)
    assert of_type(t, QueuedWritten) == [QueuedWritten(1, t.state.answer_due_at)]
    status = of_type(t, StatusForPcp)[-1]
    assert status.status is Status.QUEUED_WRITTEN
    assert "written consult queue" in status.detail  # the PCP is told plainly


def test_a_written_request_goes_straight_to_the_queue(clock: FakeClock) -> None:
    t = open_call(clock, mode=Mode.WRITTEN, urgency=Urgency.EMERGENT)
    assert t.state.status is Status.QUEUED_WRITTEN
    assert not of_type(t, Ring)
    assert t.state.ringing_started_at is None
    assert t.state.answer_due_at == clock() + timedelta(hours=1)


# -- first accept wins --------------------------------------------------------------------------


def test_two_accepts_at_the_same_instant_yield_exactly_one_winner(clock: FakeClock) -> None:
    ringing = open_call(clock).state
    first = cs.accept(ringing, P1, clock())
    with pytest.raises(cs.AlreadyTaken) as caught:
        cs.accept(first.state, P2, clock())
    assert caught.value.code == "already_taken"
    assert caught.value.status == 409
    assert first.state.accepted_by == P1


def test_two_processes_racing_through_the_store_yield_exactly_one_winner(
    clock: FakeClock,
) -> None:
    store = CasStore(open_call(clock).state)
    # Both processes load version 1 and decide before either writes.
    seen_by_a, seen_by_b = store.load(), store.load()
    by_a = cs.accept(seen_by_a, P1, clock())
    by_b = cs.accept(seen_by_b, P2, clock())
    assert store.compare_and_set(seen_by_a, by_a)
    assert not store.compare_and_set(seen_by_b, by_b)  # the version moved: B must retry
    with pytest.raises(cs.AlreadyTaken):
        store.apply(lambda state: cs.accept(state, P2, clock()))
    assert store.load().accepted_by == P1
    assert store.load().version == 2


def test_accepting_stops_the_others_and_connects_the_winner(clock: FakeClock) -> None:
    clock.advance(12.5)
    t = cs.accept(open_call(clock).state, P2, clock())
    assert t.effects == (
        StopRinging(1, (P1,), StopReason.TAKEN),
        Taken(1, P2, PCP),
        StatusForPcp(1, PCP, Status.ACCEPTED, "A psychiatrist accepted. Connecting the call.", P2),
    )
    assert t.state.status is Status.ACCEPTED
    assert t.state.ringing == frozenset()
    assert t.state.ring_deadline is None
    assert t.state.version == 2


def test_the_only_psychiatrist_ringing_accepts_with_nobody_else_to_stop(clock: FakeClock) -> None:
    roster = (OnCall(P1, Tier.PRIMARY, Presence.AVAILABLE, frozenset({"CA"})),)
    t = cs.accept(open_call(clock, roster).state, P1, clock())
    assert [type(e) for e in t.effects] == [Taken, StatusForPcp]


def test_the_winners_repeated_accept_changes_nothing(clock: FakeClock) -> None:
    taken = cs.accept(open_call(clock).state, P1, clock()).state
    assert_unchanged(taken, cs.accept(taken, P1, clock()))


def test_an_accept_by_someone_never_rung_is_refused(clock: FakeClock) -> None:
    ringing = open_call(clock).state
    for who in (P3, P4, B1, OUTSIDER):  # unlicensed, busy, other tier, stranger
        with pytest.raises(cs.NotRung) as caught:
            cs.accept(ringing, who, clock())
        assert caught.value.code == "not_rung"
        assert caught.value.status == 403


def test_accept_after_cancel_fails_cleanly(clock: FakeClock) -> None:
    cancelled = cs.cancel(open_call(clock).state, PCP, clock()).state
    with pytest.raises(cs.RequestCancelled) as caught:
        cs.accept(cancelled, P1, clock())
    assert caught.value.code == "cancelled"
    assert caught.value.message == "This request was cancelled."
    assert "request 1" in (caught.value.detail or "")  # server-side context, not for clients


def test_accept_once_the_request_is_in_the_written_queue_fails(clock: FakeClock) -> None:
    queued = open_call(clock, mode=Mode.WRITTEN).state
    with pytest.raises(cs.NotRinging) as caught:
        cs.accept(queued, P1, clock())
    assert caught.value.code == "not_ringing"


def test_a_primary_whose_ring_timed_out_may_still_accept_while_backup_rings(
    clock: FakeClock,
) -> None:
    state = open_call(clock).state
    clock.advance(60)
    state = cs.tick(state, ROSTER, clock()).state
    assert state.tier is Tier.BACKUP
    clock.advance(1)
    t = cs.accept(state, P1, clock())
    assert t.state.accepted_by == P1
    assert of_type(t, StopRinging) == [StopRinging(1, (B1,), StopReason.TAKEN)]


@pytest.mark.parametrize("tick_first", [True, False])
def test_accept_racing_the_escalation_tick_gets_the_call_in_either_order(
    clock: FakeClock, tick_first: bool
) -> None:
    store = CasStore(open_call(clock).state)
    clock.advance(60)
    steps = [
        lambda s: cs.tick(s, ROSTER, clock()),
        lambda s: cs.accept(s, P1, clock()),
    ]
    for step in steps if tick_first else reversed(steps):
        store.apply(step)
    assert store.load().status is Status.ACCEPTED
    assert store.load().accepted_by == P1


# -- escalation on time -------------------------------------------------------------------------


def test_it_escalates_to_backup_then_to_the_written_queue_exactly_on_time(
    clock: FakeClock,
) -> None:
    state = open_call(clock).state
    start = clock()

    clock.advance(59.999)
    assert_unchanged(state, cs.tick(state, ROSTER, clock()))

    clock.advance(0.001)  # exactly 60 s
    t = cs.tick(state, ROSTER, clock())
    assert t.effects[:3] == (
        StopRinging(1, (P1, P2), StopReason.ESCALATED),
        Escalated(1, Tier.BACKUP),
        Ring(state.request, (B1,), Tier.BACKUP),
    )
    state = t.state
    assert state.tier is Tier.BACKUP
    assert state.escalated_at == start + timedelta(seconds=60)
    assert state.ring_deadline == start + timedelta(seconds=120)
    assert state.rung == {P1, P2, B1}

    clock.advance(59.999)
    assert_unchanged(state, cs.tick(state, ROSTER, clock()))

    clock.advance(0.001)  # exactly 120 s
    t = cs.tick(state, ROSTER, clock())
    assert t.state.status is Status.QUEUED_WRITTEN
    assert t.effects[:2] == (
        StopRinging(1, (B1,), StopReason.ESCALATED),
        QueuedWritten(1, state.answer_due_at),
    )
    assert of_type(t, StatusForPcp)[0].status is Status.QUEUED_WRITTEN
    assert t.state.ringing_ended_at == start + timedelta(seconds=120)
    assert t.state.ring_deadline is None
    assert t.state.tier is None


def test_tick_is_idempotent(clock: FakeClock) -> None:
    state = open_call(clock).state
    clock.advance(60)
    once = cs.tick(state, ROSTER, clock())
    assert once.changed
    assert_unchanged(once.state, cs.tick(once.state, ROSTER, clock()))


def test_tick_leaves_requests_that_are_not_ringing_alone(clock: FakeClock) -> None:
    accepted = cs.accept(open_call(clock).state, P1, clock()).state
    queued = open_call(clock, mode=Mode.WRITTEN).state
    clock.advance(3600)
    for state in (accepted, queued):
        assert_unchanged(state, cs.tick(state, ROSTER, clock()))


def test_a_late_scheduler_escalates_one_step_and_gives_the_backup_a_full_ring(
    clock: FakeClock,
) -> None:
    state = open_call(clock).state
    clock.advance(300)
    t = cs.tick(state, ROSTER, clock())
    assert t.state.tier is Tier.BACKUP
    assert t.state.ring_deadline == clock() + timedelta(seconds=60)


def test_an_empty_backup_tier_sends_the_request_straight_to_the_queue(clock: FakeClock) -> None:
    state = open_call(clock, PRIMARIES_ONLY).state
    clock.advance(60)
    t = cs.tick(state, PRIMARIES_ONLY, clock())
    assert t.state.status is Status.QUEUED_WRITTEN
    assert [type(e) for e in t.effects] == [StopRinging, Escalated, QueuedWritten, StatusForPcp]


def test_the_backup_tier_is_read_from_the_roster_at_escalation_time(clock: FakeClock) -> None:
    state = open_call(clock, PRIMARIES_ONLY).state
    clock.advance(60)
    came_online = (OnCall(B1, Tier.BACKUP, Presence.AVAILABLE, frozenset({"CA"})),)
    assert cs.tick(state, came_online, clock()).state.ringing == {B1}


def test_a_psychiatrist_is_not_rung_twice_for_one_request(clock: FakeClock) -> None:
    roster = (*ROSTER, OnCall(P1, Tier.BACKUP, Presence.AVAILABLE, frozenset({"CA"})))
    state = open_call(clock, roster).state
    clock.advance(60)
    assert cs.tick(state, roster, clock()).state.ringing == {B1}


def test_a_custom_ring_timeout_is_kept_with_the_request(clock: FakeClock) -> None:
    state = open_call(clock, policy=RoutingPolicy(ring_timeout=timedelta(seconds=20))).state
    assert state.ring_deadline == clock() + timedelta(seconds=20)
    clock.advance(20)
    # A process configured differently still honours the timeout the request opened with.
    assert cs.tick(state, ROSTER, clock()).state.ring_deadline == clock() + timedelta(seconds=20)


# -- declines and disconnects -------------------------------------------------------------------


def test_a_psychiatrist_who_disconnects_while_ringing_is_skipped(clock: FakeClock) -> None:
    state = open_call(clock).state
    t = cs.drop(state, P1, ROSTER, clock())
    assert t.changed
    assert t.effects == ()
    assert t.state.ringing == {P2}
    assert t.state.dropped == {P1}
    assert t.state.version == 2
    with pytest.raises(cs.NotRung):
        cs.accept(t.state, P1, clock())


def test_when_the_last_ringing_psychiatrist_disconnects_it_escalates_at_once(
    clock: FakeClock,
) -> None:
    state = cs.drop(open_call(clock).state, P1, ROSTER, clock()).state
    clock.advance(5)
    t = cs.drop(state, P2, ROSTER, clock())
    assert t.state.tier is Tier.BACKUP
    assert of_type(t, Ring)[0].psychiatrist_ids == (B1,)
    assert not of_type(t, StopRinging)  # nobody was left ringing to stop
    assert t.state.ring_deadline == clock() + timedelta(seconds=60)


def test_a_disconnect_that_does_not_concern_the_ring_changes_nothing(clock: FakeClock) -> None:
    ringing = open_call(clock).state
    accepted = cs.accept(ringing, P1, clock()).state
    assert_unchanged(ringing, cs.drop(ringing, P3, ROSTER, clock()))
    assert_unchanged(accepted, cs.drop(accepted, P2, ROSTER, clock()))


def test_a_decline_removes_the_psychiatrist_from_the_ring(clock: FakeClock) -> None:
    t = cs.decline(open_call(clock).state, P1, ROSTER, clock())
    assert t.state.ringing == {P2}
    assert t.state.declined == {P1}
    with pytest.raises(cs.NotRung):
        cs.accept(t.state, P1, clock())


def test_when_everyone_declines_it_escalates_at_once(clock: FakeClock) -> None:
    state = cs.decline(open_call(clock).state, P1, ROSTER, clock()).state
    t = cs.decline(state, P2, ROSTER, clock())
    assert t.state.tier is Tier.BACKUP
    t = cs.decline(t.state, B1, ROSTER, clock())
    assert t.state.status is Status.QUEUED_WRITTEN


def test_a_decline_by_someone_never_rung_is_refused(clock: FakeClock) -> None:
    with pytest.raises(cs.NotRung):
        cs.decline(open_call(clock).state, P3, ROSTER, clock())


def test_a_decline_that_lost_a_race_changes_nothing(clock: FakeClock) -> None:
    taken = cs.accept(open_call(clock).state, P1, clock()).state
    assert_unchanged(taken, cs.decline(taken, P2, ROSTER, clock()))


def test_a_timed_out_primary_who_declines_late_gives_up_the_late_accept(
    clock: FakeClock,
) -> None:
    state = open_call(clock).state
    clock.advance(60)
    state = cs.tick(state, ROSTER, clock()).state
    t = cs.decline(state, P1, ROSTER, clock())
    assert t.state.ringing == {B1}  # the backup keeps ringing
    assert t.effects == ()
    with pytest.raises(cs.NotRung):
        cs.accept(t.state, P1, clock())


# -- cancelling ---------------------------------------------------------------------------------


def test_the_pcp_can_cancel_while_ringing(clock: FakeClock) -> None:
    t = cs.cancel(open_call(clock).state, PCP, clock())
    assert t.state.status is Status.CANCELLED
    assert t.effects == (
        StopRinging(1, (P1, P2), StopReason.CANCELLED),
        StatusForPcp(1, PCP, Status.CANCELLED, "You cancelled this request."),
    )
    assert t.state.ringing == frozenset()
    assert t.state.cancelled_at == clock()
    assert_unchanged(t.state, cs.cancel(t.state, PCP, clock()))
    assert_unchanged(t.state, cs.tick(t.state, ROSTER, clock() + timedelta(hours=1)))


def test_cancelling_after_accept_tells_the_winner(clock: FakeClock) -> None:
    accepted = cs.accept(open_call(clock).state, P1, clock()).state
    t = cs.cancel(accepted, PCP, clock())
    assert of_type(t, StopRinging) == [StopRinging(1, (P1,), StopReason.CANCELLED)]


def test_the_pcp_can_cancel_a_queued_written_request(clock: FakeClock) -> None:
    t = cs.cancel(open_call(clock, mode=Mode.WRITTEN).state, PCP, clock())
    assert t.state.status is Status.CANCELLED
    assert not of_type(t, StopRinging)
    with pytest.raises(cs.RequestCancelled):
        cs.answer_written(t.state, P1, clock())


def test_only_the_requesting_pcp_can_cancel(clock: FakeClock) -> None:
    with pytest.raises(cs.NotParticipant) as caught:
        cs.cancel(open_call(clock).state, P1, clock())
    assert caught.value.code == "not_participant"


def test_a_consult_under_way_cannot_be_cancelled(clock: FakeClock) -> None:
    accepted = cs.accept(open_call(clock).state, P1, clock()).state
    in_call = cs.call_connected(accepted, P1, clock()).state
    with pytest.raises(cs.CurbsideConflict) as caught:
        cs.cancel(in_call, PCP, clock())
    assert caught.value.code == "invalid_state"


# -- the call -----------------------------------------------------------------------------------


def test_a_call_runs_from_accept_to_completed_and_records_its_minutes(clock: FakeClock) -> None:
    state = open_call(clock).state
    clock.advance(25)
    state = cs.accept(state, P2, clock()).state
    clock.advance(5)
    t = cs.call_connected(state, PCP, clock())
    assert t.state.status is Status.IN_CALL
    state = t.state
    assert_unchanged(state, cs.call_connected(state, P2, clock()))  # the other side reports too
    clock.advance(8 * 60)
    t = cs.end_call(state, P2, clock())
    assert t.state.status is Status.DOCUMENTING
    state = t.state
    assert_unchanged(state, cs.end_call(state, PCP, clock()))
    clock.advance(6 * 60)
    t = cs.complete(state, P2, clock())
    assert t.state.status is Status.COMPLETED
    assert of_type(t, StatusForPcp)[0].status is Status.COMPLETED
    done = t.state
    assert_unchanged(done, cs.complete(done, P2, clock()))
    assert_unchanged(done, cs.call_connected(done, PCP, clock()))
    assert_unchanged(done, cs.end_call(done, PCP, clock()))
    assert done.version == 5
    assert cs.consult_times(done) == cs.ConsultTimes(
        to_answer=timedelta(seconds=25),
        ringing=timedelta(seconds=25),
        talking=timedelta(minutes=8),
        documenting=timedelta(minutes=6),
    )


def test_only_the_parties_take_part_in_the_call(clock: FakeClock) -> None:
    accepted = cs.accept(open_call(clock).state, P1, clock()).state
    with pytest.raises(cs.NotParticipant):
        cs.call_connected(accepted, P2, clock())
    in_call = cs.call_connected(accepted, P1, clock()).state
    with pytest.raises(cs.NotParticipant):
        cs.end_call(in_call, OUTSIDER, clock())
    documenting = cs.end_call(in_call, PCP, clock()).state
    with pytest.raises(cs.NotParticipant):
        cs.complete(documenting, PCP, clock())


def test_call_steps_out_of_order_are_refused(clock: FakeClock) -> None:
    ringing = open_call(clock).state
    accepted = cs.accept(ringing, P1, clock()).state
    with pytest.raises(cs.CurbsideConflict):
        cs.call_connected(ringing, PCP, clock())
    with pytest.raises(cs.CurbsideConflict):
        cs.end_call(accepted, PCP, clock())
    with pytest.raises(cs.CurbsideConflict):
        cs.complete(accepted, P1, clock())
    cancelled = cs.cancel(accepted, PCP, clock()).state
    with pytest.raises(cs.RequestCancelled):
        cs.call_connected(cancelled, P1, clock())


def test_consult_times_leave_out_phases_that_did_not_happen(clock: FakeClock) -> None:
    times = cs.consult_times(open_call(clock, mode=Mode.WRITTEN).state)
    assert times == cs.ConsultTimes(None, None, None, None)


# -- written consults ---------------------------------------------------------------------------


def test_a_written_consult_is_answered_then_acknowledged(clock: FakeClock) -> None:
    state = open_call(clock, mode=Mode.WRITTEN).state
    clock.advance(2 * 3600)
    t = cs.answer_written(state, P3, clock())
    assert t.state.status is Status.ANSWERED
    assert t.effects == (
        StatusForPcp(
            1, PCP, Status.ANSWERED, "A psychiatrist answered your request in writing.", P3
        ),
    )
    answered = t.state
    assert_unchanged(answered, cs.answer_written(answered, P3, clock()))
    with pytest.raises(cs.AlreadyAnswered) as caught:
        cs.answer_written(answered, P1, clock())
    assert caught.value.code == "already_answered"
    with pytest.raises(cs.NotParticipant):
        cs.acknowledge(answered, P3, clock())
    t = cs.acknowledge(answered, PCP, clock())
    assert t.state.status is Status.ACKNOWLEDGED
    assert_unchanged(t.state, cs.acknowledge(t.state, PCP, clock()))
    assert cs.consult_times(t.state).to_answer == timedelta(hours=2)
    with pytest.raises(cs.CurbsideConflict):
        cs.cancel(t.state, PCP, clock())


def test_written_steps_out_of_order_are_refused(clock: FakeClock) -> None:
    ringing = open_call(clock).state
    queued = open_call(clock, mode=Mode.WRITTEN).state
    with pytest.raises(cs.CurbsideConflict):
        cs.answer_written(ringing, P1, clock())
    with pytest.raises(cs.CurbsideConflict):
        cs.acknowledge(queued, PCP, clock())


@pytest.mark.parametrize(
    ("urgency", "target"),
    [
        (Urgency.EMERGENT, timedelta(hours=1)),
        (Urgency.URGENT, timedelta(hours=4)),
        (Urgency.ROUTINE, timedelta(hours=72)),
    ],
)
def test_a_queued_consult_is_overdue_once_its_target_has_elapsed(
    clock: FakeClock, urgency: Urgency, target: timedelta
) -> None:
    state = open_call(clock, mode=Mode.WRITTEN, urgency=urgency).state
    due = clock() + target
    assert not cs.is_overdue(state, due - timedelta(microseconds=1))
    assert cs.is_overdue(state, due)
    answered = cs.answer_written(state, P1, due).state
    assert not cs.is_overdue(answered, due + timedelta(days=1))


def test_the_answer_target_counts_from_the_request_not_from_the_fallback(
    clock: FakeClock,
) -> None:
    asked = clock()
    state = open_call(clock, roster=PRIMARIES_ONLY, urgency=Urgency.EMERGENT).state
    assert not cs.is_overdue(state, asked + timedelta(hours=2))  # still ringing: not queued
    clock.advance(60)
    queued = cs.tick(state, PRIMARIES_ONLY, clock()).state
    assert cs.is_overdue(queued, asked + timedelta(hours=1))


def test_answer_targets_come_from_the_policy(clock: FakeClock) -> None:
    targets = {u: timedelta(minutes=30) for u in Urgency}
    state = open_call(clock, mode=Mode.WRITTEN, policy=RoutingPolicy(answer_targets=targets)).state
    assert state.answer_due_at == clock() + timedelta(minutes=30)


# -- values, serialisation, purity --------------------------------------------------------------


def reachable_states(clock: FakeClock) -> list[CurbsideState]:
    ringing = open_call(clock).state
    accepted = cs.accept(ringing, P1, clock()).state
    in_call = cs.call_connected(accepted, PCP, clock()).state
    documenting = cs.end_call(in_call, PCP, clock()).state
    completed = cs.complete(documenting, P1, clock()).state
    queued = open_call(clock, mode=Mode.WRITTEN, patient_state=None).state
    answered = cs.answer_written(queued, P2, clock()).state
    acknowledged = cs.acknowledge(answered, PCP, clock()).state
    cancelled = cs.cancel(ringing, PCP, clock()).state
    dropped = cs.drop(cs.decline(ringing, P1, ROSTER, clock()).state, P2, ROSTER, clock()).state
    call = [ringing, accepted, in_call, documenting, completed, cancelled, dropped]
    return [*call, queued, answered, acknowledged]


def test_every_state_round_trips_through_json(clock: FakeClock) -> None:
    for state in reachable_states(clock):
        assert roundtrip(state) == state
        assert state.to_dict() == roundtrip(state).to_dict()


def test_the_serialised_form_is_plain_json(clock: FakeClock) -> None:
    data = open_call(clock).state.to_dict()
    assert data["format"] == 2
    assert data["status"] == "ringing"
    assert data["ringing"] == [P1, P2]
    assert data["ring_deadline"] == "2026-01-05T09:01:00+00:00"
    assert data["request"]["urgency"] == "urgent"
    assert json.loads(json.dumps(data)) == data


@pytest.mark.parametrize(
    "spoil",
    [
        lambda d: d.update(format=3),
        lambda d: d.update(format=True),
        lambda d: d.pop("format"),
        # Format 1 exactly as it was, nothing of format 2 under it.
        lambda d: d.update(format=1),
        lambda d: (d.pop("attested_minutes"), d.update(format=1)),
        lambda d: d.update(extra=1),
        lambda d: d.pop("rung"),
        lambda d: d.update(status="lost"),
        lambda d: d.update(version=True),
        lambda d: d.update(version="2"),
        lambda d: d.update(ring_timeout_s=0),
        lambda d: d.update(ring_timeout_s="60"),
        lambda d: d.update(require_license_match="yes"),
        lambda d: d.update(ring_deadline="2026-01-05T09:01:00"),  # naive
        lambda d: d.update(ring_deadline=1767603660),
        lambda d: d.update(ringing="101"),
        lambda d: d.update(ringing=[101.5]),
        lambda d: d.update(request=[]),
        lambda d: d["request"].update(patient_state=6),
        lambda d: d["request"].update(patient_state="California"),
        lambda d: d["request"].pop("mode"),
    ],
)
def test_from_dict_refuses_what_to_dict_would_not_write(
    clock: FakeClock, spoil: Callable[[dict[str, Any]], object]
) -> None:
    data = open_call(clock).state.to_dict()
    spoil(data)
    with pytest.raises(ValueError):
        CurbsideState.from_dict(data)


def test_from_dict_reads_a_format_1_state_written_during_a_rolling_upgrade(
    clock: FakeClock,
) -> None:
    # Migration 0009 rewrote the stored states, but a process of the previous release may still
    # save one it loaded before: every reader of that row (the ringing list, the admin's
    # report) must still work. Format 1 had no written time: none is read.
    states = reachable_states(clock)
    assert all(not s.writing_started and s.attested_minutes is None for s in states)
    for state in states:
        data = state.to_dict()
        old = {k: v for k, v in data.items() if k not in ("writing_started", "attested_minutes")}
        read = CurbsideState.from_dict(old | {"format": 1})
        assert read == state
        assert read.to_dict()["format"] == 2  # the next save writes the current format


def test_from_dict_accepts_an_integer_timeout(clock: FakeClock) -> None:
    data = open_call(clock).state.to_dict()
    data["ring_timeout_s"] = 60
    assert CurbsideState.from_dict(data).ring_timeout_s == 60.0


def test_transitions_never_mutate_their_input(clock: FakeClock) -> None:
    state = open_call(clock).state
    snapshot = state.to_dict()
    clock.advance(60)
    cs.tick(state, ROSTER, clock())
    cs.accept(state, P1, clock())
    cs.decline(state, P1, ROSTER, clock())
    cs.drop(state, P2, ROSTER, clock())
    cs.cancel(state, PCP, clock())
    assert state.to_dict() == snapshot
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.status = Status.CANCELLED  # type: ignore[misc]


def test_naive_times_are_refused(clock: FakeClock) -> None:
    state = open_call(clock).state
    naive = datetime(2026, 1, 5, 9, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        cs.tick(state, ROSTER, naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        make_request(FakeClock(naive))


def test_times_in_other_zones_are_kept_as_utc(clock: FakeClock) -> None:
    state = open_call(clock).state
    elsewhere = (clock() + timedelta(seconds=5)).astimezone(timezone(timedelta(hours=-8)))
    accepted = cs.accept(state, P1, elsewhere).state
    assert accepted.accepted_at is not None
    assert accepted.accepted_at.tzinfo is UTC


def test_a_state_code_must_be_two_letters(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="two-letter"):
        make_request(clock, patient_state="C4")


@pytest.mark.parametrize(
    "policy",
    [
        {"ring_timeout": timedelta(0)},
        {"answer_targets": {Urgency.URGENT: timedelta(hours=1)}},
        {"answer_targets": {u: timedelta(0) for u in Urgency}},
    ],
)
def test_a_routing_policy_refuses_nonsense(policy: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RoutingPolicy(**policy)


def test_the_errors_carry_client_safe_codes_under_the_shared_tree() -> None:
    expected = {
        cs.CurbsideConflict: ("invalid_state", Conflict),
        cs.AlreadyTaken: ("already_taken", Conflict),
        cs.RequestCancelled: ("cancelled", Conflict),
        cs.NotRinging: ("not_ringing", Conflict),
        cs.AlreadyAnswered: ("already_answered", Conflict),
        cs.NotRung: ("not_rung", Forbidden),
        cs.NotParticipant: ("not_participant", Forbidden),
    }
    for kind, (code, base) in expected.items():
        error = kind("message")
        assert isinstance(error, base)
        assert error.to_dict() == {"code": code, "message": "message"}


# -- properties ---------------------------------------------------------------------------------

PEOPLE = [PCP, P1, P2, P3, B1, B2, OUTSIDER]
STEPS: dict[str, Callable[[CurbsideState, int, datetime], Transition]] = {
    "accept": cs.accept,
    "decline": lambda state, who, now: cs.decline(state, who, ROSTER, now),
    "drop": lambda state, who, now: cs.drop(state, who, ROSTER, now),
    "tick": lambda state, _who, now: cs.tick(state, ROSTER, now),
    "cancel": cs.cancel,
    "connect": cs.call_connected,
    "end": cs.end_call,
    "complete": cs.complete,
    "answer": cs.answer_written,
    "ack": cs.acknowledge,
}
commands = st.lists(
    st.tuples(
        st.sampled_from(sorted(STEPS)),
        st.sampled_from(PEOPLE),
        st.floats(min_value=0, max_value=90, allow_nan=False),
    ),
    max_size=25,
)


def run(state: CurbsideState, name: str, who: int, now: datetime) -> Transition:
    return STEPS[name](state, who, now)


@settings(max_examples=300, deadline=None)
@given(mode=st.sampled_from(Mode), script=commands)
def test_any_sequence_of_events_keeps_the_invariants(
    mode: Mode, script: list[tuple[str, int, float]]
) -> None:
    clock = FakeClock()
    state = open_call(clock, mode=mode).state
    winner: int | None = None
    for name, who, wait in script:
        clock.advance(wait)
        before = state.to_dict()
        try:
            t = run(state, name, who, clock())
        except LiaisonError as error:
            assert isinstance(error, Conflict | Forbidden)
            continue
        assert state.to_dict() == before  # pure
        if t.changed:
            assert t.state.version == state.version + 1
        else:
            assert t.state is state
        state = t.state
        # Exactly one winner, ever.
        if winner is not None:
            assert state.accepted_by == winner
        winner = state.accepted_by
        # Ringing means someone is ringing, with a deadline; anything else rings nobody.
        ringing = state.status is Status.RINGING
        assert ringing == bool(state.ringing) == (state.ring_deadline is not None)
        assert roundtrip(state) == state
    # Never dropped silently: given time, a ringing request always lands somewhere.
    for _ in range(3):
        clock.advance(61)
        state = cs.tick(state, ROSTER, clock()).state
    assert state.status is not Status.RINGING


@settings(max_examples=200, deadline=None)
@given(script=commands, first=st.sampled_from(PEOPLE), second=st.sampled_from(PEOPLE))
def test_two_accepts_in_sequence_never_both_win(
    script: list[tuple[str, int, float]], first: int, second: int
) -> None:
    clock = FakeClock()
    state = open_call(clock).state
    for name, who, wait in script:
        clock.advance(wait)
        with contextlib.suppress(LiaisonError):
            state = run(state, name, who, clock()).state
    winners = []
    for who in (first, second):
        try:
            state = cs.accept(state, who, clock()).state
            winners.append(who)
        except LiaisonError:
            pass
    assert len(set(winners)) <= 1
