"""The application factory: ``create_app(settings) -> web.Application``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from sqlalchemy import text

from server import __version__
from server.api import admin as admin_api
from server.api import auth as auth_api
from server.api import clinics as clinics_api
from server.api import curbside as curbside_api
from server.api import curbside_rota as curbside_rota_api
from server.api import devicecheck as devicecheck_api
from server.api import join as join_api
from server.api import me as me_api
from server.api import notes as notes_api
from server.api import patients as patients_api
from server.api import record as record_api
from server.api import record_access as record_access_api
from server.api import registry as registry_api
from server.api import screenings as screenings_api
from server.api import visits as visits_api
from server.api.routing import STATE_CHANGING, Api, Endpoint, openapi_document
from server.auth.tokens import csrf_token_for, tokens_match
from server.clinics.live import attach_clinic_live
from server.clinics.no_show_task import attach_no_show_task
from server.clock import Clock, utc_now
from server.errors import Forbidden
from server.forwarded import client_address_middleware
from server.http import Handler, make_middlewares, set_private_cookie
from server.metrics import attach_metrics, http_metrics
from server.outbox_tasks import attach_outbox_tasks
from server.settings import PROJECT_ROOT, Settings
from server.shutdown import DRAINING, attach_shutdown
from server.state import (
    NEW_SESSION_TOKEN,
    PRINCIPAL,
    SERVICES,
    SESSION_TOKEN,
    SETTINGS,
    VISIT_HOLDER,
    open_services,
)
from server.web import add_web_client_routes
from signaling.setup import attach_signaling

log = logging.getLogger("liaison.app")

OPENAPI = web.AppKey("openapi", dict)


def build_api() -> Api:
    api = Api()
    for module in (
        auth_api,
        admin_api,
        devicecheck_api,
        patients_api,
        visits_api,
        join_api,
        record_api,
        screenings_api,
        record_access_api,
        notes_api,
        me_api,
        curbside_api,
        curbside_rota_api,
        clinics_api,
        registry_api,
    ):
        api.include(module.api)
    return api


def create_app(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    check_schema: bool = True,
    web_client_dir: Path | None = None,
) -> web.Application:
    app = web.Application(
        middlewares=[
            http_metrics,  # outermost: it times whole requests and sees errors as sent
            client_address_middleware(settings.server.trusted_proxies),
            *make_middlewares(settings.server.max_body_bytes),
            session_cookie,
            join_api.visit_cookie,
        ],
        client_max_size=settings.server.max_body_bytes,
    )
    app[SETTINGS] = settings
    attach_shutdown(app)
    api = build_api()
    app[OPENAPI] = openapi_document(api, "Liaison", __version__)

    async def services_ctx(app: web.Application) -> AsyncIterator[None]:
        async with open_services(settings, clock, check_schema) as svc:
            app[SERVICES] = svc
            yield

    app.cleanup_ctx.append(services_ctx)
    attach_signaling(app)  # after the services: its cleanup runs first, while they are open
    attach_clinic_live(app)  # after the signaling: it hooks into the namespace
    attach_metrics(app)  # after the signaling too: it observes the namespace's events
    attach_outbox_tasks(app)  # reminders and outbox retries (after the services)
    attach_no_show_task(app)  # clinic visits nobody turned up to (after the services)
    api.mount(app, guard)
    app.router.add_get("/api/openapi.json", openapi_json)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    add_web_client_routes(app, web_client_dir or PROJECT_ROOT / "web_client" / "dist")
    return app


async def guard(request: web.Request, endpoint: Endpoint) -> None:
    """Origin, session, second-factor, role and CSRF checks for one endpoint."""
    svc = request.app[SERVICES]
    settings = svc.settings
    origin = request.headers.get("Origin")
    if (
        request.method in STATE_CHANGING
        and origin is not None
        and origin not in settings.server.origins
    ):
        raise Forbidden("Requests from other sites are refused.", code="bad_origin")
    if endpoint.public:
        return
    if endpoint.allow_visit_session and settings.sessions.cookie_name not in request.cookies:
        visit_token = request.cookies.get(settings.visits.cookie_name)
        if visit_token:
            holder = await svc.visit_join.resolve_visit_session(visit_token)
            _check_csrf(request, csrf_token_for(visit_token))
            request[VISIT_HOLDER] = holder
            return
    token = request.cookies.get(settings.sessions.cookie_name, "")
    who = await svc.sessions.resolve(token)
    if who.enrolment_pending and not endpoint.allow_enrolment:
        raise Forbidden("Set up your second factor first.", code="totp_enrolment_required")
    if endpoint.roles is not None and who.role.value not in endpoint.roles:
        raise Forbidden("Your role does not allow this.", code="role_forbidden")
    _check_csrf(request, who.csrf_token)
    request[PRINCIPAL] = who
    request[SESSION_TOKEN] = token


def _check_csrf(request: web.Request, expected: str) -> None:
    if request.method in STATE_CHANGING and not tokens_match(
        request.headers.get("X-CSRF-Token", ""), expected
    ):
        raise Forbidden(
            "The request is missing its CSRF token. Reload the page.", code="csrf_failed"
        )


@web.middleware
async def session_cookie(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    new_token = request.get(NEW_SESSION_TOKEN)
    if new_token is not None:
        settings = request.app[SETTINGS]
        name = settings.sessions.cookie_name
        if new_token:
            set_private_cookie(
                response,
                name,
                new_token,
                settings.sessions.absolute_lifetime_s,
                settings.server.tls,
            )
        else:
            response.del_cookie(name, path="/", secure=settings.server.tls, samesite="Strict")
    return response


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    if request.app[DRAINING].active:
        # Shutting down (server/shutdown.py): the load balancer sends new work elsewhere.
        return web.json_response({"status": "draining"}, status=503)
    try:
        async with request.app[SERVICES].engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        log.exception("readiness check failed")
        return web.json_response({"status": "unavailable", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ok", "database": "ok"})
