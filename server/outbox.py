"""Messages to patients: visit invitations and reminders carrying the join link.

A message is written to ``outbox_messages`` in the caller's transaction (:meth:`Outbox.add`),
then delivered after the commit (:meth:`Outbox.deliver`) by a :class:`Sender`: one ``.eml`` file
per message in a folder (the embedded default, which the demo reads), or SMTP. Delivery runs in
a thread, never on the event loop. Once a message is delivered the join link is scrubbed from the
stored body, so the database never keeps a usable link (only its hash, in ``visit_links``); one
that failed keeps it, with ``attempts`` and an error *code*, until a retry
(:meth:`Outbox.deliver_due`, run by every server process's outbox task with exponential backoff)
sends it or a resent invitation (a fresh link) replaces it. Each attempt is claimed by
compare-and-set on ``attempts`` before anything is sent, so two processes never send the same
attempt; after ``MAX_ATTEMPTS`` failures the message stays unsent, shown as failed.

Errors::

    OutboxError(code)    no_address, smtp_failed, folder_failed  (server-side only: delivery
                         failures are recorded on the message, never raised to the client)
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from server.clinics.kinds import OutboxKind
from server.clinics.reminders import retry_delay, retry_due
from server.clock import Clock
from server.db.models import OutboxMessage, Visit
from server.settings import OutboxSettings
from server.visits.rules import MAX_DURATION_MINUTES
from server.visits.status import TERMINAL

log = logging.getLogger("liaison.outbox")

SCRUBBED = "[join link sent; ask the clinic to resend the invitation]"
MAX_ATTEMPTS = 5
# A join URL (server/visits/links.py join_url): the token is in the fragment.
JOIN_URL = re.compile(r"\S+/join#\S+")


class OutboxError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True, slots=True)
class Mail:
    id: int
    to: str
    subject: str
    body: str
    at: datetime


class Sender(Protocol):
    async def send(self, mail: Mail) -> None: ...


def _email(mail: Mail, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = mail.to
    msg["Subject"] = mail.subject
    msg["Date"] = format_datetime(mail.at)
    msg["Message-ID"] = make_msgid(idstring=f"outbox-{mail.id}")
    msg.set_content(mail.body)
    return msg


class FolderSender:
    """One RFC 5322 file per message: ``<folder>/<UTC time>-<id>.eml`` (mode 0600)."""

    def __init__(self, folder: Path, sender: str) -> None:
        self.folder = folder
        self._from = sender

    async def send(self, mail: Mail) -> None:
        data = bytes(_email(mail, self._from))
        try:
            await asyncio.to_thread(self._write, mail, data)
        except OSError as exc:
            log.error("outbox folder write failed", extra={"error": exc.strerror})
            raise OutboxError("folder_failed") from None

    def path_for(self, mail: Mail) -> Path:
        return self.folder / f"{mail.at.strftime('%Y%m%dT%H%M%SZ')}-{mail.id:06d}.eml"

    def _write(self, mail: Mail, data: bytes) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = self.path_for(mail)
        tmp = target.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        tmp.replace(target)  # readers never see half a message


class SmtpSender:
    """smtplib in a worker thread: STARTTLS, then login when a user is configured."""

    def __init__(self, settings: OutboxSettings) -> None:
        self._s = settings

    async def send(self, mail: Mail) -> None:
        msg = _email(mail, self._s.smtp_from)
        try:
            await asyncio.to_thread(self._send, msg)
        except (OSError, smtplib.SMTPException) as exc:
            log.error("smtp delivery failed", extra={"error": type(exc).__name__})
            raise OutboxError("smtp_failed") from None

    def _send(self, msg: EmailMessage) -> None:
        s = self._s
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_s) as smtp:
            if s.smtp_starttls:
                # smtplib's own default context checks neither the certificate nor the host
                # name: anyone on the path could read the password and the join links.
                smtp.starttls(context=ssl.create_default_context())
            if s.smtp_user:
                password = s.smtp_password_file.read_text().strip() if s.smtp_password_file else ""
                smtp.login(s.smtp_user, password)
            smtp.send_message(msg)


def outbox_folder(settings: OutboxSettings, var_dir: Path) -> Path:
    """Where the folder sender writes (a relative ``outbox.folder`` is under the var dir)."""
    return settings.folder if settings.folder.is_absolute() else var_dir / settings.folder


def sender_for(settings: OutboxSettings, var_dir: Path) -> Sender:
    if settings.mode == "smtp":
        return SmtpSender(settings)
    return FolderSender(outbox_folder(settings, var_dir), settings.smtp_from)


class DeliveryStatus(StrEnum):
    SENT = "sent"
    PENDING = "pending"  # not sent yet; an attempt is due or under way
    FAILED = "failed"  # every attempt failed: the clinic resends the invitation


def delivery_status(message: OutboxMessage) -> DeliveryStatus:
    if message.sent_at is not None:
        return DeliveryStatus.SENT
    if message.attempts >= MAX_ATTEMPTS or message.to_address is None:
        return DeliveryStatus.FAILED
    return DeliveryStatus.PENDING


class Outbox:
    def __init__(self, db: async_sessionmaker[AsyncSession], sender: Sender, clock: Clock) -> None:
        self._db = db
        self.sender = sender
        self._clock = clock

    async def add(
        self,
        db: AsyncSession,
        *,
        kind: OutboxKind,
        to: str | None,
        subject: str,
        body: str,
        visit_id: int | None,
        created_by: int | None,
    ) -> OutboxMessage:
        """Queue a message in the caller's transaction; deliver it after the commit."""
        message = OutboxMessage(
            to_address=to,
            subject=subject,
            body=body,
            kind=kind.value,
            visit_id=visit_id,
            created_by=created_by,
            created_at=self._clock(),
            attempts=0,
        )
        db.add(message)
        await db.flush()
        return message

    async def deliver(self, message_id: int, *, attempts: int | None = None) -> OutboxMessage:
        """Make the next attempt at one message; once sent, its join URL is scrubbed.

        The attempt is claimed first, by compare-and-set on ``attempts`` (``attempts``: the count
        the caller read, by default the current one), so of several processes trying the same
        message at once exactly one sends it; the others return it as stored. A message that
        is sent, or out of attempts, is returned as it is.
        """
        now = self._clock()
        if attempts is None:
            stored = await self._stored(message_id)
            if stored.attempts >= MAX_ATTEMPTS:
                return stored
            seen = stored.attempts
        elif attempts >= MAX_ATTEMPTS:
            return await self._stored(message_id)
        else:
            seen = attempts
        async with self._db.begin() as db:
            # The write comes first: on SQLite it takes the write lock before anything is read
            # in this transaction (a read first could not wait for a concurrent writer).
            conn = await db.connection()
            done = await conn.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == message_id,
                    OutboxMessage.attempts == seen,
                    OutboxMessage.sent_at.is_(None),
                )
                .values(attempts=seen + 1, last_attempt_at=now)
            )
            claimed = done.rowcount == 1
            message = await db.get(OutboxMessage, message_id)
            assert message is not None
            mail = Mail(
                message.id,
                message.to_address or "",
                message.subject,
                message.body,
                message.created_at,
            )
            kind = message.kind
        if not claimed:
            return message  # another process has this attempt, or the message went already
        attempt = seen + 1
        error: str | None = None
        if not mail.to:
            error = "no_address"
        else:
            try:
                await self.sender.send(mail)
            except OutboxError as exc:
                error = exc.code
        outcome: dict[str, object] = {"error": error}
        if error is None:
            outcome.update(sent_at=self._clock(), body=JOIN_URL.sub(SCRUBBED, mail.body))
        async with self._db.begin() as db:
            await db.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message_id, OutboxMessage.attempts == attempt)
                .values(**outcome)
            )
        extra = {"message_id": message_id, "kind": kind, "attempt": attempt, "error": error}
        if error is None:
            log.info("outbox message delivered", extra=extra)
        elif attempt >= MAX_ATTEMPTS:
            log.warning("outbox message given up", extra=extra)
        else:
            log.info("outbox message not delivered", extra=extra)
        return await self._stored(message_id)

    async def deliver_due(self, retry_base: timedelta, limit: int = 100) -> list[OutboxMessage]:
        """Retry what is unsent and due by its backoff (server/clinics/reminders.py), oldest
        first. Only the newest message of a visit that is still ahead is retried: an older one
        holds a link its successor replaced."""
        now = self._clock()
        newer = aliased(OutboxMessage)
        # The backoff is applied in the query itself (one cutoff per attempt count), and visits
        # long over are left out: otherwise messages still waiting out their backoff, or for
        # visits nobody closed, could fill the limit and hold back those that are due.
        last = OutboxMessage.last_attempt_at
        due_by_backoff = or_(
            *(
                and_(
                    OutboxMessage.attempts == attempts,
                    or_(last <= cutoff, and_(last.is_(None), OutboxMessage.created_at <= cutoff)),
                )
                for attempts in range(MAX_ATTEMPTS)
                for cutoff in [now - retry_delay(attempts, retry_base)]
            )
        )
        async with self._db() as db:
            rows = (
                await db.execute(
                    select(
                        OutboxMessage.id,
                        OutboxMessage.attempts,
                        OutboxMessage.created_at,
                        OutboxMessage.last_attempt_at,
                        Visit.scheduled_start,
                        Visit.duration_minutes,
                    )
                    .join(Visit, Visit.id == OutboxMessage.visit_id)
                    .where(
                        OutboxMessage.sent_at.is_(None),
                        OutboxMessage.to_address.is_not(None),
                        OutboxMessage.attempts < MAX_ATTEMPTS,
                        due_by_backoff,
                        Visit.status.not_in([s.value for s in TERMINAL]),
                        Visit.scheduled_start > now - timedelta(minutes=MAX_DURATION_MINUTES),
                        ~exists().where(
                            newer.visit_id == OutboxMessage.visit_id, newer.id > OutboxMessage.id
                        ),
                    )
                    .order_by(OutboxMessage.created_at, OutboxMessage.id)
                    .limit(limit)
                )
            ).all()
        due = [
            (message_id, attempts)
            for message_id, attempts, created_at, last_attempt_at, start, minutes in rows
            if now < start + timedelta(minutes=minutes)
            and retry_due(
                attempts=attempts,
                max_attempts=MAX_ATTEMPTS,
                created_at=created_at,
                last_attempt_at=last_attempt_at,
                now=now,
                base=retry_base,
            )
        ]
        return [await self.deliver(i, attempts=a) for i, a in due]

    async def _stored(self, message_id: int) -> OutboxMessage:
        async with self._db() as db:
            message = await db.get(OutboxMessage, message_id)
            assert message is not None
            return message
