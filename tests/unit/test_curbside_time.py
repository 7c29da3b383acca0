"""The consultant's time on a written consult: measured from the answering psychiatrist opening
the answer form (``start_writing``) to the answer, and attested when they answer; the billing
minutes that follow from it. Time comes from a FakeClock and moves only when a test says so.

Personas: the PCP (7) asks in writing; psychiatrists 101 and 102 may answer from the queue.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from server.clock import FakeClock
from server.curbside.billing import (
    ConsultantTime,
    MinutesSource,
    consultant_minutes,
    consultant_time,
    summarise,
)
from signaling import curbside as cs
from signaling.curbside import CurbsideState, Mode, Status

PCP, P1, P2 = 7, 101, 102
ROSTER = (cs.OnCall(P1, cs.Tier.PRIMARY, cs.Presence.AVAILABLE, frozenset({"CA"})),)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def ask(clock: FakeClock, mode: Mode = Mode.WRITTEN) -> CurbsideState:
    request = cs.ConsultRequest(1, PCP, 900, cs.Urgency.ROUTINE, mode, clock(), "CA")
    return cs.open_request(request, ROSTER, cs.RoutingPolicy(), clock()).state


def roundtrip(state: CurbsideState) -> CurbsideState:
    return CurbsideState.from_dict(json.loads(json.dumps(state.to_dict())))


def test_opening_the_answer_form_starts_that_psychiatrists_time_once(clock: FakeClock) -> None:
    queued = ask(clock)
    clock.advance(600)
    started = cs.start_writing(queued, P1, clock())
    assert started.changed and started.effects == ()  # nobody is told: nothing to act on
    assert started.state.version == queued.version + 1
    assert started.state.status is Status.QUEUED_WRITTEN
    assert started.state.writing_started_by(P1) == clock()
    clock.advance(300)
    again = cs.start_writing(started.state, P1, clock())  # a reload keeps the first start
    assert again.state is started.state and not again.changed


def test_each_psychiatrist_has_their_own_start_and_only_the_authors_counts(
    clock: FakeClock,
) -> None:
    state = ask(clock)
    clock.advance(60)
    state = cs.start_writing(state, P2, clock()).state  # 102 looks first, and leaves it
    clock.advance(240)
    state = cs.start_writing(state, P1, clock()).state
    assert [uid for uid, _ in state.writing_started] == [P1, P2]
    clock.advance(7 * 60)
    answered = cs.answer_written(state, P1, clock()).state
    times = cs.consult_times(answered)
    assert times.writing == timedelta(minutes=7)
    assert times.to_answer == timedelta(minutes=12)
    assert times.talking is None and times.attested is None
    assert consultant_minutes(times) == 7  # measured, nothing attested
    assert consultant_time(times) == ConsultantTime(7, MinutesSource.MEASURED_WRITING)


def test_attested_minutes_win_over_the_measured_time(clock: FakeClock) -> None:
    state = cs.start_writing(ask(clock), P1, clock()).state
    clock.advance(25 * 60)  # the form stayed open while they saw a patient
    answered = cs.answer_written(state, P1, clock(), minutes=12).state
    assert answered.attested_minutes == 12
    times = cs.consult_times(answered)
    assert times.writing == timedelta(minutes=25)
    assert times.attested == timedelta(minutes=12)
    assert consultant_minutes(times) == 12
    assert consultant_time(times) == ConsultantTime(12, MinutesSource.ATTESTED)


def test_measured_writing_counts_only_up_to_what_could_be_attested(clock: FakeClock) -> None:
    # Opened on Monday, answered on Wednesday, nothing attested: the form stood open for two
    # days, the consultant did not work them. No billable minutes, rather than 2,880.
    opened = clock()
    monday = cs.start_writing(ask(clock), P1, opened).state
    clock.advance(timedelta(days=2).total_seconds())
    late = cs.consult_times(cs.answer_written(monday, P1, clock()).state)
    assert late.writing == timedelta(days=2)  # still reported as measured, as seconds
    assert consultant_time(late) is None and consultant_minutes(late) is None
    assert summarise([cs.answer_written(monday, P1, clock()).state]).minutes_per_consult is None
    # The cap itself still counts, as measured.
    clock.now = opened + timedelta(minutes=cs.MAX_WRITTEN_MINUTES)
    capped = cs.consult_times(cs.answer_written(monday, P1, clock()).state)
    assert consultant_time(capped) == ConsultantTime(
        cs.MAX_WRITTEN_MINUTES, MinutesSource.MEASURED_WRITING
    )
    # Attested minutes stand however long the form stood open.
    attested = cs.consult_times(cs.answer_written(monday, P1, clock(), minutes=30).state)
    assert consultant_time(attested) == ConsultantTime(30, MinutesSource.ATTESTED)


def test_an_answer_without_a_start_or_minutes_has_no_consultant_minutes(
    clock: FakeClock,
) -> None:
    clock.advance(600)
    times = cs.consult_times(cs.answer_written(ask(clock), P1, clock()).state)
    assert times.writing is None and times.attested is None
    assert consultant_minutes(times) is None


@pytest.mark.parametrize("minutes", [0, -5, 31, 241, True])
def test_minutes_that_could_not_be_true_are_refused(clock: FakeClock, minutes: int) -> None:
    queued = ask(clock)
    clock.advance(30 * 60)  # 30 minutes since the PCP asked: at most 30 may be attested
    with pytest.raises(cs.ImplausibleMinutes) as refused:
        cs.answer_written(queued, P1, clock(), minutes=minutes)
    assert refused.value.status == 422 and refused.value.code == "invalid_minutes"
    assert "from 1 to 30" in refused.value.message


def test_the_last_minute_begun_counts_whole_and_the_cap_holds(clock: FakeClock) -> None:
    queued = ask(clock)
    assert cs.minutes_possible(queued, clock()) == 1  # an answer at once may still say 1
    clock.advance(30 * 60 + 1)
    assert cs.minutes_possible(queued, clock()) == 31
    assert cs.answer_written(queued, P1, clock(), minutes=31).state.attested_minutes == 31
    clock.advance(timedelta(days=3).total_seconds())
    assert cs.minutes_possible(queued, clock()) == cs.MAX_WRITTEN_MINUTES
    with pytest.raises(cs.ImplausibleMinutes):
        cs.answer_written(queued, P1, clock(), minutes=cs.MAX_WRITTEN_MINUTES + 1)


def test_a_retried_answer_keeps_the_first_minutes(clock: FakeClock) -> None:
    queued = ask(clock)
    clock.advance(600)
    answered = cs.answer_written(queued, P1, clock(), minutes=8).state
    retry = cs.answer_written(answered, P1, clock(), minutes=9)
    assert retry.state is answered and not retry.changed


def test_starting_is_refused_once_it_is_not_waiting_for_an_answer(clock: FakeClock) -> None:
    queued = ask(clock)
    answered = cs.answer_written(queued, P1, clock()).state
    assert not cs.start_writing(answered, P1, clock()).changed  # their own answer: nothing
    with pytest.raises(cs.AlreadyAnswered):
        cs.start_writing(answered, P2, clock())
    with pytest.raises(cs.RequestCancelled):
        cs.start_writing(cs.cancel(queued, PCP, clock()).state, P1, clock())
    with pytest.raises(cs.CurbsideConflict) as ringing:
        cs.start_writing(ask(clock, Mode.CALL_NOW), P1, clock())
    assert ringing.value.code == "invalid_state"


def test_a_call_now_request_that_went_to_writing_is_timed_like_a_written_one(
    clock: FakeClock,
) -> None:
    ringing = ask(clock, Mode.CALL_NOW)
    clock.advance(60)
    queued = cs.tick(ringing, [], clock()).state
    assert queued.status is Status.QUEUED_WRITTEN
    state = cs.start_writing(queued, P1, clock()).state
    clock.advance(9 * 60)
    times = cs.consult_times(cs.answer_written(state, P1, clock(), minutes=10).state)
    assert times.ringing == timedelta(minutes=1)
    assert times.writing == timedelta(minutes=9)
    assert consultant_minutes(times) == 10
    assert consultant_time(times) == ConsultantTime(10, MinutesSource.ATTESTED)


def test_written_time_round_trips_through_json(clock: FakeClock) -> None:
    state = cs.start_writing(ask(clock), P2, clock()).state
    clock.advance(90)
    state = cs.start_writing(state, P1, clock()).state
    clock.advance(90)
    answered = cs.answer_written(state, P1, clock(), minutes=2).state
    data = answered.to_dict()
    assert data["writing_started"] == [
        [P1, "2026-01-05T09:01:30+00:00"],
        [P2, "2026-01-05T09:00:00+00:00"],
    ]
    assert data["attested_minutes"] == 2
    assert roundtrip(answered) == answered


@pytest.mark.parametrize(
    "spoil",
    [
        {"writing_started": [[P1]]},
        {"writing_started": [[P1, "2026-01-05T09:00:00+00:00"], [P1, "2026-01-05T09:01:00+00:00"]]},
        {"writing_started": [["101", "2026-01-05T09:00:00+00:00"]]},
        {"writing_started": [[P1, "2026-01-05T09:00:00"]]},  # naive
        {"writing_started": {"101": "2026-01-05T09:00:00+00:00"}},
        {"attested_minutes": 0},
        {"attested_minutes": cs.MAX_WRITTEN_MINUTES + 1},
        {"attested_minutes": 12.5},
    ],
)
def test_from_dict_refuses_written_time_it_would_not_write(
    clock: FakeClock, spoil: dict[str, object]
) -> None:
    data = ask(clock).to_dict() | spoil
    with pytest.raises(ValueError):
        CurbsideState.from_dict(data)


def test_minutes_per_consult_counts_written_answers_with_their_time(clock: FakeClock) -> None:
    call = cs.accept(ask(clock, Mode.CALL_NOW), P1, clock()).state
    call = cs.call_connected(call, PCP, clock()).state
    clock.advance(6 * 60)
    call = cs.end_call(call, PCP, clock()).state
    clock.advance(4 * 60)
    call = cs.complete(call, P1, clock()).state  # 10 minutes
    written = cs.answer_written(ask(clock), P1, clock() + timedelta(minutes=30), minutes=20).state
    untimed = cs.answer_written(ask(clock), P1, clock()).state  # no start, nothing attested
    metrics = summarise([call, written, untimed])
    assert metrics.minutes_per_consult == (10 + 20) / 2
