"""Signing in and out, and enrolling the TOTP second factor."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth import totp
from server.auth.passwords import Passwords
from server.auth.principal import Principal
from server.auth.roles import Role
from server.auth.sessions import SessionService
from server.auth.throttle import LoginThrottle
from server.auth.users import UserService, normalise_username
from server.clock import Clock
from server.db.models import LoginSession, User
from server.errors import Conflict, Forbidden, NotFound, Unauthenticated
from server.settings import SecuritySettings

log = logging.getLogger("liaison.auth")


@dataclass(frozen=True)
class Enrolment:
    secret: str
    otpauth_uri: str
    qr_svg: str


class AuthService:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        passwords: Passwords,
        sessions: SessionService,
        users: UserService,
        throttle: LoginThrottle,
        security: SecuritySettings,
        clock: Clock,
    ) -> None:
        self._db = db
        self._passwords = passwords
        self._sessions = sessions
        self._users = users
        self._throttle = throttle
        self._security = security
        self._clock = clock

    async def login(
        self, username: str, password: str, totp_code: str | None, address: str
    ) -> tuple[str, Principal]:
        """Check credentials and open a session; returns the cookie token and the principal."""
        username = normalise_username(username)
        await self._throttle.check(username, address)
        async with self._db() as db:
            user = await self._users.by_username(db, username)
        if not await self._passwords.verify(user.password_hash if user else None, password):
            await self._throttle.record_failure(username, address)
            log.info("login failed", extra={"reason": "credentials"})
            raise Unauthenticated("Wrong username or password.", code="invalid_credentials")
        assert user is not None
        if user.disabled_at is not None:
            raise Forbidden(
                "This account is disabled. Ask your administrator.", code="account_disabled"
            )

        async with self._db.begin() as db:
            user = await db.get(User, user.id, with_for_update=True)
            assert user is not None
            enrolled = user.totp_enabled_at is not None
            required = await self._users.totp_required(db, Role(user.role))
            if enrolled:
                if not totp_code:
                    raise Unauthenticated(
                        "Enter the 6-digit code from your authenticator app.", code="totp_required"
                    )
                assert user.totp_secret is not None
                step = totp.accepted_step(
                    user.totp_secret, totp_code, self._clock(), user.totp_last_step
                )
                if step is None:
                    failed = True
                else:
                    failed = False
                    user.totp_last_step = step
            else:
                failed = False
            if not failed:
                if self._passwords.needs_rehash(user.password_hash):
                    user.password_hash = await self._passwords.hash(password)
                await self._throttle.clear_account(db, username)
                token, session = await self._sessions.open(
                    db, user, address, enrolment_pending=required and not enrolled
                )
        if failed:
            await self._throttle.record_failure(username, address)
            log.info("login failed", extra={"reason": "totp", "user_id": user.id})
            raise Unauthenticated(
                "That code is not right. Try the newest code.", code="invalid_totp"
            )
        log.info("login", extra={"user_id": user.id, "session_id": session.id})
        return token, await self._sessions.resolve(token)

    async def logout(self, token: str) -> None:
        await self._sessions.revoke(token, reason="logout")

    async def begin_enrolment(self, principal: Principal) -> Enrolment:
        """Give the user a fresh secret to scan; it takes effect once a code confirms it."""
        async with self._db.begin() as db:
            user = await db.get(User, principal.user_id)
            assert user is not None
            if user.totp_enabled_at is not None:
                raise Conflict(
                    "A second factor is already set up for this account.", code="totp_enrolled"
                )
            user.totp_secret = totp.new_secret()
            uri = totp.provisioning_uri(user.totp_secret, user.username, self._security.totp_issuer)
        return Enrolment(secret=user.totp_secret, otpauth_uri=uri, qr_svg=totp.qr_svg(uri))

    async def confirm_enrolment(self, principal: Principal, code: str) -> None:
        async with self._db.begin() as db:
            user = await db.get(User, principal.user_id)
            assert user is not None
            if user.totp_enabled_at is not None:
                raise Conflict(
                    "A second factor is already set up for this account.", code="totp_enrolled"
                )
            if user.totp_secret is None:
                raise Conflict("Start the set-up first.", code="totp_not_started")
            step = totp.accepted_step(user.totp_secret, code, self._clock(), user.totp_last_step)
            if step is None:
                raise Unauthenticated(
                    "That code is not right. Try the newest code.", code="invalid_totp"
                )
            user.totp_last_step = step
            user.totp_enabled_at = self._clock()
            session = await db.get(LoginSession, principal.session_id)
            assert session is not None
            session.enrolment_pending = False
        log.info("totp enrolled", extra={"user_id": principal.user_id})

    async def reset_totp(self, user_id: int) -> None:
        """An admin clears a lost second factor; the user enrols again at next sign-in."""
        async with self._db.begin() as db:
            user = await db.get(User, user_id)
            if user is None:
                raise NotFound("no such user", code="user_not_found")
            user.totp_secret = None
            user.totp_enabled_at = None
            user.totp_last_step = None
            await self._sessions.revoke_all(db, user_id, reason="totp_reset")
