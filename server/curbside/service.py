"""Curbside requests, from the PCP's question to a completed call or an acknowledged answer.

Every change goes through the routing machine (signaling/curbside/) and its store
(signaling/curbside_store.py), which saves it with a compare-and-set. This service decides who
may ask for it, has what goes with it written in the same transaction (server/curbside/
record.py: the call's visit, the consultant on the care team, the answer, the Encounter, the
audit trail) and, after the commit, tells the people concerned through the publishers the
signaling server registers (server/curbside/notices.py).

A call: the winning accept creates a Visit whose clinicians are the PCP and the psychiatrist,
starting now; both are told ``curbside:connected {request_id, visit_id}`` and join its room.
The call is connected when both are in it (:meth:`room_changed`), ends when either hangs up
(:meth:`end_call`), and is complete once the consultant has signed a curbside recommendation
note on its encounter (:meth:`complete`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from consult_notes.templates import CURBSIDE_RECOMMENDATION
from server.audit import Action, AuditLog, Event
from server.auth.roles import Role
from server.clock import Clock
from server.curbside import record
from server.curbside.context import snapshot
from server.curbside.notices import CloseCall, Outbound, Publisher, named_in, notices_for
from server.curbside.oncall import OnCallService, require_role
from server.db.models import ConsultNote
from server.db.models import ConsultRequest as RequestRow
from server.errors import LiaisonError, ValidationFailed
from server.record.access import Actor
from server.record.entries import EncounterKind
from server.record.guard import Audited, RecordGuard, actor_of, refusal
from server.record.patients import NewPatient, PatientService
from server.record.policy import Action as Need
from server.settings import CurbsideSettings
from server.visits import room_audit
from server.visits.participants import user_participant
from server.visits.status import VisitStatus
from signaling import curbside as cs
from signaling.curbside_store import CurbsideStore, NewRequest

log = logging.getLogger("liaison.curbside")

NOTE_TEMPLATE = CURBSIDE_RECOMMENDATION.id
CALL_CACHE_SIZE = 2048

# The events a change adds to the audit trail, written in its saving transaction.
Extra = Callable[[AsyncSession, cs.Transition], Awaitable[list[Event]]]


@dataclass(frozen=True)
class NewConsult:
    question: str
    urgency: cs.Urgency
    mode: cs.Mode
    patient_consented: bool
    # Where the patient is now (two-letter code); the record's state of residence if None.
    patient_state: str | None = None


@dataclass(frozen=True)
class WrittenAnswer:
    assessment: str
    recommendations: str
    follow_up: str
    face_to_face_advised: bool
    medication_suggestions: str | None = None


@dataclass(frozen=True)
class WritingStarted:
    """A psychiatrist's time on a written answer so far (None: they answered without it)."""

    started_at: datetime | None
    elapsed: timedelta | None
    max_minutes: int  # the most minutes an answer sent now may be attested at


@dataclass(frozen=True)
class CallParties:
    request_id: int
    pcp_id: int
    consultant_id: int


