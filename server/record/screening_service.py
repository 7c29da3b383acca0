"""Entering PHQ-9 and GAD-7 screenings, and the safety flags they raise.

A screening is entered item by item by a clinician on the care team, by the patient's own
account, or by the holder of a visit's patient link in the waiting room (the visit code calls
:meth:`ScreeningService.enter` with :meth:`EnteredBy.link`). It is scored here
(``server.record.screenings``). A PHQ-9 whose item 9 is above 0 raises a :class:`SafetyFlag` in
the same transaction; every clinician on the care team sees it (the patient's flags, and
:meth:`ScreeningService.my_open_flags` across all their patients) until one of them records how
it was addressed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.audit import Action as AuditAction
from server.audit import Actor as AuditActor
from server.auth.roles import Role
from server.db.models import (
    CareTeamMember,
    Encounter,
    Patient,
    SafetyFlag,
    Screening,
    Visit,
    VisitLink,
)
from server.errors import Conflict, NotFound, ValidationFailed
from server.record.access import Access, Actor
from server.record.entries import SafetyFlagKind
from server.record.guard import Audited, RecordGuard, actor_of, refusal
from server.record.policy import Action, Relation, decide
from server.record.screenings import PHQ9_SELF_HARM_ITEM, Instrument, score
from server.visits.links import LinkKind

log = logging.getLogger("liaison.record")

MAX_RESOLUTION_LENGTH = 4000


@dataclass(frozen=True, slots=True)
class EnteredBy:
    """Who enters a screening: a signed-in user, or the holder of a visit's patient link (who
    has no account: the visit code has checked their link and date of birth)."""

    role: Role
    user_id: int | None = None
    link_id: int | None = None

    @classmethod
    def user(cls, who: Actor) -> EnteredBy:
        return cls(who.role, user_id=who.user_id)

    @classmethod
    def link(cls, link_id: int) -> EnteredBy:
        return cls(Role.PATIENT, link_id=link_id)

    @property
    def actor_id(self) -> str:
        """As stored on the screening and in the audit trail: "user:12" or "link:34"."""
        return self.audit_actor.id

    @property
    def audit_actor(self) -> AuditActor:
        if self.link_id is not None:
            return AuditActor.link(self.link_id, self.role.value)
        assert self.user_id is not None
        return AuditActor.user(self.user_id, self.role.value)


@dataclass(frozen=True, slots=True)
class _UserActor:
    user_id: int
    role: Role


@dataclass(frozen=True, slots=True)
class Entered:
    screening: Screening
    flag: SafetyFlag | None


async def screenings_of(db: AsyncSession, patient_id: int) -> list[Screening]:
    """A patient's screenings, newest first."""
    rows = await db.execute(
        select(Screening)
        .where(Screening.patient_id == patient_id)
        .order_by(Screening.administered_at.desc(), Screening.id.desc())
    )
    return list(rows.scalars())


async def open_flags(db: AsyncSession, patient_id: int) -> list[SafetyFlag]:
    rows = await db.execute(
        select(SafetyFlag)
        .where(SafetyFlag.patient_id == patient_id, SafetyFlag.resolved_at.is_(None))
        .order_by(SafetyFlag.raised_at, SafetyFlag.id)
    )
    return list(rows.scalars())


async def _link_relation(db: AsyncSession, link_id: int, patient_id: int) -> Relation:
    """SELF when the link is the patient link of one of this patient's visits."""
    found = await db.execute(
        select(Visit.patient_id)
        .join(VisitLink, VisitLink.visit_id == Visit.id)
        .where(VisitLink.id == link_id, VisitLink.kind == LinkKind.PATIENT.value)
    )
    return Relation.SELF if found.scalar_one_or_none() == patient_id else Relation.NONE


def answers_of(screening: Screening) -> list[int]:
    answers: list[int] = json.loads(screening.answers)
    return answers


