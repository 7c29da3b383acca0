"""Accounts: creating, listing, disabling users, and the per-role rules an admin sets."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.audit import Action, Actor, AuditLog, Event
from server.auth.passwords import Passwords, password_problem
from server.auth.roles import Role
from server.auth.sessions import SessionService
from server.clock import Clock
from server.db.models import RolePolicy, User
from server.errors import Conflict, NotFound, ValidationFailed
from server.settings import SecuritySettings

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")

# Called with a user id when that user is disabled, e.g. to close their live sockets.
DisableHook = Callable[[int], Awaitable[None]]

# Who acts when no signed-in user does: `liaison users add`, demo seeding.
SYSTEM = Actor.system()


def normalise_username(username: str) -> str:
    return username.strip().lower()


class UserService:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        passwords: Passwords,
        sessions: SessionService,
        security: SecuritySettings,
        clock: Clock,
        audit: AuditLog,
    ) -> None:
        self._db = db
        self._passwords = passwords
        self._sessions = sessions
        self._security = security
        self._clock = clock
        self._audit = audit
        self.on_disable: list[DisableHook] = []

    async def create(
        self, username: str, display_name: str, role: Role, password: str, *, by: Actor = SYSTEM
    ) -> User:
        username = normalise_username(username)
        if not USERNAME_PATTERN.match(username):
            raise ValidationFailed(
                "usernames are 2-63 characters: letters, digits, dot, dash, underscore",
                code="invalid_username",
            )
        problem = password_problem(password)
        if problem:
            raise ValidationFailed(f"password too weak: {problem}", code="weak_password")
        user = User(
            username=username,
            display_name=display_name.strip() or username,
            role=role.value,
            password_hash=await self._passwords.hash(password),
            created_at=self._clock(),
        )
        try:
            async with self._db.begin() as db:
                db.add(user)
                await db.flush()
                # An account exists only with the event that says who made it.
                await self._audit.record_in(db, _account_event(Action.USER_CREATE, by, user))
        except IntegrityError:
            raise Conflict(f"the username {username} is taken", code="username_taken") from None
        return user

    async def by_username(self, db: AsyncSession, username: str) -> User | None:
        return (
            await db.execute(select(User).where(User.username == normalise_username(username)))
        ).scalar_one_or_none()

    async def list(self) -> list[User]:
        async with self._db() as db:
            return list((await db.execute(select(User).order_by(User.username))).scalars())

    async def set_disabled(self, user_id: int, disabled: bool, *, by: Actor = SYSTEM) -> User:
        """Disable (ending every session) or enable an account; audited only when it changes."""
        async with self._db.begin() as db:
            user = await db.get(User, user_id)
            if user is None:
                raise NotFound("no such user", code="user_not_found")
            if disabled and user.disabled_at is None:
                if user.role == Role.ADMIN.value and await self._active_admins(db) <= 1:
                    raise Conflict("This is the last active admin account.", code="last_admin")
                user.disabled_at = self._clock()
                await self._sessions.revoke_all(db, user.id, reason="disabled")
                await self._audit.record_in(db, _account_event(Action.USER_DISABLE, by, user))
            elif not disabled and user.disabled_at is not None:
                user.disabled_at = None
                await self._audit.record_in(db, _account_event(Action.USER_ENABLE, by, user))
        if disabled:
            for hook in self.on_disable:
                await hook(user_id)
        return user

    async def _active_admins(self, db: AsyncSession) -> int:
        count = await db.scalar(
            select(func.count()).where(User.role == Role.ADMIN.value, User.disabled_at.is_(None))
        )
        return int(count or 0)

    async def totp_required(self, db: AsyncSession, role: Role) -> bool:
        if role in self._security.totp_required_roles:
            return True
        policy = await db.get(RolePolicy, role.value)
        return bool(policy and policy.totp_required)

    async def role_policies(self) -> dict[Role, bool]:
        async with self._db() as db:
            return {role: await self.totp_required(db, role) for role in Role}

    async def set_role_policy(self, role: Role, totp_required: bool, *, by: Actor = SYSTEM) -> None:
        """Require (or not) a second factor for a role; audited only when the rule changes."""
        async with self._db.begin() as db:
            policy = await db.get(RolePolicy, role.value)
            if (policy is not None and policy.totp_required) == totp_required:
                return
            if policy is None:
                db.add(
                    RolePolicy(
                        role=role.value, totp_required=totp_required, updated_at=self._clock()
                    )
                )
            else:
                policy.totp_required, policy.updated_at = totp_required, self._clock()
            await self._audit.record_in(
                db,
                Event(
                    Action.ROLE_POLICY_CHANGE,
                    by,
                    target=f"role:{role.value}",
                    detail={"totp_required": totp_required},
                ),
            )


def _account_event(action: Action, by: Actor, user: User) -> Event:
    # The account by id and role only: a username or display name is personal data, and the
    # trail can never be edited to remove it.
    return Event(action, by, target=f"user:{user.id}", detail={"role": user.role})
