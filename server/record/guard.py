"""The record services' one way in: ask the access policy, do the work, write the audit trail.

Every read or write of health information goes through :class:`RecordGuard`, so the policy
check and the audit call sit in one place for all of server/record:

- a **read** runs in a read-only session, then writes one event with ``AuditLog.record``
  (group commit, after the session is closed: never while holding a write lock);
- a **write** runs in a transaction and appends its events with ``AuditLog.record_in`` inside
  that transaction, so the change and its trail commit or roll back together;
- a **denied** attempt is audited too (outcome ``denied``, the policy's reason in the detail),
  after its transaction has ended, and then raised.

Audit details carry ids and codes only (``server.audit.events`` refuses free text).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.audit import Action as AuditAction
from server.audit import Actor as AuditActor
from server.audit import AuditLog, Event, Outcome
from server.audit.events import DetailValue
from server.clock import Clock
from server.errors import Forbidden, LiaisonError
from server.record.access import Access, Actor, check
from server.record.policy import Action, Decision

T = TypeVar("T")

# The usual ways to have access; any other (break_glass, admin, author) is noted on the event.
_USUAL = frozenset({"care_team", "own_record"})


@dataclass(frozen=True, slots=True)
class Audited:
    """What an audit event says happened (the guard adds who, when and the outcome)."""

    action: AuditAction
    target: str | None = None
    detail: Mapping[str, DetailValue] = field(default_factory=dict)


def refusal(decision: Decision) -> Forbidden:
    return Forbidden(decision.message, code=decision.code)


def actor_of(who: Actor) -> AuditActor:
    return AuditActor.user(who.user_id, who.role.value)


class RecordGuard:
    def __init__(self, db: async_sessionmaker[AsyncSession], clock: Clock, audit: AuditLog) -> None:
        self.db = db
        self.clock = clock
        self.audit = audit

    async def check(self, db: AsyncSession, who: Actor, patient_id: int, action: Action) -> Access:
        return await check(db, who, patient_id, action, self.clock())

    async def read(
        self,
        who: Actor,
        patient_id: int,
        action: Action,
        audited: Audited,
        work: Callable[[AsyncSession, Access], Awaitable[T]],
    ) -> T:
        """Check ``action``, run ``work`` if allowed, audit the read (or its refusal)."""
        async with self.db() as db:
            access = await self.check(db, who, patient_id, action)
            if not access.decision.allowed:
                denied = access.decision
            else:
                value = await work(db, access)
                denied = None
        await self.record(actor_of(who), patient_id, audited, access.decision)
        if denied is not None:
            raise refusal(denied)
        return value

    async def write(
        self,
        who: Actor,
        patient_id: int,
        action: Action,
        work: Callable[[AsyncSession, Access], Awaitable[tuple[T, Sequence[Audited]]]],
        *,
        denied_as: Audited,
    ) -> T:
        """Check ``action``; if allowed, run ``work`` and append the events it returns in the
        same transaction; if not, audit ``denied_as`` and raise."""
        async with self.db.begin() as db:
            access = await self.check(db, who, patient_id, action)
            if access.decision.allowed:
                value, events = await work(db, access)
                await self.record_in(db, actor_of(who), patient_id, events)
                return value
        await self.record(actor_of(who), patient_id, denied_as, access.decision)
        raise refusal(access.decision)

    async def record_in(
        self, db: AsyncSession, actor: AuditActor, patient_id: int, events: Sequence[Audited]
    ) -> None:
        if events:
            await self.audit.record_in(db, *(self.event(actor, patient_id, e) for e in events))

    async def record(
        self, actor: AuditActor, patient_id: int, audited: Audited, decision: Decision
    ) -> None:
        """Audit a read or a refusal (outside any write transaction)."""
        await self.audit.record(self.event(actor, patient_id, audited, decision))

    async def record_refusal(
        self, actor: AuditActor, patient_id: int, audited: Audited, refused: LiaisonError
    ) -> None:
        """Audit a refusal raised as an error (e.g. by the note lifecycle) after its
        transaction has rolled back."""
        detail = {**audited.detail, "reason": refused.code}
        event = self.event(actor, patient_id, Audited(audited.action, audited.target, detail))
        await self.audit.record(dataclasses.replace(event, outcome=Outcome.DENIED))

    def event(
        self,
        actor: AuditActor,
        patient_id: int,
        audited: Audited,
        decision: Decision | None = None,
    ) -> Event:
        detail = dict(audited.detail)
        outcome = Outcome.OK
        if decision is not None and not decision.allowed:
            outcome = Outcome.DENIED
            detail["reason"] = decision.code
        elif decision is not None and decision.code not in _USUAL:
            # How access was had, when it was not the usual way (break_glass, admin, author).
            detail["via"] = decision.code
        return Event(
            audited.action,
            actor,
            outcome=outcome,
            patient_id=patient_id,
            target=audited.target,
            detail=detail,
        )
