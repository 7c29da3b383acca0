"""Curbside requests kept in the database, changed with optimistic concurrency.

The same approach as the visit rooms' store (signaling/room_store.py): a change loads the
request's routing state (``consult_requests.state``, a :class:`~signaling.curbside.CurbsideState`
as JSON), applies a pure transition from signaling/curbside/ and saves it with::

    UPDATE consult_requests SET state = ..., version = <v + 1>, ...
     WHERE id = ? AND version = <v, the version it read>

If another process (or task) saved first, nothing is written and the transition runs again on
the fresh state. So two psychiatrists accepting at once, on any two server processes, are
applied one after the other: one wins, the other's retry meets ``accepted_by`` and fails with
``already_taken``. A transition that changes nothing writes nothing.

Whatever must happen only if the change is saved (the call's visit for the winner, the written
answer, audit events) runs in the saving transaction through ``within``, so it commits or rolls
back with the state. Effects are the caller's to send, after the commit.

``status``, ``ring_deadline`` and ``consultant_id`` are copies of the state, written with it, for
queries: the schedulers' ``ring_deadline <= now`` (indexed), the written queue, reports.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.clock import Clock
from server.db.models import ConsultRequest as RequestRow
from server.errors import Conflict, NotFound
from signaling import curbside as cs
from signaling.room_store import MAX_ATTEMPTS

# Runs inside the transaction that saved a changed state, given what was saved.
Within = Callable[[AsyncSession, cs.Transition], Awaitable[None]]
StateChange = Callable[[cs.CurbsideState, datetime], cs.Transition]


@dataclass(frozen=True)
class NewRequest:
    """A request's row as the PCP asked it; routing fills in the rest."""

    pcp_id: int
    patient_id: int
    urgency: cs.Urgency
    mode: cs.Mode
    question: str
    patient_state: str | None
    context: dict[str, Any]
    consent_recorded_at: datetime | None


def not_found() -> NotFound:
    return NotFound("No such curbside request.", code="request_not_found")


class CurbsideStore:
    def __init__(self, db: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def open(
        self,
        new: NewRequest,
        route: Callable[[cs.ConsultRequest, datetime], cs.Transition],
        within: Within | None = None,
    ) -> cs.Transition:
        """Insert a request and route it (``open_request``) in one transaction."""
        now = self._clock()
        async with self._db.begin() as db:
            row = RequestRow(
                pcp_id=new.pcp_id,
                patient_id=new.patient_id,
                urgency=new.urgency.value,
                mode=new.mode.value,
                question=new.question,
                patient_state=new.patient_state,
                context=json.dumps(new.context, separators=(",", ":")),
                consent_recorded_at=new.consent_recorded_at,
                created_at=now,
                # Placeholders until routing has run; the row is not visible before the commit.
                status=cs.Status.RINGING.value,
                version=0,
                answer_due_at=now,
                state="{}",
            )
            db.add(row)
            await db.flush()
            request = cs.ConsultRequest(
                id=row.id,
                pcp_id=new.pcp_id,
                patient_id=new.patient_id,
                urgency=new.urgency,
                mode=new.mode,
                created_at=now,
                patient_state=new.patient_state,
            )
            result = route(request, now)
            for name, value in _columns(result.state).items():
                setattr(row, name, value)
            row.answer_due_at = result.state.answer_due_at
            await db.flush()
            if within is not None:
                await within(db, result)
        return result

    async def load(self, request_id: int) -> cs.CurbsideState:
        async with self._db() as db:
            stored = await db.scalar(select(RequestRow.state).where(RequestRow.id == request_id))
        if stored is None:
            raise not_found()
        return decode(stored)

    async def row(self, request_id: int) -> RequestRow:
        async with self._db() as db:
            row = await db.get(RequestRow, request_id)
        if row is None:
            raise not_found()
        return row

    async def apply(
        self, request_id: int, change: StateChange, within: Within | None = None
    ) -> cs.Transition:
        """Apply a transition to the stored request; retried on a concurrent change."""
        for _ in range(MAX_ATTEMPTS):
            state = await self.load(request_id)
            result = change(state, self._clock())
            if not result.changed:
                return result
            async with self._db.begin() as db:
                if await _save(db, request_id, state.version, result.state):
                    if within is not None:
                        await within(db, result)
                    return result
        raise Conflict("The request is busy; try again.", code="request_busy")

    async def due(self, now: datetime) -> list[int]:
        """Requests whose ring deadline has passed (only ringing ones have a deadline)."""
        async with self._db() as db:
            rows = await db.execute(
                select(RequestRow.id)
                .where(RequestRow.ring_deadline <= now)
                .order_by(RequestRow.ring_deadline, RequestRow.id)
            )
            return list(rows.scalars())

    async def ringing(self) -> list[cs.CurbsideState]:
        async with self._db() as db:
            rows = await db.execute(
                select(RequestRow.state).where(RequestRow.status == cs.Status.RINGING.value)
            )
            return [decode(text) for text in rows.scalars()]


def decode(stored: str) -> cs.CurbsideState:
    return cs.CurbsideState.from_dict(json.loads(stored))


async def _save(
    db: AsyncSession, request_id: int, expected_version: int, state: cs.CurbsideState
) -> bool:
    written = (
        await db.execute(
            update(RequestRow)
            .where(RequestRow.id == request_id, RequestRow.version == expected_version)
            .values(**_columns(state))
            .returning(RequestRow.id)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()
    return written is not None


def _columns(state: cs.CurbsideState) -> dict[str, Any]:
    return {
        "state": json.dumps(state.to_dict(), separators=(",", ":")),
        "version": state.version,
        "status": state.status.value,
        "ring_deadline": state.ring_deadline,
        "consultant_id": state.accepted_by or state.answered_by,
    }
