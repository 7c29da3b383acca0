"""The rules a scheduled visit keeps, and the calendar arithmetic of a clinician's day. Pure."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from server.errors import ValidationFailed

MIN_DURATION_MINUTES = 10
MAX_DURATION_MINUTES = 240
# A visit may be scheduled to start "now": this far in the past is still accepted.
START_TOLERANCE = timedelta(minutes=5)
MAX_LEAD_TIME = timedelta(days=366)


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants a local calendar day starts and ends at (DST days included)."""
    start = datetime.combine(day, time(0), zone)
    end = datetime.combine(day + timedelta(days=1), time(0), zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def checked_start(start: datetime, now: datetime) -> datetime:
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValidationFailed(
            "Give the start time with its time zone (e.g. 2026-11-25T15:00:00Z).",
            code="start_time_zone_missing",
        )
    start = start.astimezone(UTC)
    if start < now - START_TOLERANCE:
        raise ValidationFailed("The start time has already passed.", code="start_in_past")
    if start > now + MAX_LEAD_TIME:
        raise ValidationFailed("Schedule visits at most a year ahead.", code="start_too_far")
    return start


def check_duration(minutes: int) -> None:
    if not MIN_DURATION_MINUTES <= minutes <= MAX_DURATION_MINUTES:
        raise ValidationFailed(
            f"A visit lasts {MIN_DURATION_MINUTES} to {MAX_DURATION_MINUTES} minutes.",
            code="invalid_duration",
        )
