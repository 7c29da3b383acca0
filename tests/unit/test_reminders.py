"""When reminders and retries go out (server/clinics/reminders.py), what they say, and how a
message's delivery reads on the booking (server/outbox.py delivery_status)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.clinics.kinds import OutboxKind
from server.clinics.reminders import (
    ReminderSkip,
    reminder_skip,
    reminder_window,
    retry_delay,
    retry_due,
    visit_message,
)
from server.db.models import OutboxMessage
from server.outbox import MAX_ATTEMPTS, DeliveryStatus, delivery_status
from server.settings import ConfigError, load_settings
from server.visits.links import LinkState

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
LEAD = timedelta(minutes=60)
SECOND = timedelta(seconds=1)
BASE = timedelta(seconds=60)


def reminder_due(start: datetime, now: datetime, lead: timedelta) -> bool:
    window = reminder_window(now, lead)
    return window is not None and window[0] < start <= window[1]


def test_a_reminder_is_due_from_the_lead_time_until_the_visit_starts() -> None:
    assert not reminder_due(START, START - LEAD - SECOND, LEAD)
    assert reminder_due(START, START - LEAD, LEAD)
    assert reminder_due(START, START - SECOND, LEAD)
    assert not reminder_due(START, START, LEAD)
    assert not reminder_due(START, START + SECOND, LEAD)


def test_a_zero_lead_time_turns_reminders_off() -> None:
    assert reminder_window(START - SECOND, timedelta(0)) is None


def skip(
    last_message_at: datetime | None = START - timedelta(days=1),
    has_address: bool = True,
    link: LinkState | None = LinkState.ACTIVE,
) -> ReminderSkip | None:
    return reminder_skip(
        start=START, lead=LEAD, last_message_at=last_message_at, has_address=has_address, link=link
    )


def test_a_visit_with_an_unopened_link_and_an_address_gets_its_reminder() -> None:
    assert skip() is None
    assert skip(last_message_at=None) is None


def test_a_message_inside_the_lead_window_stands_for_the_reminder() -> None:
    assert skip(last_message_at=START - LEAD) is ReminderSkip.RECENT_MESSAGE
    assert skip(last_message_at=START - timedelta(minutes=10)) is ReminderSkip.RECENT_MESSAGE
    # A message just before the window (a resend earlier that day) does not.
    assert skip(last_message_at=START - LEAD - SECOND) is None


def test_no_reminder_without_an_address_or_an_unopened_link() -> None:
    assert skip(has_address=False) is ReminderSkip.NO_ADDRESS
    assert skip(link=LinkState.OPENED) is ReminderSkip.LINK_OPENED
    for state in (LinkState.LOCKED, LinkState.REVOKED, LinkState.EXPIRED, None):
        assert skip(link=state) is ReminderSkip.NO_LIVE_LINK


def test_the_recent_message_rule_comes_first() -> None:
    assert skip(last_message_at=START - SECOND, has_address=False, link=None) is (
        ReminderSkip.RECENT_MESSAGE
    )


@pytest.mark.parametrize(
    ("attempts", "delay"), [(0, BASE), (1, BASE), (2, 2 * BASE), (3, 4 * BASE), (4, 8 * BASE)]
)
def test_retries_back_off_exponentially(attempts: int, delay: timedelta) -> None:
    assert retry_delay(attempts, BASE) == delay


def due(attempts: int, last: datetime | None, now: datetime) -> bool:
    return retry_due(
        attempts=attempts,
        max_attempts=MAX_ATTEMPTS,
        created_at=START,
        last_attempt_at=last,
        now=now,
        base=BASE,
    )


def test_a_retry_is_due_once_its_backoff_since_the_last_attempt_is_over() -> None:
    last = START + timedelta(minutes=5)
    assert not due(3, last, last + 4 * BASE - SECOND)
    assert due(3, last, last + 4 * BASE)


def test_a_message_never_tried_is_picked_up_a_backoff_after_it_was_queued() -> None:
    assert not due(0, None, START + BASE - SECOND)
    assert due(0, None, START + BASE)


def test_no_retry_after_the_last_attempt() -> None:
    assert not due(MAX_ATTEMPTS, START, START + timedelta(days=1))


def test_a_reminder_says_it_replaces_the_earlier_link_and_what_to_do() -> None:
    url = "https://liaison.example.org/join#tok"
    subject, body = visit_message(
        OutboxKind.REMINDER, given_name="Sam", clinician="Dr. Rivera", start=START, url=url
    )
    assert subject == "Reminder: your video visit"
    assert body.startswith("Hello Sam,\n\nReminder: your video visit with Dr. Rivera")
    assert "Monday 02 March 2026 at 15:00 UTC" in body
    assert body.count(url) == 1
    assert "replaces any link" in body
    assert "camera, microphone and connection" in body  # the device check
    assert "waiting room" in body
    assert "If the link does not work, call the clinic" in body


def test_an_invitation_has_no_replacement_notice() -> None:
    subject, body = visit_message(
        OutboxKind.INVITATION, given_name="Sam", clinician="Dr. Rivera", start=START, url="u"
    )
    assert subject == "Your video visit"
    assert "Your video visit with Dr. Rivera" in body and "replaces" not in body


def message(**fields: object) -> OutboxMessage:
    values: dict[str, object] = {"to_address": "sam@example.org", "attempts": 1, "sent_at": None}
    return OutboxMessage(**(values | fields))


def test_delivery_reads_sent_pending_or_failed() -> None:
    assert delivery_status(message(sent_at=START)) is DeliveryStatus.SENT
    assert delivery_status(message()) is DeliveryStatus.PENDING
    assert delivery_status(message(attempts=0)) is DeliveryStatus.PENDING
    assert delivery_status(message(attempts=MAX_ATTEMPTS)) is DeliveryStatus.FAILED
    assert delivery_status(message(to_address=None)) is DeliveryStatus.FAILED


def test_the_retry_backoff_must_outlast_an_smtp_attempt() -> None:
    with pytest.raises(ConfigError, match="retry_base_s"):
        load_settings(environ={"LIAISON_OUTBOX__RETRY_BASE_S": "30"})  # smtp_timeout_s is 20
    assert load_settings(environ={}).outbox.reminder_lead_minutes == 60