class CurbsideService:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        settings: CurbsideSettings,
        clock: Clock,
        guard: RecordGuard,
        store: CurbsideStore,
        oncall: OnCallService,
        patients: PatientService,
    ) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock
        self._guard = guard
        self._audit: AuditLog = guard.audit
        self._patients = patients
        self.store = store
        self.oncall = oncall
        self.publishers: list[Publisher] = []
        # Told of each winning accept, after the commit (server/metrics.py times the answer).
        self.accepted_hooks: list[Callable[[cs.CurbsideState], None]] = []
        # visit id -> the curbside call it is (None: an ordinary visit). Neither changes once
        # the visit exists, so every process may remember them.
        self._calls: OrderedDict[int, CallParties | None] = OrderedDict()

    # --- asking ---------------------------------------------------------------------------------

    async def open(self, who: Actor, patient_id: int, new: NewConsult) -> int:
        """The PCP asks about a patient on their care team; a call-now request rings at once.
        Returns the request's id."""
        require_role(who, Role.PCP)
        async with self._db() as db:
            access = await self._guard.check(db, who, patient_id, Need.WRITE_RECORD)
            if access.decision.allowed:
                context = await snapshot(db, patient_id)
        if not access.decision.allowed:
            audited = Audited(Action.RECORD_WRITE, detail={"section": "curbside"})
            await self._guard.record(actor_of(who), patient_id, audited, access.decision)
            raise refusal(access.decision)
        policy = await self.oncall.routing_policy()
        roster = await self.oncall.roster() if new.mode is cs.Mode.CALL_NOW else []
        row = NewRequest(
            pcp_id=who.user_id,
            patient_id=patient_id,
            urgency=new.urgency,
            mode=new.mode,
            question=new.question,
            patient_state=(new.patient_state or access.patient.state).upper(),
            context=context,
            consent_recorded_at=self._clock() if new.patient_consented else None,
        )

        async def opened(db: AsyncSession, tr: cs.Transition) -> list[Event]:
            mode, urgency = new.mode.value, new.urgency.value
            return [
                record.audit_event(
                    Action.RECORD_WRITE, who, tr.state, change="create", mode=mode, urgency=urgency
                )
            ]

        result = await self.store.open(
            row,
            lambda request, now: cs.open_request(request, roster, policy, now),
            self._within(opened),
        )
        request_id = result.state.request.id
        log.info("curbside request opened", extra={"request_id": request_id})
        await self._notify(result)
        return request_id

    async def open_for_new_patient(
        self, who: Actor, patient: NewPatient, new: NewConsult
    ) -> tuple[int, int]:
        """A minimal new patient (the PCP joins their care team), then the request. Returns
        the patient's and the request's ids."""
        require_role(who, Role.PCP)
        created = await self._patients.create(who, patient)
        return created.patient.id, await self.open(who, created.patient.id, new)

    async def cancel(self, who: Actor, request_id: int) -> None:
        async def cancelled(db: AsyncSession, tr: cs.Transition) -> list[Event]:
            return [record.audit_event(Action.RECORD_WRITE, who, tr.state, change="cancel")]

        result = await self.store.apply(
            request_id, lambda s, now: cs.cancel(s, who.user_id, now), self._within(cancelled)
        )
        # Accepted but not yet connected: the call's room closes too.
        call = (await self.store.row(request_id)).visit_id if result.changed else None
        with room_audit.acting(actor_of(who)):
            await self._notify(result, *([CloseCall(call, VisitStatus.CANCELLED)] if call else []))

    # --- call now -------------------------------------------------------------------------------

    async def accept(self, who: Actor, request_id: int) -> int:
        """First accept wins. Returns the call's visit id (a winner's retry gets it again)."""
        require_role(who, Role.PSYCHIATRIST)
        started: list[int] = []

        async def won(db: AsyncSession, tr: cs.Transition) -> list[Event]:
            visit_id, events = await record.start_call(
                db, tr.state, who.user_id, self._settings.call_minutes, self._clock()
            )
            started.append(visit_id)
            return events

        result = await self.store.apply(
            request_id, lambda s, now: cs.accept(s, who.user_id, now), self._within(won)
        )
        visit_id = started[0] if started else (await self.store.row(request_id)).visit_id
        assert visit_id is not None, "an accepted request has its call"
        if result.changed:
            pcp_id = result.state.request.pcp_id
            self._remember(visit_id, CallParties(request_id, pcp_id, who.user_id))
            log.info("curbside request taken", extra={"request_id": request_id, "by": who.user_id})
            for hook in self.accepted_hooks:
                hook(result.state)
            await self._notify(result)
            # Busy now: stop ringing them for anything else.
            await self._withdraw(who.user_id, keep=request_id)
        return visit_id

    async def decline(self, who: Actor, request_id: int) -> None:
        require_role(who, Role.PSYCHIATRIST)
        roster = await self.oncall.roster()
        result = await self.store.apply(
            request_id, lambda s, now: cs.decline(s, who.user_id, roster, now), self._within()
        )
        await self._notify(result)

    async def room_changed(self, visit_id: int, in_call: set[str]) -> None:
        """A visit room changed (``in_call``: participant ids in its call). For a curbside
        call, both parties in the call means it is connected: the talking time starts."""
        parties = await self._call_of(visit_id)
        if parties is None:
            return
        if not {user_participant(parties.pcp_id), user_participant(parties.consultant_id)} <= (
            in_call
        ):
            return
        pcp_id = parties.pcp_id

        def connected(state: cs.CurbsideState, now: datetime) -> cs.Transition:
            if state.status is not cs.Status.ACCEPTED:
                return cs.Transition(state)
            return cs.call_connected(state, pcp_id, now)

        async def opened(db: AsyncSession, tr: cs.Transition) -> list[Event]:
            encounter = await record.record_call(db, visit_id, tr.state, ended=False)
            target = f"encounter:{encounter}"
            kind = EncounterKind.CURBSIDE.value
            return [
                record.audit_event(
                    Action.RECORD_WRITE, None, tr.state, target, change="create", kind=kind
                )
            ]

        result = await self.store.apply(parties.request_id, connected, self._within(opened))
        await self._notify(result)

    async def end_call(self, who: Actor, request_id: int) -> None:
        """Either party hangs up: the call's room closes; the consultant documents."""
        row = await self.store.row(request_id)
        visit_id = row.visit_id

        async def ended(db: AsyncSession, tr: cs.Transition) -> list[Event]:
            assert visit_id is not None
            encounter = await record.record_call(db, visit_id, tr.state, ended=True)
            target = f"encounter:{encounter}"
            return [record.audit_event(Action.RECORD_WRITE, who, tr.state, target, change="end")]

        result = await self.store.apply(
            request_id, lambda s, now: cs.end_call(s, who.user_id, now), self._within(ended)
        )
        if result.changed and visit_id is not None:
            # The room's visit.end names who hung up, over HTTP as over the socket.
            with room_audit.acting(actor_of(who)):
                await self._notify(result, CloseCall(visit_id, VisitStatus.COMPLETED))

    async def complete(self, who: Actor, request_id: int, note_id: int) -> None:
        """The consultant has signed the curbside recommendation note on the call's encounter."""
        require_role(who, Role.PSYCHIATRIST)
        row = await self.store.row(request_id)
        async with self._db() as db:
            note = await db.get(ConsultNote, note_id)
        if (
            note is None
            or note.author_id != who.user_id
            or note.patient_id != row.patient_id
            or note.template_id != NOTE_TEMPLATE
            or note.signed_at is None
            or row.encounter_id is None
            or note.encounter_id != row.encounter_id
        ):
            raise ValidationFailed(
                "Sign a curbside recommendation note on this consult's encounter first.",
                code="note_not_valid",
            )

        async def completed(db: AsyncSession, tr: cs.Transition) -> list[Event]:
            await record.set_note(db, request_id, note_id)
            return [
                record.audit_event(
                    Action.RECORD_WRITE, who, tr.state, change="complete", note_id=note_id
                )
            ]

        result = await self.store.apply(
            request_id, lambda s, now: cs.complete(s, who.user_id, now), self._within(completed)
        )
        await self._notify(result)

    # --- written --------------------------------------------------------------------------------

    async def start_writing(self, who: Actor, request_id: int) -> WritingStarted:
        """A psychiatrist opens the answer form of a queued request: their time starts (the
        first time only), in the database, so any process measures it alike."""
        require_role(who, Role.PSYCHIATRIST)

        async def started(db: AsyncSession, tr: cs.Transition) -> list[Event]:
            return [record.audit_event(Action.RECORD_WRITE, who, tr.state, change="start_answer")]

        result = await self.store.apply(
            request_id,
            lambda s, now: cs.start_writing(s, who.user_id, now),
            self._within(started),
        )
        now = self._clock()
        since = result.state.writing_started_by(who.user_id)
        return WritingStarted(
            since, None if since is None else now - since, cs.minutes_possible(result.state, now)
        )

    async def answer(
        self, who: Actor, request_id: int, answer: WrittenAnswer, minutes: int | None = None
    ) -> None:
        """A psychiatrist answers a queued request in writing, attesting ``minutes`` spent on it
        if they say; the PCP is told."""
        require_role(who, Role.PSYCHIATRIST)

        async def answered(db: AsyncSession, tr: cs.Transition) -> list[Event]:
            fields = dataclasses.asdict(answer)
            events = await record.record_answer(db, tr.state, who.user_id, fields, self._clock())
            # The attested minutes are a billing attestation: the trail keeps who said what.
            written = record.audit_event(
                Action.RECORD_WRITE, who, tr.state, change="answer", minutes=minutes
            )
            return [*events, written]

        result = await self.store.apply(
            request_id,
            lambda s, now: cs.answer_written(s, who.user_id, now, minutes),
            self._within(answered),
        )
        await self._notify(result)

    async def acknowledge(self, who: Actor, request_id: int) -> None:
        async def acknowledged(db: AsyncSession, tr: cs.Transition) -> list[Event]:
            return [record.audit_event(Action.RECORD_WRITE, who, tr.state, change="acknowledge")]

        result = await self.store.apply(
            request_id,
            lambda s, now: cs.acknowledge(s, who.user_id, now),
            self._within(acknowledged),
        )
        await self._notify(result)

    # --- time and presence ----------------------------------------------------------------------

    async def tick(self) -> int:
        """Move on every request whose ring deadline has passed. Any process may, as often as
        it likes: the compare-and-set makes a second tick of one request a no-op. Returns how
        many moved."""
        due = await self.store.due(self._clock())
        if not due:
            return 0
        roster = await self.oncall.roster()
        moved = 0
        for request_id in due:
            try:
                result = await self.store.apply(
                    request_id, lambda s, now: cs.tick(s, roster, now), self._within()
                )
            except LiaisonError:
                log.exception("curbside tick failed", extra={"request_id": request_id})
                continue
            moved += result.changed
            await self._notify(result)
        return moved

    async def presence_lost(self, user_id: int) -> None:
        """A psychiatrist's socket closed: if it was their last one on any process, stop
        ringing them (a tier whose last ringing psychiatrist went away moves on at once)."""
        if user_id not in await self.oncall.presence.live([user_id]):
            await self._withdraw(user_id)

    async def _withdraw(self, user_id: int, keep: int | None = None) -> None:
        ringing = [
            s for s in await self.store.ringing() if user_id in s.ringing and s.request.id != keep
        ]
        if not ringing:
            return
        roster = await self.oncall.roster()
        for state in ringing:
            result = await self.store.apply(
                state.request.id, lambda s, now: cs.drop(s, user_id, roster, now), self._within()
            )
            await self._notify(result)

    # --- helpers --------------------------------------------------------------------------------

    def _within(
        self, extra: Extra | None = None
    ) -> Callable[[AsyncSession, cs.Transition], Awaitable[None]]:
        """What a saved change writes with it: its own events, and, for every psychiatrist it
        rings, a read of the request (their dashboard shows the question and the context)."""

        async def within(db: AsyncSession, tr: cs.Transition) -> None:
            events = await extra(db, tr) if extra is not None else []
            for effect in tr.effects:
                if isinstance(effect, cs.Ring):
                    events += [
                        record.audit_event(
                            Action.RECORD_READ,
                            record.consultant_actor(uid),
                            tr.state,
                            section="curbside_request",
                            disclosed="ring",
                        )
                        for uid in effect.psychiatrist_ids
                    ]
            if events:
                await self._audit.record_in(db, *events)

        return within

    async def _call_of(self, visit_id: int) -> CallParties | None:
        if visit_id in self._calls:
            self._calls.move_to_end(visit_id)
            return self._calls[visit_id]
        async with self._db() as db:
            found = (
                await db.execute(
                    select(RequestRow.id, RequestRow.pcp_id, RequestRow.consultant_id).where(
                        RequestRow.visit_id == visit_id
                    )
                )
            ).first()
        parties = None
        if found is not None and found.consultant_id is not None:
            parties = CallParties(found.id, found.pcp_id, found.consultant_id)
        self._remember(visit_id, parties)
        return parties

    def _remember(self, visit_id: int, parties: CallParties | None) -> None:
        self._calls[visit_id] = parties
        while len(self._calls) > CALL_CACHE_SIZE:
            self._calls.popitem(last=False)

    async def _notify(self, result: cs.Transition, *extra: Outbound) -> None:
        """Tell everyone concerned, after the commit. A failure here undoes nothing."""
        if not result.effects and not extra:
            return
        try:
            row = await self.store.row(result.state.request.id)
            async with self._db() as db:
                names = await record.names(db, named_in(result.effects) | {row.pcp_id})
            outbound = [*notices_for(result, row, names), *extra]
        except Exception:
            log.exception("curbside notices failed", extra={"request_id": result.state.request.id})
            return
        for publish in self.publishers:
            try:
                await publish(outbound)
            except Exception:
                log.exception("curbside publisher failed")
