"""Sign in, sign out, the current session, and TOTP enrolment."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from server.api.routing import Api
from server.auth.principal import Principal
from server.auth.roles import Role
from server.forwarded import client_address
from server.state import NEW_SESSION_TOKEN, SESSION_TOKEN, principal, services

api = Api()


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    totp_code: str | None = Field(default=None, max_length=10)


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: Role


class SessionOut(BaseModel):
    user: UserOut
    csrf_token: str = Field(description="Send as the X-CSRF-Token header on POST/PUT/PATCH/DELETE.")
    enrolment_required: bool = Field(
        description="A second factor must be set up before anything else can be used."
    )
    totp_enrolled: bool = Field(description="The account has a TOTP second factor set up.")
    idle_timeout_s: int


class TotpEnrolmentOut(BaseModel):
    secret: str
    otpauth_uri: str
    qr_svg: str


class TotpConfirmRequest(BaseModel):
    code: str = Field(min_length=6, max_length=10)


def session_out(request: web.Request, who: Principal) -> SessionOut:
    return SessionOut(
        user=UserOut(
            id=who.user_id, username=who.username, display_name=who.display_name, role=who.role
        ),
        csrf_token=who.csrf_token,
        enrolment_required=who.enrolment_pending,
        totp_enrolled=who.totp_enrolled,
        idle_timeout_s=services(request).sessions.idle_timeout_for(who.role),
    )


@api.route(
    "POST",
    "/auth/login",
    summary="Sign in",
    tag="auth",
    body=LoginRequest,
    response=SessionOut,
    public=True,
    errors=(401, 403, 429),
)
async def login(request: web.Request, body: LoginRequest) -> SessionOut:
    svc = services(request)
    token, who = await svc.auth.login(
        body.username, body.password, body.totp_code, client_address(request) or "unknown"
    )
    request[NEW_SESSION_TOKEN] = token
    return session_out(request, who)


@api.route(
    "GET",
    "/auth/session",
    summary="The current session",
    tag="auth",
    response=SessionOut,
    allow_enrolment=True,
)
async def current_session(request: web.Request) -> SessionOut:
    return session_out(request, principal(request))


@api.route("POST", "/auth/logout", summary="Sign out", tag="auth", allow_enrolment=True)
async def logout(request: web.Request) -> None:
    await services(request).auth.logout(request[SESSION_TOKEN], client_address(request))
    request[NEW_SESSION_TOKEN] = ""


@api.route(
    "POST",
    "/auth/totp/enrol",
    summary="Start setting up a TOTP second factor",
    tag="auth",
    response=TotpEnrolmentOut,
    allow_enrolment=True,
    errors=(409,),
)
async def begin_totp_enrolment(request: web.Request) -> TotpEnrolmentOut:
    enrolment = await services(request).auth.begin_enrolment(principal(request))
    return TotpEnrolmentOut(
        secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri, qr_svg=enrolment.qr_svg
    )


@api.route(
    "POST",
    "/auth/totp/confirm",
    summary="Finish TOTP set-up with a first code",
    tag="auth",
    body=TotpConfirmRequest,
    response=SessionOut,
    allow_enrolment=True,
    errors=(409,),
)
async def confirm_totp_enrolment(request: web.Request, body: TotpConfirmRequest) -> SessionOut:
    svc = services(request)
    await svc.auth.confirm_enrolment(principal(request), body.code)
    return session_out(request, await svc.sessions.resolve(request[SESSION_TOKEN]))
