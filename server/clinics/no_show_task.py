"""Every server process's no-show task: marks booked clinic visits nobody turned up to, by the
rule in server/clinics/no_show.py.

Every process runs it, and none needs to know of the others. A visit is marked by one UPDATE
that restates the rule's changing facts (still scheduled, still booked, the room as the rule
read it, no patient link opened) as a compare-and-set, so of two processes one marks it and the
other changes nothing; a patient arriving meanwhile makes the UPDATE miss too. The marking
bumps ``room_version`` as a clinician's does (server/visits/service.py), so a room save racing
it fails and reloads a closed visit. It is audited like a clinician's marking, as ``system``,
in the same transaction, and the live side hears of it through the same visit hook, which
closes the room and refreshes the session's board. Tests call :meth:`NoShowTask.tick`.

A scan reads the window in pages, in (start, id) order, each page after the last row of the one
before, until a page comes back short. The rule's other facts are not all in SQL (whether the
patient checked in is in the room's JSON; whether the slot has ended needs start + duration,
interval arithmetic SQLite and PostgreSQL spell differently), so a page may hold only visits the
rule skips: a patient who checked in and left, a long slot not over yet. Those stay in the
window for a day and must never hide a later visit that is due behind them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from aiohttp import web
from sqlalchemy import ColumnElement, Row, and_, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.audit import Action, Actor, AuditLog, Event
from server.clinics.kinds import BookingStatus
from server.clinics.no_show import NoShowFacts, no_show_skip, no_show_window
from server.clock import Clock
from server.db.models import ClinicBooking, Visit, VisitLink
from server.periodic import attach_periodic, every
from server.settings import Settings
from server.state import SERVICES
from server.visits.events import VisitEvents
from server.visits.links import LinkKind
from server.visits.status import VisitStatus

log = logging.getLogger("liaison.clinics")

# Visits read per page of a scan.
SCAN_BATCH = 100
# The audit event's reason: the marking was the rule's, not a person's.
REASON = "not_checked_in"


def _booked() -> ColumnElement[bool]:
    return exists().where(
        ClinicBooking.visit_id == Visit.id, ClinicBooking.status == BookingStatus.BOOKED.value
    )


def _patient_link_opened() -> ColumnElement[bool]:
    return exists().where(
        VisitLink.visit_id == Visit.id,
        VisitLink.kind == LinkKind.PATIENT.value,
        VisitLink.used_at.is_not(None),
    )


class NoShowTask:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        settings: Settings,
        clock: Clock,
        audit: AuditLog,
        events: VisitEvents,
        *,
        batch: int = SCAN_BATCH,
    ) -> None:
        if batch < 1:
            raise ValueError("a scan reads at least one visit per page")
        self._db = db
        self._batch = batch
        self._clock = clock
        self._audit = audit
        self._events = events
        self._after = timedelta(minutes=settings.clinic.auto_no_show_after_minutes)
        self._interval_s = settings.outbox.scan_interval_s

    async def run(self) -> None:
        await every(self._interval_s, self.tick, log=log, failed="no-show task failed")

    async def tick(self) -> list[int]:
        """Mark every visit due; returns the ids of those this process marked."""
        now = self._clock()
        window = no_show_window(now, self._after)
        if window is None:
            return []
        earliest, latest = window
        marked: list[int] = []
        after: tuple[datetime, int] | None = None
        while True:
            rows = await self._page(earliest, latest, after)
            for visit_id, start, minutes, room_state, room_version in rows:
                facts = NoShowFacts(
                    booking_status=BookingStatus.BOOKED,
                    visit_status=VisitStatus.SCHEDULED,
                    start=start,
                    duration=timedelta(minutes=minutes),
                    room_state=room_state,
                    patient_link_opened=False,
                )
                if no_show_skip(facts, now, self._after) is not None:
                    continue
                if await self._mark(visit_id, room_version):
                    marked.append(visit_id)
            if len(rows) < self._batch:
                return marked
            after = (rows[-1].scheduled_start, rows[-1].id)

    async def _page(
        self, earliest: datetime, latest: datetime, after: tuple[datetime, int] | None
    ) -> Sequence[Row[int, datetime, int, str | None, int]]:
        """The next page of visits in the window, after ``after`` (start, id) if given."""
        query = (
            # The rule's facts that SQL can check narrow the scan; the rule decides.
            select(
                Visit.id,
                Visit.scheduled_start,
                Visit.duration_minutes,
                Visit.room_state,
                Visit.room_version,
            )
            .where(
                Visit.status == VisitStatus.SCHEDULED.value,
                Visit.scheduled_start > earliest,
                Visit.scheduled_start <= latest,
                _booked(),
                ~_patient_link_opened(),
            )
            .order_by(Visit.scheduled_start, Visit.id)
            .limit(self._batch)
        )
        if after is not None:
            start, visit_id = after
            query = query.where(
                or_(
                    Visit.scheduled_start > start,
                    and_(Visit.scheduled_start == start, Visit.id > visit_id),
                )
            )
        async with self._db() as db:
            return (await db.execute(query)).all()

    async def _mark(self, visit_id: int, room_version: int) -> bool:
        """Mark the visit unless anything the rule read has changed; True if this did."""
        async with self._db.begin() as db:
            patient_id = (
                await db.execute(
                    update(Visit)
                    .where(
                        Visit.id == visit_id,
                        Visit.status == VisitStatus.SCHEDULED.value,
                        Visit.room_version == room_version,
                        _booked(),
                        ~_patient_link_opened(),
                    )
                    .values(status=VisitStatus.NO_SHOW.value, room_version=room_version + 1)
                    .returning(Visit.patient_id)
                    .execution_options(synchronize_session=False)
                )
            ).scalar_one_or_none()
            if patient_id is None:
                return False  # another process marked it, or the visit just changed
            await self._audit.record_in(
                db,
                Event(
                    Action.RECORD_WRITE,
                    Actor.system(),
                    patient_id=patient_id,
                    target=f"visit:{visit_id}",
                    detail={
                        "status": VisitStatus.NO_SHOW.value,
                        "reason": REASON,
                        "after_minutes": int(self._after.total_seconds() // 60),
                    },
                ),
            )
        log.info("visit marked a no-show", extra={"visit_id": visit_id, "reason": REASON})
        await self._events.closed(visit_id, VisitStatus.NO_SHOW)
        return True


NO_SHOW_TASK = web.AppKey("no_show_task", NoShowTask)


def attach_no_show_task(app: web.Application) -> None:
    """Run the no-show task while the app runs (call after the services' context)."""

    def make(app: web.Application) -> NoShowTask:
        svc = app[SERVICES]
        return NoShowTask(svc.db, svc.settings, svc.clock, svc.audit, svc.visit_events)

    attach_periodic(app, NO_SHOW_TASK, make)
