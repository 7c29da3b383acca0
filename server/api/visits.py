"""Video visits, the clinicians' side: scheduling, the day's list, join links, cancelling."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from server.api.params import path_id
from server.api.patients import CLINICAL
from server.api.routing import Api
from server.auth.roles import Role
from server.errors import ValidationFailed
from server.state import principal, services
from server.visits.links import GuestRole, LinkKind, LinkState
from server.visits.rules import MAX_DURATION_MINUTES, MIN_DURATION_MINUTES
from server.visits.service import (
    IssuedLink,
    LinkView,
    NewVisit,
    VisitView,
)
from server.visits.status import VisitStatus

api = Api()
MAX_CLINICIANS = 8


class ScheduleVisitRequest(BaseModel):
    patient_id: int = Field(ge=1)
    scheduled_start: AwareDatetime = Field(description="ISO 8601 with a time zone or offset.")
    duration_minutes: int = Field(ge=MIN_DURATION_MINUTES, le=MAX_DURATION_MINUTES)
    clinician_ids: list[int] = Field(min_length=1, max_length=MAX_CLINICIANS)
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None


class InviteGuestRequest(BaseModel):
    guest_role: GuestRole
    display_name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
    ] = Field(description="How the guest appears in the waiting room and the call.")


class ClinicianOut(BaseModel):
    user_id: int
    display_name: str
    role: Role


class VisitPatientOut(BaseModel):
    id: int
    mrn: str
    given_name: str
    family_name: str
    preferred_language: str


class LinkOut(BaseModel):
    id: int
    kind: LinkKind
    guest_role: GuestRole | None
    display_name: str
    state: LinkState
    expires_at: datetime
    created_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None


class IssuedLinkOut(BaseModel):
    link: LinkOut
    url: str = Field(
        description="The join URL, token in its fragment. Shown this once: only a hash is kept."
    )


class VisitOut(BaseModel):
    id: int
    patient: VisitPatientOut
    scheduled_start: datetime
    ends_at: datetime
    duration_minutes: int
    status: VisitStatus
    reason: str | None
    clinicians: list[ClinicianOut]
    links: list[LinkOut]
    interpreter_suggested: bool = Field(
        description="The patient's language is not the clinic's and no interpreter is invited."
    )
    preferred_language: str
    clinic_language: str
    created_at: datetime
    cancelled_at: datetime | None


class ScheduledVisitOut(BaseModel):
    visit: VisitOut
    patient_link: IssuedLinkOut


class VisitListOut(BaseModel):
    date: date
    time_zone: str
    visits: list[VisitOut]


def link_out(link: LinkView) -> LinkOut:
    return LinkOut(
        id=link.id,
        kind=link.kind,
        guest_role=link.guest_role,
        display_name=link.display_name,
        state=link.state,
        expires_at=link.expires_at,
        created_at=link.created_at,
        used_at=link.used_at,
        revoked_at=link.revoked_at,
    )


def issued_out(issued: IssuedLink) -> IssuedLinkOut:
    return IssuedLinkOut(link=link_out(issued.link), url=issued.url)


def visit_out(view: VisitView, clinic_language: str) -> VisitOut:
    v, p = view.visit, view.patient
    return VisitOut(
        id=v.id,
        patient=VisitPatientOut(
            id=p.id,
            mrn=p.mrn,
            given_name=p.given_name,
            family_name=p.family_name,
            preferred_language=p.preferred_language,
        ),
        scheduled_start=v.scheduled_start,
        ends_at=view.ends_at,
        duration_minutes=v.duration_minutes,
        status=view.status,
        reason=v.reason,
        clinicians=[
            ClinicianOut(user_id=u.id, display_name=u.display_name, role=Role(u.role))
            for u in view.clinicians
        ],
        links=[link_out(link) for link in view.links],
        interpreter_suggested=view.interpreter_suggested,
        preferred_language=p.preferred_language,
        clinic_language=clinic_language,
        created_at=v.created_at,
        cancelled_at=v.cancelled_at,
    )


def _visit_out(request: web.Request, view: VisitView) -> VisitOut:
    return visit_out(view, services(request).visits.clinic_language)


def _visit_id(request: web.Request) -> int:
    return path_id(request, "visit_id", code="visit_not_found", message="No such visit.")


def _day_and_zone(request: web.Request) -> tuple[date, ZoneInfo]:
    name = request.query.get("tz", "UTC")
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(
            'Give the time zone as an IANA name, such as "America/New_York".',
            code="invalid_time_zone",
        ) from None
    raw = request.query.get("date")
    if raw is None:
        return services(request).clock().astimezone(zone).date(), zone
    try:
        return date.fromisoformat(raw), zone
    except ValueError:
        raise ValidationFailed("Give the date as YYYY-MM-DD.", code="invalid_date") from None


@api.route(
    "POST",
    "/visits",
    summary="Schedule a video visit; returns the patient's join link once",
    tag="visits",
    body=ScheduleVisitRequest,
    response=ScheduledVisitOut,
    status=201,
    roles=CLINICAL,
    errors=(404,),
)
async def schedule_visit(request: web.Request, body: ScheduleVisitRequest) -> ScheduledVisitOut:
    new = NewVisit(
        patient_id=body.patient_id,
        scheduled_start=body.scheduled_start,
        duration_minutes=body.duration_minutes,
        clinician_ids=body.clinician_ids,
        reason=body.reason or None,
    )
    view, link = await services(request).visits.schedule(principal(request), new)
    return ScheduledVisitOut(visit=_visit_out(request, view), patient_link=issued_out(link))


@api.route(
    "GET",
    "/visits",
    summary="Your visits on a day: ?date=YYYY-MM-DD (default today) &tz=IANA zone (default UTC)",
    tag="visits",
    response=VisitListOut,
    roles=CLINICAL,
    errors=(422,),
)
async def list_visits(request: web.Request) -> VisitListOut:
    day, zone = _day_and_zone(request)
    views = await services(request).visits.list_for_day(principal(request), day, zone)
    return VisitListOut(
        date=day, time_zone=zone.key, visits=[_visit_out(request, v) for v in views]
    )


@api.route(
    "GET",
    "/visits/{visit_id}",
    summary="A visit, its clinicians and its links",
    tag="visits",
    response=VisitOut,
    roles=CLINICAL,
    errors=(404,),
)
async def get_visit(request: web.Request) -> VisitOut:
    view = await services(request).visits.detail(principal(request), _visit_id(request))
    return _visit_out(request, view)


@api.route(
    "POST",
    "/visits/{visit_id}/links",
    summary="Invite a guest (interpreter, family, PCP) with a link of their own; URL shown once",
    tag="visits",
    body=InviteGuestRequest,
    response=IssuedLinkOut,
    status=201,
    roles=CLINICAL,
    errors=(404, 409),
)
async def invite_guest(request: web.Request, body: InviteGuestRequest) -> IssuedLinkOut:
    issued = await services(request).visits.invite_guest(
        principal(request), _visit_id(request), body.guest_role, body.display_name
    )
    return issued_out(issued)


@api.route(
    "POST",
    "/visits/{visit_id}/patient-link",
    summary="Issue a new patient link (earlier ones stop working); URL shown once",
    tag="visits",
    response=IssuedLinkOut,
    status=201,
    roles=CLINICAL,
    errors=(404, 409),
)
async def reissue_patient_link(request: web.Request) -> IssuedLinkOut:
    issued = await services(request).visits.reissue_patient_link(
        principal(request), _visit_id(request)
    )
    return issued_out(issued)


@api.route(
    "POST",
    "/links/{link_id}/revoke",
    summary="Revoke a join link; its holder's visit session ends",
    tag="visits",
    response=LinkOut,
    roles=CLINICAL,
    errors=(404,),
)
async def revoke_link(request: web.Request) -> LinkOut:
    link_id = path_id(request, "link_id", code="link_not_found", message="No such link.")
    return link_out(await services(request).visits.revoke_link(principal(request), link_id))


@api.route(
    "POST",
    "/visits/{visit_id}/cancel",
    summary="Cancel a visit that has not started",
    tag="visits",
    response=VisitOut,
    roles=CLINICAL,
    errors=(404, 409),
)
async def cancel_visit(request: web.Request) -> VisitOut:
    view = await services(request).visits.cancel(principal(request), _visit_id(request))
    return _visit_out(request, view)


@api.route(
    "POST",
    "/visits/{visit_id}/no-show",
    summary="Mark a visit a no-show (after its start time, nobody waiting)",
    tag="visits",
    response=VisitOut,
    roles=CLINICAL,
    errors=(404, 409),
)
async def mark_no_show(request: web.Request) -> VisitOut:
    view = await services(request).visits.mark_no_show(principal(request), _visit_id(request))
    return _visit_out(request, view)
