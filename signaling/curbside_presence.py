"""Psychiatrists' presence, agreed by every server process through the database.

A psychiatrist is present while one of their signaling sockets (the dashboard) is open. Each
such socket has a row (``presence``), written by the process that holds the socket: inserted
on connect, deleted on disconnect, and touched every few seconds with the visit room the socket
is in (a socket in a room means a call: busy). A process that dies stops touching its rows;
anyone reading ignores rows older than ``stale_after`` and, later, deletes them. So any process
can answer "who is online, who is in a call" for sockets held by every other process.

Time is the service clock's, for writing and for reading alike, so tests move it at will.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.clock import Clock
from server.db.models import Presence as PresenceRow

log = logging.getLogger("liaison.curbside")

# Rows this many times older than stale_after are deleted (their process is long gone).
PURGE_FACTOR = 10


@dataclass(frozen=True, slots=True)
class Live:
    """A user with at least one fresh row; ``in_room``: one of their sockets is in a visit."""

    user_id: int
    in_room: bool


class PresenceStore:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        stale_after: timedelta,
        node: str | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self.stale_after = stale_after
        # This server process (one per app): its rows are the ones it touches.
        self.node = node or uuid.uuid4().hex[:16]
        self._rooms: dict[str, int | None] = {}  # the visit id last written for each socket
        self._users: dict[str, int] = {}  # whose each tracked socket is

    async def connected(self, socket_id: str, user_id: int) -> None:
        async with self._db.begin() as db:
            db.add(self._row(socket_id, user_id, self._clock()))
        self._rooms[socket_id] = None
        self._users[socket_id] = user_id

    async def disconnected(self, socket_id: str) -> None:
        self._rooms.pop(socket_id, None)
        self._users.pop(socket_id, None)
        async with self._db.begin() as db:
            await db.execute(
                delete(PresenceRow).where(
                    PresenceRow.node == self.node, PresenceRow.socket_id == socket_id
                )
            )

    async def touch(self, rooms: Mapping[str, int | None]) -> None:
        """Mark every row of this process as seen now, with each socket's current room
        (``rooms``: socket id -> visit id, for this process's tracked sockets)."""
        now = self._clock()
        changed = {
            sid: visit_id
            for sid, visit_id in rooms.items()
            if sid in self._rooms and self._rooms[sid] != visit_id
        }
        async with self._db.begin() as db:
            touched = await db.execute(
                update(PresenceRow)
                .where(PresenceRow.node == self.node)
                .values(last_seen_at=now)
                .returning(PresenceRow.socket_id)
            )
            # A row purged while this process could not touch it (a long pause) comes back.
            seen = set(touched.scalars())
            db.add_all(
                self._row(sid, user_id, now)
                for sid, user_id in self._users.items()
                if sid not in seen
            )
            for sid, visit_id in changed.items():
                await db.execute(
                    update(PresenceRow)
                    .where(PresenceRow.node == self.node, PresenceRow.socket_id == sid)
                    .values(visit_id=visit_id)
                )
            # Anyone's long-dead rows go; a row is ignored long before this.
            await db.execute(
                delete(PresenceRow).where(
                    PresenceRow.last_seen_at < now - self.stale_after * PURGE_FACTOR
                )
            )
        self._rooms.update(changed)

    def _row(self, socket_id: str, user_id: int, now: datetime) -> PresenceRow:
        return PresenceRow(
            user_id=user_id,
            node=self.node,
            socket_id=socket_id,
            visit_id=self._rooms.get(socket_id),
            connected_at=now,
            last_seen_at=now,
        )

    def tracks(self, socket_id: str) -> bool:
        return socket_id in self._rooms

    async def live(self, user_ids: Iterable[int] | None = None) -> dict[int, Live]:
        """Users with a fresh row, on any process."""
        async with self._db() as db:
            return await live_users(db, self._clock() - self.stale_after, user_ids)


async def live_users(
    db: AsyncSession, fresh_since: datetime, user_ids: Iterable[int] | None = None
) -> dict[int, Live]:
    stmt = select(PresenceRow.user_id, PresenceRow.visit_id).where(
        PresenceRow.last_seen_at >= fresh_since
    )
    if user_ids is not None:
        stmt = stmt.where(PresenceRow.user_id.in_(list(user_ids)))
    found: dict[int, Live] = {}
    for user_id, visit_id in (await db.execute(stmt)).all():
        before = found.get(user_id)
        found[user_id] = Live(
            user_id, visit_id is not None or (before is not None and before.in_room)
        )
    return found
