"""Who gets at a record: the access log, the FHIR export, and break the glass with its review
by admins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, Field, RootModel, StringConstraints

from server.api.params import path_id
from server.api.routing import Api
from server.audit import Access as AccessLine
from server.auth.roles import CLINICIAN_ROLES, Role
from server.errors import BadRequest
from server.record.break_glass import GrantLine
from server.state import principal, services

api = Api()
CLINICAL = frozenset({*(r.value for r in CLINICIAN_ROLES), Role.ADMIN.value})
CLINICIANS = frozenset(r.value for r in CLINICIAN_ROLES)
ADMIN = frozenset({Role.ADMIN.value})


def _patient_id(request: web.Request) -> int:
    return path_id(request, "patient_id", code="patient_not_found", message="No such patient.")


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
