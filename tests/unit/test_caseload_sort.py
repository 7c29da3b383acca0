"""The caseload's server-side order (``GET /registry?sort=...``), which the caseload review walks
and which must match the registry page's own flags order: safety, then not improving, then
contact overdue, more flags before fewer, unflagged last, ties by name."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from server.clinics.caseload import CaseloadEntry, sort_caseload
from server.clinics.registry import Flag, Rules, assess
from server.db.models import Patient
from server.errors import ValidationFailed

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BASE = assess([], [], now=NOW, rules=Rules())
S, NI, OC = Flag.SAFETY, Flag.NOT_IMPROVING, Flag.OVERDUE_CONTACT


def entry(pid: int, family: str, *flags: Flag) -> CaseloadEntry:
    patient = Patient(id=pid, given_name="Pat", family_name=family)
    return CaseloadEntry(patient, replace(BASE, flags=flags), open_safety_flags=0, open_tasks=0)


def order(entries: list[CaseloadEntry], key: str = "flags") -> list[str]:
    return [e.patient.family_name for e in sort_caseload(entries, key)]


def test_not_improving_comes_before_overdue_contact_whatever_the_names() -> None:
    # Alphabetically the overdue patient would come first: the flag decides, not the name.
    entries = [entry(1, "Abbot", OC), entry(2, "Zeller", NI)]
    assert order(entries) == ["Zeller", "Abbot"]


def test_the_most_urgent_flag_first_then_more_flags_then_none() -> None:
    entries = [
        entry(1, "None"),
        entry(2, "Overdue", OC),
        entry(3, "LaggingAndOverdue", NI, OC),
        entry(4, "Lagging", NI),
        entry(5, "Safe", S),
        entry(6, "SafeAndOverdue", S, OC),
        entry(7, "Everything", S, NI, OC),
    ]
    assert order(entries) == [
        "Everything",
        "SafeAndOverdue",
        "Safe",
        "LaggingAndOverdue",
        "Lagging",
        "Overdue",
        "None",
    ]


def test_ties_go_by_name_ignoring_case() -> None:
    entries = [entry(1, "mills", NI), entry(2, "Lane", NI), entry(3, "Kent", NI)]
    assert order(entries) == ["Kent", "Lane", "mills"]
    assert order(entries, "name") == ["Kent", "Lane", "mills"]


def test_an_unknown_sort_is_refused() -> None:
    with pytest.raises(ValidationFailed) as refused:
        sort_caseload([entry(1, "Any")], "flagz")
    assert refused.value.code == "invalid_sort"
