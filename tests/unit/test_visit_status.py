"""The visit lifecycle the HTTP side may change, and calendar days across time zones."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from server.errors import Conflict
from server.visits.service import day_bounds
from server.visits.status import VisitStatus, check_cancel, check_no_show, closed_error


@pytest.mark.parametrize(
    ("status", "cancel", "no_show"),
    [
        (VisitStatus.SCHEDULED, None, None),
        (VisitStatus.WAITING, None, "participant_waiting"),
        (VisitStatus.IN_PROGRESS, "visit_started", "visit_started"),
        (VisitStatus.COMPLETED, "visit_closed", "visit_closed"),
        (VisitStatus.NO_SHOW, "visit_closed", "visit_closed"),
        (VisitStatus.CANCELLED, "visit_closed", "visit_closed"),
    ],
)
def test_what_a_clinician_may_close_from_each_status(
    status: VisitStatus, cancel: str | None, no_show: str | None
) -> None:
    for check, code in ((check_cancel, cancel), (check_no_show, no_show)):
        if code is None:
            check(status)
        else:
            with pytest.raises(Conflict) as refused:
                check(status)
            assert refused.value.code == code


def test_only_the_three_ends_are_terminal() -> None:
    assert {s for s in VisitStatus if s.is_terminal} == {
        VisitStatus.COMPLETED,
        VisitStatus.NO_SHOW,
        VisitStatus.CANCELLED,
    }
    assert closed_error(VisitStatus.CANCELLED).code == "visit_cancelled"
    assert closed_error(VisitStatus.NO_SHOW).code == "visit_ended"


def test_the_room_and_the_record_name_the_statuses_alike() -> None:
    rooms = pytest.importorskip("signaling.rooms")
    assert {s.value for s in rooms.VisitStatus} == {s.value for s in VisitStatus}


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
