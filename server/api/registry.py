"""The collaborative-care registry over HTTP: the caseload with its flags, each patient's
scores over time, care-management minutes and follow-up tasks."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from server.api.params import path_id
from server.api.routing import Api
from server.auth.roles import Role
from server.clinics.caseload import CaseloadEntry, sort_caseload
from server.clinics.kinds import ContactKind
from server.clinics.registry import Flag, Trend
from server.db.models import CareContact, FollowUpTask
from server.errors import ValidationFailed
from server.record.screenings import Instrument
from server.state import principal, services

api = Api()
TAG = "registry"
TEAM = frozenset({Role.CARE_MANAGER.value, Role.PSYCHIATRIST.value})
CLINICIANS = frozenset({*TEAM, Role.PCP.value, Role.THERAPIST.value})


def _patient_id(request: web.Request) -> int:
    return path_id(request, "patient_id", code="patient_not_found", message="No such patient.")


class TrendOut(BaseModel):
    baseline: int | None
    baseline_at: datetime | None
    latest: int | None
    latest_at: datetime | None
    count: int
    change_percent: float | None


class CaseloadRowOut(BaseModel):
    patient_id: int
    mrn: str
    given_name: str
    family_name: str
    phq9: TrendOut
    gad7: TrendOut
    weeks_in_treatment: int | None
    last_contact: datetime | None
    days_since_contact: int | None
    flags: list[Flag]
    not_improving: list[Instrument]
    open_safety_flags: int
    open_tasks: int
    last_reviewed: datetime | None = Field(
        description="When the newest signed caseload-review note about the patient was signed."
    )


class RulesOut(BaseModel):
    not_improving_weeks: int
    improvement_target_percent: int
    contact_overdue_days: int


class CaseloadOut(BaseModel):
    rules: RulesOut
    patients: list[CaseloadRowOut]


class ScorePointOut(BaseModel):
    instrument: Instrument
    total: int
    administered_at: datetime


class ScoresOut(BaseModel):
    patient_id: int
    phq9: list[ScorePointOut]
    gad7: list[ScorePointOut]


class ContactIn(BaseModel):
    minutes: int = Field(ge=1, le=600)
    kind: ContactKind
    at: AwareDatetime | None = None


class ContactOut(BaseModel):
    id: int
    patient_id: int
    user_id: int
    at: datetime
    minutes: int
    kind: ContactKind


class ContactListOut(BaseModel):
    contacts: list[ContactOut]


class MonthlyRowOut(BaseModel):
    patient_id: int
    mrn: str
    given_name: str
    family_name: str
    minutes: int
    contacts: int


class MonthlyOut(BaseModel):
    month: str
    patients: list[MonthlyRowOut]


Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]


class TaskIn(BaseModel):
    title: Title
    due: date
    owner_id: int = Field(ge=1)
    source_note_id: int | None = Field(default=None, ge=1)


class TaskPatch(BaseModel):
    title: Title | None = None
    due: date | None = None
    owner_id: int | None = Field(default=None, ge=1)
    done: bool | None = None


class TaskOut(BaseModel):
    id: int
    patient_id: int
    title: str
    due: date
    owner_id: int
    created_by: int
    created_at: datetime
    source_note_id: int | None
    done_at: datetime | None
    done_by: int | None


class TaskListOut(BaseModel):
    tasks: list[TaskOut]


def trend_out(t: Trend) -> TrendOut:
    return TrendOut(
        baseline=t.baseline.total if t.baseline else None,
        baseline_at=t.baseline.at if t.baseline else None,
        latest=t.latest.total if t.latest else None,
        latest_at=t.latest.at if t.latest else None,
        count=t.count,
        change_percent=t.change_percent,
    )


def row_out(e: CaseloadEntry) -> CaseloadRowOut:
    a, p = e.assessment, e.patient
    return CaseloadRowOut(
        patient_id=p.id,
        mrn=p.mrn,
        given_name=p.given_name,
        family_name=p.family_name,
        phq9=trend_out(a.phq9),
        gad7=trend_out(a.gad7),
        weeks_in_treatment=a.weeks_in_treatment,
        last_contact=a.last_contact,
        days_since_contact=a.days_since_contact,
        flags=list(a.flags),
        not_improving=list(a.not_improving),
        open_safety_flags=e.open_safety_flags,
        open_tasks=e.open_tasks,
        last_reviewed=e.last_reviewed,
    )


def contact_out(c: CareContact) -> ContactOut:
    return ContactOut(
        id=c.id,
        patient_id=c.patient_id,
        user_id=c.user_id,
        at=c.at,
        minutes=c.minutes,
        kind=ContactKind(c.kind),
    )


def task_out(t: FollowUpTask) -> TaskOut:
    return TaskOut(
        id=t.id,
        patient_id=t.patient_id,
        title=t.title,
        due=t.due,
        owner_id=t.owner_id,
        created_by=t.created_by,
        created_at=t.created_at,
        source_note_id=t.source_note_id,
        done_at=t.done_at,
        done_by=t.done_by,
    )


@api.route(
    "GET",
    "/registry",
    summary="Your caseload with the registry's flags and when each patient was last reviewed. "
    "?sort=flags|name|weeks|phq9|change|last_contact|last_reviewed; "
    "?flag=safety|not_improving|overdue_contact; ?flagged=true",
    tag=TAG,
    response=CaseloadOut,
    roles=TEAM,
)
async def caseload(request: web.Request) -> CaseloadOut:
    registry = services(request).registry
    entries = await registry.caseload(principal(request))
    wanted = request.query.get("flag")
    if wanted is not None:
        try:
            flag = Flag(wanted)
        except ValueError:
            raise ValidationFailed("Unknown flag.", code="invalid_flag") from None
        entries = [e for e in entries if flag in e.assessment.flags]
    if request.query.get("flagged", "").lower() in ("1", "true", "yes"):
        entries = [e for e in entries if e.assessment.flags]
    entries = sort_caseload(entries, request.query.get("sort", "flags"))
    r = registry.rules
    return CaseloadOut(
        rules=RulesOut(
            not_improving_weeks=r.not_improving_weeks,
            improvement_target_percent=r.improvement_target_percent,
            contact_overdue_days=r.contact_overdue_days,
        ),
        patients=[row_out(e) for e in entries],
    )


@api.route(
    "GET",
    "/registry/{patient_id}/scores",
    summary="A patient's PHQ-9 and GAD-7 totals over time, oldest first (for a chart)",
    tag=TAG,
    response=ScoresOut,
    roles=CLINICIANS,
    errors=(404,),
)
async def scores(request: web.Request) -> ScoresOut:
    pid = _patient_id(request)
    found = await services(request).registry.scores(principal(request), pid)
    points = {
        i: [
            ScorePointOut(instrument=i, total=s.total, administered_at=s.administered_at)
            for s in found
            if s.instrument == i.value
        ]
        for i in Instrument
    }
    return ScoresOut(patient_id=pid, phq9=points[Instrument.PHQ9], gad7=points[Instrument.GAD7])


@api.route(
    "POST",
    "/registry/{patient_id}/contacts",
    summary="Record care-management minutes with a patient",
    tag=TAG,
    body=ContactIn,
    response=ContactOut,
    status=201,
    roles=CLINICIANS,
    errors=(404,),
)
async def add_contact(request: web.Request, body: ContactIn) -> ContactOut:
    contact = await services(request).registry.add_contact(
        principal(request), _patient_id(request), body.minutes, body.kind, body.at
    )
    return contact_out(contact)


@api.route(
    "GET",
    "/registry/{patient_id}/contacts",
    summary="A patient's care-management contacts, newest first",
    tag=TAG,
    response=ContactListOut,
    roles=CLINICIANS,
    errors=(404,),
)
async def list_contacts(request: web.Request) -> ContactListOut:
    found = await services(request).registry.contacts(principal(request), _patient_id(request))
    return ContactListOut(contacts=[contact_out(c) for c in found])


@api.route(
    "GET",
    "/registry/minutes",
    summary="Care-management minutes per patient of your caseload in ?month=YYYY-MM",
    tag=TAG,
    response=MonthlyOut,
    roles=TEAM,
)
async def monthly_minutes(request: web.Request) -> MonthlyOut:
    svc = services(request)
    month = request.query.get("month") or svc.clock().strftime("%Y-%m")
    rows = await svc.registry.monthly_minutes(principal(request), month)
    return MonthlyOut(
        month=month,
        patients=[
            MonthlyRowOut(
                patient_id=p.id,
                mrn=p.mrn,
                given_name=p.given_name,
                family_name=p.family_name,
                minutes=m,
                contacts=n,
            )
            for p, m, n in rows
        ],
    )


@api.route(
    "GET",
    "/registry/{patient_id}/tasks",
    summary="A patient's follow-up tasks (open first, by due date)",
    tag=TAG,
    response=TaskListOut,
    roles=CLINICIANS,
    errors=(404,),
)
async def list_tasks(request: web.Request) -> TaskListOut:
    found = await services(request).registry.tasks(principal(request), _patient_id(request))
    return TaskListOut(tasks=[task_out(t) for t in found])


@api.route(
    "GET",
    "/registry/tasks",
    summary="Your open follow-up tasks, by due date",
    tag=TAG,
    response=TaskListOut,
    roles=CLINICIANS,
)
async def my_tasks(request: web.Request) -> TaskListOut:
    found = await services(request).registry.my_tasks(principal(request))
    return TaskListOut(tasks=[task_out(t) for t in found])


@api.route(
    "POST",
    "/registry/{patient_id}/tasks",
    summary="Add a follow-up task (e.g. a psychiatrist's recommendation from a caseload review); "
    "source_note_id: the patient's note it comes from (422 source_note_not_found otherwise)",
    tag=TAG,
    body=TaskIn,
    response=TaskOut,
    status=201,
    roles=CLINICIANS,
    errors=(404,),
)
async def add_task(request: web.Request, body: TaskIn) -> TaskOut:
    task = await services(request).registry.add_task(
        principal(request),
        _patient_id(request),
        title=body.title,
        due=body.due,
        owner_id=body.owner_id,
        source_note_id=body.source_note_id,
    )
    return task_out(task)


def _task_id(request: web.Request) -> int:
    return path_id(request, "task_id", code="task_not_found", message="No such task.")


@api.route(
    "PATCH",
    "/registry/tasks/{task_id}",
    summary="Change a follow-up task, or mark it done (done: true) or open again",
    tag=TAG,
    body=TaskPatch,
    response=TaskOut,
    roles=CLINICIANS,
    errors=(404,),
)
async def update_task(request: web.Request, body: TaskPatch) -> TaskOut:
    task = await services(request).registry.update_task(
        principal(request),
        _task_id(request),
        title=body.title,
        due=body.due,
        owner_id=body.owner_id,
        done=body.done,
    )
    return task_out(task)


@api.route(
    "DELETE",
    "/registry/tasks/{task_id}",
    summary="Delete a follow-up task",
    tag=TAG,
    roles=CLINICIANS,
    errors=(404,),
)
async def delete_task(request: web.Request) -> None:
    await services(request).registry.delete_task(principal(request), _task_id(request))
