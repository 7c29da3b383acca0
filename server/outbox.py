"""Messages to patients: visit invitations and reminders carrying the join link.

A message is written to ``outbox_messages`` in the caller's transaction (:meth:`Outbox.add`),
then delivered after the commit (:meth:`Outbox.deliver`) by a :class:`Sender`: one ``.eml`` file
per message in a folder (the embedded default, which the demo reads), or SMTP. Delivery runs in
a thread, never on the event loop. Once a message is delivered the join link is scrubbed from the
stored body, so the database never keeps a usable link (only its hash, in ``visit_links``); one
that failed keeps it, with ``attempts`` and an error *code*, until :meth:`Outbox.deliver_pending`
or a resent invitation (a fresh link) replaces it.

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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.clinics.kinds import OutboxKind
from server.clock import Clock
from server.db.models import OutboxMessage
from server.settings import OutboxSettings

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
                smtp.starttls()
            if s.smtp_user:
                password = s.smtp_password_file.read_text().strip() if s.smtp_password_file else ""
                smtp.login(s.smtp_user, password)
            smtp.send_message(msg)


def sender_for(settings: OutboxSettings, var_dir: Path) -> Sender:
    if settings.mode == "smtp":
        return SmtpSender(settings)
    folder = settings.folder if settings.folder.is_absolute() else var_dir / settings.folder
    return FolderSender(folder, settings.smtp_from)


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

    async def deliver(self, message_id: int) -> OutboxMessage:
        """Send one message; once sent, the join URL is scrubbed from its stored body."""
        async with self._db() as db:
            message = await db.get(OutboxMessage, message_id)
            assert message is not None
            error: str | None = None
            if message.to_address is None:
                error = "no_address"
            else:
                mail = Mail(
                    message.id,
                    message.to_address,
                    message.subject,
                    message.body,
                    message.created_at,
                )
                try:
                    await self.sender.send(mail)
                except OutboxError as exc:
                    error = exc.code
            message.attempts += 1
            message.error = error
            if error is None:
                message.sent_at = self._clock()
                message.body = JOIN_URL.sub(SCRUBBED, message.body)
            await db.commit()
            await db.refresh(message)
        log.info(
            "outbox message delivered" if error is None else "outbox message not delivered",
            extra={"message_id": message_id, "error": error},
        )
        return message

    async def deliver_pending(self) -> list[OutboxMessage]:
        """Retry what is unsent (up to MAX_ATTEMPTS each), oldest first."""
        async with self._db() as db:
            ids: Sequence[int] = (
                (
                    await db.execute(
                        select(OutboxMessage.id)
                        .where(
                            OutboxMessage.sent_at.is_(None),
                            OutboxMessage.to_address.is_not(None),
                            OutboxMessage.attempts < MAX_ATTEMPTS,
                        )
                        .order_by(OutboxMessage.created_at, OutboxMessage.id)
                    )
                )
                .scalars()
                .all()
            )
        return [await self.deliver(i) for i in ids]
