"""Reading curbside consults: one request, the written queue, a clinician's own, the ringing
ones, and the admin's figures.

Who may read a request (anyone else gets 404 ``request_not_found``, as if it did not exist):
the PCP who asked; its consultant; a psychiatrist it is ringing now; any psychiatrist while it
waits in the written queue (to answer it). Each read is audited against the patient. The admin's
figures hold no clinical content: counts, times, ids, clinicians' names and billing flags; their
export (the CSV a practice bills from) is one audit event, as it leaves.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.audit import Action, AuditLog, Event
from server.audit.events import DetailValue
from server.auth.roles import Role
from server.clock import Clock
from server.curbside import record
from server.curbside.billing import (
    BillingFlag,
    BillingRules,
    ConsultantTime,
    Metrics,
    billing_flags,
    consultant_time,
    summarise,
)
from server.curbside.oncall import require_role
from server.db.models import ConsultAnswer, Visit, VisitClinician
from server.db.models import ConsultRequest as RequestRow
from server.record.access import Actor
from server.record.guard import actor_of
from server.settings import CurbsideSettings
from server.visits.status import VisitStatus
from signaling import curbside as cs
from signaling.curbside_store import decode, not_found

MAX_LIST = 100
NOT_FACE_TO_FACE = (VisitStatus.CANCELLED.value, VisitStatus.NO_SHOW.value)


@dataclass(frozen=True, slots=True)
class ConsultView:
    row: RequestRow
    state: cs.CurbsideState
    names: dict[int, str]
    answer: ConsultAnswer | None
    overdue: bool
    billing: tuple[BillingFlag, ...] | None = None  # in the detail view and the admin's lines

    @property
    def context(self) -> dict[str, Any]:
        context: dict[str, Any] = json.loads(self.row.context)
        return context

    @property
    def times(self) -> cs.ConsultTimes:
        return cs.consult_times(self.state)

    @property
    def consultant_id(self) -> int | None:
        return self.state.accepted_by or self.state.answered_by


@dataclass(frozen=True, slots=True)
class ReportLine:
    """One consult in the admin's report: what a practice needs to bill it."""

    row: RequestRow
    state: cs.CurbsideState
    billing: tuple[BillingFlag, ...]
    consultant: ConsultantTime | None

    @property
    def consultant_minutes(self) -> float | None:
        return None if self.consultant is None else self.consultant.minutes


@dataclass(frozen=True, slots=True)
class Report:
    since: datetime
    until: datetime
    metrics: Metrics
    lines: list[ReportLine]
    names: dict[int, str]  # the PCPs' and consultants' display names, by user id


