"""Applying the access policy (``server.record.policy``) to a request: the facts it needs from
the database (does the patient exist, is the user the patient, on the care team, holding a
break-the-glass grant), then the policy's decision.

Callers check inside their own transaction, so the answer holds for what they then read or
write. The policy decides; this module only looks the facts up and raises what it said::

    NotFound   patient_not_found   no such patient
    Forbidden  <the policy's reason code>   e.g. not_on_care_team, admin_no_clinical_access
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.roles import Role
from server.clock import utc_now
from server.db.models import BreakGlassGrant, CareTeamMember, Patient
from server.errors import Forbidden, NotFound
from server.record.policy import Action, Decision, Relation, decide


class Actor(Protocol):
    """Whoever acts: a signed-in Principal, or the demo seeding as a demo clinician."""

    @property
    def user_id(self) -> int: ...

    @property
    def role(self) -> Role: ...


@dataclass(frozen=True, slots=True)
class Access:
    """What a check found: the patient, how the actor stands to them, and the decision."""

    patient: Patient
    relation: Relation
    decision: Decision


async def on_care_team(db: AsyncSession, patient_id: int, user_id: int) -> bool:
    found = await db.execute(
        select(CareTeamMember.id).where(
            CareTeamMember.patient_id == patient_id, CareTeamMember.user_id == user_id
        )
    )
    return found.first() is not None


async def active_grant(
    db: AsyncSession, patient_id: int, user_id: int, now: datetime
) -> BreakGlassGrant | None:
    """The user's break-the-glass grant on this patient that is current at ``now``, if any."""
    found = await db.execute(
        select(BreakGlassGrant)
        .where(
            BreakGlassGrant.patient_id == patient_id,
            BreakGlassGrant.user_id == user_id,
            BreakGlassGrant.granted_at <= now,
            BreakGlassGrant.expires_at > now,
        )
        .order_by(BreakGlassGrant.expires_at.desc())
        .limit(1)
    )
    return found.scalar_one_or_none()


async def relation_to(db: AsyncSession, who: Actor, patient: Patient, now: datetime) -> Relation:
    if who.role is Role.PATIENT:
        return Relation.SELF if patient.user_id == who.user_id else Relation.NONE
    if not who.role.is_clinician:
        return Relation.NONE
    if await on_care_team(db, patient.id, who.user_id):
        return Relation.CARE_TEAM
    if await active_grant(db, patient.id, who.user_id, now) is not None:
        return Relation.BREAK_GLASS
    return Relation.NONE


async def check(
    db: AsyncSession, who: Actor, patient_id: int, action: Action, now: datetime
) -> Access:
    """The facts and the decision, without raising on a deny (for callers that audit it)."""
    patient = await db.get(Patient, patient_id)
    if patient is None:
        raise NotFound("No such patient.", code="patient_not_found")
    relation = await relation_to(db, who, patient, now)
    return Access(patient, relation, decide(who.role, relation, action))


def require_allowed(access: Access) -> Access:
    if not access.decision.allowed:
        raise Forbidden(access.decision.message, code=access.decision.code)
    return access


async def require(
    db: AsyncSession, who: Actor, patient_id: int, action: Action, now: datetime
) -> Access:
    """:func:`check`, raising ``Forbidden`` with the policy's reason when it denies."""
    return require_allowed(await check(db, who, patient_id, action, now))


async def require_record_access(
    db: AsyncSession,
    who: Actor,
    patient_id: int,
    *,
    action: Action = Action.MANAGE_VISITS,
    now: datetime | None = None,
) -> Patient:
    """The patient, if ``who`` may do ``action`` (by default: schedule and run the patient's
    visits, as server.visits asks); otherwise NotFound/Forbidden."""
    access = await require(db, who, patient_id, action, now or utc_now())
    return access.patient
