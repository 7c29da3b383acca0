"""What the socket session sweeper asks the database (signaling/session_sweeper.py).

Sockets outlive the request that authenticated them, so each process checks that the login
sessions behind its sockets still hold. Asking about every socket's session every second cost
~10% of a core at 2,000 sockets; instead the sweeper asks, each second, only which sessions
were revoked lately (an indexed range on ``revoked_at``, normally empty; disabling an account
revokes its sessions), and works out from each session's deadlines when it next needs a look.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import LoginSession, User


class SessionWatch:
    def __init__(self, db: async_sessionmaker[AsyncSession]) -> None:
        self._db = db

    async def revoked_since(self, since: datetime) -> set[int]:
        async with self._db() as db:
            rows = await db.execute(select(LoginSession.id).where(LoginSession.revoked_at >= since))
            return set(rows.scalars())

    async def deadlines(self, session_ids: Iterable[int]) -> dict[int, datetime | None]:
        """For each session, when it will expire (absolute or idle, as of its last activity),
        or None when it no longer holds (revoked, account disabled, gone)."""
        ids = list(session_ids)
        found: dict[int, datetime | None] = dict.fromkeys(ids)
        async with self._db() as db:
            rows = await db.execute(
                select(
                    LoginSession.id,
                    LoginSession.expires_at,
                    LoginSession.last_seen_at,
                    LoginSession.idle_timeout_s,
                )
                .join(User, LoginSession.user_id == User.id)
                .where(
                    LoginSession.id.in_(ids),
                    LoginSession.revoked_at.is_(None),
                    User.disabled_at.is_(None),
                )
            )
            for session_id, expires_at, last_seen_at, idle_s in rows.all():
                found[session_id] = min(expires_at, last_seen_at + timedelta(seconds=idle_s))
        return found
