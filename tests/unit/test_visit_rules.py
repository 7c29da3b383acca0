"""The rules a scheduled visit keeps: its start, its length, and a clinician's local day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from server.errors import ValidationFailed
from server.visits.rules import check_duration, checked_start, day_bounds

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "start",
    [
        NOW - timedelta(minutes=5),  # "now", a little late
        NOW + timedelta(days=366),
        datetime(2026, 1, 5, 4, 30, tzinfo=ZoneInfo("America/New_York")),  # 09:30 UTC
    ],
)
def test_a_start_is_accepted_and_given_in_utc(start: datetime) -> None:
    accepted = checked_start(start, NOW)
    assert accepted == start and accepted.tzinfo is UTC


@pytest.mark.parametrize(
    ("start", "code"),
    [
        (NOW - timedelta(minutes=5, seconds=1), "start_in_past"),
        (NOW + timedelta(days=366, seconds=1), "start_too_far"),
        (NOW.replace(tzinfo=None), "start_time_zone_missing"),
    ],
)
def test_a_start_is_refused(start: datetime, code: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        checked_start(start, NOW)
    assert refused.value.code == code


@pytest.mark.parametrize(("minutes", "ok"), [(9, False), (10, True), (240, True), (241, False)])
def test_a_visit_lasts_10_to_240_minutes(minutes: int, ok: bool) -> None:
    if ok:
        check_duration(minutes)
    else:
        with pytest.raises(ValidationFailed, match="10 to 240"):
            check_duration(minutes)


@pytest.mark.parametrize(
    ("day", "zone", "start", "end"),
    [
        (date(2026, 1, 5), "UTC", datetime(2026, 1, 5, 0), datetime(2026, 1, 6, 0)),
        (date(2026, 1, 5), "America/New_York", datetime(2026, 1, 5, 5), datetime(2026, 1, 6, 5)),
        # The day clocks go forward is 23 hours long; the day they go back, 25.
        (date(2026, 3, 8), "America/New_York", datetime(2026, 3, 8, 5), datetime(2026, 3, 9, 4)),
        (date(2026, 11, 1), "America/New_York", datetime(2026, 11, 1, 4), datetime(2026, 11, 2, 5)),
    ],
)
def test_a_local_day_in_utc(day: date, zone: str, start: datetime, end: datetime) -> None:
    assert day_bounds(day, ZoneInfo(zone)) == (start.replace(tzinfo=UTC), end.replace(tzinfo=UTC))