class CurbsideViews:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        settings: CurbsideSettings,
        clock: Clock,
        audit: AuditLog,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._rules = BillingRules(
            face_to_face_window=timedelta(days=settings.face_to_face_window_days),
            repeat_window=timedelta(days=settings.repeat_consult_window_days),
        )

    async def detail(self, who: Actor, request_id: int) -> ConsultView:
        async with self._db() as db:
            row = await db.get(RequestRow, request_id)
            if row is None:
                raise not_found()
            state = decode(row.state)
            if not may_read(who, state):
                raise not_found()
            view = (await self._views(db, [row]))[0]
            flags = await self._billing(db, row, state)
        await self._audited(who, [view])
        return dataclasses.replace(view, billing=flags)

    async def queue(self, who: Actor) -> list[ConsultView]:
        """Written requests waiting for an answer, the most pressing first."""
        require_role(who, Role.PSYCHIATRIST)
        stmt = (
            select(RequestRow)
            .where(RequestRow.status == cs.Status.QUEUED_WRITTEN.value)
            .order_by(RequestRow.answer_due_at, RequestRow.id)
        )
        return await self._listed(who, stmt)

    async def ringing_for(self, who: Actor) -> list[ConsultView]:
        """Requests ringing the caller now (a dashboard that reconnects shows them again)."""
        require_role(who, Role.PSYCHIATRIST)
        stmt = select(RequestRow).where(RequestRow.status == cs.Status.RINGING.value)
        return await self._listed(who, stmt, lambda s: who.user_id in s.ringing)

    async def mine(self, who: Actor) -> list[ConsultView]:
        """A PCP's requests, or a psychiatrist's consults, newest first."""
        require_role(who, Role.PCP, Role.PSYCHIATRIST)
        column = RequestRow.pcp_id if who.role is Role.PCP else RequestRow.consultant_id
        stmt = (
            select(RequestRow)
            .where(column == who.user_id)
            .order_by(RequestRow.created_at.desc(), RequestRow.id.desc())
        )
        return await self._listed(who, stmt)

    async def awaiting_acknowledgement(self, who: Actor) -> int:
        """How many of a PCP's requests have a written answer they have not acknowledged yet.
        A count of their own work, with nothing of any patient in it: not a read of a record,
        so not audited (a page header asks for it on every page)."""
        require_role(who, Role.PCP)
        async with self._db() as db:
            count = await db.scalar(
                select(func.count())
                .select_from(RequestRow)
                .where(
                    RequestRow.pcp_id == who.user_id,
                    RequestRow.status == cs.Status.ANSWERED.value,
                )
            )
        return int(count or 0)

    async def report(self, who: Actor, since: datetime, until: datetime) -> Report:
        """Figures over the requests asked in [since, until), and each one's billing line."""
        require_role(who, Role.ADMIN)
        async with self._db() as db:
            rows = list(
                (
                    await db.execute(
                        select(RequestRow)
                        .where(RequestRow.created_at >= since, RequestRow.created_at < until)
                        .order_by(RequestRow.created_at, RequestRow.id)
                    )
                ).scalars()
            )
            states = [decode(row.state) for row in rows]
            lines = [
                ReportLine(
                    row,
                    state,
                    await self._billing(db, row, state),
                    consultant_time(cs.consult_times(state)),
                )
                for row, state in zip(rows, states, strict=True)
            ]
            people = {row.pcp_id for row in rows} | {
                uid for s in states for uid in (s.accepted_by, s.answered_by) if uid is not None
            }
            names = await record.names(db, people)
        return Report(since, until, summarise(states), lines, names)

    async def export(self, who: Actor, since: datetime, until: datetime, form: str) -> Report:
        """:meth:`report`, to be taken away as ``form`` (e.g. "csv"): written to the audit trail
        before it leaves. One event for the export, not one per patient: it holds ids, times
        and flags, no clinical content, as the admin's figures do."""
        report = await self.report(who, since, until)
        detail: dict[str, DetailValue] = {
            "format": form,
            "since": since.isoformat(),
            "until": until.isoformat(),
            "consults": len(report.lines),
            "patients": len({line.row.patient_id for line in report.lines}),
        }
        event = Event(
            Action.EXPORT_CURBSIDE_REPORT, actor_of(who), target="curbside_report", detail=detail
        )
        await self._audit.record(event)
        return report

    # --- helpers --------------------------------------------------------------------------------

    async def _listed(
        self,
        who: Actor,
        stmt: Select[RequestRow],
        keep: Callable[[cs.CurbsideState], bool] | None = None,
    ) -> list[ConsultView]:
        async with self._db() as db:
            rows = [
                row
                for row in (await db.execute(stmt.limit(MAX_LIST))).scalars()
                if keep is None or keep(decode(row.state))
            ]
            views = await self._views(db, rows)
        await self._audited(who, views)
        return views

    async def _views(self, db: AsyncSession, rows: Sequence[RequestRow]) -> list[ConsultView]:
        if not rows:
            return []
        states = [decode(row.state) for row in rows]
        answers = {
            a.request_id: a
            for a in (
                await db.execute(
                    select(ConsultAnswer).where(ConsultAnswer.request_id.in_([r.id for r in rows]))
                )
            ).scalars()
        }
        people = {r.pcp_id for r in rows} | {
            uid for s in states for uid in (s.accepted_by, s.answered_by) if uid is not None
        }
        names = await record.names(db, people)
        now = self._clock()
        return [
            ConsultView(row, state, names, answers.get(row.id), cs.is_overdue(state, now))
            for row, state in zip(rows, states, strict=True)
        ]

    async def _billing(
        self, db: AsyncSession, row: RequestRow, state: cs.CurbsideState
    ) -> tuple[BillingFlag, ...]:
        asked = state.request.created_at
        consultant = state.accepted_by or state.answered_by
        visits: list[datetime] = []
        if consultant is not None:
            window = self._rules.face_to_face_window
            is_a_consult_call = exists().where(RequestRow.visit_id == Visit.id)
            visits = list(
                (
                    await db.execute(
                        select(Visit.scheduled_start)
                        .join(VisitClinician, VisitClinician.visit_id == Visit.id)
                        .where(
                            Visit.patient_id == row.patient_id,
                            VisitClinician.user_id == consultant,
                            Visit.status.not_in(NOT_FACE_TO_FACE),
                            Visit.scheduled_start >= asked - window,
                            Visit.scheduled_start <= asked + window,
                            ~is_a_consult_call,
                        )
                    )
                ).scalars()
            )
        earlier = list(
            (
                await db.execute(
                    select(RequestRow.created_at).where(
                        RequestRow.patient_id == row.patient_id,
                        RequestRow.id != row.id,
                        RequestRow.consultant_id.is_not(None),
                        RequestRow.status != cs.Status.CANCELLED.value,
                        RequestRow.created_at >= asked - self._rules.repeat_window,
                        RequestRow.created_at < asked,
                    )
                )
            ).scalars()
        )
        return billing_flags(state, row.consent_recorded_at, visits, earlier, self._rules)

    async def _audited(self, who: Actor, views: Sequence[ConsultView]) -> None:
        if views:
            await asyncio.gather(
                *(
                    self._audit.record(
                        record.audit_event(
                            Action.RECORD_READ, who, v.state, section="curbside_request"
                        )
                    )
                    for v in views
                )
            )


def may_read(who: Actor, state: cs.CurbsideState) -> bool:
    if who.user_id in (state.request.pcp_id, state.accepted_by, state.answered_by):
        return True
    if who.role is not Role.PSYCHIATRIST:
        return False
    return who.user_id in state.ringing or state.status is cs.Status.QUEUED_WRITTEN
