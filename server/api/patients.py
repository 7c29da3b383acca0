"""Patients and care teams: the minimum of the record that scheduling visits needs."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints

from server.api.params import path_id
from server.api.routing import Api
from server.auth.roles import CLINICIAN_ROLES, Role
from server.db.models import Patient
from server.record.demographics import LanguageTag, PhoneNumber, StateCode
from server.record.patients import NewPatient, PatientRecord, TeamMember, TeamRole
from server.state import principal, services

api = Api()
CLINICAL = frozenset({*(r.value for r in CLINICIAN_ROLES), Role.ADMIN.value})
MAX_QUERY = 100

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Mrn = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
    ),
]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
]


class CreatePatientRequest(BaseModel):
    mrn: Mrn | None = Field(default=None, description="The clinic's MRN; assigned if left out.")
    given_name: Name
    family_name: Name
    date_of_birth: date
    preferred_language: LanguageTag = Field(default="en", description='BCP-47, e.g. "es"')
    state: StateCode = Field(description="Two-letter US state code where the patient lives.")
    phone: PhoneNumber
    email: Email | None = None


class AddCareTeamMemberRequest(BaseModel):
    user_id: int = Field(ge=1)
    role_on_team: TeamRole


class CareTeamMemberOut(BaseModel):
    user_id: int
    display_name: str
    role_on_team: TeamRole
    added_at: datetime


class PatientSummaryOut(BaseModel):
    id: int
    mrn: str
    given_name: str
    family_name: str
    date_of_birth: date
    preferred_language: str


class PatientOut(PatientSummaryOut):
    state: str
    phone: str
    email: str | None
    created_at: datetime
    care_team: list[CareTeamMemberOut]


class PatientListOut(BaseModel):
    patients: list[PatientSummaryOut]


def summary_out(p: Patient) -> PatientSummaryOut:
    return PatientSummaryOut(
        id=p.id,
        mrn=p.mrn,
        given_name=p.given_name,
        family_name=p.family_name,
        date_of_birth=p.date_of_birth,
        preferred_language=p.preferred_language,
    )


def member_out(m: TeamMember) -> CareTeamMemberOut:
    return CareTeamMemberOut(
        user_id=m.user.id,
        display_name=m.user.display_name,
        role_on_team=TeamRole(m.member.role_on_team),
        added_at=m.member.added_at,
    )


def patient_out(record: PatientRecord) -> PatientOut:
    p = record.patient
    return PatientOut(
        **summary_out(p).model_dump(),
        state=p.state,
        phone=p.phone,
        email=p.email,
        created_at=p.created_at,
        care_team=[member_out(m) for m in record.care_team],
    )


def _patient_id(request: web.Request) -> int:
    return path_id(request, "patient_id", code="patient_not_found", message="No such patient.")


@api.route(
    "POST",
    "/patients",
    summary="Create a patient (a clinician creating one joins the care team)",
    tag="patients",
    body=CreatePatientRequest,
    response=PatientOut,
    status=201,
    roles=CLINICAL,
    errors=(409,),
)
async def create_patient(request: web.Request, body: CreatePatientRequest) -> PatientOut:
    new = NewPatient(**body.model_dump())
    return patient_out(await services(request).patients.create(principal(request), new))


@api.route(
    "GET",
    "/patients",
    summary="Patients on your care teams (admins: all), filtered by ?query= name or MRN",
    tag="patients",
    response=PatientListOut,
    roles=CLINICAL,
)
async def search_patients(request: web.Request) -> PatientListOut:
    query = request.query.get("query", "")[:MAX_QUERY]
    found = await services(request).patients.search(principal(request), query)
    return PatientListOut(patients=[summary_out(p) for p in found])


@api.route(
    "GET",
    "/patients/{patient_id}",
    summary="A patient and their care team",
    tag="patients",
    response=PatientOut,
    roles=CLINICAL,
    errors=(404,),
)
async def get_patient(request: web.Request) -> PatientOut:
    record = await services(request).patients.get(principal(request), _patient_id(request))
    return patient_out(record)


@api.route(
    "POST",
    "/patients/{patient_id}/care-team",
    summary="Add a clinician to a patient's care team",
    tag="patients",
    body=AddCareTeamMemberRequest,
    response=CareTeamMemberOut,
    status=201,
    roles=CLINICAL,
    errors=(404, 409),
)
async def add_care_team_member(
    request: web.Request, body: AddCareTeamMemberRequest
) -> CareTeamMemberOut:
    member = await services(request).patients.add_to_care_team(
        principal(request), _patient_id(request), body.user_id, body.role_on_team
    )
    return member_out(member)
