"""The visit lifecycle the HTTP side may change."""

from __future__ import annotations

import pytest

from server.errors import Conflict
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
