"""The registry's rules on crafted histories, at the edge of each rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.clinics.registry import Flag, Rules, ScorePoint, assess, trend
from server.record.screenings import Instrument

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
RULES = Rules()
PHQ9, GAD7 = Instrument.PHQ9, Instrument.GAD7


def phq9(total: int, days: float, item9: int = 0) -> ScorePoint:
    return ScorePoint(PHQ9, total, T0 + timedelta(days=days), item9=item9)


def gad7(total: int, days: float) -> ScorePoint:
    return ScorePoint(GAD7, total, T0 + timedelta(days=days))


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def flags_of(scores: list[ScorePoint], now_days: float, **kw: object) -> tuple[Flag, ...]:
    contacts = kw.pop("contacts", [at(now_days)])  # contacted today unless said otherwise
    return assess(scores, contacts, now=at(now_days), rules=RULES, **kw).flags  # type: ignore[arg-type]


def test_baseline_is_the_first_score_and_latest_the_newest_whatever_the_order() -> None:
    t = trend(PHQ9, [phq9(12, 14), phq9(20, 0), gad7(9, 1), phq9(8, 28)])
    assert t.baseline is not None and t.baseline.total == 20
    assert t.latest is not None and t.latest.total == 8
    assert t.count == 3
    assert t.change_percent == -60.0


def test_change_is_rounded_and_positive_when_worse() -> None:
    assert trend(PHQ9, [phq9(9, 0), phq9(10, 7)]).change_percent == 11.1


def test_a_single_score_has_no_change() -> None:
    t = trend(PHQ9, [phq9(15, 0)])
    assert t.baseline == t.latest
    assert t.change_percent is None


def test_a_baseline_of_zero_has_no_change_percent_and_cannot_lag() -> None:
    t = trend(GAD7, [gad7(0, 0), gad7(6, 80)])
    assert t.change_percent is None
    assert t.improved_enough(50) is None
    assert Flag.NOT_IMPROVING not in flags_of([gad7(0, 0), gad7(6, 80)], 80)


def test_no_scores_means_no_trend_and_no_weeks() -> None:
    a = assess([], [], now=T0, rules=RULES, enrolled_at=T0)
    assert a.phq9.baseline is None and a.phq9.change_percent is None
    assert a.weeks_in_treatment is None
    assert a.flags == ()


def test_episode_start_drops_earlier_scores_from_the_baseline() -> None:
    a = assess(
        [phq9(25, 0), phq9(18, 30), phq9(9, 60)],
        [at(60)],
        now=at(60),
        rules=RULES,
        episode_start=at(30),
    )
    assert a.phq9.baseline is not None and a.phq9.baseline.total == 18
    assert a.weeks_in_treatment == 4


def test_weeks_in_treatment_count_whole_weeks_from_the_first_score_of_either_kind() -> None:
    a = assess([gad7(10, 0), phq9(15, 3)], [], now=at(69.9), rules=RULES)
    assert a.treatment_start == T0
    assert a.weeks_in_treatment == 9


# --- safety ------------------------------------------------------------------------------------


def test_latest_phq9_item9_above_zero_is_a_safety_flag() -> None:
    assert flags_of([phq9(10, 0), phq9(6, 7, item9=1)], 7) == (Flag.SAFETY,)


def test_item9_on_an_earlier_phq9_only_is_not_a_safety_flag_once_flags_are_addressed() -> None:
    assert flags_of([phq9(10, 0, item9=2), phq9(6, 7, item9=0)], 7) == ()


def test_an_unresolved_safety_flag_is_a_safety_flag_whatever_the_latest_score() -> None:
    assert flags_of([phq9(10, 0, item9=2), phq9(6, 7)], 7, open_safety_flags=1) == (Flag.SAFETY,)


# --- not improving -----------------------------------------------------------------------------


def test_exactly_ten_weeks_with_less_than_half_the_baseline_gone_is_not_improving() -> None:
    a = assess([phq9(20, 0), phq9(11, 70)], [at(70)], now=at(70), rules=RULES)
    assert a.weeks_in_treatment == 10
    assert a.flags == (Flag.NOT_IMPROVING,)
    assert a.not_improving == (PHQ9,)


def test_just_under_ten_weeks_is_not_yet_judged() -> None:
    now = 70 - 1 / (24 * 60)  # a minute short of ten weeks
    assert flags_of([phq9(20, 0), phq9(19, 60)], now) == ()


def test_exactly_fifty_percent_better_is_improving() -> None:
    assert flags_of([phq9(20, 0), phq9(10, 70)], 70) == ()
    assert flags_of([phq9(21, 0), phq9(11, 70)], 70) == (Flag.NOT_IMPROVING,)  # 47.6 %


def test_odd_baselines_compare_exactly_without_rounding() -> None:
    # 15 -> 7 is 53.3 % better; 15 -> 8 is 46.7 %.
    assert flags_of([phq9(15, 0), phq9(7, 80)], 80) == ()
    assert flags_of([phq9(15, 0), phq9(8, 80)], 80) == (Flag.NOT_IMPROVING,)


def test_a_single_score_after_ten_weeks_is_not_improving() -> None:
    assert flags_of([phq9(14, 0)], 70) == (Flag.NOT_IMPROVING,)


def test_either_instrument_can_lag() -> None:
    a = assess(
        [phq9(20, 0), phq9(5, 70), gad7(12, 0), gad7(10, 70)], [at(70)], now=at(70), rules=RULES
    )
    assert a.flags == (Flag.NOT_IMPROVING,)
    assert a.not_improving == (GAD7,)


def test_the_weeks_and_the_target_are_configurable() -> None:
    rules = Rules(not_improving_weeks=6, improvement_target_percent=25)
    scores = [phq9(20, 0), phq9(16, 42)]  # 20 % better at 6 weeks
    assert assess(scores, [at(42)], now=at(42), rules=rules).flags == (Flag.NOT_IMPROVING,)
    better = [phq9(20, 0), phq9(15, 42)]  # exactly 25 %
    assert assess(better, [at(42)], now=at(42), rules=rules).flags == ()


@pytest.mark.parametrize(
    "kw",
    [
        {"not_improving_weeks": 0},
        {"improvement_target_percent": 0},
        {"improvement_target_percent": 101},
        {"contact_overdue_days": 0},
    ],
)
def test_nonsense_rules_are_refused(kw: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        Rules(**kw)


# --- overdue contact ---------------------------------------------------------------------------


def test_contact_exactly_n_days_ago_is_not_overdue_and_a_minute_more_is() -> None:
    contacts = [at(0), at(5)]
    a = assess([], contacts, now=at(35), rules=RULES)
    assert a.last_contact == at(5) and a.days_since_contact == 30
    assert a.flags == ()
    later = at(35) + timedelta(minutes=1)
    assert assess([], contacts, now=later, rules=RULES).flags == (Flag.OVERDUE_CONTACT,)


def test_without_contacts_enrolment_is_the_reference() -> None:
    assert assess([], [], now=at(30), rules=RULES, enrolled_at=T0).flags == ()
    assert assess([], [], now=at(31), rules=RULES, enrolled_at=T0).flags == (Flag.OVERDUE_CONTACT,)


def test_never_contacted_nor_enrolled_is_overdue() -> None:
    assert assess([], [], now=T0, rules=RULES).flags == (Flag.OVERDUE_CONTACT,)


def test_overdue_days_are_configurable() -> None:
    rules = Rules(contact_overdue_days=7)
    assert assess([], [at(0)], now=at(8), rules=rules).flags == (Flag.OVERDUE_CONTACT,)


def test_flags_come_in_review_order() -> None:
    flags = flags_of([phq9(20, 0), phq9(18, 80, item9=1)], 80, contacts=[])
    assert flags == (Flag.SAFETY, Flag.NOT_IMPROVING, Flag.OVERDUE_CONTACT)
