"""Server-side login sessions: opaque cookie token, stored hashed, idle and absolute expiry.

All state is in the database, so any server process can resolve or revoke any session.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.principal import Principal
from server.auth.roles import Role
from server.auth.tokens import csrf_token_for, new_token, token_hash
from server.clock import Clock
from server.db.models import LoginSession, User
from server.errors import Unauthenticated
from server.settings import SessionSettings

# last_seen_at is written at most this often, so reads do not each cost a write; the idle
# timeout is therefore exact to within this many seconds.
TOUCH_INTERVAL = timedelta(seconds=10)


class SessionService:
    def __init__(
        self, db: async_sessionmaker[AsyncSession], settings: SessionSettings, clock: Clock
    ) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock

    def idle_timeout_for(self, role: Role) -> int:
        if role is Role.PATIENT:
            return self._settings.idle_timeout_patient_s
        return self._settings.idle_timeout_clinician_s

    async def open(
        self, db: AsyncSession, user: User, client_address: str | None, enrolment_pending: bool
    ) -> tuple[str, LoginSession]:
        """Create a session inside the caller's transaction; returns the cookie token."""
        now = self._clock()
        token = new_token()
        row = LoginSession(
            user_id=user.id,
            token_hash=token_hash(token),
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(seconds=self._settings.absolute_lifetime_s),
            idle_timeout_s=self.idle_timeout_for(Role(user.role)),
            enrolment_pending=enrolment_pending,
            client_address=client_address,
        )
        db.add(row)
        await db.flush()
        return token, row

    async def resolve(self, token: str | None) -> Principal:
        """The principal behind a cookie token, or Unauthenticated saying why not."""
        if not token:
            raise Unauthenticated("Please sign in.", code="not_signed_in")
        now = self._clock()
        async with self._db.begin() as db:
            found = (
                await db.execute(
                    select(LoginSession, User)
                    .join(User, LoginSession.user_id == User.id)
                    .where(LoginSession.token_hash == token_hash(token))
                )
            ).first()
            if found is None:
                raise Unauthenticated("Please sign in.", code="not_signed_in")
            session, user = found[0], found[1]
            if session.revoked_at is not None or user.disabled_at is not None:
                raise Unauthenticated(
                    "Your session has ended. Please sign in again.", code="session_ended"
                )
            expired = self._expiry_reason(session, now)
            if expired is not None:
                session.revoked_at, session.revoked_reason = now, expired
                raise_after_commit = Unauthenticated(
                    "Your session expired. Please sign in again.", code="session_expired"
                )
            else:
                raise_after_commit = None
                if now - session.last_seen_at >= TOUCH_INTERVAL:
                    session.last_seen_at = now
        if raise_after_commit is not None:
            raise raise_after_commit
        return Principal(
            user_id=user.id,
            username=user.username,
            display_name=user.display_name,
            role=Role(user.role),
            session_id=session.id,
            enrolment_pending=session.enrolment_pending,
            totp_enrolled=user.totp_enabled_at is not None,
            csrf_token=csrf_token_for(token),
        )

    def _expiry_reason(self, session: LoginSession, now: datetime) -> str | None:
        if now >= session.expires_at:
            return "absolute_expiry"
        if now - session.last_seen_at >= timedelta(seconds=session.idle_timeout_s):
            return "idle_timeout"
        return None

    async def touch(self, session_id: int) -> bool:
        """Count activity that is not an HTTP request (a live call) towards the idle timeout.

        Returns False when the session is no longer valid, so the caller can end the call's
        authorisation too.
        """
        now = self._clock()
        async with self._db.begin() as db:
            session = await db.get(LoginSession, session_id)
            if session is None or session.revoked_at is not None:
                return False
            if self._expiry_reason(session, now) is not None:
                return False
            session.last_seen_at = now
            return True

    async def revoke(self, token: str, reason: str = "logout") -> None:
        async with self._db.begin() as db:
            await db.execute(
                update(LoginSession)
                .where(
                    LoginSession.token_hash == token_hash(token), LoginSession.revoked_at.is_(None)
                )
                .values(revoked_at=self._clock(), revoked_reason=reason)
            )

    async def revoke_all(self, db: AsyncSession, user_id: int, reason: str) -> None:
        await db.execute(
            update(LoginSession)
            .where(LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None))
            .values(revoked_at=self._clock(), revoked_reason=reason)
        )

    async def still_valid(self, session_ids: list[int]) -> set[int]:
        """Which of these sessions may still be used (for sockets that outlive a request)."""
        now = self._clock()
        async with self._db() as db:
            rows = await db.execute(
                select(LoginSession)
                .join(User, LoginSession.user_id == User.id)
                .where(
                    LoginSession.id.in_(session_ids),
                    LoginSession.revoked_at.is_(None),
                    User.disabled_at.is_(None),
                )
            )
            return {s.id for s in rows.scalars() if self._expiry_reason(s, now) is None}

    async def touch_many(self, session_ids: list[int]) -> None:
        """Time in a live call is activity: push these sessions' idle deadline forward."""
        async with self._db.begin() as db:
            await db.execute(
                update(LoginSession)
                .where(LoginSession.id.in_(session_ids), LoginSession.revoked_at.is_(None))
                .values(last_seen_at=self._clock())
            )
