"""Server processes of one deployment: who is alive, and cleaning up after one that died.

Every process (node) is an *instance* "<node id>/<random>" with a row in ``cluster_nodes``. The
rooms remember which instance holds each connection (signaling/rooms.py `node_id`), and the
curbside presence rows name it too (``presence.node``). A process:

* on start, claims the rows a previous life of the same node id left (a crash, a restart) and
  cleans up after them before it accepts a socket;
* every ``heartbeat_s`` writes its heartbeat, retries the room disconnects that failed (the
  database was briefly unreachable), and sweeps: an instance silent for ``node_timeout_s`` is
  claimed by compare-and-set on ``claims`` (so of two sweepers, one does the work), its
  connections drop out of their rooms as ordinary disconnects (so the reconnect grace applies
  and a patient reconnecting to another node comes back admitted), its presence rows go (and
  requests ringing only its psychiatrists move on), and its row is deleted;
* if its own heartbeat finds its row claimed or gone, it was declared dead while it was merely
  slow (a long pause, a partition): its rooms no longer list its sockets, so it closes them all
  (the clients reconnect and rejoin) and registers as a new instance, which the late sweep of
  the old one cannot touch.

Time is the app clock of whoever writes or reads: nodes' clocks must agree to well within
``node_timeout_s - heartbeat_s`` (NTP does), and tests move a FakeClock to kill a node.

Emits between processes go through Redis (`RedisQueue`, python-socketio's message queue with
one client to listen and one to publish, each for its whole life): when Redis drops, it says so
once, stops holding emits up on it, subscribes again as soon as Redis takes connections, and
closes what it opened on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import socketio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from sqlalchemy import ColumnElement, delete, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.clock import Clock
from server.db.models import ClusterNode, Visit
from server.db.models import Presence as PresenceRow
from server.periodic import every
from server.settings import ClusterSettings
from server.visits.status import OPEN_VALUES

log = logging.getLogger("liaison.cluster")

# Statuses whose room may still list connections (a clinician alone keeps it SCHEDULED).


def node_name(settings: ClusterSettings) -> str:
    return settings.node_id or f"{socket.gethostname()}-{os.getpid()}"[:64]


def new_instance(node_id: str) -> str:
    return f"{node_id}/{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Dead:
    instance: str
    claims: int


class NodeRegistry:
    """The ``cluster_nodes`` rows: register, heartbeat, find the dead, claim, forget."""

    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        clock: Clock,
        node_id: str,
        timeout: timedelta,
    ) -> None:
        self._db = db
        self._clock = clock
        self.node_id = node_id
        self.timeout = timeout
        self.instance = new_instance(node_id)

    async def register(self) -> list[Dead]:
        """Write this instance's row; returns earlier instances of this node id, claimed by
        this one for cleaning up (whatever their heartbeat says: a node id is one process)."""
        now = self._clock()
        async with self._db.begin() as db:
            earlier = (
                await db.execute(
                    select(ClusterNode).where(
                        ClusterNode.node_id == self.node_id, ClusterNode.instance != self.instance
                    )
                )
            ).scalars()
            previous = []
            for row in earlier:
                if now - row.heartbeat_at < self.timeout:
                    log.warning(
                        "another live process may use this node id",
                        extra={"node": self.node_id, "instance": row.instance},
                    )
                previous.append(Dead(row.instance, row.claims))
            db.add(
                ClusterNode(
                    instance=self.instance,
                    node_id=self.node_id,
                    started_at=now,
                    heartbeat_at=now,
                    claims=0,
                )
            )
        return [d for d in previous if await self._claim(d, force=True)]

    async def beat(self) -> bool:
        """Write the heartbeat; False when this instance was declared dead meanwhile."""
        async with self._db.begin() as db:
            done = await db.execute(
                update(ClusterNode)
                .where(ClusterNode.instance == self.instance, ClusterNode.swept_by.is_(None))
                .values(heartbeat_at=self._clock())
            )
        return bool(done.rowcount)  # type: ignore[attr-defined]

    async def dead(self) -> list[Dead]:
        """Instances silent for the timeout whose sweep nobody is doing (or a sweeper that
        died at it has not finished within the timeout)."""
        cutoff = self._clock() - self.timeout
        async with self._db() as db:
            rows = await db.execute(
                select(ClusterNode.instance, ClusterNode.claims).where(
                    ClusterNode.instance != self.instance, *_unswept_silence(cutoff)
                )
            )
            return [Dead(instance, claims) for instance, claims in rows.all()]

    async def claim(self, dead: Dead) -> bool:
        """Compare-and-set: of sweepers racing for one dead instance, exactly one wins."""
        return await self._claim(dead, force=False)

    async def _claim(self, dead: Dead, *, force: bool) -> bool:
        now = self._clock()
        cutoff = now - self.timeout
        stmt = update(ClusterNode).where(
            ClusterNode.instance == dead.instance, ClusterNode.claims == dead.claims
        )
        if not force:
            # Re-checked in the same statement: it may have beaten since it was read.
            stmt = stmt.where(*_unswept_silence(cutoff))
        async with self._db.begin() as db:
            done = await db.execute(
                stmt.values(swept_by=self.instance, swept_at=now, claims=dead.claims + 1)
            )
        return bool(done.rowcount)  # type: ignore[attr-defined]

    async def forget(self, instance: str) -> None:
        """The sweep of a claimed instance is done."""
        async with self._db.begin() as db:
            await db.execute(
                delete(ClusterNode).where(
                    ClusterNode.instance == instance, ClusterNode.swept_by == self.instance
                )
            )

    async def leave(self) -> None:
        """A clean shutdown: this instance's sockets were closed (and left their rooms)."""
        async with self._db.begin() as db:
            await db.execute(delete(ClusterNode).where(ClusterNode.instance == self.instance))

    async def rooms_of(self, instance: str) -> list[int]:
        """Open rooms that may list a connection of that instance (the caller checks each:
        the LIKE only narrows the scan of room states)."""
        pattern = "%" + _like_escape(f'"{instance}"') + "%"
        async with self._db() as db:
            rows = await db.execute(
                select(Visit.id).where(
                    Visit.status.in_(OPEN_VALUES),
                    Visit.room_state.is_not(None),
                    Visit.room_state.like(pattern, escape="\\"),
                )
            )
            return list(rows.scalars())

    async def drop_presence(self, instance: str) -> set[int]:
        """Delete that instance's curbside presence rows; returns whose they were."""
        async with self._db.begin() as db:
            # One statement: a row added between a SELECT and a DELETE would go unreported.
            deleted = await db.execute(
                delete(PresenceRow)
                .where(PresenceRow.node == instance)
                .returning(PresenceRow.user_id)
                .execution_options(synchronize_session=False)
            )
            return set(deleted.scalars())