class ScreeningService:
    def __init__(self, guard: RecordGuard) -> None:
        self._guard = guard

    async def enter(
        self,
        entered_by: EnteredBy,
        patient_id: int,
        instrument: Instrument,
        answers: Sequence[int],
        *,
        encounter_id: int | None = None,
    ) -> Entered:
        """Score and store a screening (and its safety flag, if it raises one)."""
        try:
            scored = score(instrument, answers)
        except ValueError as exc:
            raise ValidationFailed(
                str(exc).capitalize() + ".",
                code="invalid_answers",
                extra={"fields": [{"field": "answers", "message": str(exc)}]},
            ) from None
        actor = entered_by.audit_actor
        denied_as = Audited(AuditAction.SCREENING_WRITE, detail={"instrument": instrument.value})
        async with self._guard.db.begin() as db:
            if entered_by.link_id is not None:
                if await db.get(Patient, patient_id) is None:
                    raise NotFound("No such patient.", code="patient_not_found")
                relation = await _link_relation(db, entered_by.link_id, patient_id)
                decision = decide(Role.PATIENT, relation, Action.ENTER_SCREENING)
            else:
                assert entered_by.user_id is not None
                who = _UserActor(entered_by.user_id, entered_by.role)
                access = await self._guard.check(db, who, patient_id, Action.ENTER_SCREENING)
                decision = access.decision
            if decision.allowed:
                if encounter_id is not None:
                    encounter = await db.get(Encounter, encounter_id)
                    if encounter is None or encounter.patient_id != patient_id:
                        raise ValidationFailed(
                            "No such encounter for this patient.", code="encounter_not_found"
                        )
                now = self._guard.clock()
                screening = Screening(
                    patient_id=patient_id,
                    encounter_id=encounter_id,
                    instrument=instrument.value,
                    answers=json.dumps(list(scored.answers)),
                    total=scored.total,
                    severity=scored.severity.value,
                    entered_by=entered_by.actor_id,
                    entered_by_role=entered_by.role.value,
                    administered_at=now,
                )
                db.add(screening)
                await db.flush()
                flag = None
                events = [
                    Audited(
                        AuditAction.SCREENING_WRITE,
                        f"screening:{screening.id}",
                        {"instrument": instrument.value, "safety_flag": scored.safety_concern},
                    )
                ]
                if scored.safety_concern:
                    flag = SafetyFlag(
                        patient_id=patient_id,
                        screening_id=screening.id,
                        kind=SafetyFlagKind.PHQ9_ITEM9.value,
                        item_value=scored.answers[PHQ9_SELF_HARM_ITEM - 1],
                        raised_at=now,
                    )
                    db.add(flag)
                    await db.flush()
                await self._guard.record_in(db, actor, patient_id, events)
        if not decision.allowed:
            await self._guard.record(actor, patient_id, denied_as, decision)
            raise refusal(decision)
        if flag is not None:
            log.warning(
                "safety flag raised",
                extra={"patient_id": patient_id, "flag_id": flag.id, "screening_id": screening.id},
            )
        return Entered(screening, flag)

    async def screenings(self, who: Actor, patient_id: int) -> list[Screening]:
        async def work(db: AsyncSession, _access: Access) -> list[Screening]:
            return await screenings_of(db, patient_id)

        return await self._guard.read(
            who,
            patient_id,
            Action.READ_RECORD,
            Audited(AuditAction.RECORD_READ, detail={"section": "screenings"}),
            work,
        )

    async def flags(
        self, who: Actor, patient_id: int, *, include_resolved: bool = False
    ) -> list[SafetyFlag]:
        async def work(db: AsyncSession, _access: Access) -> list[SafetyFlag]:
            if not include_resolved:
                return await open_flags(db, patient_id)
            rows = await db.execute(
                select(SafetyFlag)
                .where(SafetyFlag.patient_id == patient_id)
                .order_by(SafetyFlag.raised_at, SafetyFlag.id)
            )
            return list(rows.scalars())

        return await self._guard.read(
            who,
            patient_id,
            Action.READ_RECORD,
            Audited(AuditAction.RECORD_READ, detail={"section": "safety_flags"}),
            work,
        )

    async def my_open_flags(self, who: Actor) -> list[tuple[SafetyFlag, Patient]]:
        """Open flags of every patient whose care team ``who`` is on: a clinician's worklist."""
        if not who.role.is_clinician:
            return []
        async with self._guard.db() as db:
            rows = await db.execute(
                select(SafetyFlag, Patient)
                .join(Patient, Patient.id == SafetyFlag.patient_id)
                .join(CareTeamMember, CareTeamMember.patient_id == Patient.id)
                .where(CareTeamMember.user_id == who.user_id, SafetyFlag.resolved_at.is_(None))
                .order_by(SafetyFlag.raised_at, SafetyFlag.id)
            )
            found = [(flag, patient) for flag, patient in rows.all()]
        actor = actor_of(who)
        for patient_id in sorted({patient.id for _flag, patient in found}):
            await self._guard.audit.record(
                self._guard.event(
                    actor,
                    patient_id,
                    Audited(AuditAction.RECORD_READ, detail={"section": "safety_flags"}),
                )
            )
        return found

    async def resolve_flag(
        self, who: Actor, patient_id: int, flag_id: int, resolution: str
    ) -> SafetyFlag:
        """Record how a flag was addressed (who, when, what was done); it then stops showing."""
        resolution = resolution.strip()
        if not resolution or len(resolution) > MAX_RESOLUTION_LENGTH:
            raise ValidationFailed(
                f"Say how the flag was addressed (at most {MAX_RESOLUTION_LENGTH} characters).",
                code="resolution_required",
            )
        target = f"safety_flag:{flag_id}"

        async def work(db: AsyncSession, _access: Access) -> tuple[SafetyFlag, list[Audited]]:
            flag = await db.get(SafetyFlag, flag_id)
            if flag is None or flag.patient_id != patient_id:
                raise NotFound("No such safety flag.", code="safety_flag_not_found")
            # Conditional, so two clinicians addressing it at once cannot both succeed.
            done = await db.execute(
                update(SafetyFlag)
                .where(SafetyFlag.id == flag_id, SafetyFlag.resolved_at.is_(None))
                .values(
                    resolved_at=self._guard.clock(), resolved_by=who.user_id, resolution=resolution
                )
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise Conflict("This flag was addressed already.", code="safety_flag_resolved")
            await db.refresh(flag)
            return flag, [Audited(AuditAction.SAFETY_FLAG_ADDRESS, target)]

        return await self._guard.write(
            who,
            patient_id,
            Action.WRITE_RECORD,
            work,
            denied_as=Audited(AuditAction.SAFETY_FLAG_ADDRESS, target),
        )
