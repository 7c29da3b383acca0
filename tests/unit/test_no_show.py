"""When a clinic visit is marked a no-show automatically (server/clinics/no_show.py): at the
deadline after its slot ends, never once its patient checked in, never for a visit that is not a
booked, scheduled one; and the setting that turns it off."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from server.clinics.kinds import BookingStatus
from server.clinics.no_show import (
    CATCH_UP,
    NoShowFacts,
    NoShowSkip,
    no_show_deadline,
    no_show_skip,
    no_show_window,
    room_checked_in,
)
from server.settings import ConfigError, load_settings
from server.visits.status import VisitStatus
from signaling import rooms

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
SLOT = timedelta(minutes=20)
AFTER = timedelta(minutes=15)
DEADLINE = START + SLOT + AFTER
SECOND = timedelta(seconds=1)
DOCTOR, PATIENT, INTERPRETER = "user:1", "link:7", "link:8"

FACTS = NoShowFacts(
    booking_status=BookingStatus.BOOKED,
    visit_status=VisitStatus.SCHEDULED,
    start=START,
    duration=SLOT,
    room_state=None,
    patient_link_opened=False,
)


def room(*steps: str) -> str:
    """A visit room after ``steps``, as the room store saves it: the patient's ("join",
    "drop", "admit", "revoke"), the psychiatrist's alone ("open", "close") and an interpreter's
    ("guest": they wait in the lobby)."""
    state = rooms.RoomState.create(1, {DOCTOR: "Dr. Rivera"})
    state = rooms.invite(state, PATIENT, rooms.Kind.PATIENT, "Sam", START).state
    state = rooms.invite(state, INTERPRETER, rooms.Kind.GUEST, "Interpreter", START).state
    at = START
    for step in steps:
        at += timedelta(minutes=1)
        match step:
            case "join":
                state = rooms.join(state, "conn-patient", PATIENT, at).state
            case "drop":
                state = rooms.disconnect(state, "conn-patient", at).state
            case "admit":
                state = rooms.join(state, "conn-doctor", DOCTOR, at).state
                state = rooms.admit(state, DOCTOR, PATIENT, at).state
            case "revoke":
                state = rooms.revoke(state, PATIENT, at).state
            case "open":
                state = rooms.join(state, "conn-doctor", DOCTOR, at).state
            case "close":
                state = rooms.leave(state, "conn-doctor", at).state
            case "guest":
                state = rooms.join(state, "conn-guest", INTERPRETER, at).state
    return json.dumps(state.to_dict())


def test_the_deadline_is_the_setting_past_the_end_of_the_slot() -> None:
    assert no_show_deadline(START, SLOT, AFTER) == START + timedelta(minutes=35)


def test_a_visit_nobody_came_to_is_marked_exactly_at_the_deadline_and_not_before() -> None:
    assert no_show_skip(FACTS, DEADLINE - SECOND, AFTER) is NoShowSkip.NOT_YET
    assert no_show_skip(FACTS, DEADLINE, AFTER) is None
    assert no_show_skip(FACTS, DEADLINE + timedelta(hours=3), AFTER) is None


def test_the_slot_counted_is_the_visits_own_after_a_reschedule() -> None:
    # The moved booking's new visit starts an hour later: its own slot decides.
    moved = replace(FACTS, start=START + timedelta(hours=1))
    assert no_show_skip(moved, DEADLINE, AFTER) is NoShowSkip.NOT_YET
    assert no_show_skip(moved, DEADLINE + timedelta(hours=1), AFTER) is None


@pytest.mark.parametrize("booking", [BookingStatus.RESCHEDULED, BookingStatus.CANCELLED])
def test_a_booking_moved_or_cancelled_is_never_marked(booking: BookingStatus) -> None:
    # Its old visit was cancelled with it; the status alone would say so, but never rely on it.
    facts = replace(FACTS, booking_status=booking)
    assert no_show_skip(facts, DEADLINE, AFTER) is NoShowSkip.NOT_BOOKED


@pytest.mark.parametrize(
    "status",
    [
        VisitStatus.WAITING,  # checked in late and waiting still
        VisitStatus.IN_PROGRESS,
        VisitStatus.COMPLETED,
        VisitStatus.NO_SHOW,
        VisitStatus.CANCELLED,
    ],
)
def test_only_a_scheduled_visit_is_marked(status: VisitStatus) -> None:
    facts = replace(FACTS, visit_status=status)
    assert no_show_skip(facts, DEADLINE, AFTER) is NoShowSkip.NOT_SCHEDULED


def test_a_patient_who_opened_their_link_is_left_to_the_psychiatrist() -> None:
    facts = replace(FACTS, patient_link_opened=True)
    assert no_show_skip(facts, DEADLINE, AFTER) is NoShowSkip.LINK_OPENED


@pytest.mark.parametrize(
    ("steps", "checked_in"),
    [
        ((), False),  # the room exists (the psychiatrist looked in): nobody else came
        (("revoke",), False),  # a reminder replaced the link, unopened
        # The psychiatrist opened the room and waited for a patient who never came, and is
        # still there or gave up: their own attendance is no check-in.
        (("open",), False),
        (("open", "close"), False),
        (("guest",), False),  # the interpreter came, the patient did not
        (("open", "guest", "join"), True),
        (("join",), True),  # in the waiting room
        (("join", "drop"), True),  # away from it, within the reconnect grace
        (("join", "admit"), True),
        (("join", "admit", "drop"), True),  # the call started: it stays started
    ],
)
def test_the_room_says_whether_anyone_checked_in(steps: tuple[str, ...], checked_in: bool) -> None:
    state = room(*steps)
    assert room_checked_in(state) is checked_in
    skip = no_show_skip(replace(FACTS, room_state=state), DEADLINE, AFTER)
    assert skip is (NoShowSkip.CHECKED_IN if checked_in else None)


def test_a_room_never_opened_means_nobody_checked_in() -> None:
    assert room_checked_in(None) is False


def test_the_scan_window_ends_at_the_setting_before_now_and_reaches_back_a_day() -> None:
    assert no_show_window(DEADLINE, AFTER) == (DEADLINE - AFTER - CATCH_UP, DEADLINE - AFTER)
    # Every visit due now starts inside it (its slot lasts at least a moment).
    earliest, latest = no_show_window(DEADLINE, AFTER) or (None, None)
    assert earliest is not None and latest is not None and earliest < START <= latest


def test_zero_minutes_turns_automatic_no_shows_off() -> None:
    assert no_show_window(DEADLINE, timedelta(0)) is None


def test_the_setting_defaults_to_15_minutes_and_refuses_a_negative_value() -> None:
    assert load_settings(environ={}).clinic.auto_no_show_after_minutes == 15
    assert (
        load_settings(
            environ={"LIAISON_CLINIC__AUTO_NO_SHOW_AFTER_MINUTES": "0"}
        ).clinic.auto_no_show_after_minutes
        == 0
    )
    with pytest.raises(ConfigError, match="auto_no_show_after_minutes"):
        load_settings(environ={"LIAISON_CLINIC__AUTO_NO_SHOW_AFTER_MINUTES": "-1"})
