"""Checking the formats of languages, states, phone numbers, addresses and birth dates."""

from __future__ import annotations

from datetime import date

import pytest

from server.record.demographics import (
    check_birth_date,
    needs_interpreter,
    normalise_address,
    normalise_language,
    normalise_phone,
    normalise_state,
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [("en", "en"), ("ES", "es"), ("es-mx", "es-MX"), ("zh_hant_TW", "zh-Hant-TW"), (" fr ", "fr")],
)
def test_it_writes_language_tags_in_their_usual_case(given: str, expected: str) -> None:
    assert normalise_language(given) == expected


@pytest.mark.parametrize("given", ["", "e", "english", "es--MX", "es-", "1a", "es-MX!"])
def test_it_refuses_what_is_not_a_language_tag(given: str) -> None:
    with pytest.raises(ValueError, match="language tag"):
        normalise_language(given)


@pytest.mark.parametrize(
    ("patient", "clinic", "needed"),
    [("es", "en", True), ("en-US", "en", False), ("es-MX", "es", False), ("pt-BR", "es", True)],
)
def test_an_interpreter_is_needed_only_for_another_language(
    patient: str, clinic: str, needed: bool
) -> None:
    assert needs_interpreter(patient, clinic) is needed


@pytest.mark.parametrize(("given", "expected"), [("ca", "CA"), (" NY ", "NY"), ("pr", "PR")])
def test_it_accepts_us_states_and_territories(given: str, expected: str) -> None:
    assert normalise_state(given) == expected


@pytest.mark.parametrize("given", ["", "XX", "California", "C"])
def test_it_refuses_what_is_not_a_state_code(given: str) -> None:
    with pytest.raises(ValueError, match="two-letter code"):
        normalise_state(given)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("415-555-0134", "415-555-0134"),
        ("+1 (415)  555 0134", "+1 (415) 555 0134"),
        ("+44 20 7946 0958", "+44 20 7946 0958"),
        ("4155550134", "4155550134"),
    ],
)
def test_it_keeps_a_phone_number_as_written(given: str, expected: str) -> None:
    assert normalise_phone(given) == expected


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("555-0134", "10 to 15 digits"),
        ("+1 415 555 0134 0000 00", "10 to 15 digits"),
        ("415-555-0134 ext 2", "only digits"),
        ("call me", "only digits"),
    ],
)
def test_it_refuses_what_cannot_be_dialled(given: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        normalise_phone(given)


def test_an_address_is_trimmed_and_must_say_something() -> None:
    assert normalise_address("  12 Main St,\n Albany  NY ") == "12 Main St, Albany NY"
    for empty in ("", "   ", "----", "ab"):
        with pytest.raises(ValueError, match="street address"):
            normalise_address(empty)


def test_a_birth_date_is_a_real_past_date() -> None:
    today = date(2026, 1, 5)
    assert check_birth_date(date(1988, 4, 12), today) == date(1988, 4, 12)
    assert check_birth_date(today, today) == today
    for wrong in (date(2026, 1, 6), date(1899, 12, 31)):
        with pytest.raises(ValueError, match="date of birth"):
            check_birth_date(wrong, today)
