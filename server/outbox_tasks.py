"""Every server process's outbox task: automatic visit reminders, and retries of deliveries that
failed (the rules are in server/clinics/reminders.py).

Every process runs it, and none needs to know of the others: a reminder is claimed by
compare-and-set on ``visits.reminder_queued_at`` in the transaction that queues it, and each
delivery attempt by compare-and-set on ``outbox_messages.attempts`` before it is sent, so one
process or ten send the same messages, once. Tests call :meth:`OutboxTasks.tick` rather than
wait for the loop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from server.audit import Action, AuditLog, Event
from server.audit.events import Actor as AuditActor
from server.clinics.kinds import BookingStatus, OutboxKind
from server.clinics.reminders import reminder_skip, reminder_window, visit_message
from server.clock import Clock
from server.db.models import (
    ClinicBooking,
    ClinicSession,
    OutboxMessage,
    Patient,
    User,
    Visit,
    VisitLink,
)
from server.outbox import Outbox
from server.periodic import attach_periodic, every
from server.settings import Settings
from server.state import SERVICES
from server.visits.links import LinkKind, facts_of, link_state
from server.visits.service import ReissuedLink, VisitService
from server.visits.status import VisitStatus

log = logging.getLogger("liaison.outbox")

# Visits looked at per scan; more wait for the next scan (a lead time is many scans long).
SCAN_BATCH = 100


@dataclass(frozen=True, slots=True)
class TickReport:
    reminders: list[OutboxMessage]  # queued by this process, after their first attempt
    retried: list[OutboxMessage]  # attempts this process made at earlier messages


@dataclass(frozen=True, slots=True)
class _Queued:
    message_id: int
    link: ReissuedLink


class OutboxTasks:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        settings: Settings,
        clock: Clock,
        outbox: Outbox,
        visits: VisitService,
        audit: AuditLog,
    ) -> None:
        self._db = db
        self._clock = clock
        self._outbox = outbox
        self._visits = visits
        self._audit = audit
        self._lead = timedelta(minutes=settings.outbox.reminder_lead_minutes)
        self._retry_base = timedelta(seconds=settings.outbox.retry_base_s)
        self._interval_s = settings.outbox.scan_interval_s

    async def run(self) -> None:
        await every(self._interval_s, self.tick, log=log, failed="outbox task failed")

    async def tick(self) -> TickReport:
        reminders = await self.queue_reminders()
        retried = await self._outbox.deliver_due(self._retry_base)
        return TickReport(reminders, retried)

    async def queue_reminders(self) -> list[OutboxMessage]:
        """Queue (and make the first attempt at) the reminder of every booked visit now within
        the lead time that has not had its reminder decided."""
        now = self._clock()
        window = reminder_window(now, self._lead)
        if window is None:
            return []
        after, until = window
        async with self._db() as db:
            due = (
                await db.scalars(
                    select(Visit.id)
                    .join(ClinicBooking, ClinicBooking.visit_id == Visit.id)
                    .where(
                        ClinicBooking.status == BookingStatus.BOOKED.value,
                        Visit.status == VisitStatus.SCHEDULED.value,
                        Visit.reminder_queued_at.is_(None),
                        Visit.scheduled_start > after,
                        Visit.scheduled_start <= until,
                    )
                    .order_by(Visit.scheduled_start, Visit.id)
                    .limit(SCAN_BATCH)
                )
            ).all()
        sent = []
        for visit_id in due:
            queued = await self._claim_and_queue(visit_id, now)
            if queued is None:
                continue
            # The room learns of the new link as it does for a resent invitation.
            await self._visits.announce_reissued(queued.link)
            sent.append(await self._outbox.deliver(queued.message_id))
        return sent

    async def _claim_and_queue(self, visit_id: int, now: datetime) -> _Queued | None:
        """Claim the visit's reminder; queue it unless a rule says none is needed. None when
        another process had claimed it, or none is sent."""
        async with self._db.begin() as db:
            conn = await db.connection()
            claimed = await conn.execute(
                update(Visit)
                .where(
                    Visit.id == visit_id,
                    Visit.reminder_queued_at.is_(None),
                    Visit.status == VisitStatus.SCHEDULED.value,
                )
                .values(reminder_queued_at=now)
            )
            if claimed.rowcount != 1:
                return None  # another process claimed it (or the visit just changed)
            psychiatrist = aliased(User)
            found = (
                await db.execute(
                    select(Visit, ClinicBooking, Patient, psychiatrist.display_name)
                    .join(ClinicBooking, ClinicBooking.visit_id == Visit.id)
                    .join(ClinicSession, ClinicSession.id == ClinicBooking.session_id)
                    .join(Patient, Patient.id == Visit.patient_id)
                    .join(psychiatrist, psychiatrist.id == ClinicSession.psychiatrist_id)
                    .where(Visit.id == visit_id)
                )
            ).one()
            visit, booking, patient, clinician = found
            link = (
                await db.execute(
                    select(VisitLink)
                    .where(
                        VisitLink.visit_id == visit_id,
                        VisitLink.kind == LinkKind.PATIENT.value,
                        VisitLink.revoked_at.is_(None),
                    )
                    .order_by(VisitLink.id.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            last_message_at = (
                await db.execute(
                    select(func.max(OutboxMessage.created_at)).where(
                        OutboxMessage.visit_id == visit_id
                    )
                )
            ).scalar_one_or_none()
            skip = reminder_skip(
                start=visit.scheduled_start,
                lead=self._lead,
                last_message_at=last_message_at,
                has_address=bool(patient.email),
                link=link_state(facts_of(link, visit.status), now) if link else None,
            )
            if skip is not None:
                log.info(
                    "visit reminder not needed",
                    extra={"visit_id": visit_id, "booking_id": booking.id, "reason": skip.value},
                )
                return None
            # Issued on behalf of whoever made the booking; the trail says the system did.
            reissued = await self._visits.reissue_patient_link_in(
                db, visit, patient, created_by=booking.created_by, now=now
            )
            fresh = reissued.issued.link
            subject, body = visit_message(
                OutboxKind.REMINDER,
                given_name=patient.given_name,
                clinician=clinician,
                start=visit.scheduled_start,
                url=reissued.issued.url,
            )
            message = await self._outbox.add(
                db,
                kind=OutboxKind.REMINDER,
                to=patient.email,
                subject=subject,
                body=body,
                visit_id=visit_id,
                created_by=None,
            )
            await self._audit.record_in(
                db,
                Event(
                    Action.VISIT_LINK_CREATE,
                    AuditActor.system(),
                    patient_id=patient.id,
                    target=f"link:{fresh.id}",
                    detail={
                        "kind": "patient",
                        "via": "reminder",
                        "revoked": [f"link:{i}" for i in reissued.revoked],
                    },
                ),
            )
        log.info(
            "visit reminder queued",
            extra={
                "visit_id": visit_id,
                "booking_id": booking.id,
                "message_id": message.id,
                "link_id": fresh.id,
            },
        )
        return _Queued(message.id, reissued)


OUTBOX_TASKS = web.AppKey("outbox_tasks", OutboxTasks)


def attach_outbox_tasks(app: web.Application) -> None:
    """Run the outbox task while the app runs (call after the services' context)."""

    def make(app: web.Application) -> OutboxTasks:
        svc = app[SERVICES]
        return OutboxTasks(
            svc.db, svc.settings, svc.clock, svc.clinics.outbox, svc.visits, svc.audit
        )

    attach_periodic(app, OUTBOX_TASKS, make)