def _unswept_silence(cutoff: datetime) -> tuple[ColumnElement[bool], ...]:
    """Silent since before ``cutoff``, and nobody's sweep of it is under way (or a sweeper
    that died at it has not finished since ``cutoff``): one condition for finding the dead
    and for claiming one."""
    return (
        ClusterNode.heartbeat_at < cutoff,
        or_(ClusterNode.swept_at.is_(None), ClusterNode.swept_at < cutoff),
    )


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# What the node task does to the rest of the app (signaling/setup.py wires them).
DropRoom = Callable[[int, str], Awaitable[None]]  # (visit id, dead instance)
PresenceLost = Callable[[int], Awaitable[None]]  # a user whose presence rows went
Fenced = Callable[[], Awaitable[None]]  # this process was declared dead: close its sockets
Renamed = Callable[[str], None]  # this process is now that instance
Upkeep = Callable[[], Awaitable[None]]  # this process's own rooms: failed disconnects, graces


@dataclass
class NodeHooks:
    drop_room: DropRoom
    presence_lost: PresenceLost
    fenced: Fenced
    renamed: Renamed
    upkeep: Upkeep


class Member:
    """This process in the cluster: its start-up cleanup and its periodic task."""

    def __init__(self, registry: NodeRegistry, hooks: NodeHooks, heartbeat_s: float) -> None:
        self.registry = registry
        self.hooks = hooks
        self.heartbeat_s = heartbeat_s

    @property
    def instance(self) -> str:
        return self.registry.instance

    async def start(self) -> None:
        """Register, and clean up after earlier lives of this node id, before any socket."""
        for dead in await self.registry.register():
            await self._clean(dead.instance)

    async def run(self) -> None:
        await every(self.heartbeat_s, self.tick, log=log, failed="cluster heartbeat failed")

    async def tick(self) -> None:
        """One heartbeat: beat (or, if declared dead, start over), upkeep, sweep."""
        if not await self.registry.beat():
            log.error("this process was declared dead; closing its sockets", extra=self._who())
            await self.hooks.fenced()
            self.registry.instance = new_instance(self.registry.node_id)
            self.hooks.renamed(self.registry.instance)
            await self.start()
        await self.hooks.upkeep()
        await self.sweep()

    async def sweep(self) -> int:
        """Clean up after every instance silent for the timeout; returns how many this did."""
        swept = 0
        for dead in await self.registry.dead():
            if await self.registry.claim(dead):
                log.warning("sweeping a dead server process", extra={"instance": dead.instance})
                await self._clean(dead.instance)
                swept += 1
        return swept

    async def stop(self) -> None:
        try:
            await self.registry.leave()
        except (SQLAlchemyError, OSError):
            # Shutting down must not fail because the database is gone: the heartbeat row then
            # simply goes stale, and a live process sweeps this instance like a crashed one.
            log.warning("could not remove this process's heartbeat on shutdown", exc_info=True)

    async def _clean(self, instance: str) -> None:
        # Rooms first: a psychiatrist in a call there is busy until their seat is gone.
        for visit_id in await self.registry.rooms_of(instance):
            await self.hooks.drop_room(visit_id, instance)
        for user_id in await self.registry.drop_presence(instance):
            await self.hooks.presence_lost(user_id)
        await self.registry.forget(instance)

    def _who(self) -> dict[str, str]:
        return {"instance": self.registry.instance}


