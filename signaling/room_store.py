"""Visit rooms kept in the database, changed with optimistic concurrency.

Every change loads the visit's room state, applies a pure transition from signaling/rooms.py
and saves it with ``UPDATE ... WHERE room_version = <read version>``; if another process (or
task) saved first, nothing is written and the transition runs again on the fresh state. So the
room is one value agreed by every server process, and no process's memory decides anything.

The durable visit row follows the room in the same transaction (server/visits/lifecycle.py):
``visits.status`` mirrors the room's status, and the Encounter is opened when the call starts
and closed, with who attended, when it ends.

Relaying a signal asks "are both connections in this call?" of the room. One process answers
from its cache of the rooms it read or wrote, exact because it is the only writer. Several
processes (a Redis URL configured) do not cache: every relay reads the room from the database,
because a cache invalidated by a published (visit_id, version) would be stale for the time the
message takes, and indefinitely if one is lost while Redis reconnects; during that window a
participant sent back to the waiting room (or removed) on another node could still signal
into the call.

Those reads are batched: one query at a time per process reads every room asked for while the
previous query ran (``SELECT id, room_state FROM visits WHERE id IN (...)``). A read answers
only requests queued before it began, so each answer is the database's committed state at or
after the moment it was asked for, as if each had run its own query; under load one query
serves many relays instead of each taking a pooled connection (and, past the pool's five,
opening and closing a SQLite connection and its thread). A stored state equal to the one last
parsed is not parsed again. bench/README.md ("cluster") has the measured cost before and after.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.clock import Clock
from server.db.models import Visit
from server.errors import Conflict, Forbidden, LiaisonError, NotFound
from server.settings import SignalingSettings
from server.visits.lifecycle import Attendee, RoomOutcome, record_room_outcome, save_room_state
from server.visits.participants import ParticipantKind
from server.visits.service import Roster
from server.visits.status import VisitStatus
from signaling import rooms
from signaling.identity import Identity

log = logging.getLogger("liaison.rooms")

MAX_ATTEMPTS = 25
# Rooms remembered per process for relaying signals (a few hundred bytes each).
MAX_CACHED_ROOMS = 10_000
# Rooms read by one query at most (bound parameters of its IN list).
MAX_READ_BATCH = 500
TERMINAL_BY_HTTP = {rooms.VisitStatus.CANCELLED.value, rooms.VisitStatus.NO_SHOW.value}

RosterSource = Callable[[int], Awaitable[Roster]]


class RoomStore:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        settings: SignalingSettings,
        clock: Clock,
        roster: RosterSource,
        *,
        cache_rooms: bool = True,
    ) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock
        self._roster = roster
        # The newest state of each room this process read or wrote, so that relaying a signal
        # (every ICE candidate) needs no database read: bench/signaling.py measured the read at
        # ~80% of the server CPU per relayed message. Changes still always go through the
        # database (`apply`), so the cache only ever answers "who is in the call". It is exact
        # only while this process is the only writer of rooms: signaling/setup.py turns it off
        # in a cluster (see the module's docstring).
        self._cache: dict[int, rooms.RoomState] | None = {} if cache_rooms else None
        # Reads waiting for the next batch query, and the lock that lets one run at a time.
        self._queued: list[_Read] = []
        self._reading = asyncio.Lock()
        # The stored JSON last parsed for each room and what it parsed to: a memo of a pure
        # function, so it answers exactly what parsing again would.
        self._parsed: dict[int, tuple[str, rooms.RoomState]] = {}

    async def load(self, visit_id: int) -> rooms.RoomState:
        """The room as it stands, for read-only questions (may a signal be relayed?)."""
        if self._cache is not None and (cached := self._cache.get(visit_id)) is not None:
            return cached
        stored = await self._read(visit_id)
        if stored is None:
            return await self._create(visit_id)
        state = self._parse(visit_id, stored)
        self._remember(state)
        return state

    async def _read(self, visit_id: int) -> str | None:
        """The room's stored JSON as committed when this was called or later."""
        read = _Read(visit_id)
        self._queued.append(read)
        async with self._reading:
            while not read.done:
                await self._read_queued()
        if read.error is not None:
            raise read.error
        return read.stored

    async def _read_queued(self) -> None:
        # Called with self._reading held: every read in the batch was queued before its query.
        batch = self._queued[:MAX_READ_BATCH]
        del self._queued[:MAX_READ_BATCH]
        try:
            async with self._db() as db:
                rows = await db.execute(
                    select(Visit.id, Visit.room_state).where(
                        Visit.id.in_({r.visit_id for r in batch})
                    )
                )
                found: dict[int, str | None] = {visit_id: stored for visit_id, stored in rows}
        except asyncio.CancelledError:
            self._queued[:0] = batch  # the next holder of the lock reads them
            raise
        except Exception as exc:
            for read in batch:
                read.fail(exc)
            return
        for read in batch:
            if read.visit_id in found:
                read.stored, read.done = found[read.visit_id], True
            else:
                read.fail(NotFound("No such visit.", code="visit_not_found"))

    def _parse(self, visit_id: int, stored: str) -> rooms.RoomState:
        known = self._parsed.get(visit_id)
        if known is not None and known[0] == stored:
            return known[1]
        state = rooms.RoomState.from_dict(json.loads(stored))
        self._parsed.pop(visit_id, None)  # re-insert: the dict's order is recency
        self._parsed[visit_id] = (stored, state)
        if len(self._parsed) > MAX_CACHED_ROOMS:
            del self._parsed[next(iter(self._parsed))]
        return state

    def _remember(self, state: rooms.RoomState) -> None:
        if self._cache is None:
            return
        known = self._cache.get(state.visit_id)
        if known is not None and known.version > state.version:
            return  # a slower task read an older state; keep the newer one
        self._cache.pop(state.visit_id, None)  # re-insert: the dict's order is recency
        self._cache[state.visit_id] = state
        if len(self._cache) > MAX_CACHED_ROOMS:
            del self._cache[next(iter(self._cache))]

    async def apply(
        self,
        visit_id: int,
        transition: Callable[[rooms.RoomState, datetime], rooms.Transition],
    ) -> rooms.Transition:
        """Apply a transition to the stored room; retried on a concurrent change."""
        for _ in range(MAX_ATTEMPTS):
            async with self._db() as db:
                row = await self._row(db, visit_id)
                version, durable_status, stored = row.room_version, row.status, row.room_state
            state = (
                rooms.RoomState.from_dict(json.loads(stored))
                if stored
                else await self._create(visit_id)
            )
            now = self._clock()
            effects: list[rooms.Effect] = []
            if durable_status in TERMINAL_BY_HTTP and not state.status.is_terminal:
                # Cancelled or marked a no-show over HTTP: close the room the same way first.
                closed = _close_like(state, durable_status, now)
                state, effects = closed.state, list(closed.effects)
            result = transition(state, now)
            new_state, effects = result.state, effects + list(result.effects)
            if stored and new_state == state:
                self._remember(new_state)
                return rooms.Transition(new_state, effects)  # nothing to save (a retried join)
            if await self._save(visit_id, version, new_state):
                self._remember(new_state)
                return rooms.Transition(new_state, effects)
        raise Conflict("The visit is busy; try again.", code="room_busy")

    async def _row(self, db: AsyncSession, visit_id: int) -> Visit:
        visit = await db.get(Visit, visit_id)
        if visit is None:
            raise NotFound("No such visit.", code="visit_not_found")
        return visit

    async def _create(self, visit_id: int) -> rooms.RoomState:
        roster = await self._roster(visit_id)
        state = rooms.RoomState.create(
            visit_id,
            {e.participant_id: e.display_name for e in roster.clinicians},
            max_in_call=self._settings.max_in_call,
            reconnect_grace=timedelta(seconds=self._settings.reconnect_grace_s),
        )
        now = self._clock()
        for entry in roster.links:
            state = rooms.invite(
                state, entry.participant_id, _kind(entry.kind), entry.display_name, now
            ).state
        return state

    async def _save(self, visit_id: int, version: int, state: rooms.RoomState) -> bool:
        async with self._db.begin() as db:
            if not await save_room_state(db, visit_id, version, json.dumps(state.to_dict())):
                return False
            await record_room_outcome(db, visit_id, _outcome(state))
        return True


