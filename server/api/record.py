"""The shared record: the chart, problems, medications, allergies and encounters.

Handlers parse, call a service in server/record (which asks the access policy and writes the
audit trail) and serialise. The role gate here only keeps patients on their own endpoints
(server/api/me.py); everything finer is the policy's. Screenings and safety flags are in
server/api/screenings.py; the access log, the FHIR export and break the glass in
server/api/record_access.py.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints

from server.api.params import path_id
from server.api.routing import Api
from server.api.screenings import SafetyFlagOut, ScreeningOut, flag_out, screening_out
from server.auth.roles import CLINICIAN_ROLES, Role
from server.db.models import Allergy, Condition, Encounter, MedicationStatement
from server.record.chart import AllergyFields, Chart, ConditionFields, MedicationFields
from server.record.entries import (
    AllergySeverity,
    AllergyStatus,
    CodeSystem,
    ConditionStatus,
    EncounterKind,
    MedicationStatus,
)
from server.state import principal, services

api = Api()
CLINICAL = frozenset({*(r.value for r in CLINICIAN_ROLES), Role.ADMIN.value})

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Code = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32, pattern=r"^\S+$")
]


# --- request and response models ----------------------------------------------------------------


class ConditionIn(BaseModel):
    text: Text = Field(description="The problem as the clinician words it.")
    clinical_status: ConditionStatus = ConditionStatus.ACTIVE
    code: Code | None = Field(default=None, description="An ICD-10-CM or SNOMED CT code.")
    code_system: CodeSystem | None = None
    onset: date | None = None


class ConditionOut(ConditionIn):
    id: int
    recorded_at: datetime
    recorded_by: int
    updated_at: datetime


class MedicationIn(BaseModel):
    name: Name
    status: MedicationStatus = MedicationStatus.ACTIVE
    dose: Short | None = Field(default=None, description='e.g. "50 mg"')
    route: Annotated[str, StringConstraints(strip_whitespace=True, max_length=50)] | None = None
    frequency: Short | None = Field(default=None, description='e.g. "once daily"')


class MedicationOut(MedicationIn):
    id: int
    recorded_at: datetime
    recorded_by: int
    updated_at: datetime


class AllergyIn(BaseModel):
    substance: Name
    clinical_status: AllergyStatus = AllergyStatus.ACTIVE
    reaction: Text | None = None
    severity: AllergySeverity | None = None


class AllergyOut(AllergyIn):
    id: int
    recorded_at: datetime
    recorded_by: int
    updated_at: datetime


class ConditionListOut(BaseModel):
    problems: list[ConditionOut]


class MedicationListOut(BaseModel):
    medications: list[MedicationOut]


class AllergyListOut(BaseModel):
    allergies: list[AllergyOut]


class EncounterIn(BaseModel):
    kind: EncounterKind = Field(description="econsult or curbside; visits record their own.")
    started_at: datetime
    ended_at: datetime | None = None


class EncounterOut(BaseModel):
    id: int
    kind: EncounterKind
    visit_id: int | None
    started_at: datetime
    ended_at: datetime | None


class EncounterListOut(BaseModel):
    encounters: list[EncounterOut]


class ChartOut(BaseModel):
    patient_id: int
    problems: list[ConditionOut]
    medications: list[MedicationOut]
    allergies: list[AllergyOut]
    screenings: list[ScreeningOut]
    encounters: list[EncounterOut]


class ClinicianChartOut(ChartOut):
    open_safety_flags: list[SafetyFlagOut]


# --- serialising --------------------------------------------------------------------------------


def condition_out(c: Condition) -> ConditionOut:
    return ConditionOut(
        id=c.id,
        text=c.text,
        clinical_status=ConditionStatus(c.clinical_status),
        code=c.code,
        code_system=CodeSystem(c.code_system) if c.code_system else None,
        onset=c.onset,
        recorded_at=c.recorded_at,
        recorded_by=c.recorded_by,
        updated_at=c.updated_at,
    )


def medication_out(m: MedicationStatement) -> MedicationOut:
    return MedicationOut(
        id=m.id,
        name=m.name,
        status=MedicationStatus(m.status),
        dose=m.dose,
        route=m.route,
        frequency=m.frequency,
        recorded_at=m.recorded_at,
        recorded_by=m.recorded_by,
        updated_at=m.updated_at,
    )


def allergy_out(a: Allergy) -> AllergyOut:
    return AllergyOut(
        id=a.id,
        substance=a.substance,
        clinical_status=AllergyStatus(a.clinical_status),
        reaction=a.reaction,
        severity=AllergySeverity(a.severity) if a.severity else None,
        recorded_at=a.recorded_at,
        recorded_by=a.recorded_by,
        updated_at=a.updated_at,
    )


def encounter_out(e: Encounter) -> EncounterOut:
    return EncounterOut(
        id=e.id,
        kind=EncounterKind(e.kind),
        visit_id=e.visit_id,
        started_at=e.started_at,
        ended_at=e.ended_at,
    )


def chart_out(chart: Chart) -> ChartOut:
    return ChartOut(
        patient_id=chart.patient.id,
        problems=[condition_out(c) for c in chart.problems],
        medications=[medication_out(m) for m in chart.medications],
        allergies=[allergy_out(a) for a in chart.allergies],
        screenings=[screening_out(s) for s in chart.screenings],
        encounters=[encounter_out(e) for e in chart.encounters],
    )


def _patient_id(request: web.Request) -> int:
    return path_id(request, "patient_id", code="patient_not_found", message="No such patient.")


def _entry_id(request: web.Request) -> int:
    return path_id(request, "entry_id", code="entry_not_found", message="No such entry.")


# --- the chart ----------------------------------------------------------------------------------


@api.route(
    "GET",
    "/patients/{patient_id}/record",
    summary="The whole record: problems, medications, allergies, screenings, encounters, flags",
    tag="record",
    response=ClinicianChartOut,
    roles=CLINICAL,
    errors=(404,),
)
async def get_record(request: web.Request) -> ClinicianChartOut:
    chart = await services(request).record.chart(principal(request), _patient_id(request))
    return ClinicianChartOut(
        **chart_out(chart).model_dump(),
        open_safety_flags=[flag_out(f) for f in chart.open_safety_flags],
    )


@api.route(
    "GET",
    "/patients/{patient_id}/problems",
    summary="The problem list",
    tag="record",
    response=ConditionListOut,
    roles=CLINICAL,
    errors=(404,),
)
async def list_problems(request: web.Request) -> ConditionListOut:
    rows = await services(request).record.entries(
        principal(request), _patient_id(request), Condition
    )
    return ConditionListOut(problems=[condition_out(c) for c in rows])


@api.route(
    "POST",
    "/patients/{patient_id}/problems",
    summary="Add a problem",
    tag="record",
    body=ConditionIn,
    response=ConditionOut,
    status=201,
    roles=CLINICAL,
    errors=(404,),
)
async def add_problem(request: web.Request, body: ConditionIn) -> ConditionOut:
    row = await services(request).record.add(
        principal(request), _patient_id(request), ConditionFields(**body.model_dump())
    )
    assert isinstance(row, Condition)
    return condition_out(row)


@api.route(
    "PUT",
    "/patients/{patient_id}/problems/{entry_id}",
    summary="Change a problem (e.g. mark it resolved)",
    tag="record",
    body=ConditionIn,
    response=ConditionOut,
    roles=CLINICAL,
    errors=(404,),
)
async def update_problem(request: web.Request, body: ConditionIn) -> ConditionOut:
    row = await services(request).record.update(
        principal(request),
        _patient_id(request),
        _entry_id(request),
        ConditionFields(**body.model_dump()),
    )
    assert isinstance(row, Condition)
    return condition_out(row)


@api.route(
    "GET",
    "/patients/{patient_id}/medications",
    summary="Medications",
    tag="record",
    response=MedicationListOut,
    roles=CLINICAL,
    errors=(404,),
)
async def list_medications(request: web.Request) -> MedicationListOut:
    rows = await services(request).record.entries(
        principal(request), _patient_id(request), MedicationStatement
    )
    return MedicationListOut(medications=[medication_out(m) for m in rows])


@api.route(
    "POST",
    "/patients/{patient_id}/medications",
    summary="Add a medication",
    tag="record",
    body=MedicationIn,
    response=MedicationOut,
    status=201,
    roles=CLINICAL,
    errors=(404,),
)
async def add_medication(request: web.Request, body: MedicationIn) -> MedicationOut:
    row = await services(request).record.add(
        principal(request), _patient_id(request), MedicationFields(**body.model_dump())
    )
    assert isinstance(row, MedicationStatement)
    return medication_out(row)


@api.route(
    "PUT",
    "/patients/{patient_id}/medications/{entry_id}",
    summary="Change a medication (dose, status...)",
    tag="record",
    body=MedicationIn,
    response=MedicationOut,
    roles=CLINICAL,
    errors=(404,),
)
async def update_medication(request: web.Request, body: MedicationIn) -> MedicationOut:
    row = await services(request).record.update(
        principal(request),
        _patient_id(request),
        _entry_id(request),
        MedicationFields(**body.model_dump()),
    )
    assert isinstance(row, MedicationStatement)
    return medication_out(row)


@api.route(
    "GET",
    "/patients/{patient_id}/allergies",
    summary="Allergies and intolerances",
    tag="record",
    response=AllergyListOut,
    roles=CLINICAL,
    errors=(404,),
)
async def list_allergies(request: web.Request) -> AllergyListOut:
    rows = await services(request).record.entries(principal(request), _patient_id(request), Allergy)
    return AllergyListOut(allergies=[allergy_out(a) for a in rows])


@api.route(
    "POST",
    "/patients/{patient_id}/allergies",
    summary="Add an allergy",
    tag="record",
    body=AllergyIn,
    response=AllergyOut,
    status=201,
    roles=CLINICAL,
    errors=(404,),
)
async def add_allergy(request: web.Request, body: AllergyIn) -> AllergyOut:
    row = await services(request).record.add(
        principal(request), _patient_id(request), AllergyFields(**body.model_dump())
    )
    assert isinstance(row, Allergy)
    return allergy_out(row)


@api.route(
    "PUT",
    "/patients/{patient_id}/allergies/{entry_id}",
    summary="Change an allergy",
    tag="record",
    body=AllergyIn,
    response=AllergyOut,
    roles=CLINICAL,
    errors=(404,),
)
async def update_allergy(request: web.Request, body: AllergyIn) -> AllergyOut:
    row = await services(request).record.update(
        principal(request),
        _patient_id(request),
        _entry_id(request),
        AllergyFields(**body.model_dump()),
    )
    assert isinstance(row, Allergy)
    return allergy_out(row)


@api.route(
    "GET",
    "/patients/{patient_id}/encounters",
    summary="Encounters, newest first",
    tag="record",
    response=EncounterListOut,
    roles=CLINICAL,
    errors=(404,),
)
async def list_encounters(request: web.Request) -> EncounterListOut:
    rows = await services(request).record.encounters(principal(request), _patient_id(request))
    return EncounterListOut(encounters=[encounter_out(e) for e in rows])


@api.route(
    "POST",
    "/patients/{patient_id}/encounters",
    summary="Record an e-consult or curbside encounter (visits record their own)",
    tag="record",
    body=EncounterIn,
    response=EncounterOut,
    status=201,
    roles=CLINICAL,
    errors=(404,),
)
async def add_encounter(request: web.Request, body: EncounterIn) -> EncounterOut:
    row = await services(request).record.add_encounter(
        principal(request), _patient_id(request), body.kind, body.started_at, body.ended_at
    )
    return encounter_out(row)
