"""Typed application state: the services every handler reaches through ``request.app``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from consult_notes.store import KeySource, NoteStore, open_key_source
from server.audit import AuditLog
from server.auth.passwords import Passwords
from server.auth.principal import Principal
from server.auth.service import AuthService
from server.auth.sessions import SessionService
from server.auth.throttle import LoginThrottle
from server.auth.users import UserService
from server.clinics.caseload import RegistryService
from server.clinics.events import ClinicEvents
from server.clinics.service import ClinicService
from server.clock import Clock, utc_now
from server.curbside.oncall import OnCallService
from server.curbside.service import CurbsideService
from server.curbside.views import CurbsideViews
from server.db.engine import create_engine, session_factory
from server.db.migrate import ensure_current
from server.outbox import Outbox, sender_for
from server.record.break_glass import BreakGlassService
from server.record.chart import RecordService
from server.record.export import ExportService
from server.record.guard import RecordGuard
from server.record.notes import NoteService
from server.record.patients import PatientService
from server.record.screening_service import ScreeningService
from server.settings import Settings
from server.visits.events import VisitEvents
from server.visits.join import JoinService
from server.visits.participants import VisitParticipantIdentity
from server.visits.service import VisitService
from signaling.curbside_presence import PresenceStore
from signaling.curbside_store import CurbsideStore
from signaling.echo import EchoPeers


@dataclass
class Services:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    db: async_sessionmaker[AsyncSession]
    passwords: Passwords
    sessions: SessionService
    users: UserService
    throttle: LoginThrottle
    auth: AuthService
    patients: PatientService
    # Hooks the signaling server registers to hear of link and visit changes made over HTTP.
    visit_events: VisitEvents
    visits: VisitService
    # The join page's side: link exchange, the steps, and resolve_visit_session for sockets.
    visit_join: JoinService
    echo: EchoPeers
    # The audit trail's writer (one group-commit flusher per process).
    audit: AuditLog
    # The shared record (server/record) and the consult notes' key ring.
    record: RecordService
    screenings: ScreeningService
    break_glass: BreakGlassService
    notes: NoteService
    export: ExportService
    notes_keys: KeySource
    # Curbside consults (server/curbside): requests, and reading them; shifts and presence
    # are ``curbside.oncall``.
    curbside: CurbsideService
    curbside_views: CurbsideViews
    # Remote clinics and the collaborative-care registry (server/clinics); the outbox is
    # ``clinics.outbox``.
    clinics: ClinicService
    registry: RegistryService


SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", Services)
PRINCIPAL = web.RequestKey("principal", Principal)
# The token from the request's cookie, once the guard has accepted it.
SESSION_TOKEN = web.RequestKey("session_token", str)
# Set by a handler to change the cookie: a token to set it, "" to clear it.
NEW_SESSION_TOKEN = web.RequestKey("new_session_token", str)
# A visit-link holder, on endpoints that allow visit sessions and were called with one.
VISIT_HOLDER = web.RequestKey("visit_holder", VisitParticipantIdentity)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def principal(request: web.Request) -> Principal:
    return request[PRINCIPAL]


@asynccontextmanager
async def open_services(
    settings: Settings, clock: Clock = utc_now, check_schema: bool = True
) -> AsyncIterator[Services]:
    """Open the database and build every service; close them on exit.

    Used by the web app's cleanup context and by command-line tasks that work offline.
    """
    engine = create_engine(settings.database)
    # No I/O until an offer arrives; closed below, before the engine.
    echo = EchoPeers(
        max_peers=settings.device_check.max_peers,
        max_peers_per_owner=settings.device_check.max_peers_per_owner,
        max_lifetime_s=settings.device_check.max_lifetime_s,
    )
    audit: AuditLog | None = None
    try:
        if check_schema:
            await ensure_current(engine)
        db = session_factory(engine)
        audit = AuditLog(db, clock)
        await audit.start()
        passwords = Passwords(settings.passwords)
        sessions = SessionService(db, settings.sessions, clock)
        users = UserService(db, passwords, sessions, settings.security, clock, audit)
        throttle = LoginThrottle(db, settings.security, clock)
        auth = AuthService(
            db, passwords, sessions, users, throttle, settings.security, clock, audit
        )
        visit_events = VisitEvents()
        notes_keys = await open_key_source(settings.notes, db)
        guard = RecordGuard(db, clock, audit)
        notes = NoteService(guard, NoteStore(notes_keys))
        patients = PatientService(db, clock, audit)
        cfg = settings.curbside
        presence = PresenceStore(db, clock, stale_after=timedelta(seconds=cfg.presence_stale_s))
        curbside = CurbsideService(
            db,
            cfg,
            clock,
            guard,
            CurbsideStore(db, clock),
            OnCallService(db, cfg, clock, presence, audit),
            patients,
        )
        visits = VisitService(db, settings, clock, visit_events, audit)
        screenings = ScreeningService(guard)
        outbox = Outbox(db, sender_for(settings.outbox, settings.paths.var_dir), clock)
        clinics = ClinicService(db, clock, audit, visits, screenings, outbox, ClinicEvents())
        yield Services(
            settings=settings,
            clock=clock,
            engine=engine,
            db=db,
            passwords=passwords,
            sessions=sessions,
            users=users,
            throttle=throttle,
            auth=auth,
            patients=patients,
            visit_events=visit_events,
            visits=visits,
            visit_join=JoinService(db, settings.visits, clock, throttle, visit_events, audit),
            echo=echo,
            audit=audit,
            record=RecordService(guard),
            screenings=screenings,
            break_glass=BreakGlassService(guard, settings.record),
            notes=notes,
            export=ExportService(guard, notes, settings.server.public_url),
            notes_keys=notes_keys,
            curbside=curbside,
            curbside_views=CurbsideViews(db, cfg, clock, audit),
            clinics=clinics,
            registry=RegistryService(db, clock, audit, settings.registry),
        )
    finally:
        await echo.close()
        if audit is not None:
            # Writes what is still queued; before the engine goes.
            await audit.close()
        await engine.dispose()
