"""Consult time, interprofessional billing flags and the admin's figures (server/curbside/
billing.py): pure, driven by states the routing machine makes at chosen instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.curbside.billing import (
    BillingFlag,
    BillingRules,
    billing_flags,
    consultant_minutes,
    percentile,
    summarise,
)
from signaling import curbside as cs

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
PCP, PSYCHIATRIST = 7, 101
RULES = BillingRules(face_to_face_window=timedelta(days=14), repeat_window=timedelta(days=7))
ROSTER = [cs.OnCall(PSYCHIATRIST, cs.Tier.PRIMARY, cs.Presence.AVAILABLE, frozenset({"CA"}))]


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def opened(mode: cs.Mode = cs.Mode.CALL_NOW) -> cs.CurbsideState:
    request = cs.ConsultRequest(1, PCP, 900, cs.Urgency.URGENT, mode, T0, "CA")
    return cs.open_request(request, ROSTER, cs.RoutingPolicy(), T0).state


def answered_call() -> cs.CurbsideState:
    state = cs.accept(opened(), PSYCHIATRIST, s(15)).state
    state = cs.call_connected(state, PCP, s(20)).state
    state = cs.end_call(state, PSYCHIATRIST, s(20 + 6 * 60)).state
    return cs.complete(state, PSYCHIATRIST, s(20 + 10 * 60)).state


def test_an_answered_call_with_consent_and_nothing_nearby_has_no_flags() -> None:
    assert billing_flags(answered_call(), T0, [], [], RULES) == ()


def test_it_flags_a_consult_without_the_patients_consent() -> None:
    assert billing_flags(answered_call(), None, [], [], RULES) == (BillingFlag.NO_CONSENT,)


def test_it_flags_a_request_nobody_answered() -> None:
    assert BillingFlag.NOT_ANSWERED in billing_flags(opened(), T0, [], [], RULES)


@pytest.mark.parametrize(
    ("visit_at", "flagged"),
    [
        (T0 - timedelta(days=14), True),
        (T0 + timedelta(days=14), True),
        (T0 - timedelta(days=14, seconds=1), False),
        (T0 + timedelta(days=14, seconds=1), False),
    ],
)
def test_a_face_to_face_visit_with_the_consultant_within_14_days_either_side_is_flagged(
    visit_at: datetime, flagged: bool
) -> None:
    flags = billing_flags(answered_call(), T0, [visit_at], [], RULES)
    assert (BillingFlag.FACE_TO_FACE_WITH_CONSULTANT in flags) is flagged


@pytest.mark.parametrize(
    ("other_at", "flagged"),
    [
        (T0 - timedelta(days=7), True),
        (T0 - timedelta(seconds=1), True),
        (T0 - timedelta(days=7, seconds=1), False),
        (T0, False),  # the same instant is not "before"
        (T0 + timedelta(days=1), False),  # a later consult flags itself, not this one
    ],
)
def test_a_second_consult_within_7_days_is_flagged(other_at: datetime, flagged: bool) -> None:
    flags = billing_flags(answered_call(), T0, [], [other_at], RULES)
    assert (BillingFlag.REPEAT_CONSULT in flags) is flagged


def test_consultant_minutes_are_talking_plus_documenting() -> None:
    assert consultant_minutes(cs.consult_times(answered_call())) == 10
    assert consultant_minutes(cs.consult_times(opened())) is None


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 0.9) is None
    assert percentile([5.0], 0.9) == 5.0
    assert percentile([float(v) for v in range(1, 11)], 0.9) == 9.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.9) == 4.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.0


def test_summarise_counts_and_shares() -> None:
    escalated_then_written = cs.tick(opened(), [], s(60)).state
    cancelled = cs.cancel(opened(), PCP, s(5)).state
    written = cs.answer_written(opened(cs.Mode.WRITTEN), PSYCHIATRIST, s(600)).state
    metrics = summarise([answered_call(), escalated_then_written, cancelled, written])
    assert (metrics.requests, metrics.call_now, metrics.written) == (4, 3, 1)
    assert (metrics.cancelled, metrics.answered) == (1, 2)
    assert metrics.time_to_answer_median_s == (15 + 600) / 2
    assert metrics.time_to_answer_p90_s == 600
    assert metrics.share_escalated == 1 / 3
    assert metrics.share_unanswered_then_written == 1 / 3
    assert metrics.share_unanswered == 1 / 3
    assert metrics.minutes_per_consult == 10


def test_summarise_of_nothing_has_no_figures() -> None:
    metrics = summarise([])
    assert metrics.requests == 0
    assert metrics.time_to_answer_median_s is None and metrics.share_escalated is None
    assert metrics.minutes_per_consult is None
