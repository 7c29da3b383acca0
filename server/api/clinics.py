"""Remote clinics over HTTP: sessions, bookings, invitations, the live board, running late, and
the patient's pre-visit PHQ-9 / GAD-7 from the waiting room (a visit-link session)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from server.api.params import path_id
from server.api.routing import Api
from server.api.screenings import SafetyFlagOut, ScreeningOut, flag_out, screening_out
from server.auth.roles import Role
from server.clinics.board import BoardStatus, no_show_marks
from server.clinics.kinds import BookingStatus, OutboxKind
from server.clinics.service import BookingView, SessionView
from server.db.models import ClinicSession, OutboxMessage
from server.errors import Forbidden, ValidationFailed
from server.outbox import DeliveryStatus, delivery_status
from server.record.screenings import Instrument
from server.state import VISIT_HOLDER, principal, services
from server.visits.participants import ParticipantKind

api = Api()
STAFF = frozenset({Role.CARE_MANAGER.value, Role.ADMIN.value})
BOARD = frozenset({Role.PSYCHIATRIST.value, Role.CARE_MANAGER.value})
READERS = STAFF | {Role.PSYCHIATRIST.value}
TAG = "clinics"


def _id(request: web.Request, name: str, code: str) -> int:
    return path_id(request, name, code=code, message="Not found.")


class SessionIn(BaseModel):
    psychiatrist_id: int = Field(ge=1)
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    slot_minutes: int = Field(ge=10, le=240)


class BookingIn(BaseModel):
    patient_id: int = Field(ge=1)
    slot_start: AwareDatetime


class RescheduleIn(BaseModel):
    session_id: int = Field(ge=1)
    slot_start: AwareDatetime


class ResendIn(BaseModel):
    kind: OutboxKind = OutboxKind.INVITATION


class RunningLateIn(BaseModel):
    minutes: int = Field(ge=1, le=180)


class WaitingScreeningIn(BaseModel):
    instrument: Instrument
    answers: list[int] = Field(max_length=9)


class OutboxOut(BaseModel):
    id: int
    kind: OutboxKind
    to_address: str | None
    created_at: datetime
    sent_at: datetime | None
    attempts: int
    error: str | None
    delivery: DeliveryStatus = Field(
        description="`failed`: every attempt failed (or no address); resend the invitation."
    )


class BookingPatientOut(BaseModel):
    id: int
    mrn: str
    given_name: str
    family_name: str


class BookingOut(BaseModel):
    id: int
    session_id: int
    slot_start: datetime
    status: BookingStatus
    visit_id: int
    replaced_by: int | None
    patient: BookingPatientOut
    invitation: OutboxOut | None


class SessionOut(BaseModel):
    id: int
    psychiatrist_id: int
    psychiatrist_name: str
    title: str
    starts_at: datetime
    ends_at: datetime
    slot_minutes: int
    slots: list[datetime]
    bookings: list[BookingOut]


class SessionSummaryOut(BaseModel):
    id: int
    psychiatrist_id: int
    title: str
    starts_at: datetime
    ends_at: datetime
    slot_minutes: int


class SessionListOut(BaseModel):
    sessions: list[SessionSummaryOut]


class NoShowOut(BaseModel):
    automatic: bool = Field(description="Marked by the no-show rule, not by a clinician.")
    marked_at: datetime
    marked_by_name: str | None = Field(description="The clinician who marked it, if one did.")
    not_checked_in_by: datetime | None = Field(
        description="When automatic: the time by which nobody had checked in."
    )


class BoardRowOut(BaseModel):
    booking_id: int
    visit_id: int
    slot_start: datetime
    patient: BookingPatientOut
    status: BoardStatus
    waiting_since: datetime | None
    late_minutes: int
    patient_participant_id: str | None = Field(
        description="Send `lobby:admit {participant_id}` after `room:join {visit_id}`."
    )
    screenings: list[ScreeningOut]
    safety_flags: list[SafetyFlagOut]
    no_show: NoShowOut | None = Field(description="Who marked it, when the status is no_show.")


class BoardOut(BaseModel):
    session: SessionSummaryOut
    rows: list[BoardRowOut]


class NotifiedOut(BaseModel):
    notified: int


class PsychiatristOut(BaseModel):
    id: int
    display_name: str


class PsychiatristListOut(BaseModel):
    psychiatrists: list[PsychiatristOut]


def outbox_out(m: OutboxMessage) -> OutboxOut:
    return OutboxOut(
        id=m.id,
        kind=OutboxKind(m.kind),
        to_address=m.to_address,
        created_at=m.created_at,
        sent_at=m.sent_at,
        attempts=m.attempts,
        error=m.error,
        delivery=delivery_status(m),
    )


def booking_out(v: BookingView) -> BookingOut:
    b, p = v.booking, v.patient
    return BookingOut(
        id=b.id,
        session_id=b.session_id,
        slot_start=b.slot_start,
        status=BookingStatus(b.status),
        visit_id=b.visit_id,
        replaced_by=b.replaced_by,
        patient=BookingPatientOut(
            id=p.id, mrn=p.mrn, given_name=p.given_name, family_name=p.family_name
        ),
        invitation=outbox_out(v.invitation) if v.invitation else None,
    )


def summary_out(s: ClinicSession) -> SessionSummaryOut:
    return SessionSummaryOut(
        id=s.id,
        psychiatrist_id=s.psychiatrist_id,
        title=s.title,
        starts_at=s.starts_at,
        ends_at=s.ends_at,
        slot_minutes=s.slot_minutes,
    )


def session_out(v: SessionView) -> SessionOut:
    s = v.session
    return SessionOut(
        **summary_out(s).model_dump(),
        psychiatrist_name=v.psychiatrist.display_name,
        slots=v.slots,
        bookings=[booking_out(b) for b in v.bookings],
    )


@api.route(
    "POST",
    "/clinics/sessions",
    summary="Create a clinic session (a psychiatrist's block of slots)",
    tag=TAG,
    body=SessionIn,
    response=SessionOut,
    status=201,
    roles=STAFF,
)
async def create_session(request: web.Request, body: SessionIn) -> SessionOut:
    view = await services(request).clinics.create_session(
        principal(request),
        psychiatrist_id=body.psychiatrist_id,
        title=body.title,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        slot_minutes=body.slot_minutes,
    )
    return session_out(view)


@api.route(
    "GET",
    "/clinics/psychiatrists",
    summary="Active psychiatrists, for staff choosing whose clinic session they create",
    tag=TAG,
    response=PsychiatristListOut,
    roles=STAFF,
)
async def psychiatrists(request: web.Request) -> PsychiatristListOut:
    found = await services(request).clinics.psychiatrists(principal(request))
    return PsychiatristListOut(
        psychiatrists=[PsychiatristOut(id=u.id, display_name=u.display_name) for u in found]
    )


def _when(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise ValidationFailed(f"{name}: an ISO 8601 time with its zone.", code="invalid_query")
    return value


@api.route(
    "GET",
    "/clinics/sessions",
    summary="Clinic sessions overlapping ?from=&to= (a psychiatrist's own; staff: all)",
    tag=TAG,
    response=SessionListOut,
    roles=READERS,
)
async def list_sessions(request: web.Request) -> SessionListOut:
    found = await services(request).clinics.sessions(
        principal(request), _when(request, "from"), _when(request, "to")
    )
    return SessionListOut(sessions=[summary_out(s) for s in found])


@api.route(
    "GET",
    "/clinics/sessions/{session_id}",
    summary="A clinic session: its slots and bookings",
    tag=TAG,
    response=SessionOut,
    roles=BOARD,
    errors=(404,),
)
async def get_session(request: web.Request) -> SessionOut:
    sid = _id(request, "session_id", "clinic_session_not_found")
    return session_out(await services(request).clinics.session(principal(request), sid))


@api.route(
    "POST",
    "/clinics/sessions/{session_id}/bookings",
    summary="Book a patient into a slot: a video visit and an invitation with its join link",
    tag=TAG,
    body=BookingIn,
    response=BookingOut,
    status=201,
    roles=STAFF,
    errors=(404, 409),
)
async def book(request: web.Request, body: BookingIn) -> BookingOut:
    sid = _id(request, "session_id", "clinic_session_not_found")
    view = await services(request).clinics.book(
        principal(request), sid, body.patient_id, body.slot_start
    )
    return booking_out(view)


@api.route(
    "POST",
    "/clinics/bookings/{booking_id}/reschedule",
    summary="Move a booking to another slot (new visit and invitation; the old visit is cancelled)",
    tag=TAG,
    body=RescheduleIn,
    response=BookingOut,
    status=201,
    roles=STAFF,
    errors=(404, 409),
)
async def reschedule(request: web.Request, body: RescheduleIn) -> BookingOut:
    bid = _id(request, "booking_id", "booking_not_found")
    view = await services(request).clinics.reschedule(
        principal(request), bid, body.session_id, body.slot_start
    )
    return booking_out(view)


@api.route(
    "POST",
    "/clinics/bookings/{booking_id}/cancel",
    summary="Cancel a booking and its visit",
    tag=TAG,
    response=BookingOut,
    roles=STAFF,
    errors=(404, 409),
)
async def cancel(request: web.Request) -> BookingOut:
    bid = _id(request, "booking_id", "booking_not_found")
    return booking_out(await services(request).clinics.cancel(principal(request), bid))


@api.route(
    "POST",
    "/clinics/bookings/{booking_id}/invitation",
    summary="Resend the invitation (or send a reminder) with a fresh join link",
    tag=TAG,
    body=ResendIn,
    response=OutboxOut,
    status=201,
    roles=STAFF,
    errors=(404, 409),
)
async def resend(request: web.Request, body: ResendIn) -> OutboxOut:
    bid = _id(request, "booking_id", "booking_not_found")
    message = await services(request).clinics.resend(principal(request), bid, body.kind)
    return outbox_out(message)


@api.route(
    "GET",
    "/clinics/sessions/{session_id}/board",
    summary="The live clinic board: every booking's status and pre-visit scores, flags first",
    tag=TAG,
    response=BoardOut,
    roles=BOARD,
    errors=(404,),
)
async def board(request: web.Request) -> BoardOut:
    sid = _id(request, "session_id", "clinic_session_not_found")
    svc = services(request)
    session, rows = await svc.clinics.board(principal(request), sid)
    # Rows the service has let this reader see; only who marked them is added.
    async with svc.db() as db:
        marks, names = await no_show_marks(
            db,
            [
                (r.booking.visit_id, r.patient.id)
                for r in rows
                if r.live.status is BoardStatus.NO_SHOW
            ],
        )

    def no_show(visit_id: int) -> NoShowOut | None:
        mark = marks.get(visit_id)
        if mark is None:
            return None
        return NoShowOut(
            automatic=mark.automatic,
            marked_at=mark.marked_at,
            marked_by_name=None if mark.marked_by is None else names.get(mark.marked_by),
            not_checked_in_by=mark.not_checked_in_by,
        )

    return BoardOut(
        session=summary_out(session),
        rows=[
            BoardRowOut(
                booking_id=r.booking.id,
                visit_id=r.booking.visit_id,
                slot_start=r.booking.slot_start,
                patient=BookingPatientOut(
                    id=r.patient.id,
                    mrn=r.patient.mrn,
                    given_name=r.patient.given_name,
                    family_name=r.patient.family_name,
                ),
                status=r.live.status,
                waiting_since=r.live.waiting_since,
                late_minutes=r.late_minutes,
                patient_participant_id=r.live.patient_participant_id,
                screenings=[screening_out(s) for s in r.screenings],
                safety_flags=[flag_out(f) for f in r.open_flags],
                no_show=no_show(r.booking.visit_id),
            )
            for r in rows
        ],
    )


@api.route(
    "POST",
    "/clinics/sessions/{session_id}/running-late",
    summary="Tell the patients waiting in this session the clinician runs about N minutes late",
    tag=TAG,
    body=RunningLateIn,
    response=NotifiedOut,
    roles=BOARD,
    errors=(404,),
)
async def running_late(request: web.Request, body: RunningLateIn) -> NotifiedOut:
    sid = _id(request, "session_id", "clinic_session_not_found")
    count = await services(request).clinics.running_late(principal(request), sid, body.minutes)
    return NotifiedOut(notified=count)


@api.route(
    "POST",
    "/clinics/waiting-room/screenings",
    summary="The waiting patient's own PHQ-9 or GAD-7 (visit-link session); reaches the board",
    tag=TAG,
    body=WaitingScreeningIn,
    status=204,
    roles=frozenset(),
    allow_visit_session=True,
    errors=(404,),
)
async def waiting_room_screening(request: web.Request, body: WaitingScreeningIn) -> None:
    holder = request.get(VISIT_HOLDER)
    if holder is None or holder.link_id is None:
        raise Forbidden("Only the patient in the waiting room fills this in.", code="not_a_link")
    # A guest's link (an interpreter, a relative) must not answer for the patient, nor a
    # patient's link before the date of birth has been confirmed.
    if holder.kind is not ParticipantKind.PATIENT or not holder.ready_for_room:
        raise Forbidden("Only the patient in the waiting room fills this in.", code="not_a_link")
    await services(request).clinics.waiting_room_screening(
        holder.link_id, holder.visit_id, body.instrument, body.answers
    )
