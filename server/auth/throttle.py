"""Failed-login throttling per account and per client address.

Failures are rows in the database, so the limit holds across server processes; a sliding window
lets an account recover by itself, and a successful login clears the account's count. An address
counts by :func:`server.forwarded.throttle_key` (an IPv6 client by its /64); callers pass the
full address, which is what the audit trail records.
"""

from __future__ import annotations

import math
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.clock import Clock
from server.db.models import LoginFailure
from server.errors import TooManyRequests
from server.forwarded import throttle_key
from server.settings import SecuritySettings

ACCOUNT = "account"
ADDRESS = "address"


class LoginThrottle:
    def __init__(
        self, db: async_sessionmaker[AsyncSession], settings: SecuritySettings, clock: Clock
    ) -> None:
        self._db = db
        self._window = timedelta(seconds=settings.login_failure_window_s)
        self._limits = {
            ACCOUNT: settings.login_failures_per_account,
            ADDRESS: settings.login_failures_per_address,
        }
        self._clock = clock

    async def check(self, username: str, address: str) -> None:
        """Raise TooManyRequests if either the account or the address is over its limit."""
        now = self._clock()
        since = now - self._window
        async with self._db() as db:
            for kind, key in ((ACCOUNT, username), (ADDRESS, throttle_key(address))):
                count, oldest = (
                    await db.execute(
                        select(func.count(), func.min(LoginFailure.at)).where(
                            LoginFailure.kind == kind,
                            LoginFailure.key == key,
                            LoginFailure.at > since,
                        )
                    )
                ).one()
                if count >= self._limits[kind]:
                    retry_after = max(1, math.ceil((oldest + self._window - now).total_seconds()))
                    raise TooManyRequests(
                        "Too many failed sign-in attempts. Wait a few minutes and try again.",
                        code="login_throttled",
                        retry_after=retry_after,
                    )

    async def record_failure(self, username: str, address: str) -> None:
        now = self._clock()
        async with self._db.begin() as db:
            db.add_all(
                [
                    LoginFailure(kind=ACCOUNT, key=username, at=now),
                    LoginFailure(kind=ADDRESS, key=throttle_key(address), at=now),
                ]
            )
            # Keep the table small: what is outside the window no longer counts.
            await db.execute(delete(LoginFailure).where(LoginFailure.at <= now - self._window))

    async def clear_account(self, db: AsyncSession, username: str) -> None:
        await db.execute(
            delete(LoginFailure).where(LoginFailure.kind == ACCOUNT, LoginFailure.key == username)
        )
