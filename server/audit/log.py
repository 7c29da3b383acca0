"""Appending to the chain: the group-commit writer, the in-transaction append, and the
patient's view of who accessed their record.

One chain across every writer and every server process: an append locks the one-row head in
the database (an UPDATE of the head first, so SQLite takes its write lock before anything is
read, and PostgreSQL a row lock; then SELECT ... FOR UPDATE), numbers and hashes its events from
the head it read, inserts them, moves the head and commits. Nothing about the chain's position
lives in process memory.

Group commit: ``record()`` queues the event and waits for the transaction that makes it
durable; one flusher task per process takes everything queued (up to ``max_batch``) into one
transaction, so concurrent readers share one commit instead of waiting for one each.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Final

from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.audit.chain import Link, link_hash
from server.audit.events import Event
from server.clock import Clock
from server.db.models import AuditChainHead, AuditEvent, Base, User, VisitLink
from server.errors import LiaisonError
from server.forwarded import client_address_var
from server.logs import request_id_var

log = logging.getLogger("liaison.audit")

HEAD_ID: Final = 1
MAX_BATCH: Final = 500
# How long the flusher waits for the head's lock before failing its batch.
LOCK_TIMEOUT_S: Final = 30.0
MAX_ACCESS_PAGE: Final = 200

# Core tables: appends are bulk statements, not objects in the caller's session.
_events = Base.metadata.tables[AuditEvent.__tablename__]
_head = Base.metadata.tables[AuditChainHead.__tablename__]


class AuditUnavailable(LiaisonError):
    """The event could not be made durable, so the action it records must not be reported done."""

    status = 503
    default_code = "audit_unavailable"


@dataclass(frozen=True, slots=True)
class _Stamped:
    """An event with its time, request id and client address settled, ready to be chained."""

    event: Event
    at: datetime
    request_id: str | None
    client_address: str | None


async def _append(db: AsyncSession, items: Sequence[_Stamped]) -> int:
    """Append events to the chain inside ``db``'s transaction, under the head's lock (held
    until that transaction ends); returns the last seq written."""
    conn = await db.connection()
    # The write comes first: on SQLite it takes the database's write lock before the head is
    # read (a read first could see a head another writer is about to move); on PostgreSQL it
    # locks the row, and READ COMMITTED then reads the head as the previous holder left it.
    locked = await conn.execute(update(_head).where(_head.c.id == HEAD_ID).values(seq=_head.c.seq))
    if locked.rowcount != 1:
        raise AuditUnavailable(
            "The audit trail is unavailable.", detail="audit_chain_head row 1 is missing"
        )
    seq, prev_hash = (
        await conn.execute(
            select(_head.c.seq, _head.c.hash).where(_head.c.id == HEAD_ID).with_for_update()
        )
    ).one()
    rows: list[dict[str, object]] = []
    for item in items:
        event = item.event
        seq += 1
        link = Link(
            seq=seq,
            at=item.at,
            actor=event.actor.id,
            actor_role=event.actor.role,
            action=str(event.action),
            patient_id=event.patient_id,
            target=event.target,
            outcome=str(event.outcome),
            client_address=item.client_address,
            request_id=item.request_id,
            detail=event.detail_json,
            prev_hash=prev_hash,
        )
        prev_hash = link_hash(link)
        rows.append({**_fields(link), "hash": prev_hash})
    if rows:
        await conn.execute(insert(_events), rows)
        await conn.execute(
            update(_head).where(_head.c.id == HEAD_ID).values(seq=seq, hash=prev_hash)
        )
    return int(seq)


def _fields(link: Link) -> dict[str, object]:
    return {f.name: getattr(link, f.name) for f in dataclasses.fields(link)}


@dataclass(frozen=True, slots=True)
class Access:
    """One line of a patient's "who accessed my record" list."""

    seq: int
    at: datetime
    actor: str
    actor_role: str
    actor_name: str | None
    action: str
    target: str | None
    outcome: str


@dataclass(slots=True)
class _Pending:
    item: _Stamped
    done: asyncio.Future[None]


class _Stop:
    """Queued by close() behind everything already queued."""


