"""Curbside consults over HTTP, the rota's side: who is on call now, shifts, licences, and the
admin's licence rule, figures and their CSV export. Requests themselves are in
server/api/curbside.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, Field

from server.api.curbside import TimesOut, instant, times_out
from server.api.params import path_id
from server.api.patients import CLINICAL
from server.api.routing import Api
from server.auth.roles import Role
from server.curbside import report_csv
from server.curbside.billing import BillingFlag, MinutesSource
from server.curbside.oncall import OnCallView, PolicyView, ShiftView
from server.curbside.views import Report
from server.errors import ValidationFailed
from server.record.demographics import StateCode
from server.state import principal, services
from signaling import curbside as cs

api = Api()
ADMIN = frozenset({Role.ADMIN.value})
PSYCHIATRIST = frozenset({Role.PSYCHIATRIST.value})
ROTA = frozenset({Role.ADMIN.value, Role.PSYCHIATRIST.value})
DEFAULT_SHIFT_DAYS = 7
DEFAULT_REPORT_DAYS = 30
MAX_REPORT_DAYS = 366


class ShiftIn(BaseModel):
    psychiatrist_id: int = Field(ge=1)
    tier: cs.Tier
    starts_at: AwareDatetime
    ends_at: AwareDatetime


class ShiftOut(BaseModel):
    id: int
    psychiatrist_id: int
    psychiatrist_name: str
    tier: cs.Tier
    starts_at: datetime
    ends_at: datetime
    created_by: int


class ShiftListOut(BaseModel):
    shifts: list[ShiftOut]


class OnCallOut(BaseModel):
    psychiatrist_id: int
    display_name: str
    tier: cs.Tier
    presence: cs.Presence
    licensed_states: list[str]


class OnCallListOut(BaseModel):
    on_call: list[OnCallOut]


class LicensesIn(BaseModel):
    states: list[StateCode] = Field(max_length=60)


class LicensesOut(BaseModel):
    states: list[str]


class PolicyIn(BaseModel):
    require_license_match: bool | None = Field(
        description="On, off, or null for the configuration's curbside.require_license_match."
    )


class PolicyOut(BaseModel):
    require_license_match: bool
    configured: bool
    overridden: bool


class ReportLineOut(BaseModel):
    id: int
    created_at: datetime
    mode: cs.Mode
    urgency: cs.Urgency
    status: cs.Status
    patient_id: int
    pcp_id: int
    consultant_id: int | None
    consent_recorded: bool
    times: TimesOut
    consultant_minutes: float | None
    minutes_source: MinutesSource | None = Field(
        description="Where consultant_minutes come from: attested by the consultant, or measured "
        "(a call's talking + documenting; a written answer's form time, up to 240 minutes)."
    )
    billing_flags: list[BillingFlag]


class MetricsOut(BaseModel):
    since: datetime
    until: datetime
    requests: int
    call_now: int
    written: int
    cancelled: int
    answered: int
    time_to_answer_median_s: float | None
    time_to_answer_p90_s: float | None
    share_escalated: float | None = Field(description="Of call-now requests.")
    share_unanswered_then_written: float | None = Field(description="Of call-now requests.")
    share_unanswered: float | None = Field(description="Of requests not cancelled.")
    minutes_per_consult: float | None = Field(
        description="Consultant minutes per consult that has any: a call's talking + "
        "documenting; a written answer's attested minutes, else its measured writing time."
    )
    ringing_median_s: float | None
    consults: list[ReportLineOut]


def shift_out(shift: ShiftView) -> ShiftOut:
    return ShiftOut(
        id=shift.id,
        psychiatrist_id=shift.psychiatrist_id,
        psychiatrist_name=shift.psychiatrist_name,
        tier=shift.tier,
        starts_at=shift.starts_at,
        ends_at=shift.ends_at,
        created_by=shift.created_by,
    )


def on_call_out(view: OnCallView) -> OnCallOut:
    m = view.on_call
    return OnCallOut(
        psychiatrist_id=m.psychiatrist_id,
        display_name=view.display_name,
        tier=m.tier,
        presence=m.presence,
        licensed_states=sorted(m.licensed_states),
    )


def policy_out(view: PolicyView) -> PolicyOut:
    return PolicyOut(
        require_license_match=view.require_license_match,
        configured=view.configured,
        overridden=view.overridden,
    )


def metrics_out(report: Report) -> MetricsOut:
    m = report.metrics
    return MetricsOut(
        since=report.since,
        until=report.until,
        requests=m.requests,
        call_now=m.call_now,
        written=m.written,
        cancelled=m.cancelled,
        answered=m.answered,
        time_to_answer_median_s=m.time_to_answer_median_s,
        time_to_answer_p90_s=m.time_to_answer_p90_s,
        share_escalated=m.share_escalated,
        share_unanswered_then_written=m.share_unanswered_then_written,
        share_unanswered=m.share_unanswered,
        minutes_per_consult=m.minutes_per_consult,
        ringing_median_s=m.ringing_median_s,
        consults=[
            ReportLineOut(
                id=line.row.id,
                created_at=line.row.created_at,
                mode=line.state.request.mode,
                urgency=line.state.request.urgency,
                status=line.state.status,
                patient_id=line.row.patient_id,
                pcp_id=line.row.pcp_id,
                consultant_id=line.state.accepted_by or line.state.answered_by,
                consent_recorded=line.row.consent_recorded_at is not None,
                times=times_out(cs.consult_times(line.state)),
                consultant_minutes=line.consultant_minutes,
                minutes_source=None if line.consultant is None else line.consultant.source,
                billing_flags=list(line.billing),
            )
            for line in report.lines
        ],
    )


def _window(request: web.Request, default_days: int) -> tuple[datetime, datetime]:
    now = services(request).clock()
    since = instant(request, "since", now - timedelta(days=default_days))
    until = instant(request, "until", now + timedelta(microseconds=1))
    if not timedelta(0) < until - since <= timedelta(days=MAX_REPORT_DAYS):
        raise ValidationFailed(
            f"until comes after since, at most {MAX_REPORT_DAYS} days later.", code="invalid_window"
        )
    return since, until


# --- on call -----------------------------------------------------------------------------------


@api.route(
    "GET",
    "/curbside/on-call",
    summary="Psychiatrists on call now, with presence and licensed states",
    tag="curbside",
    response=OnCallListOut,
    roles=CLINICAL,
)
async def on_call_now(request: web.Request) -> OnCallListOut:
    views = await services(request).curbside.oncall.on_call_now()
    return OnCallListOut(on_call=[on_call_out(v) for v in views])


@api.route(
    "GET",
    "/curbside/shifts",
    summary="On-call shifts overlapping ?since= (default now) to ?until= (default a week on)",
    tag="curbside",
    response=ShiftListOut,
    roles=CLINICAL,
    errors=(422,),
)
async def list_shifts(request: web.Request) -> ShiftListOut:
    now = services(request).clock()
    since = instant(request, "since", now)
    until = instant(request, "until", since + timedelta(days=DEFAULT_SHIFT_DAYS))
    shifts = await services(request).curbside.oncall.shifts(since, until)
    return ShiftListOut(shifts=[shift_out(s) for s in shifts])


@api.route(
    "POST",
    "/curbside/shifts",
    summary="Add an on-call shift (admins: anyone's; psychiatrists: their own)",
    tag="curbside",
    body=ShiftIn,
    response=ShiftOut,
    status=201,
    roles=ROTA,
)
async def add_shift(request: web.Request, body: ShiftIn) -> ShiftOut:
    shift = await services(request).curbside.oncall.add_shift(
        principal(request), body.psychiatrist_id, body.tier, body.starts_at, body.ends_at
    )
    return shift_out(shift)


@api.route(
    "DELETE",
    "/curbside/shifts/{shift_id}",
    summary="Remove an on-call shift (admins: anyone's; psychiatrists: their own)",
    tag="curbside",
    roles=ROTA,
    errors=(404,),
)
async def remove_shift(request: web.Request) -> None:
    shift_id = path_id(request, "shift_id", code="shift_not_found", message="No such shift.")
    await services(request).curbside.oncall.remove_shift(principal(request), shift_id)


@api.route(
    "GET",
    "/curbside/licenses",
    summary="The states you are licensed in",
    tag="curbside",
    response=LicensesOut,
    roles=PSYCHIATRIST,
)
async def my_licenses(request: web.Request) -> LicensesOut:
    return LicensesOut(states=await services(request).curbside.oncall.licenses(principal(request)))


@api.route(
    "PUT",
    "/curbside/licenses",
    summary="Replace the states you are licensed in",
    tag="curbside",
    body=LicensesIn,
    response=LicensesOut,
    roles=PSYCHIATRIST,
)
async def set_my_licenses(request: web.Request, body: LicensesIn) -> LicensesOut:
    oncall = services(request).curbside.oncall
    return LicensesOut(states=await oncall.set_licenses(principal(request), body.states))


# --- administration ----------------------------------------------------------------------------


@api.route(
    "GET",
    "/admin/curbside/policy",
    summary="The curbside licence rule in force",
    tag="admin",
    response=PolicyOut,
    roles=ADMIN,
)
async def get_policy(request: web.Request) -> PolicyOut:
    return policy_out(await services(request).curbside.oncall.policy_view())


@api.route(
    "PUT",
    "/admin/curbside/policy",
    summary="Turn the licence rule on or off (null: back to the configuration)",
    tag="admin",
    body=PolicyIn,
    response=PolicyOut,
    roles=ADMIN,
)
async def set_policy(request: web.Request, body: PolicyIn) -> PolicyOut:
    oncall = services(request).curbside.oncall
    return policy_out(await oncall.set_license_rule(principal(request), body.require_license_match))


@api.route(
    "GET",
    "/admin/curbside/metrics",
    summary="Time to answer, escalations, unanswered, minutes; ?since=&until= (default 30 days)",
    tag="admin",
    response=MetricsOut,
    roles=ADMIN,
    errors=(422,),
)
async def curbside_metrics(request: web.Request) -> MetricsOut:
    since, until = _window(request, DEFAULT_REPORT_DAYS)
    report = await services(request).curbside_views.report(principal(request), since, until)
    return metrics_out(report)


@api.route(
    "GET",
    "/admin/curbside/report.csv",
    summary="The consults of ?since=&until= (as the metrics) as CSV, one row each; audited",
    tag="admin",
    roles=ADMIN,
    errors=(422,),
    produces=report_csv.MEDIA_TYPE,
)
async def curbside_report_csv(request: web.Request) -> web.Response:
    since, until = _window(request, DEFAULT_REPORT_DAYS)
    views = services(request).curbside_views
    report = await views.export(principal(request), since, until, "csv")
    return web.Response(
        text=report_csv.report_csv(report),
        content_type=report_csv.MEDIA_TYPE,
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{report_csv.filename(report)}"'},
    )
