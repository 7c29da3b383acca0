"""Patients and their care teams: the part of the shared record that video visits need."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.audit import Action, AuditLog, Event
from server.audit import Actor as AuditActor
from server.auth.roles import Role
from server.clock import Clock
from server.db.models import CareTeamMember, Patient, User
from server.errors import Conflict, ValidationFailed
from server.record.access import Actor, require_record_access
from server.record.demographics import check_birth_date
from server.record.policy import Action as Need

log = logging.getLogger("liaison.record")

SEARCH_LIMIT = 50


class TeamRole(StrEnum):
    PSYCHIATRIST = "psychiatrist"
    PCP = "pcp"
    THERAPIST = "therapist"
    CARE_MANAGER = "care_manager"


# A clinician who creates a patient joins the team in the role their account has.
TEAM_ROLE_OF = {
    Role.PSYCHIATRIST: TeamRole.PSYCHIATRIST,
    Role.PCP: TeamRole.PCP,
    Role.THERAPIST: TeamRole.THERAPIST,
    Role.CARE_MANAGER: TeamRole.CARE_MANAGER,
}


@dataclass(frozen=True)
class NewPatient:
    """Demographics as given; the API model has already normalised their formats."""

    given_name: str
    family_name: str
    date_of_birth: date
    preferred_language: str
    state: str
    phone: str
    email: str | None = None
    mrn: str | None = None  # the clinic's own MRN; one is assigned when none is given


@dataclass(frozen=True)
class TeamMember:
    member: CareTeamMember
    user: User


@dataclass(frozen=True)
class PatientRecord:
    patient: Patient
    care_team: list[TeamMember]


ASSIGNED_MRN_PREFIX = "LIA-"


def assigned_mrn(patient_id: int) -> str:
    return f"{ASSIGNED_MRN_PREFIX}{patient_id:07d}"


def audit_actor(who: Actor) -> AuditActor:
    return AuditActor.user(who.user_id, who.role.value)


class PatientService:
    def __init__(self, db: async_sessionmaker[AsyncSession], clock: Clock, audit: AuditLog) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit

    async def create(self, who: Actor, new: NewPatient) -> PatientRecord:
        """Create a patient; a clinician who does so joins the care team."""
        now = self._clock()
        try:
            check_birth_date(new.date_of_birth, now.date())
        except ValueError as exc:
            raise ValidationFailed(str(exc).capitalize() + ".", code="invalid_birth_date") from None
        if new.mrn is not None and new.mrn.upper().startswith(ASSIGNED_MRN_PREFIX):
            raise ValidationFailed(
                f"MRNs starting {ASSIGNED_MRN_PREFIX} are assigned by Liaison; leave it empty.",
                code="mrn_reserved",
            )
        patient = Patient(
            # A unique placeholder until the row has an id to derive the MRN from.
            mrn=new.mrn or f"pending-{secrets.token_hex(8)}",
            given_name=new.given_name,
            family_name=new.family_name,
            date_of_birth=new.date_of_birth,
            preferred_language=new.preferred_language,
            state=new.state,
            phone=new.phone,
            email=new.email,
            created_at=now,
        )
        try:
            async with self._db.begin() as db:
                db.add(patient)
                await db.flush()
                if new.mrn is None:
                    patient.mrn = assigned_mrn(patient.id)
                team_role = TEAM_ROLE_OF.get(who.role)
                if team_role is not None:
                    db.add(
                        CareTeamMember(
                            patient_id=patient.id,
                            user_id=who.user_id,
                            role_on_team=team_role.value,
                            added_at=now,
                            added_by=who.user_id,
                        )
                    )
                await self._audit.record_in(
                    db,
                    Event(
                        Action.RECORD_WRITE,
                        audit_actor(who),
                        patient_id=patient.id,
                        target=f"patient:{patient.id}",
                        detail={"change": "create"},
                    ),
                )
        except IntegrityError:
            raise Conflict("A patient with this MRN exists already.", code="mrn_taken") from None
        log.info("patient created", extra={"patient_id": patient.id, "by": who.user_id})
        async with self._db() as db:
            return PatientRecord(patient, await self._team(db, patient.id))

    async def get(self, who: Actor, patient_id: int) -> PatientRecord:
        async with self._db() as db:
            patient = await require_record_access(
                db, who, patient_id, action=Need.READ_DEMOGRAPHICS, now=self._clock()
            )
            record = PatientRecord(patient, await self._team(db, patient_id))
        await self._audit.record(
            Event(
                Action.RECORD_READ,
                audit_actor(who),
                patient_id=patient_id,
                target=f"patient:{patient_id}",
            )
        )
        return record

    async def search(self, who: Actor, query: str = "") -> list[Patient]:
        """Patients on the caller's care teams (an admin: all) whose name or MRN matches."""
        stmt = select(Patient).order_by(Patient.family_name, Patient.given_name, Patient.id)
        if who.role is not Role.ADMIN:
            if not who.role.is_clinician:
                return []
            stmt = stmt.join(CareTeamMember, CareTeamMember.patient_id == Patient.id).where(
                CareTeamMember.user_id == who.user_id
            )
        for word in query.split():
            pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            stmt = stmt.where(
                or_(
                    Patient.given_name.ilike(pattern, escape="\\"),
                    Patient.family_name.ilike(pattern, escape="\\"),
                    Patient.mrn.ilike(pattern, escape="\\"),
                )
            )
        async with self._db() as db:
            return list((await db.execute(stmt.limit(SEARCH_LIMIT))).scalars())

    async def add_to_care_team(
        self, who: Actor, patient_id: int, user_id: int, role_on_team: TeamRole
    ) -> TeamMember:
        now = self._clock()
        try:
            async with self._db.begin() as db:
                await require_record_access(
                    db, who, patient_id, action=Need.MANAGE_CARE_TEAM, now=now
                )
                user = await db.get(User, user_id)
                if user is None or user.disabled_at is not None or not Role(user.role).is_clinician:
                    raise ValidationFailed(
                        "Only an active clinician's account can join a care team.",
                        code="not_a_clinician",
                    )
                member = CareTeamMember(
                    patient_id=patient_id,
                    user_id=user_id,
                    role_on_team=role_on_team.value,
                    added_at=now,
                    added_by=who.user_id,
                )
                db.add(member)
                await db.flush()
                await self._audit.record_in(
                    db,
                    Event(
                        Action.CARE_TEAM_CHANGE,
                        audit_actor(who),
                        patient_id=patient_id,
                        target=f"user:{user_id}",
                        detail={"change": "add", "role_on_team": role_on_team.value},
                    ),
                )
        except IntegrityError:
            raise Conflict(
                "That clinician is on the care team already.", code="already_on_care_team"
            ) from None
        log.info(
            "care team member added",
            extra={"patient_id": patient_id, "user_id": user_id, "by": who.user_id},
        )
        return TeamMember(member, user)

    async def _team(self, db: AsyncSession, patient_id: int) -> list[TeamMember]:
        rows = await db.execute(
            select(CareTeamMember, User)
            .join(User, CareTeamMember.user_id == User.id)
            .where(CareTeamMember.patient_id == patient_id)
            .order_by(CareTeamMember.added_at, CareTeamMember.id)
        )
        return [TeamMember(member, user) for member, user in rows]