class AuditLog:
    """The audit trail's writer for one process. ``start()`` it before use and ``close()`` it
    (flushing what is queued) before the engine is disposed; or use ``async with``."""

    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        max_batch: int = MAX_BATCH,
        lock_timeout_s: float = LOCK_TIMEOUT_S,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._db = db
        self._clock = clock
        self._max_batch = max_batch
        self._lock_timeout_ms = max(1, int(lock_timeout_s * 1000))
        self._queue: asyncio.Queue[_Pending | _Stop] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._flushes = 0
        self._events_flushed = 0

    @property
    def flushes(self) -> int:
        """Transactions the flusher has committed (each holds one or more events)."""
        return self._flushes

    @property
    def events_flushed(self) -> int:
        return self._events_flushed

    @property
    def queued(self) -> int:
        """Events waiting for the flusher (a gauge worth exporting)."""
        return self._queue.qsize()

    async def start(self) -> None:
        if self._task is None:
            self._closing = False
            self._task = asyncio.create_task(self._run(), name="audit-flusher")

    async def close(self) -> None:
        """Refuse new events, write every queued one, stop the flusher."""
        if self._task is None:
            return
        self._closing = True
        self._queue.put_nowait(_Stop())
        try:
            await self._task
        finally:
            self._task = None

    async def __aenter__(self) -> AuditLog:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _stamp(self, event: Event) -> _Stamped:
        """The event's own time, request id and client address, else this log's clock and the
        current request's id and client address (server/forwarded.py)."""
        return _Stamped(
            event,
            event.at or self._clock(),
            event.request_id or request_id_var.get(),
            event.client_address or client_address_var.get(),
        )

    async def record(self, event: Event) -> None:
        """Write an event; returns once it is committed (raises AuditUnavailable if it cannot
        be). Do not call this while holding a write transaction: on SQLite the flusher would
        wait for that transaction's lock. Use ``record_in`` there."""
        if self._task is None or self._closing:
            raise AuditUnavailable(
                "The audit trail is unavailable.", detail="the audit log is not running"
            )
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(self._stamp(event), done))
        # If the caller is cancelled, the event is still written: the action may have happened.
        await done

    async def record_in(self, db: AsyncSession, *events: Event) -> None:
        """Append events inside the caller's transaction, so they commit (or roll back) with the
        change they record. The head stays locked until that transaction ends: call this last,
        just before the commit."""
        if events:
            await _append(db, [self._stamp(e) for e in events])

    async def _run(self) -> None:
        batch: list[_Pending] = []
        try:
            stopping = False
            while not stopping:
                item = await self._queue.get()
                while True:
                    if isinstance(item, _Stop):
                        stopping = True
                        break
                    batch.append(item)
                    if len(batch) >= self._max_batch or self._queue.empty():
                        break
                    item = self._queue.get_nowait()
                if batch:
                    await self._flush(batch)
                    batch = []
        finally:
            # Cancelled from outside (not through close()): whoever still waits must hear so.
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if isinstance(item, _Pending):
                    batch.append(item)
            for pending in batch:
                _fail(pending, "the audit log stopped before the event was written")

    async def _flush(self, batch: list[_Pending]) -> None:
        try:
            async with self._db.begin() as db:
                conn = await db.connection()
                if conn.dialect.name == "postgresql":
                    # A transaction that took the head (record_in) and then awaits record()
                    # would otherwise stall this process's every audit write for good; on
                    # SQLite the engine's busy timeout bounds the same wait.
                    await conn.execute(text(f"SET LOCAL lock_timeout = {self._lock_timeout_ms}"))
                await _append(db, [p.item for p in batch])
        except Exception as exc:
            # The driver's message ("database is locked"), never the statement's parameters.
            if isinstance(exc, DBAPIError):
                reason = str(exc.orig)
            elif isinstance(exc, AuditUnavailable) and exc.detail:
                reason = exc.detail
            else:
                reason = type(exc).__name__
            log.error("audit append failed", extra={"events": len(batch), "error": reason})
            for pending in batch:
                _fail(pending, reason)
            return
        self._flushes += 1
        self._events_flushed += len(batch)
        for pending in batch:
            if not pending.done.done():
                pending.done.set_result(None)

    async def accesses_for_patient(
        self, patient_id: int, limit: int = 50, before_seq: int | None = None
    ) -> list[Access]:
        """Who did what with this patient's information, newest first; page with the last
        entry's ``seq`` as ``before_seq``. The caller decides who may see it."""
        limit = max(1, min(limit, MAX_ACCESS_PAGE))
        query = select(
            _events.c.seq,
            _events.c.at,
            _events.c.actor,
            _events.c.actor_role,
            _events.c.action,
            _events.c.target,
            _events.c.outcome,
        ).where(_events.c.patient_id == patient_id)
        if before_seq is not None:
            query = query.where(_events.c.seq < before_seq)
        query = query.order_by(_events.c.seq.desc()).limit(limit)
        async with self._db() as db:
            rows = (await db.execute(query)).all()
            names = await _actor_names(db, {row.actor for row in rows})
        return [
            Access(
                seq=row.seq,
                at=row.at,
                actor=row.actor,
                actor_role=row.actor_role,
                actor_name=names.get(row.actor),
                action=row.action,
                target=row.target,
                outcome=row.outcome,
            )
            for row in rows
        ]


async def _actor_names(db: AsyncSession, actors: set[str]) -> dict[str, str]:
    """Display names for "user:<id>" and "link:<id>" actors (a link carries its holder's name)."""
    user_ids = _ids(actors, "user:")
    link_ids = _ids(actors, "link:")
    names: dict[str, str] = {}
    if user_ids:
        found = await db.execute(select(User.id, User.display_name).where(User.id.in_(user_ids)))
        names.update({f"user:{uid}": name for uid, name in found.all()})
    if link_ids:
        found = await db.execute(
            select(VisitLink.id, VisitLink.display_name).where(VisitLink.id.in_(link_ids))
        )
        names.update({f"link:{lid}": name for lid, name in found.all()})
    return names


def _ids(actors: set[str], prefix: str) -> list[int]:
    return [
        int(a[len(prefix) :]) for a in actors if a.startswith(prefix) and a[len(prefix) :].isdigit()
    ]


def _fail(pending: _Pending, reason: str) -> None:
    if not pending.done.done():
        pending.done.set_exception(
            AuditUnavailable("The action could not be recorded. Try again.", detail=reason)
        )
