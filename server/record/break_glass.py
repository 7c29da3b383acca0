"""Break the glass: time-limited read access to a record for a clinician off its care team.

The clinician states why (at least ``record.break_glass_min_reason`` characters); the grant
lasts ``record.break_glass_minutes`` and lets them read what the policy opens to
``break_glass`` (demographics, the record, signed notes; never psychotherapy notes; no writes).
Every grant is audited (the reason stays in its own table: the audit trail takes no free text)
and listed for an admin, who marks it reviewed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.audit import Action as AuditAction
from server.audit.events import DetailValue
from server.db.models import BreakGlassGrant, Patient, User
from server.errors import Conflict, NotFound, ValidationFailed
from server.record.access import Access, Actor
from server.record.guard import Audited, RecordGuard, actor_of, refusal
from server.record.policy import Action, Relation, decide
from server.settings import RecordSettings

log = logging.getLogger("liaison.record")

MAX_REASON_LENGTH = 2000
REVIEW_PAGE = 200


@dataclass(frozen=True, slots=True)
class GrantLine:
    """A grant as the review list shows it."""

    grant: BreakGlassGrant
    clinician: User
    patient: Patient


class BreakGlassService:
    def __init__(self, guard: RecordGuard, settings: RecordSettings) -> None:
        self._guard = guard
        self._settings = settings

    async def break_glass(self, who: Actor, patient_id: int, reason: str) -> BreakGlassGrant:
        reason = " ".join(reason.split())
        least = self._settings.break_glass_min_reason
        if not least <= len(reason) <= MAX_REASON_LENGTH:
            raise ValidationFailed(
                f"State why you need this record, in {least} to {MAX_REASON_LENGTH} characters.",
                code="break_glass_reason_required",
            )
        minutes = self._settings.break_glass_minutes

        async def work(db: AsyncSession, _access: Access) -> tuple[BreakGlassGrant, list[Audited]]:
            now = self._guard.clock()
            grant = BreakGlassGrant(
                patient_id=patient_id,
                user_id=who.user_id,
                reason=reason,
                granted_at=now,
                expires_at=now + timedelta(minutes=minutes),
            )
            db.add(grant)
            await db.flush()
            detail: dict[str, DetailValue] = {"change": "grant", "minutes": minutes}
            return grant, [Audited(AuditAction.BREAK_GLASS, f"break_glass:{grant.id}", detail)]

        grant = await self._guard.write(
            who,
            patient_id,
            Action.BREAK_GLASS,
            work,
            denied_as=Audited(AuditAction.BREAK_GLASS, detail={"change": "grant"}),
        )
        log.warning(
            "break the glass",
            extra={"patient_id": patient_id, "user_id": who.user_id, "grant_id": grant.id},
        )
        return grant

    async def grants(self, who: Actor, *, unreviewed_only: bool = False) -> list[GrantLine]:
        """Grants for review, newest first (admins)."""
        decision = decide(who.role, Relation.NONE, Action.REVIEW_BREAK_GLASS)
        if not decision.allowed:
            raise refusal(decision)
        query = (
            select(BreakGlassGrant, User, Patient)
            .join(User, User.id == BreakGlassGrant.user_id)
            .join(Patient, Patient.id == BreakGlassGrant.patient_id)
            .order_by(BreakGlassGrant.granted_at.desc(), BreakGlassGrant.id.desc())
            .limit(REVIEW_PAGE)
        )
        if unreviewed_only:
            query = query.where(BreakGlassGrant.reviewed_at.is_(None))
        async with self._guard.db() as db:
            lines = [GrantLine(g, u, p) for g, u, p in (await db.execute(query)).all()]
        # The list shows who looked at which patient and why: a read of each patient's record.
        for patient_id in sorted({line.patient.id for line in lines}):
            await self._guard.record(
                actor_of(who),
                patient_id,
                Audited(AuditAction.RECORD_READ, detail={"section": "break_glass_review"}),
                decision,
            )
        return lines

    async def mark_reviewed(self, who: Actor, grant_id: int) -> GrantLine:
        decision = decide(who.role, Relation.NONE, Action.REVIEW_BREAK_GLASS)
        if not decision.allowed:
            raise refusal(decision)
        now = self._guard.clock()
        async with self._guard.db.begin() as db:
            found = (
                await db.execute(
                    select(BreakGlassGrant, User, Patient)
                    .join(User, User.id == BreakGlassGrant.user_id)
                    .join(Patient, Patient.id == BreakGlassGrant.patient_id)
                    .where(BreakGlassGrant.id == grant_id)
                )
            ).first()
            if found is None:
                raise NotFound("No such break-the-glass grant.", code="grant_not_found")
            grant, clinician, patient = found
            done = await db.execute(
                update(BreakGlassGrant)
                .where(BreakGlassGrant.id == grant_id, BreakGlassGrant.reviewed_at.is_(None))
                .values(reviewed_at=now, reviewed_by=who.user_id)
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise Conflict("This grant was reviewed already.", code="grant_reviewed")
            await db.refresh(grant)
            await self._guard.record_in(
                db,
                actor_of(who),
                patient.id,
                [Audited(AuditAction.BREAK_GLASS, f"break_glass:{grant_id}", {"change": "review"})],
            )
        return GrantLine(grant, clinician, patient)
