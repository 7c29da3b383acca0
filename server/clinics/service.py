"""Remote clinics: sessions, bookings (each a video visit, through VisitService), invitations
through the outbox, the live board and "running late" notices.

Staff (care managers, admins) create sessions for a psychiatrist and book patients into slots;
booking calls :meth:`VisitService.schedule`, which checks the record's access rule (the booker
and the psychiatrist on the patient's care team, or an admin booking) and issues the patient's
join link; the link goes straight into an invitation in the outbox. The board is for the
session's psychiatrist (and care managers, for the patients on their care teams); admins see no
clinical information, so no board.

Errors (server.errors): NotFound ``clinic_session_not_found``, ``booking_not_found``;
Forbidden ``role_forbidden``, ``not_your_clinic``; ValidationFailed ``not_a_psychiatrist``,
``slot_outside_session``, ``slot_misaligned``, ``session_too_long``; Conflict ``slot_taken``,
``booking_not_active``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.audit import Action, AuditLog, Event
from server.auth.roles import Role
from server.clinics.board import BoardStatus, Live, live_status
from server.clinics.events import ClinicEvents
from server.clinics.kinds import BookingStatus, OutboxKind
from server.clinics.reminders import visit_message
from server.clock import Clock
from server.db.models import (
    CareTeamMember,
    ClinicBooking,
    ClinicSession,
    OutboxMessage,
    Patient,
    SafetyFlag,
    Screening,
    User,
    Visit,
)
from server.errors import Conflict, Forbidden, LiaisonError, NotFound, ValidationFailed
from server.outbox import Outbox
from server.record.access import Actor
from server.record.patients import audit_actor
from server.record.screening_service import EnteredBy, ScreeningService
from server.record.screenings import Instrument
from server.visits.service import IssuedLink, NewVisit, VisitService

log = logging.getLogger("liaison.clinics")

STAFF = frozenset({Role.CARE_MANAGER, Role.ADMIN})
MAX_SESSION = timedelta(hours=12)
# Screenings this long before the session starts count as "pre-visit".
PRE_VISIT_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class BookingView:
    booking: ClinicBooking
    patient: Patient
    invitation: OutboxMessage | None


@dataclass(frozen=True, slots=True)
class BoardRow:
    booking: ClinicBooking
    patient: Patient
    live: Live
    screenings: list[Screening]  # the latest pre-visit PHQ-9 and GAD-7, when there are any
    open_flags: list[SafetyFlag]
    late_minutes: int  # minutes past the slot's start while not yet in the visit


@dataclass(frozen=True, slots=True)
class SessionView:
    session: ClinicSession
    psychiatrist: User
    slots: list[datetime]
    bookings: list[BookingView]


def slots_of(session: ClinicSession) -> list[datetime]:
    step = timedelta(minutes=session.slot_minutes)
    out, at = [], session.starts_at
    while at + step <= session.ends_at:
        out.append(at)
        at += step
    return out


def _event(who: Actor, target: str, patient_id: int | None = None, **detail: str | int) -> Event:
    return Event(
        Action.RECORD_WRITE, audit_actor(who), patient_id=patient_id, target=target, detail=detail
    )


def _require_staff(who: Actor) -> None:
    if who.role not in STAFF:
        raise Forbidden("Only care managers and administrators do this.", code="role_forbidden")


class ClinicService:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        clock: Clock,
        audit: AuditLog,
        visits: VisitService,
        screenings: ScreeningService,
        outbox: Outbox,
        events: ClinicEvents,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._visits = visits
        self._screenings = screenings
        self.outbox = outbox
        self.events = events

    # --- sessions -----------------------------------------------------------------------------

    async def create_session(
        self,
        who: Actor,
        *,
        psychiatrist_id: int,
        title: str,
        starts_at: datetime,
        ends_at: datetime,
        slot_minutes: int,
    ) -> SessionView:
        _require_staff(who)
        starts_at, ends_at = starts_at.astimezone(UTC), ends_at.astimezone(UTC)
        if ends_at - starts_at < timedelta(minutes=slot_minutes):
            raise ValidationFailed("The session must hold at least one slot.", code="no_slots")
        if ends_at - starts_at > MAX_SESSION:
            raise ValidationFailed("A session lasts at most 12 hours.", code="session_too_long")
        now = self._clock()
        async with self._db.begin() as db:
            psychiatrist = await db.get(User, psychiatrist_id)
            if (
                psychiatrist is None
                or psychiatrist.role != Role.PSYCHIATRIST.value
                or psychiatrist.disabled_at is not None
            ):
                raise ValidationFailed(
                    "Choose an active psychiatrist's account.", code="not_a_psychiatrist"
                )
            session = ClinicSession(
                psychiatrist_id=psychiatrist_id,
                title=title,
                starts_at=starts_at,
                ends_at=ends_at,
                slot_minutes=slot_minutes,
                created_by=who.user_id,
                created_at=now,
            )
            db.add(session)
            await db.flush()
            await self._audit.record_in(db, _event(who, f"clinic_session:{session.id}"))
        return SessionView(session, psychiatrist, slots_of(session), [])

    async def psychiatrists(self, who: Actor) -> list[User]:
        """Active psychiatrists' accounts, to choose whose session staff are creating."""
        _require_staff(who)
        stmt = (
            select(User)
            .where(User.role == Role.PSYCHIATRIST.value, User.disabled_at.is_(None))
            .order_by(User.display_name, User.id)
        )
        async with self._db() as db:
            return list((await db.execute(stmt)).scalars())

    async def sessions(
        self, who: Actor, start: datetime | None, end: datetime | None
    ) -> list[ClinicSession]:
        """Sessions overlapping [start, end): a psychiatrist's own, or everyone's for staff."""
        stmt = select(ClinicSession).order_by(ClinicSession.starts_at, ClinicSession.id)
        if start is not None:
            stmt = stmt.where(ClinicSession.ends_at > start)
        if end is not None:
            stmt = stmt.where(ClinicSession.starts_at < end)
        if who.role is Role.PSYCHIATRIST:
            stmt = stmt.where(ClinicSession.psychiatrist_id == who.user_id)
        elif who.role not in STAFF:
            raise Forbidden("Your role has no clinic sessions.", code="role_forbidden")
        async with self._db() as db:
            return list((await db.execute(stmt)).scalars())

    async def session(self, who: Actor, session_id: int) -> SessionView:
        async with self._db() as db:
            session = await self._session_for(db, who, session_id)
            psychiatrist = await db.get(User, session.psychiatrist_id)
            assert psychiatrist is not None
            bookings = await self._booking_views(db, session_id, who)
        return SessionView(session, psychiatrist, slots_of(session), bookings)

    # --- bookings -----------------------------------------------------------------------------

    async def book(
        self, who: Actor, session_id: int, patient_id: int, slot_start: datetime
    ) -> BookingView:
        """Book a patient into a free slot: a video visit with the session's psychiatrist, and
        an invitation with the join link in the outbox."""
        _require_staff(who)
        async with self._db() as db:
            session = await self._get_session(db, session_id)
        slot_start = self._checked_slot(session, slot_start)
        await self._check_free(session_id, slot_start)
        view, issued = await self._visits.schedule(
            who,
            NewVisit(
                patient_id=patient_id,
                scheduled_start=slot_start,
                duration_minutes=session.slot_minutes,
                clinician_ids=[session.psychiatrist_id],
            ),
        )
        now = self._clock()
        try:
            async with self._db.begin() as db:
                # Serialise bookings of one session (a row lock on PostgreSQL; SQLite
                # serialises writes anyway), then check the slot again.
                await db.execute(
                    select(ClinicSession.id).where(ClinicSession.id == session_id).with_for_update()
                )
                await self._check_free(session_id, slot_start, db)
                booking = ClinicBooking(
                    session_id=session_id,
                    slot_start=slot_start,
                    patient_id=patient_id,
                    visit_id=view.visit.id,
                    status=BookingStatus.BOOKED.value,
                    created_by=who.user_id,
                    created_at=now,
                    updated_at=now,
                )
                db.add(booking)
                await db.flush()
                message = await self._queue(db, who, session, view.patient, issued, slot_start)
                await self._audit.record_in(
                    db,
                    _event(who, f"clinic_booking:{booking.id}", patient_id, change="book"),
                )
        except LiaisonError:
            # Someone took the slot meanwhile: the visit just created must not linger.
            await self._visits.cancel(who, view.visit.id)
            raise
        delivered = await self.outbox.deliver(message.id)
        await self.events.changed(session_id, session.psychiatrist_id)
        return BookingView(booking, view.patient, delivered)

    async def reschedule(
        self, who: Actor, booking_id: int, session_id: int, slot_start: datetime
    ) -> BookingView:
        """Move a booking: a new booking (new visit, new invitation), then the old visit is
        cancelled and the old booking points at the new one."""
        _require_staff(who)
        async with self._db() as db:
            old = await self._active_booking(db, booking_id)
            old_session = await self._get_session(db, old.session_id)
        new = await self.book(who, session_id, old.patient_id, slot_start)
        await self._visits.cancel(who, old.visit_id)
        async with self._db.begin() as db:
            row = await db.get(ClinicBooking, booking_id)
            assert row is not None
            row.status = BookingStatus.RESCHEDULED.value
            row.replaced_by = new.booking.id
            row.updated_at = self._clock()
            await self._audit.record_in(
                db,
                _event(
                    who,
                    f"clinic_booking:{booking_id}",
                    old.patient_id,
                    change="reschedule",
                    replaced_by=new.booking.id,
                ),
            )
        await self.events.changed(old_session.id, old_session.psychiatrist_id)
        return new

    async def cancel(self, who: Actor, booking_id: int) -> BookingView:
        _require_staff(who)
        async with self._db() as db:
            booking = await self._active_booking(db, booking_id)
            session = await self._get_session(db, booking.session_id)
        await self._visits.cancel(who, booking.visit_id)
        async with self._db.begin() as db:
            row = await db.get(ClinicBooking, booking_id)
            assert row is not None
            row.status = BookingStatus.CANCELLED.value
            row.updated_at = self._clock()
            patient = await db.get(Patient, row.patient_id)
            assert patient is not None
            await self._audit.record_in(
                db, _event(who, f"clinic_booking:{booking_id}", row.patient_id, change="cancel")
            )
        await self.events.changed(session.id, session.psychiatrist_id)
        return BookingView(row, patient, None)

    async def resend(self, who: Actor, booking_id: int, kind: OutboxKind) -> OutboxMessage:
        """A fresh patient link (every earlier one stops working) in a new invitation or
        reminder. One sent inside the automatic reminder's lead time stands for it; one sent
        before does not (server/clinics/reminders.py)."""
        _require_staff(who)
        async with self._db() as db:
            booking = await self._active_booking(db, booking_id)
            session = await self._get_session(db, booking.session_id)
            patient = await db.get(Patient, booking.patient_id)
            assert patient is not None
        issued = await self._visits.reissue_patient_link(who, booking.visit_id)
        async with self._db.begin() as db:
            message = await self._queue(
                db, who, session, patient, issued, booking.slot_start, kind=kind
            )
        return await self.outbox.deliver(message.id)

    # --- the board ----------------------------------------------------------------------------

    async def board(self, who: Actor, session_id: int) -> tuple[ClinicSession, list[BoardRow]]:
        """Every active booking of the session, with live status and pre-visit screenings;
        patients with an unaddressed safety flag first, then by slot."""
        now = self._clock()
        async with self._db() as db:
            session = await self._session_for(db, who, session_id)
            stmt = (
                select(ClinicBooking, Patient, Visit)
                .join(Patient, Patient.id == ClinicBooking.patient_id)
                .join(Visit, Visit.id == ClinicBooking.visit_id)
                .where(
                    ClinicBooking.session_id == session_id,
                    ClinicBooking.status == BookingStatus.BOOKED.value,
                )
                .order_by(ClinicBooking.slot_start, ClinicBooking.id)
            )
            found = (await db.execute(stmt)).all()
            allowed = await self._visible_patients(db, who, [p.id for _, p, _ in found])
            found = [row for row in found if row[1].id in allowed]
            ids = [p.id for _, p, _ in found]
            screenings = (
                await db.execute(
                    select(Screening)
                    .where(
                        Screening.patient_id.in_(ids),
                        Screening.administered_at >= session.starts_at - PRE_VISIT_WINDOW,
                    )
                    .order_by(Screening.administered_at.desc(), Screening.id.desc())
                )
            ).scalars()
            flags = (
                await db.execute(
                    select(SafetyFlag)
                    .where(SafetyFlag.patient_id.in_(ids), SafetyFlag.resolved_at.is_(None))
                    .order_by(SafetyFlag.raised_at)
                )
            ).scalars()
        latest: dict[tuple[int, str], Screening] = {}
        for s in screenings:
            latest.setdefault((s.patient_id, s.instrument), s)
        open_flags: dict[int, list[SafetyFlag]] = {}
        for f in flags:
            open_flags.setdefault(f.patient_id, []).append(f)
        rows = []
        for booking, patient, visit in found:
            live = live_status(visit.status, visit.room_state)
            late = 0
            if live.status in (BoardStatus.SCHEDULED, BoardStatus.WAITING):
                late = max(0, int((now - booking.slot_start).total_seconds() // 60))
            rows.append(
                BoardRow(
                    booking,
                    patient,
                    live,
                    [latest[k] for i in Instrument if (k := (patient.id, i.value)) in latest],
                    open_flags.get(patient.id, []),
                    late,
                )
            )
        rows.sort(key=lambda r: (not r.open_flags, r.booking.slot_start, r.booking.id))
        for patient_id in sorted(set(ids)):
            await self._audit.record(
                Event(
                    Action.RECORD_READ,
                    audit_actor(who),
                    patient_id=patient_id,
                    target=f"clinic_session:{session_id}",
                    detail={"section": "clinic_board"},
                )
            )
        return session, rows

    async def running_late(self, who: Actor, session_id: int, minutes: int) -> int:
        """Tell every patient waiting in this session's visits; returns how many connections."""
        _, rows = await self.board(who, session_id)
        connections = tuple(c for r in rows for c in r.live.waiting_connections)
        text = (
            f"Your clinician is running about {minutes} minutes late. "
            "Please stay in the waiting room; you will be let in shortly."
        )
        for row in rows:
            if row.live.waiting_connections:
                await self.events.notify(
                    row.live.waiting_connections,
                    {"visit_id": row.booking.visit_id, "kind": "running_late", "text": text},
                )
        log.info("running late sent", extra={"session_id": session_id, "count": len(connections)})
        return len(connections)

    async def visit_changed(self, visit_id: int) -> None:
        """A visit's room changed (or a screening arrived): tell its session's psychiatrist."""
        async with self._db() as db:
            row = (
                await db.execute(
                    select(ClinicSession.id, ClinicSession.psychiatrist_id)
                    .join(ClinicBooking, ClinicBooking.session_id == ClinicSession.id)
                    .where(
                        ClinicBooking.visit_id == visit_id,
                        ClinicBooking.status == BookingStatus.BOOKED.value,
                    )
                )
            ).first()
        if row is not None:
            await self.events.changed(row[0], row[1])

    async def waiting_room_screening(
        self, link_id: int, visit_id: int, instrument: Instrument, answers: Sequence[int]
    ) -> None:
        """A patient fills in a PHQ-9 or GAD-7 in the waiting room (their visit link)."""
        async with self._db() as db:
            visit = await db.get(Visit, visit_id)
            if visit is None:
                raise NotFound("No such visit.", code="visit_not_found")
            patient_id = visit.patient_id
        await self._screenings.enter(EnteredBy.link(link_id), patient_id, instrument, answers)
        await self.visit_changed(visit_id)

    # --- helpers ------------------------------------------------------------------------------

    async def _queue(
        self,
        db: AsyncSession,
        who: Actor,
        session: ClinicSession,
        patient: Patient,
        issued: IssuedLink,
        slot_start: datetime,
        kind: OutboxKind = OutboxKind.INVITATION,
    ) -> OutboxMessage:
        psychiatrist = await db.get(User, session.psychiatrist_id)
        assert psychiatrist is not None
        subject, body = visit_message(
            kind,
            given_name=patient.given_name,
            clinician=psychiatrist.display_name,
            start=slot_start,
            url=issued.url,
        )
        return await self.outbox.add(
            db,
            kind=kind,
            to=patient.email,
            subject=subject,
            body=body,
            visit_id=issued.link.visit_id,
            created_by=who.user_id,
        )

    def _checked_slot(self, session: ClinicSession, slot_start: datetime) -> datetime:
        if slot_start.tzinfo is None:
            raise ValidationFailed("Give the slot with its time zone.", code="slot_time_zone")
        slot_start = slot_start.astimezone(UTC)
        if slot_start not in slots_of(session):
            inside = session.starts_at <= slot_start < session.ends_at
            raise ValidationFailed(
                "That time is not one of the session's slots.",
                code="slot_misaligned" if inside else "slot_outside_session",
            )
        return slot_start

    async def _check_free(
        self, session_id: int, slot_start: datetime, db: AsyncSession | None = None
    ) -> None:
        stmt = select(ClinicBooking.id).where(
            ClinicBooking.session_id == session_id,
            ClinicBooking.slot_start == slot_start,
            ClinicBooking.status == BookingStatus.BOOKED.value,
        )
        if db is None:
            async with self._db() as own:
                taken = (await own.execute(stmt)).first()
        else:
            taken = (await db.execute(stmt)).first()
        if taken is not None:
            raise Conflict("That slot is already booked.", code="slot_taken")

    async def _get_session(self, db: AsyncSession, session_id: int) -> ClinicSession:
        session = await db.get(ClinicSession, session_id)
        if session is None:
            raise NotFound("No such clinic session.", code="clinic_session_not_found")
        return session

    async def _session_for(self, db: AsyncSession, who: Actor, session_id: int) -> ClinicSession:
        session = await self._get_session(db, session_id)
        if who.role is Role.PSYCHIATRIST and session.psychiatrist_id == who.user_id:
            return session
        if who.role is Role.CARE_MANAGER:
            return session
        raise Forbidden("This is not your clinic.", code="not_your_clinic")

    async def _visible_patients(self, db: AsyncSession, who: Actor, ids: list[int]) -> set[int]:
        if who.role is not Role.CARE_MANAGER:
            return set(ids)  # the session's psychiatrist: on every booked patient's team
        rows = await db.execute(
            select(CareTeamMember.patient_id).where(
                CareTeamMember.user_id == who.user_id, CareTeamMember.patient_id.in_(ids)
            )
        )
        return set(rows.scalars())

    async def _active_booking(self, db: AsyncSession, booking_id: int) -> ClinicBooking:
        booking = await db.get(ClinicBooking, booking_id)
        if booking is None:
            raise NotFound("No such booking.", code="booking_not_found")
        if booking.status != BookingStatus.BOOKED.value:
            raise Conflict("This booking was cancelled or moved.", code="booking_not_active")
        return booking

    async def _booking_views(
        self, db: AsyncSession, session_id: int, who: Actor
    ) -> list[BookingView]:
        rows = (
            await db.execute(
                select(ClinicBooking, Patient)
                .join(Patient, Patient.id == ClinicBooking.patient_id)
                .where(ClinicBooking.session_id == session_id)
                .order_by(ClinicBooking.slot_start, ClinicBooking.id)
            )
        ).all()
        allowed = await self._visible_patients(db, who, [p.id for _, p in rows])
        visit_ids = [b.visit_id for b, _ in rows]
        latest: dict[int, OutboxMessage] = {}
        for m in (
            await db.execute(
                select(OutboxMessage)
                .where(OutboxMessage.visit_id.in_(visit_ids))
                .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
            )
        ).scalars():
            if m.visit_id is not None:
                latest.setdefault(m.visit_id, m)
        return [BookingView(b, p, latest.get(b.visit_id)) for b, p in rows if p.id in allowed]