class RedisQueue(socketio.AsyncRedisManager):  # type: ignore[misc]
    """python-socketio's Redis message queue, keeping one client and one subscription.

    python-socketio (5.18) makes a new Redis client and subscription after any error, in its
    listener or in a publish, and drops the old ones unclosed. Their sockets stay open until the
    garbage collector finds them (measured: two nodes, five forced reconnects, 24 sockets open
    to Redis instead of 4), and an old subscription that redis-py had already restored stays
    subscribed, unread, on the Redis server (4 subscribers to the channel instead of 2). After a
    failed publish, the subscription listened to is no longer the one shutdown can reach. It
    also logs two errors for every message sent during an outage, and waits up to a minute
    before subscribing again once Redis is back.

    redis-py's client replaces a dead connection by itself (with its own retries and backoff),
    so one client (for listening, one more for publishing) serves the whole life; the
    subscription is closed and made again on the same ``PubSub`` object.

    Publishing has a client of its own, which gives up quickly. A socket's events are handled
    one after another (signaling/setup.py), and each emit is delivered to this process's
    sockets first and then published: an emit waiting on Redis holds up that socket's next
    offer, answer or chat. With redis-py's defaults a refused connection fails at once, but a
    Redis that hangs, or a network that drops packets, held every emit for ever (measured:
    bench/redis_outage.py). After a failed publish, publishing is skipped, and the message
    counted as lost, until a probe in the background (or the listener subscribing again)
    reaches Redis: an outage holds up only the emits already publishing when the first one
    fails, each ``PUBLISH_TIMEOUT_S`` at most.
    """

    RETRY_S = 1.0  # between attempts to subscribe again (each already retried by redis-py)
    PROBE_S = 0.5  # between pings of the publishing client while publishing is skipped
    # Far above a PUBLISH's round trip even on a busy host; a slow process waking late after a
    # quick reply would count as an outage, so not much tighter than this.
    PUBLISH_TIMEOUT_S = 1.0

    redis: Any  # the publishing client, once made (python-socketio's attributes, untyped)
    pubsub: Any

    def __init__(self, url: str, channel: str) -> None:
        super().__init__(url, channel=channel)
        self._down = False  # an outage was logged and nothing has got through since
        self._unsent = 0  # messages this process could not publish during it
        self._listening: Any = None  # the subscription's client (redis-py's defaults)
        self._probe: asyncio.Task[None] | None = None  # publishing skipped until it succeeds

    def _redis_connect(self) -> None:
        # Made once: should python-socketio still call this after an error, the first client
        # reconnects by itself.
        if self.redis is None:
            super()._redis_connect()  # the subscription's client, as python-socketio makes it
            self._listening = self.redis
            # Not the subscription's: its connection reads for as long as nobody publishes,
            # which a read timeout would cut.
            self.redis = self._get_redis_module().Redis.from_url(
                self.redis_url,
                **self.redis_options,
                socket_connect_timeout=self.PUBLISH_TIMEOUT_S,
                socket_timeout=self.PUBLISH_TIMEOUT_S,
                # Once, at once, on a connection Redis had closed (a restart, an idle proxy);
                # not after a timeout, which may have published already.
                retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            )
        self.connected = True

    async def _publish(self, data: Any) -> None:
        self._redis_connect()
        if self._probe is not None:
            self._unsent += 1
            return
        try:
            await self.redis.publish(self.channel, self.json.dumps(data))
        except (RedisError, OSError) as error:
            # Pub/sub keeps nothing for a subscriber that is away either, and a late resend
            # would arrive out of order: the message is lost, and counted for the log.
            self._unsent += 1
            self._lost(error)
            if self._probe is None:  # another publish may have failed meanwhile
                self._probe = asyncio.create_task(self._probe_until_reached())
        else:
            self._back()

    async def _probe_until_reached(self) -> None:
        while True:
            await asyncio.sleep(self.PROBE_S)
            try:
                await self.redis.ping()
            except (RedisError, OSError):
                continue
            self._probe = None
            self._back()
            return

    async def _redis_listen_with_retries(self) -> AsyncIterator[dict[str, Any]]:
        self._redis_connect()
        while True:
            try:
                await self.pubsub.subscribe(self.channel)
                self._reached()
                async for message in self.pubsub.listen():
                    yield message
            except (RedisError, OSError) as error:
                self._lost(error)
            # Closing the subscription's connection, whatever state redis-py left it in, is
            # what keeps a half-restored one from staying subscribed on the server.
            with contextlib.suppress(RedisError, OSError):
                await self.pubsub.aclose()
            await asyncio.sleep(self.RETRY_S)

    async def close(self) -> None:
        """Stop listening and close the connections (python-socketio leaves them open)."""
        listener: asyncio.Task[None] | None = getattr(self, "thread", None)
        for task in (listener, self._probe):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._probe = None
        if self.redis is not None:
            # Shutting down must not fail because Redis is gone.
            with contextlib.suppress(RedisError, OSError):
                await self.pubsub.aclose()
            for client in (self._listening, self.redis):
                with contextlib.suppress(RedisError, OSError):
                    await client.aclose()

    def _lost(self, error: Exception) -> None:
        if not self._down:
            self._down = True
            log.warning(
                "Redis is out of reach: server processes cannot reach each other's sockets"
                " until it is back; retrying",
                extra={"redis_error": str(error) or type(error).__name__},
            )

    def _reached(self) -> None:
        """The listener subscribed: Redis takes connections, so publishing may try again."""
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None
        self._back()

    def _back(self) -> None:
        if self._down:
            self._down = False
            log.info("Redis is back", extra={"unsent_messages": self._unsent})
            self._unsent = 0
