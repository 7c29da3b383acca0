"""The shared record: problems, medications, allergies, encounters, screenings and safety flags,
the access log, the FHIR export, and break the glass (with its review by admins).

Handlers parse, call a service in server/record (which asks the access policy and writes the
audit trail) and serialise. The role gate here only keeps patients on their own endpoints
(server/api/me.py); everything finer is the policy's.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, Field, RootModel, StringConstraints

from server.api.params import path_id
from server.api.routing import Api
from server.audit import Access as AccessLine
from server.auth.roles import CLINICIAN_ROLES, Role
from server.db.models import (
    Allergy,
    Condition,
    Encounter,
    MedicationStatement,
    SafetyFlag,
    Screening,
)
from server.errors import BadRequest
from server.record.break_glass import GrantLine
from server.record.chart import AllergyFields, Chart, ConditionFields, MedicationFields
from server.record.entries import (
    AllergySeverity,
    AllergyStatus,
    CodeSystem,
    ConditionStatus,
    EncounterKind,
    MedicationStatus,
)
from server.record.screening_service import EnteredBy, answers_of
from server.record.screenings import Instrument, Severity
from server.state import principal, services

api = Api()
CLINICAL = frozenset({*(r.value for r in CLINICIAN_ROLES), Role.ADMIN.value})
CLINICIANS = frozenset(r.value for r in CLINICIAN_ROLES)
ADMIN = frozenset({Role.ADMIN.value})

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


class ChartOut(BaseModel):
    patient_id: int
    problems: list[ConditionOut]
    medications: list[MedicationOut]
    allergies: list[AllergyOut]
    screenings: list[ScreeningOut]
    encounters: list[EncounterOut]


class ClinicianChartOut(ChartOut):
    open_safety_flags: list[SafetyFlagOut]


class AccessOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    actor_role: str
    actor_name: str | None
    action: str
    target: str | None
    outcome: str


class AccessLogOut(BaseModel):
    accesses: list[AccessOut]
    next_before: int | None = Field(description="Pass as ?before= for the next, older page.")


class BreakGlassIn(BaseModel):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] = Field(
        description="Why you need this record now; reviewed by the compliance officer."
    )


class GrantOut(BaseModel):
    id: int
    patient_id: int
    user_id: int
    reason: str
    granted_at: datetime
    expires_at: datetime
    reviewed_at: datetime | None
    reviewed_by: int | None


class GrantLineOut(GrantOut):
    clinician_name: str
    patient_mrn: str


class GrantListOut(BaseModel):
    grants: list[GrantLineOut]


class FhirBundleOut(RootModel[dict[str, Any]]):
    """A FHIR R4 Bundle (type collection)."""


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


def chart_out(chart: Chart) -> ChartOut:
    return ChartOut(
        patient_id=chart.patient.id,
        problems=[condition_out(c) for c in chart.problems],
        medications=[medication_out(m) for m in chart.medications],
        allergies=[allergy_out(a) for a in chart.allergies],
        screenings=[screening_out(s) for s in chart.screenings],
        encounters=[encounter_out(e) for e in chart.encounters],
    )


def access_log_out(lines: list[AccessLine], limit: int) -> AccessLogOut:
    return AccessLogOut(
        accesses=[
            AccessOut(
                seq=a.seq,
                at=a.at,
                actor=a.actor,
                actor_role=a.actor_role,
                actor_name=a.actor_name,
                action=a.action,
                target=a.target,
                outcome=a.outcome,
            )
            for a in lines
        ],
        next_before=lines[-1].seq if len(lines) == limit else None,
    )


def page_params(request: web.Request) -> tuple[int | None, int]:
    """``?before=<seq>&limit=<n>`` of an access log page."""
    before, limit = request.query.get("before"), request.query.get("limit", "50")
    if (before is not None and not before.isdigit()) or not limit.isdigit():
        raise BadRequest("before and limit are whole numbers", code="bad_page")
    return (int(before) if before is not None else None), max(1, min(int(limit), 200))


def grant_out(line: GrantLine) -> GrantLineOut:
    g = line.grant
    return GrantLineOut(
        id=g.id,
        patient_id=g.patient_id,
        user_id=g.user_id,
        reason=g.reason,
        granted_at=g.granted_at,
        expires_at=g.expires_at,
        reviewed_at=g.reviewed_at,
        reviewed_by=g.reviewed_by,
        clinician_name=line.clinician.display_name,
        patient_mrn=line.patient.mrn,
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


# --- screenings and safety flags ----------------------------------------------------------------


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


# --- access log, export, break the glass --------------------------------------------------------


@api.route(
    "GET",
    "/patients/{patient_id}/access-log",
    summary="Who accessed this record, newest first (admins; patients see /me/access-log)",
    tag="record",
    response=AccessLogOut,
    roles=CLINICAL,
    errors=(404,),
)
async def patient_access_log(request: web.Request) -> AccessLogOut:
    before, limit = page_params(request)
    lines = await services(request).record.access_log(
        principal(request), _patient_id(request), before_seq=before, limit=limit
    )
    return access_log_out(lines, limit)


@api.route(
    "GET",
    "/patients/{patient_id}/fhir",
    summary="The record as a FHIR R4 Bundle (no psychotherapy notes, no drafts); audited",
    tag="record",
    response=FhirBundleOut,
    roles=CLINICIANS,
    errors=(404,),
)
async def export_fhir(request: web.Request) -> FhirBundleOut:
    bundle = await services(request).export.fhir(principal(request), _patient_id(request))
    return FhirBundleOut(bundle)


@api.route(
    "POST",
    "/patients/{patient_id}/break-glass",
    summary="Break the glass: read a record off your care team for a while, with a reason",
    tag="record",
    body=BreakGlassIn,
    response=GrantOut,
    status=201,
    roles=CLINICIANS,
    errors=(404,),
)
async def break_glass(request: web.Request, body: BreakGlassIn) -> GrantOut:
    grant = await services(request).break_glass.break_glass(
        principal(request), _patient_id(request), body.reason
    )
    return GrantOut(
        id=grant.id,
        patient_id=grant.patient_id,
        user_id=grant.user_id,
        reason=grant.reason,
        granted_at=grant.granted_at,
        expires_at=grant.expires_at,
        reviewed_at=grant.reviewed_at,
        reviewed_by=grant.reviewed_by,
    )


@api.route(
    "GET",
    "/admin/break-glass",
    summary="Break-the-glass grants for review, newest first (?unreviewed=true)",
    tag="admin",
    response=GrantListOut,
    roles=ADMIN,
)
async def list_grants(request: web.Request) -> GrantListOut:
    unreviewed = request.query.get("unreviewed", "").lower() in ("1", "true", "yes")
    lines = await services(request).break_glass.grants(
        principal(request), unreviewed_only=unreviewed
    )
    return GrantListOut(grants=[grant_out(line) for line in lines])


@api.route(
    "POST",
    "/admin/break-glass/{grant_id}/review",
    summary="Mark a break-the-glass grant reviewed",
    tag="admin",
    response=GrantLineOut,
    roles=ADMIN,
    errors=(404, 409),
)
async def review_grant(request: web.Request) -> GrantLineOut:
    grant_id = path_id(request, "grant_id", code="grant_not_found", message="No such grant.")
    line = await services(request).break_glass.mark_reviewed(principal(request), grant_id)
    return grant_out(line)
