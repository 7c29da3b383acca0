"""Signing in and out, and enrolling the TOTP second factor."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.audit import Action, Actor, AuditLog, Event, LoginFailure, Outcome
from server.auth import totp
from server.auth.passwords import Passwords
from server.auth.principal import Principal
from server.auth.roles import Role
from server.auth.sessions import SessionService
from server.auth.throttle import LoginThrottle
from server.auth.tokens import token_hash
from server.auth.users import UserService, normalise_username
from server.clock import Clock
from server.db.models import LoginSession, User
from server.errors import Conflict, Forbidden, NotFound, TooManyRequests, Unauthenticated
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
        audit: AuditLog,
    ) -> None:
        self._db = db
        self._passwords = passwords
        self._sessions = sessions
        self._users = users
        self._throttle = throttle
        self._security = security
        self._clock = clock
        self._audit = audit

    async def login(
        self, username: str, password: str, totp_code: str | None, address: str
    ) -> tuple[str, Principal]:
        """Check credentials and open a session; returns the cookie token and the principal."""
        username = normalise_username(username)
        try:
            await self._throttle.check(username, address)
        except TooManyRequests:
            async with self._db() as db:
                user = await self._users.by_username(db, username)
            await self._audit.record(_login_failed(user, address, LoginFailure.THROTTLED))
            raise
        async with self._db() as db:
            user = await self._users.by_username(db, username)
        if not await self._passwords.verify(user.password_hash if user else None, password):
            await self._throttle.record_failure(username, address)
            await self._audit.record(_login_failed(user, address, LoginFailure.CREDENTIALS))
            log.info("login failed", extra={"reason": "credentials"})
            raise Unauthenticated("Wrong username or password.", code="invalid_credentials")
        assert user is not None
        if user.disabled_at is not None:
            await self._audit.record(_login_failed(user, address, LoginFailure.DISABLED))
            raise Forbidden(
                "This account is disabled. Ask your administrator.", code="account_disabled"
            )

        async with self._db.begin() as db:
            user = await db.get(User, user.id, with_for_update=True)
            assert user is not None
            enrolled = user.totp_enabled_at is not None
            required = await self._users.totp_required(db, Role(user.role))
            # The audit event of a failure is written after this transaction, never inside it.
            totp_failure: str | None = None  # "missing" | "wrong"
            if enrolled:
                if not totp_code:
                    totp_failure = "missing"
                else:
                    assert user.totp_secret is not None
                    step = totp.accepted_step(
                        user.totp_secret, totp_code, self._clock(), user.totp_last_step
                    )
                    if step is None:
                        totp_failure = "wrong"
                    else:
                        user.totp_last_step = step
            if totp_failure is None:
                if self._passwords.needs_rehash(user.password_hash):
                    user.password_hash = await self._passwords.hash(password)
                await self._throttle.clear_account(db, username)
                token, session = await self._sessions.open(
                    db, user, address, enrolment_pending=required and not enrolled
                )
                # In the session's own transaction: a session exists only with its login event.
                await self._audit.record_in(
                    db,
                    Event(
                        Action.LOGIN,
                        Actor.user(user.id, user.role),
                        target=f"session:{session.id}",
                        client_address=address,
                    ),
                )
        if totp_failure is not None:
            await self._audit.record(
                _login_failed(user, address, LoginFailure.TOTP, totp=totp_failure)
            )
        if totp_failure == "missing":
            raise Unauthenticated(
                "Enter the 6-digit code from your authenticator app.", code="totp_required"
            )
        if totp_failure == "wrong":
            await self._throttle.record_failure(username, address)
            log.info("login failed", extra={"reason": "totp", "user_id": user.id})
            raise Unauthenticated(
                "That code is not right. Try the newest code.", code="invalid_totp"
            )
        log.info("login", extra={"user_id": user.id, "session_id": session.id})
        return token, await self._sessions.resolve(token)

    async def logout(self, token: str, address: str | None = None) -> None:
        async with self._db() as db:
            found = (
                await db.execute(
                    select(LoginSession.id, User.id, User.role)
                    .join(User, LoginSession.user_id == User.id)
                    .where(LoginSession.token_hash == token_hash(token))
                )
            ).first()
        await self._sessions.revoke(token, reason="logout")
        if found is not None:
            session_id, user_id, role = found
            await self._audit.record(
                Event(
                    Action.LOGOUT,
                    Actor.user(user_id, role),
                    target=f"session:{session_id}",
                    client_address=address,
                )
            )

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
            await self._audit.record_in(
                db, Event(Action.TOTP_ENROL, Actor.of(principal), target=f"user:{user.id}")
            )
        log.info("totp enrolled", extra={"user_id": principal.user_id})

    async def reset_totp(self, user_id: int, *, by: Actor) -> None:
        """An admin clears a lost second factor; the user enrols again at next sign-in."""
        async with self._db.begin() as db:
            user = await db.get(User, user_id)
            if user is None:
                raise NotFound("no such user", code="user_not_found")
            enrolled = user.totp_enabled_at is not None
            user.totp_secret = None
            user.totp_enabled_at = None
            user.totp_last_step = None
            await self._sessions.revoke_all(db, user_id, reason="totp_reset")
            # Even with nothing enrolled the reset ended the user's sessions: it is recorded.
            await self._audit.record_in(
                db,
                Event(
                    Action.TOTP_RESET,
                    by,
                    target=f"user:{user_id}",
                    detail={"role": user.role, "was_enrolled": enrolled},
                ),
            )


def _login_failed(user: User | None, address: str, reason: LoginFailure, **detail: str) -> Event:
    # Never the username typed: for an unknown account it may be anything (even a password).
    return Event(
        Action.LOGIN_FAILED,
        Actor.user(user.id, user.role) if user is not None else Actor.anonymous(),
        outcome=Outcome.DENIED,
        client_address=address,
        detail={"reason": reason.value, **detail},
    )
