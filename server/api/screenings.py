"""PHQ-9 / GAD-7 screenings and the safety flags they raise, over HTTP.

Clinicians on the care team enter screenings item by item and address flags; every clinician
on the team sees a patient's open flags, and ``GET /safety-flags`` lists them across all of a
clinician's patients. Patients enter their own through /me/screenings (server/api/me.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints

from server.api.params import path_id
from server.api.routing import Api
from server.auth.roles import CLINICIAN_ROLES, Role
from server.db.models import SafetyFlag, Screening
from server.record.screening_service import EnteredBy, answers_of
from server.record.screenings import Instrument, Severity
from server.state import principal, services

api = Api()
CLINICAL = frozenset({*(r.value for r in CLINICIAN_ROLES), Role.ADMIN.value})
CLINICIANS = frozenset(r.value for r in CLINICIAN_ROLES)


def _patient_id(request: web.Request) -> int:
    return path_id(request, "patient_id", code="patient_not_found", message="No such patient.")


class ScreeningIn(BaseModel):
    instrument: Instrument
    answers: list[int] = Field(
        max_length=9, description="Each item in order, 0 (not at all) to 3 (nearly every day)."
    )
    encounter_id: int | None = Field(default=None, ge=1)


class ScreeningOut(BaseModel):
    id: int
    instrument: Instrument
    answers: list[int]
    total: int
    severity: Severity
    entered_by_role: str
    encounter_id: int | None
    administered_at: datetime


class SafetyFlagOut(BaseModel):
    id: int
    patient_id: int
    screening_id: int
    kind: str
    item_value: int
    raised_at: datetime
    resolved_at: datetime | None
    resolved_by: int | None
    resolution: str | None


class EnteredScreeningOut(BaseModel):
    screening: ScreeningOut
    safety_flag: SafetyFlagOut | None


class ScreeningListOut(BaseModel):
    screenings: list[ScreeningOut]


class SafetyFlagListOut(BaseModel):
    safety_flags: list[SafetyFlagOut]


class FlaggedPatientOut(BaseModel):
    flag: SafetyFlagOut
    patient_id: int
    mrn: str
    given_name: str
    family_name: str


class MyFlagsOut(BaseModel):
    safety_flags: list[FlaggedPatientOut]


class ResolveFlagIn(BaseModel):
    note: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)
    ] = Field(description="How the flag was addressed: who spoke to the patient, what was done.")


def screening_out(s: Screening) -> ScreeningOut:
    return ScreeningOut(
        id=s.id,
        instrument=Instrument(s.instrument),
        answers=answers_of(s),
        total=s.total,
        severity=Severity(s.severity),
        entered_by_role=s.entered_by_role,
        encounter_id=s.encounter_id,
        administered_at=s.administered_at,
    )


def flag_out(f: SafetyFlag) -> SafetyFlagOut:
    return SafetyFlagOut(
        id=f.id,
        patient_id=f.patient_id,
        screening_id=f.screening_id,
        kind=f.kind,
        item_value=f.item_value,
        raised_at=f.raised_at,
        resolved_at=f.resolved_at,
        resolved_by=f.resolved_by,
        resolution=f.resolution,
    )


@api.route(
    "GET",
    "/patients/{patient_id}/screenings",
    summary="PHQ-9 and GAD-7 screenings, newest first",
    tag="screenings",
    response=ScreeningListOut,
    roles=CLINICAL,
    errors=(404,),
)
async def list_screenings(request: web.Request) -> ScreeningListOut:
    rows = await services(request).screenings.screenings(principal(request), _patient_id(request))
    return ScreeningListOut(screenings=[screening_out(s) for s in rows])


@api.route(
    "POST",
    "/patients/{patient_id}/screenings",
    summary="Enter a PHQ-9 or GAD-7 item by item; scored, and PHQ-9 item 9 > 0 raises a flag",
    tag="screenings",
    body=ScreeningIn,
    response=EnteredScreeningOut,
    status=201,
    roles=CLINICIANS,
    errors=(404,),
)
async def enter_screening(request: web.Request, body: ScreeningIn) -> EnteredScreeningOut:
    who = principal(request)
    entered = await services(request).screenings.enter(
        EnteredBy.user(who),
        _patient_id(request),
        body.instrument,
        body.answers,
        encounter_id=body.encounter_id,
    )
    return EnteredScreeningOut(
        screening=screening_out(entered.screening),
        safety_flag=flag_out(entered.flag) if entered.flag else None,
    )


@api.route(
    "GET",
    "/patients/{patient_id}/safety-flags",
    summary="Safety flags still to be addressed (?all=true: addressed ones too)",
    tag="screenings",
    response=SafetyFlagListOut,
    roles=CLINICAL,
    errors=(404,),
)
async def list_safety_flags(request: web.Request) -> SafetyFlagListOut:
    everything = request.query.get("all", "").lower() in ("1", "true", "yes")
    rows = await services(request).screenings.flags(
        principal(request), _patient_id(request), include_resolved=everything
    )
    return SafetyFlagListOut(safety_flags=[flag_out(f) for f in rows])


@api.route(
    "POST",
    "/patients/{patient_id}/safety-flags/{flag_id}/resolve",
    summary="Record how a safety flag was addressed",
    tag="screenings",
    body=ResolveFlagIn,
    response=SafetyFlagOut,
    roles=CLINICIANS,
    errors=(404, 409),
)
async def resolve_safety_flag(request: web.Request, body: ResolveFlagIn) -> SafetyFlagOut:
    flag_id = path_id(request, "flag_id", code="safety_flag_not_found", message="No such flag.")
    flag = await services(request).screenings.resolve_flag(
        principal(request), _patient_id(request), flag_id, body.note
    )
    return flag_out(flag)


@api.route(
    "GET",
    "/safety-flags",
    summary="Open safety flags of every patient whose care team you are on",
    tag="screenings",
    response=MyFlagsOut,
    roles=CLINICIANS,
)
async def my_safety_flags(request: web.Request) -> MyFlagsOut:
    found = await services(request).screenings.my_open_flags(principal(request))
    return MyFlagsOut(
        safety_flags=[
            FlaggedPatientOut(
                flag=flag_out(flag),
                patient_id=patient.id,
                mrn=patient.mrn,
                given_name=patient.given_name,
                family_name=patient.family_name,
            )
            for flag, patient in found
        ]
    )
