"""A patient's own view: their record, their signed notes (never psychotherapy notes, never
drafts), their screenings, their FHIR export, and who accessed their record."""

from __future__ import annotations

from aiohttp import web

from server.api.notes import NoteListOut, NoteOut, note_list_out, note_out
from server.api.params import path_id
from server.api.record import ChartOut, chart_out
from server.api.record_access import AccessLogOut, FhirBundleOut, access_log_out, page_params
from server.api.routing import Api
from server.api.screenings import EnteredScreeningOut, ScreeningIn, screening_out
from server.auth.roles import Role
from server.record.screening_service import EnteredBy
from server.state import principal, services

api = Api()
PATIENT = frozenset({Role.PATIENT.value})


@api.route(
    "GET",
    "/me/record",
    summary="Your record: problems, medications, allergies, screenings, encounters",
    tag="me",
    response=ChartOut,
    roles=PATIENT,
    errors=(404,),
)
async def my_record(request: web.Request) -> ChartOut:
    svc, who = services(request), principal(request)
    chart = await svc.record.chart(who, await svc.record.my_patient_id(who))
    return chart_out(chart)


@api.route(
    "GET",
    "/me/notes",
    summary="Your signed notes, newest first",
    tag="me",
    response=NoteListOut,
    roles=PATIENT,
    errors=(404,),
)
async def my_notes(request: web.Request) -> NoteListOut:
    return note_list_out(await services(request).notes.my_notes(principal(request)))


@api.route(
    "GET",
    "/me/notes/{note_id}",
    summary="One of your signed notes, with its signed addenda",
    tag="me",
    response=NoteOut,
    roles=PATIENT,
    errors=(404,),
)
async def my_note(request: web.Request) -> NoteOut:
    note_id = path_id(request, "note_id", code="note_not_found", message="No such note.")
    return note_out(await services(request).notes.my_note(principal(request), note_id))


@api.route(
    "POST",
    "/me/screenings",
    summary="Answer a PHQ-9 or GAD-7 yourself, item by item",
    tag="me",
    body=ScreeningIn,
    response=EnteredScreeningOut,
    status=201,
    roles=PATIENT,
    errors=(404,),
)
async def my_screening(request: web.Request, body: ScreeningIn) -> EnteredScreeningOut:
    svc, who = services(request), principal(request)
    entered = await svc.screenings.enter(
        EnteredBy.user(who),
        await svc.record.my_patient_id(who),
        body.instrument,
        body.answers,
        encounter_id=body.encounter_id,
    )
    # The patient sees their score; the safety flag is the care team's to act on.
    return EnteredScreeningOut(screening=screening_out(entered.screening), safety_flag=None)


@api.route(
    "GET",
    "/me/access-log",
    summary="Who accessed your record, newest first (?before=<seq> for older)",
    tag="me",
    response=AccessLogOut,
    roles=PATIENT,
    errors=(404,),
)
async def my_access_log(request: web.Request) -> AccessLogOut:
    svc, who = services(request), principal(request)
    before, limit = page_params(request)
    lines = await svc.record.access_log(
        who, await svc.record.my_patient_id(who), before_seq=before, limit=limit
    )
    return access_log_out(lines, limit)


@api.route(
    "GET",
    "/me/fhir",
    summary="Your record as a FHIR R4 Bundle",
    tag="me",
    response=FhirBundleOut,
    roles=PATIENT,
    errors=(404,),
)
async def my_fhir(request: web.Request) -> FhirBundleOut:
    svc, who = services(request), principal(request)
    return FhirBundleOut(await svc.export.fhir(who, await svc.record.my_patient_id(who)))
