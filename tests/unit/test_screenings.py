"""PHQ-9 and GAD-7 scoring: every band edge, every total, the item checks and item 9."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.record.screenings import (
    ANSWERS,
    DEFINITIONS,
    GAD7,
    PHQ9,
    Instrument,
    Severity,
    check_answers,
    score,
    severity_of,
)


def answers_for(instrument: Instrument, total: int) -> list[int]:
    """Answers that add up to ``total``, filled from the first item, item 9 left at 0 when
    the total allows (so band tests do not depend on the safety item)."""
    count = len(DEFINITIONS[instrument].items)
    answers = [0] * count
    remaining = total
    order = list(range(count))
    if instrument is Instrument.PHQ9:
        order = [*range(8), 8]  # item 9 last
    for index in order:
        answers[index] = min(3, remaining)
        remaining -= answers[index]
    assert remaining == 0
    return answers


PHQ9_EDGES = [
    (0, Severity.MINIMAL),
    (4, Severity.MINIMAL),
    (5, Severity.MILD),
    (9, Severity.MILD),
    (10, Severity.MODERATE),
    (14, Severity.MODERATE),
    (15, Severity.MODERATELY_SEVERE),
    (19, Severity.MODERATELY_SEVERE),
    (20, Severity.SEVERE),
    (27, Severity.SEVERE),
]
GAD7_EDGES = [
    (0, Severity.MINIMAL),
    (4, Severity.MINIMAL),
    (5, Severity.MILD),
    (9, Severity.MILD),
    (10, Severity.MODERATE),
    (14, Severity.MODERATE),
    (15, Severity.SEVERE),
    (21, Severity.SEVERE),
]


@pytest.mark.parametrize(("total", "band"), PHQ9_EDGES)
def test_phq9_band_edges(total: int, band: Severity) -> None:
    scored = score(Instrument.PHQ9, answers_for(Instrument.PHQ9, total))
    assert (scored.total, scored.severity) == (total, band)


@pytest.mark.parametrize(("total", "band"), GAD7_EDGES)
def test_gad7_band_edges(total: int, band: Severity) -> None:
    scored = score(Instrument.GAD7, answers_for(Instrument.GAD7, total))
    assert (scored.total, scored.severity) == (total, band)
    assert not scored.safety_concern


def _band_by_table(total: int, edges: list[tuple[int, Severity]]) -> Severity:
    # The published bands as (low, high) pairs from the edge list above.
    for (low, band), (high, same) in zip(edges[::2], edges[1::2], strict=True):
        assert band is same
        if low <= total <= high:
            return band
    raise AssertionError(total)


@pytest.mark.parametrize(
    ("instrument", "edges"), [(Instrument.PHQ9, PHQ9_EDGES), (Instrument.GAD7, GAD7_EDGES)]
)
def test_every_total_falls_in_its_published_band(
    instrument: Instrument, edges: list[tuple[int, Severity]]
) -> None:
    maximum = DEFINITIONS[instrument].max_total
    assert maximum == edges[-1][0]
    for total in range(maximum + 1):
        assert severity_of(instrument, total) is _band_by_table(total, edges)


@pytest.mark.parametrize("total", [-1, 28, 100])
def test_a_phq9_total_out_of_range_is_refused(total: int) -> None:
    with pytest.raises(ValueError, match="between 0 and 27"):
        severity_of(Instrument.PHQ9, total)


def test_a_gad7_total_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 21"):
        severity_of(Instrument.GAD7, 22)


@pytest.mark.parametrize("item9", [1, 2, 3])
def test_phq9_item9_above_zero_is_a_safety_concern_whatever_the_total(item9: int) -> None:
    scored = score(Instrument.PHQ9, [0] * 8 + [item9])
    assert scored.safety_concern
    assert scored.severity is Severity.MINIMAL


def test_phq9_item9_at_zero_is_not_a_safety_concern_even_when_severe() -> None:
    assert not score(Instrument.PHQ9, [3] * 8 + [0]).safety_concern


@pytest.mark.parametrize(
    ("instrument", "answers", "message"),
    [
        (Instrument.PHQ9, [0] * 8, "has 9 items; 8 were answered"),
        (Instrument.PHQ9, [0] * 10, "has 9 items; 10 were answered"),
        (Instrument.GAD7, [0] * 9, "has 7 items; 9 were answered"),
        (Instrument.GAD7, [0] * 6 + [4], "item 7 must be between 0 and 3"),
        (Instrument.PHQ9, [-1] + [0] * 8, "item 1 must be between 0 and 3"),
        (Instrument.PHQ9, [True] + [0] * 8, "item 1 must be a whole number"),
        (Instrument.GAD7, [0, 1.5, 0, 0, 0, 0, 0], "item 2 must be a whole number"),
    ],
)
def test_it_refuses_malformed_answers(
    instrument: Instrument, answers: list[int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        check_answers(instrument, answers)


def test_the_instruments_carry_their_loinc_codes() -> None:
    assert (PHQ9.panel_loinc, PHQ9.total_loinc) == ("44249-1", "44261-6")
    assert (GAD7.panel_loinc, GAD7.total_loinc) == ("69737-5", "70274-6")
    assert PHQ9.items[8].loinc == "44260-8"  # thoughts of being better off dead / self-harm
    assert len({i.loinc for i in PHQ9.items}) == 9
    assert len({i.loinc for i in GAD7.items}) == 7
    assert [a.value for a in ANSWERS] == [0, 1, 2, 3]


@given(st.lists(st.integers(0, 3), min_size=9, max_size=9))
def test_phq9_total_is_the_sum(answers: list[int]) -> None:
    scored = score(Instrument.PHQ9, answers)
    assert scored.total == sum(answers)
    assert scored.safety_concern is (answers[8] > 0)


@given(st.integers(0, 27), st.integers(0, 27))
def test_phq9_bands_never_fall_as_the_total_rises(a: int, b: int) -> None:
    low, high = sorted((a, b))
    order = [band for _lowest, band in PHQ9.bands]
    low_band = severity_of(Instrument.PHQ9, low)
    high_band = severity_of(Instrument.PHQ9, high)
    assert order.index(low_band) <= order.index(high_band)


@given(st.lists(st.integers(0, 3), min_size=7, max_size=7))
def test_gad7_total_is_the_sum(answers: list[int]) -> None:
    scored = score(Instrument.GAD7, answers)
    assert scored.total == sum(answers)
    assert scored.severity is severity_of(Instrument.GAD7, sum(answers))
