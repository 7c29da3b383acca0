"""Psychiatrists' presence, agreed by every server process through the database.

A psychiatrist is present while one of their signaling sockets that can ring them is open: the
on-call dashboard (or a consult page), which says so with ``curbside:watch``. Their other
sockets (the clinic board, a video visit) have no ring handler and must not make them look
available. Each row (``presence``) is one socket, written by the process that holds it. A
watching socket has a row from the watch until it disconnects; any other psychiatrist socket
has one only while it is in a visit room, because a psychiatrist in a call is busy whichever
page holds it. Rows are touched every few seconds with the room each socket is in (a room
means busy). A process that dies stops touching its rows; anyone reading ignores rows older
than ``stale_after`` and, later, deletes them. So any process can answer "who is online, who
is in a call" for sockets held by every other process.

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
        self._users: dict[str, int] = {}  # this process's psychiatrist sockets: whose
        self._watching: set[str] = set()  # those that can ring (curbside:watch)
        self._rooms: dict[str, int | None] = {}  # sockets with a row: the visit id written

    def connected(self, socket_id: str, user_id: int) -> None:
        """A psychiatrist's socket opened: known, but it rings nobody until it watches."""
        self._users[socket_id] = user_id

    async def watch(self, socket_id: str, user_id: int) -> None:
        """The socket can ring its psychiatrist: they are present from now. Idempotent."""
        self._users[socket_id] = user_id
        self._watching.add(socket_id)
        if socket_id in self._rooms:
            return
        async with self._db.begin() as db:
            db.add(self._row(socket_id, user_id, None, self._clock()))
        self._rooms[socket_id] = None

    async def disconnected(self, socket_id: str) -> bool:
        """Forget the socket; True if it had a row (its psychiatrist may now be offline)."""
        self._users.pop(socket_id, None)
        self._watching.discard(socket_id)
        if socket_id not in self._rooms:
            return False
        del self._rooms[socket_id]
        async with self._db.begin() as db:
            await db.execute(
                delete(PresenceRow).where(
                    PresenceRow.node == self.node, PresenceRow.socket_id == socket_id
                )
            )
        return True

    async def touch(self, rooms: Mapping[str, int | None]) -> set[int]:
        """Mark every row of this process as seen now, with each socket's current room
        (``rooms``: socket id -> visit id, for this process's psychiatrist sockets). A socket
        that does not watch gets a row on entering a room and loses it on leaving. Returns
        whose rows went that way (their psychiatrist may now be offline)."""
        now = self._clock()
        current = {sid: rooms.get(sid, self._rooms.get(sid)) for sid in self._users}
        keep = {
            sid
            for sid, visit_id in current.items()
            if sid in self._watching or visit_id is not None
        }
        gone = [sid for sid in self._rooms if sid not in keep]
        changed = {
            sid: current[sid]
            for sid in keep
            if sid in self._rooms and self._rooms[sid] != current[sid]
        }
        async with self._db.begin() as db:
            if gone:
                await db.execute(
                    delete(PresenceRow).where(
                        PresenceRow.node == self.node, PresenceRow.socket_id.in_(gone)
                    )
                )
            touched = await db.execute(
                update(PresenceRow)
                .where(PresenceRow.node == self.node)
                .values(last_seen_at=now)
                .returning(PresenceRow.socket_id)
            )
            # New rows (a socket entering a room), and rows purged while this process could
            # not touch them (a long pause), which come back.
            seen = set(touched.scalars())
            db.add_all(self._row(sid, self._users[sid], current[sid], now) for sid in keep - seen)
            for sid, visit_id in changed.items():
                if sid in seen:
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
        lost = {self._users[sid] for sid in gone if sid in self._users}
        self._rooms = {sid: current[sid] for sid in keep}
        return lost

    def _row(
        self, socket_id: str, user_id: int, visit_id: int | None, now: datetime
    ) -> PresenceRow:
        return PresenceRow(
            user_id=user_id,
            node=self.node,
            socket_id=socket_id,
            visit_id=visit_id,
            connected_at=now,
            last_seen_at=now,
        )

    def knows(self, socket_id: str) -> bool:
        """A psychiatrist's socket on this process (watching or not)."""
        return socket_id in self._users

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