@dataclass(eq=False)
class _Read:
    """One caller's room read, answered by the batch query that takes it."""

    visit_id: int
    stored: str | None = None
    error: Exception | None = None
    done: bool = False

    def fail(self, error: Exception) -> None:
        self.error, self.done = error, True


def authorise_join(identity: Identity, visit_id: int, roster: Roster) -> None:
    """A socket may join only its own visit's room: the visit's clinicians, and holders of
    this visit's live links (whose pre-call steps were checked when the socket connected)."""
    if identity.link_id is not None:
        if identity.visit_id != visit_id:
            raise Forbidden("Your link is for another visit.", code="not_on_visit")
        if not any(e.participant_id == identity.participant_id for e in roster.links):
            raise Forbidden("Your link is no longer valid.", code="link_revoked")
        return
    if not any(e.participant_id == identity.participant_id for e in roster.clinicians):
        raise Forbidden("You are not on this visit.", code="not_on_visit")


def with_invite(
    identity: Identity, roster: Roster
) -> Callable[[rooms.RoomState, datetime], rooms.RoomState]:
    """Put an identity on the roster if the room has not heard of it yet (a link issued, or a
    clinician added, after the room was created), so that joining does not depend on a hook."""
    entries = {e.participant_id: e for e in [*roster.clinicians, *roster.links]}

    def ensure(state: rooms.RoomState, now: datetime) -> rooms.RoomState:
        if state.participant(identity.participant_id) is not None:
            return state
        entry = entries.get(identity.participant_id)
        if entry is None:
            raise Forbidden("You are not on this visit.", code="not_on_visit")
        return rooms.invite(
            state, entry.participant_id, _kind(entry.kind), entry.display_name, now
        ).state

    return ensure


def _kind(kind: ParticipantKind) -> rooms.Kind:
    return rooms.Kind(kind.value)


def _close_like(state: rooms.RoomState, status: str, now: datetime) -> rooms.Transition:
    try:
        if status == rooms.VisitStatus.NO_SHOW.value:
            return rooms.mark_no_show(state, now)
        return rooms.cancel(state, now)
    except LiaisonError:
        # The room moved on (someone arrived, or the call began) between the HTTP check and
        # now. The durable status was already written by the clinician's request, so the room
        # closes with it rather than refusing every later change.
        return rooms.close(state, rooms.VisitStatus(status), now)


def _outcome(state: rooms.RoomState) -> RoomOutcome:
    return RoomOutcome(
        status=VisitStatus(state.status.value),
        started_at=state.started_at,
        ended_at=state.ended_at,
        attendance=[
            Attendee(
                a.participant_id, ParticipantKind(a.kind.value), a.display_name, a.first_in_call_at
            )
            for a in state.attendance
        ],
    )
