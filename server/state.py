"""Typed application state: the services every handler reaches through ``request.app``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from server.auth.passwords import Passwords
from server.auth.principal import Principal
from server.auth.service import AuthService
from server.auth.sessions import SessionService
from server.auth.throttle import LoginThrottle
from server.auth.users import UserService
from server.clock import Clock, utc_now
from server.db.engine import create_engine, session_factory
from server.db.migrate import ensure_current
from server.settings import Settings


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


SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", Services)
PRINCIPAL = web.RequestKey("principal", Principal)
# The token from the request's cookie, once the guard has accepted it.
SESSION_TOKEN = web.RequestKey("session_token", str)
# Set by a handler to change the cookie: a token to set it, "" to clear it.
NEW_SESSION_TOKEN = web.RequestKey("new_session_token", str)


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
    try:
        if check_schema:
            await ensure_current(engine)
        db = session_factory(engine)
        passwords = Passwords(settings.passwords)
        sessions = SessionService(db, settings.sessions, clock)
        users = UserService(db, passwords, sessions, settings.security, clock)
        throttle = LoginThrottle(db, settings.security, clock)
        auth = AuthService(db, passwords, sessions, users, throttle, settings.security, clock)
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
        )
    finally:
        await engine.dispose()
