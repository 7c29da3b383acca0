"""Curbside consults over HTTP: requests, the written queue, and what follows a call. Accepting
and declining a ringing request are socket events (signaling/curbside_events.py), where the
ring arrives; shifts, licences and the admin's side are in server/api/curbside_rota.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from aiohttp import web
from pydantic import (
    AwareDatetime,
    BaseModel,
    Field,
    StrictInt,
    StringConstraints,
    TypeAdapter,
    model_validator,
)
from pydantic import ValidationError as PydanticError

from server.api.params import path_id
from server.api.patients import CLINICAL, CreatePatientRequest
from server.api.routing import Api
from server.auth.roles import Role
from server.curbside.billing import BillingFlag
from server.curbside.service import NewConsult, WrittenAnswer
from server.curbside.views import ConsultView
from server.errors import ValidationFailed
from server.record.demographics import StateCode
from server.record.patients import NewPatient
from server.state import principal, services
from signaling import curbside as cs

api = Api()
PCP = frozenset({Role.PCP.value})
PSYCHIATRIST = frozenset({Role.PSYCHIATRIST.value})
CONSULTANTS = frozenset({Role.PCP.value, Role.PSYCHIATRIST.value})

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]


# --- request and response models ---------------------------------------------------------------


class ConsultIn(BaseModel):
    patient_id: int | None = Field(default=None, ge=1)
    new_patient: CreatePatientRequest | None = Field(
        default=None, description="Instead of patient_id: a new patient (you join the team)."
    )
    question: Text
    urgency: cs.Urgency
    mode: cs.Mode
    patient_consented: bool = Field(description="The patient agreed to the consult.")
    patient_state: StateCode | None = Field(
        default=None, description="Where the patient is now; the record's state if left out."
    )

    @model_validator(mode="after")
    def _one_patient(self) -> ConsultIn:
        if (self.patient_id is None) == (self.new_patient is None):
            raise ValueError("give exactly one of patient_id or new_patient")
        return self


class AnswerIn(BaseModel):
    assessment: Text
    recommendations: Text
    medication_suggestions: Text | None = None
    follow_up: Text
    face_to_face_advised: bool
    minutes: StrictInt | None = Field(
        default=None,
        ge=1,
        le=cs.MAX_WRITTEN_MINUTES,
        description="The minutes you spent on this consult, as you attest them (the form "
        "offers the time since you opened it). At most the minutes since it was asked.",
    )


class WritingOut(BaseModel):
    started_at: datetime | None = Field(description="When you first opened the answer form.")
    elapsed_s: float | None = Field(description="Seconds since then, by the server's clock.")
    max_minutes: int = Field(description="The most minutes an answer sent now may attest.")


class CompleteIn(BaseModel):
    note_id: int = Field(ge=1, description="Your signed curbside recommendation note.")


class PersonOut(BaseModel):
    id: int
    display_name: str


class AnswerOut(BaseModel):
    author: PersonOut
    assessment: str
    recommendations: str
    medication_suggestions: str | None
    follow_up: str
    face_to_face_advised: bool
    answered_at: datetime


class TimesOut(BaseModel):
    to_answer_s: float | None
    ringing_s: float | None
    talking_s: float | None
    documenting_s: float | None
    writing_s: float | None = Field(description="Written answers: answer form opened to sent.")
    attested_minutes: int | None = Field(description="Written answers: as the author attested.")


class ConsultOut(BaseModel):
    id: int
    status: cs.Status
    mode: cs.Mode
    urgency: cs.Urgency
    question: str
    patient_id: int
    patient_state: str | None
    context: dict[str, Any] = Field(description="The record when asked: problems, meds, scores.")
    pcp: PersonOut
    consultant: PersonOut | None
    ringing_tier: cs.Tier | None
    ring_deadline: datetime | None
    visit_id: int | None = Field(description="The call's visit, once accepted.")
    encounter_id: int | None = Field(description="Write the recommendation note on this.")
    note_id: int | None
    created_at: datetime
    answer_due_at: datetime
    overdue: bool
    consent_recorded_at: datetime | None
    answer: AnswerOut | None
    times: TimesOut
    billing_flags: list[BillingFlag] | None = Field(
        description="Interprofessional billing checks (detail view only)."
    )


class ConsultListOut(BaseModel):
    requests: list[ConsultOut]


class AwaitingOut(BaseModel):
    count: int = Field(description="Your requests with a written answer you have not acknowledged.")


# --- serialisation -----------------------------------------------------------------------------


def _seconds(span: timedelta | None) -> float | None:
    return None if span is None else span.total_seconds()


def times_out(times: cs.ConsultTimes) -> TimesOut:
    return TimesOut(
        to_answer_s=_seconds(times.to_answer),
        ringing_s=_seconds(times.ringing),
        talking_s=_seconds(times.talking),
        documenting_s=_seconds(times.documenting),
        writing_s=_seconds(times.writing),
        attested_minutes=None if times.attested is None else times.attested // timedelta(minutes=1),
    )


def consult_out(view: ConsultView) -> ConsultOut:
    row, state, answer = view.row, view.state, view.answer
    consultant = view.consultant_id
    return ConsultOut(
        id=row.id,
        status=state.status,
        mode=state.request.mode,
        urgency=state.request.urgency,
        question=row.question,
        patient_id=row.patient_id,
        patient_state=row.patient_state,
        context=view.context,
        pcp=PersonOut(id=row.pcp_id, display_name=view.names.get(row.pcp_id, "")),
        consultant=None
        if consultant is None
        else PersonOut(id=consultant, display_name=view.names.get(consultant, "")),
        ringing_tier=state.tier,
        ring_deadline=state.ring_deadline,
        visit_id=row.visit_id,
        encounter_id=row.encounter_id,
        note_id=row.note_id,
        created_at=row.created_at,
        answer_due_at=state.answer_due_at,
        overdue=view.overdue,
        consent_recorded_at=row.consent_recorded_at,
        answer=None
        if answer is None
        else AnswerOut(
            author=PersonOut(
                id=answer.author_id, display_name=view.names.get(answer.author_id, "")
            ),
            assessment=answer.assessment,
            recommendations=answer.recommendations,
            medication_suggestions=answer.medication_suggestions,
            follow_up=answer.follow_up,
            face_to_face_advised=answer.face_to_face_advised,
            answered_at=answer.answered_at,
        ),
        times=times_out(view.times),
        billing_flags=None if view.billing is None else list(view.billing),
    )


# --- parameters --------------------------------------------------------------------------------

INSTANT: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)


def instant(request: web.Request, name: str, default: datetime) -> datetime:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return INSTANT.validate_python(raw)
    except PydanticError:
        raise ValidationFailed(
            f"Give {name} as an ISO 8601 time with its offset, e.g. 2026-11-25T15:00:00Z.",
            code="invalid_time",
        ) from None


def _request_id(request: web.Request) -> int:
    return path_id(
        request, "request_id", code="request_not_found", message="No such curbside request."
    )


async def _consult(request: web.Request, request_id: int) -> ConsultOut:
    view = await services(request).curbside_views.detail(principal(request), request_id)
    return consult_out(view)


# --- requests ----------------------------------------------------------------------------------


@api.route(
    "POST",
    "/curbside/requests",
    summary="Ask for a curbside consult (call now rings the on-call psychiatrists at once)",
    tag="curbside",
    body=ConsultIn,
    response=ConsultOut,
    status=201,
    roles=PCP,
    errors=(404,),
)
async def open_request(request: web.Request, body: ConsultIn) -> ConsultOut:
    svc, who = services(request).curbside, principal(request)
    new = NewConsult(
        question=body.question,
        urgency=body.urgency,
        mode=body.mode,
        patient_consented=body.patient_consented,
        patient_state=body.patient_state,
    )
    if body.new_patient is not None:
        patient = NewPatient(**body.new_patient.model_dump())
        _, request_id = await svc.open_for_new_patient(who, patient, new)
    else:
        assert body.patient_id is not None
        request_id = await svc.open(who, body.patient_id, new)
    return await _consult(request, request_id)


@api.route(
    "GET",
    "/curbside/requests",
    summary="Your curbside requests (PCP) or consults (psychiatrist), newest first",
    tag="curbside",
    response=ConsultListOut,
    roles=CONSULTANTS,
)
async def my_requests(request: web.Request) -> ConsultListOut:
    views = await services(request).curbside_views.mine(principal(request))
    return ConsultListOut(requests=[consult_out(v) for v in views])


@api.route(
    "GET",
    "/curbside/awaiting-acknowledgement",
    summary="How many written answers to your requests you have not acknowledged yet (PCP)",
    tag="curbside",
    response=AwaitingOut,
    roles=PCP,
)
async def awaiting_acknowledgement(request: web.Request) -> AwaitingOut:
    count = await services(request).curbside_views.awaiting_acknowledgement(principal(request))
    return AwaitingOut(count=count)


@api.route(
    "GET",
    "/curbside/requests/{request_id}",
    summary="A curbside request you asked, answer, or are being rung for",
    tag="curbside",
    response=ConsultOut,
    roles=CLINICAL,
    errors=(404,),
)
async def get_request(request: web.Request) -> ConsultOut:
    return await _consult(request, _request_id(request))


@api.route(
    "POST",
    "/curbside/requests/{request_id}/cancel",
    summary="Withdraw your request (until a call connects or an answer is written)",
    tag="curbside",
    response=ConsultOut,
    roles=PCP,
    errors=(404, 409),
)
async def cancel_request(request: web.Request) -> ConsultOut:
    request_id = _request_id(request)
    await services(request).curbside.cancel(principal(request), request_id)
    return await _consult(request, request_id)


@api.route(
    "POST",
    "/curbside/requests/{request_id}/end",
    summary="Hang up the curbside call (as the socket event curbside:end does)",
    tag="curbside",
    response=ConsultOut,
    roles=CONSULTANTS,
    errors=(404, 409),
)
async def end_call(request: web.Request) -> ConsultOut:
    request_id = _request_id(request)
    await services(request).curbside.end_call(principal(request), request_id)
    return await _consult(request, request_id)


@api.route(
    "POST",
    "/curbside/requests/{request_id}/complete",
    summary="Complete a call with your signed curbside recommendation note on its encounter",
    tag="curbside",
    body=CompleteIn,
    response=ConsultOut,
    roles=PSYCHIATRIST,
    errors=(404, 409),
)
async def complete_call(request: web.Request, body: CompleteIn) -> ConsultOut:
    request_id = _request_id(request)
    await services(request).curbside.complete(principal(request), request_id, body.note_id)
    return await _consult(request, request_id)


@api.route(
    "GET",
    "/curbside/queue",
    summary="Written consults waiting for an answer, with due time and overdue flag",
    tag="curbside",
    response=ConsultListOut,
    roles=PSYCHIATRIST,
)
async def written_queue(request: web.Request) -> ConsultListOut:
    views = await services(request).curbside_views.queue(principal(request))
    return ConsultListOut(requests=[consult_out(v) for v in views])


@api.route(
    "GET",
    "/curbside/ringing",
    summary="Requests ringing you now (for a dashboard that reconnects)",
    tag="curbside",
    response=ConsultListOut,
    roles=PSYCHIATRIST,
)
async def ringing_me(request: web.Request) -> ConsultListOut:
    views = await services(request).curbside_views.ringing_for(principal(request))
    return ConsultListOut(requests=[consult_out(v) for v in views])


@api.route(
    "POST",
    "/curbside/requests/{request_id}/answer",
    summary="Answer a queued written consult with a structured recommendation",
    tag="curbside",
    body=AnswerIn,
    response=ConsultOut,
    roles=PSYCHIATRIST,
    errors=(404, 409),
)
async def answer_request(request: web.Request, body: AnswerIn) -> ConsultOut:
    request_id = _request_id(request)
    answer = WrittenAnswer(**body.model_dump(exclude={"minutes"}))
    await services(request).curbside.answer(principal(request), request_id, answer, body.minutes)
    return await _consult(request, request_id)


@api.route(
    "POST",
    "/curbside/requests/{request_id}/writing",
    summary="You opened the answer form of a queued written consult: your time starts (once)",
    tag="curbside",
    response=WritingOut,
    roles=PSYCHIATRIST,
    errors=(404, 409),
)
async def start_writing(request: web.Request) -> WritingOut:
    started = await services(request).curbside.start_writing(
        principal(request), _request_id(request)
    )
    return WritingOut(
        started_at=started.started_at,
        elapsed_s=_seconds(started.elapsed),
        max_minutes=started.max_minutes,
    )


@api.route(
    "POST",
    "/curbside/requests/{request_id}/acknowledge",
    summary="Acknowledge the written answer to your request",
    tag="curbside",
    response=ConsultOut,
    roles=PCP,
    errors=(404, 409),
)
async def acknowledge_answer(request: web.Request) -> ConsultOut:
    request_id = _request_id(request)
    await services(request).curbside.acknowledge(principal(request), request_id)
    return await _consult(request, request_id)
