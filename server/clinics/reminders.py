"""When messages to patients go out, and what they say. Pure: the outbox task
(server/outbox_tasks.py) and the clinic service apply these rules to what they read.

The automatic reminder. A booked clinic visit gets one reminder, with a fresh join link (the
earlier link stops working), ``outbox.reminder_lead_minutes`` before it starts. Whichever
server process claims ``visits.reminder_queued_at`` (compare-and-set from NULL) decides, in the
same transaction, whether to queue it; the claim also stands when it decides not to, so each
visit is decided once. No reminder is sent when:

- the patient already got a message with a fresh link inside the lead window: an invitation for
  a visit booked (or rescheduled) less than the lead time ahead, or a manual resend (invitation
  or reminder) inside the window. A manual resend *before* the window does not count: the
  reminder still goes, and its link replaces the resent one. A resend *after* the reminder is
  simply one more message. Either way the newest message holds the working link;
- the patient has no email address (a fresh link nobody receives would only break the one the
  clinic gave them some other way);
- the patient's link was already opened (they are set up on a device, perhaps waiting: a new
  link would put them out), or it is locked, revoked or expired (the clinic decides; resending
  the invitation issues a new one).

Retries. A message whose delivery failed is tried again ``retry_base_s`` after its last attempt,
then twice as long after each further failure, up to ``MAX_ATTEMPTS`` attempts in all; one
never tried (its process stopped between the commit and the delivery) is picked up
``retry_base_s`` after it was queued.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from server.clinics.kinds import OutboxKind
from server.visits.links import LinkState


class ReminderSkip(StrEnum):
    """Why a visit whose reminder was claimed got none (a log field, never shown to patients)."""

    RECENT_MESSAGE = "recent_message"
    NO_ADDRESS = "no_address"
    LINK_OPENED = "link_opened"
    NO_LIVE_LINK = "no_live_link"


def reminder_window(now: datetime, lead: timedelta) -> tuple[datetime, datetime] | None:
    """``(after, until)``: a visit is due its reminder when it starts after ``after`` and no
    later than ``until``, that is within ``lead`` from now and not yet started. None when the
    lead is zero: reminders are off. The outbox task selects by it in SQL."""
    if lead <= timedelta(0):
        return None
    return now, now + lead


def reminder_skip(
    *,
    start: datetime,
    lead: timedelta,
    last_message_at: datetime | None,
    has_address: bool,
    link: LinkState | None,
) -> ReminderSkip | None:
    """Why a visit due for its reminder should get none, or None to send it (module doc)."""
    if last_message_at is not None and last_message_at >= start - lead:
        return ReminderSkip.RECENT_MESSAGE
    if not has_address:
        return ReminderSkip.NO_ADDRESS
    if link is LinkState.OPENED:
        return ReminderSkip.LINK_OPENED
    if link is not LinkState.ACTIVE:
        return ReminderSkip.NO_LIVE_LINK
    return None


def retry_delay(attempts: int, base: timedelta) -> timedelta:
    """How long after the last attempt (or after queueing, before any) the next one is due."""
    if attempts <= 1:
        return base
    return base * (1 << (attempts - 1))


def retry_due(
    *,
    attempts: int,
    max_attempts: int,
    created_at: datetime,
    last_attempt_at: datetime | None,
    now: datetime,
    base: timedelta,
) -> bool:
    if attempts >= max_attempts:
        return False
    since = last_attempt_at if last_attempt_at is not None else created_at
    return now >= since + retry_delay(attempts, base)


def visit_message(
    kind: OutboxKind, *, given_name: str, clinician: str, start: datetime, url: str
) -> tuple[str, str]:
    """Subject and body of an invitation or reminder. It names the patient's given name, the
    clinician and the time, no more: mail passes through servers the clinic does not run."""
    when = start.strftime("%A %d %B %Y at %H:%M UTC")
    reminder = kind is OutboxKind.REMINDER
    opening = "Reminder: y" if reminder else "Y"
    replaces = "This link replaces any link we sent you before.\n\n" if reminder else ""
    body = (
        f"Hello {given_name},\n\n"
        f"{opening}our video visit with {clinician} is on {when}.\n\n"
        f"Join from this link (it works once, on one device):\n{url}\n\n"
        f"{replaces}"
        "Use a phone, tablet or computer with a camera and a microphone, somewhere quiet and "
        "private. Open the link a few minutes early: you will confirm your date of birth, agree "
        "to the video visit, say where you are and check your camera, microphone and "
        "connection; then you wait in the waiting room until your clinician lets you in. While "
        "you wait you can fill in two short questionnaires.\n\n"
        "If the link does not work, call the clinic and ask for a new one.\n"
    )
    subject = "Reminder: your video visit" if reminder else "Your video visit"
    return subject, body
