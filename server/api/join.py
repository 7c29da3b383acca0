"""The join page's API, for holders of a visit link (no account needed).

The page reads the token from the URL fragment and posts it once to ``/join/exchange``, which
sets the ``liaison_visit`` cookie (HttpOnly, SameSite=Strict, Secure over TLS) and returns a
CSRF token. Every later request carries the cookie; writes also send the CSRF token as the
``X-CSRF-Token`` header, as signed-in users do. Steps: ``identity`` (patients only), ``consent``,
``location`` (patients only); then the browser's device check and the waiting room.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from aiohttp import web
from pydantic import BaseModel, Field

from server.api.routing import Api
from server.auth.tokens import csrf_token_for, tokens_match
from server.errors import Forbidden
from server.forwarded import client_address
from server.http import Handler, set_private_cookie
from server.record.demographics import Address, PhoneNumber, StateCode
from server.state import SETTINGS, services
from server.visits.join import JoinState, Location
from server.visits.participants import ParticipantKind
from server.visits.status import VisitStatus
from server.visits.steps import JoinStep

api = Api()


@dataclass(frozen=True)
class VisitCookie:
    token: str
    max_age_s: int


# Set by a handler to give the browser a visit-session cookie.
NEW_VISIT_COOKIE = web.RequestKey("new_visit_cookie", VisitCookie)


class ExchangeRequest(BaseModel):
    token: str = Field(min_length=16, max_length=128, description="From the link's fragment.")


class VerifyRequest(BaseModel):
    date_of_birth: date


class ConsentRequest(BaseModel):
    consent_version: str = Field(min_length=1, max_length=64)
    accepted: bool


class LocationRequest(BaseModel):
    address: Address | None = None
    state: StateCode | None = Field(default=None, description="Two-letter US state code.")
    callback_phone: PhoneNumber


class JoinVisitOut(BaseModel):
    id: int
    starts_at: datetime
    ends_at: datetime
    duration_minutes: int
    status: VisitStatus
    clinicians: list[str]
    patient_first_name: str | None = Field(description="Only for the patient's own link.")


class JoinYouOut(BaseModel):
    kind: ParticipantKind
    display_name: str
    participant_id: str


class JoinStatusOut(BaseModel):
    visit: JoinVisitOut
    you: JoinYouOut
    steps_completed: list[JoinStep]
    steps_remaining: list[JoinStep]
    next_step: JoinStep | None
    ready_for_room: bool
    csrf_token: str = Field(description="Send as the X-CSRF-Token header on POSTs.")


class ConsentTextOut(BaseModel):
    version: str
    text: str


def status_out(state: JoinState, session_token: str) -> JoinStatusOut:
    visit, you = state.visit, state.identity
    return JoinStatusOut(
        visit=JoinVisitOut(
            id=visit.id,
            starts_at=visit.starts_at,
            ends_at=visit.starts_at + timedelta(minutes=visit.duration_minutes),
            duration_minutes=visit.duration_minutes,
            status=visit.status,
            clinicians=list(visit.clinician_names),
            patient_first_name=visit.patient_first_name,
        ),
        you=JoinYouOut(
            kind=you.kind, display_name=you.display_name, participant_id=you.participant_id
        ),
        steps_completed=list(state.steps_completed),
        steps_remaining=list(state.steps_remaining),
        next_step=state.steps_remaining[0] if state.steps_remaining else None,
        ready_for_room=you.ready_for_room,
        csrf_token=csrf_token_for(session_token),
    )


def _session_token(request: web.Request) -> str:
    return request.cookies.get(request.app[SETTINGS].visits.cookie_name, "")


def _writer_token(request: web.Request) -> str:
    """The visit session token of a state-changing request, once its CSRF token matches."""
    token = _session_token(request)
    if token and not tokens_match(request.headers.get("X-CSRF-Token", ""), csrf_token_for(token)):
        raise Forbidden(
            "The request is missing its CSRF token. Reload the page.", code="csrf_failed"
        )
    return token


@api.route(
    "POST",
    "/join/exchange",
    summary="Exchange a join link's token (once) for a visit session cookie",
    tag="join",
    body=ExchangeRequest,
    response=JoinStatusOut,
    public=True,
    errors=(404, 410),
)
async def exchange(request: web.Request, body: ExchangeRequest) -> JoinStatusOut:
    svc = services(request)
    held = _session_token(request)
    result = await svc.visit_join.exchange(body.token, held or None)
    token = result.session_token or held
    if result.session_token is not None:
        lifetime = result.state.session_expires_at - svc.clock()
        request[NEW_VISIT_COOKIE] = VisitCookie(token, max(1, int(lifetime.total_seconds())))
    return status_out(result.state, token)


@api.route(
    "GET",
    "/join/status",
    summary="Where the link holder is in the steps, and the visit's status",
    tag="join",
    response=JoinStatusOut,
    public=True,
    errors=(401, 410),
)
async def join_status(request: web.Request) -> JoinStatusOut:
    token = _session_token(request)
    return status_out(await services(request).visit_join.status(token), token)


@api.route(
    "GET",
    "/join/consent-text",
    summary="The consent text (and its version) this link holder is asked to accept",
    tag="join",
    response=ConsentTextOut,
    public=True,
    errors=(401, 410),
)
async def consent_text(request: web.Request) -> ConsentTextOut:
    consent = await services(request).visit_join.consent_text(_session_token(request))
    return ConsentTextOut(version=consent.version, text=consent.text)


@api.route(
    "POST",
    "/join/verify",
    summary="Confirm the patient's date of birth (patient links)",
    tag="join",
    body=VerifyRequest,
    response=JoinStatusOut,
    public=True,
    errors=(401, 403, 409, 410, 429),
)
async def verify_identity(request: web.Request, body: VerifyRequest) -> JoinStatusOut:
    token = _writer_token(request)
    state = await services(request).visit_join.verify_identity(
        token, body.date_of_birth, client_address(request) or "unknown"
    )
    return status_out(state, token)


@api.route(
    "POST",
    "/join/consent",
    summary="Accept the telehealth consent (its version and the time are recorded)",
    tag="join",
    body=ConsentRequest,
    response=JoinStatusOut,
    public=True,
    errors=(401, 403, 409, 410),
)
async def record_consent(request: web.Request, body: ConsentRequest) -> JoinStatusOut:
    token = _writer_token(request)
    state = await services(request).visit_join.record_consent(
        token, body.consent_version, body.accepted
    )
    return status_out(state, token)


@api.route(
    "POST",
    "/join/location",
    summary="Where the patient is now (address or state) and a callback phone",
    tag="join",
    body=LocationRequest,
    response=JoinStatusOut,
    public=True,
    errors=(401, 403, 409, 410),
)
async def record_location(request: web.Request, body: LocationRequest) -> JoinStatusOut:
    token = _writer_token(request)
    where = Location(callback_phone=body.callback_phone, address=body.address, state=body.state)
    state = await services(request).visit_join.record_location(token, where)
    return status_out(state, token)


@web.middleware
async def visit_cookie(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Sets the visit-session cookie a handler asked for (on success only)."""
    response = await handler(request)
    cookie = request.get(NEW_VISIT_COOKIE)
    if cookie is not None:
        settings = request.app[SETTINGS]
        set_private_cookie(
            response,
            settings.visits.cookie_name,
            cookie.token,
            cookie.max_age_s,
            settings.server.tls,
        )
    return response
