"""The patient's chart: problems, medications, allergies and encounters, the whole-record
summary (a clinician's chart view and a patient's own view), and who accessed the record.

Access is the policy's (read_record / write_record / read_access_log) through the
:class:`~server.record.guard.RecordGuard`, which also writes the audit trail.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, TypeVar, cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.audit import Access as AccessLine
from server.audit import Action as AuditAction
from server.db.models import (
    Allergy,
    Condition,
    Encounter,
    MedicationStatement,
    Patient,
    SafetyFlag,
    Screening,
)
from server.errors import NotFound, ValidationFailed
from server.record.access import Access, Actor
from server.record.entries import (
    AllergySeverity,
    AllergyStatus,
    CodeSystem,
    ConditionStatus,
    EncounterKind,
    MedicationStatus,
)
from server.record.guard import Audited, RecordGuard
from server.record.policy import Action
from server.record.screening_service import open_flags, screenings_of

Entry = Condition | MedicationStatement | Allergy
EntryT = TypeVar("EntryT", Condition, MedicationStatement, Allergy)

MAX_ACCESS_LOG_PAGE = 200


@dataclass(frozen=True, slots=True)
class ConditionFields:
    text: str
    clinical_status: ConditionStatus = ConditionStatus.ACTIVE
    code: str | None = None
    code_system: CodeSystem | None = None
    onset: date | None = None


@dataclass(frozen=True, slots=True)
class MedicationFields:
    name: str
    status: MedicationStatus = MedicationStatus.ACTIVE
    dose: str | None = None
    route: str | None = None
    frequency: str | None = None


@dataclass(frozen=True, slots=True)
class AllergyFields:
    substance: str
    clinical_status: AllergyStatus = AllergyStatus.ACTIVE
    reaction: str | None = None
    severity: AllergySeverity | None = None


EntryFields = ConditionFields | MedicationFields | AllergyFields

# The audit target's prefix: "condition:5".
TARGET_OF: dict[type[Entry], str] = {
    Condition: "condition",
    MedicationStatement: "medication",
    Allergy: "allergy",
}
_MODEL_OF: dict[type[EntryFields], type[Entry]] = {
    ConditionFields: Condition,
    MedicationFields: MedicationStatement,
    AllergyFields: Allergy,
}


def _columns(fields: EntryFields) -> dict[str, Any]:
    if isinstance(fields, ConditionFields) and (fields.code is None) != (
        fields.code_system is None
    ):
        raise ValidationFailed(
            "Give a problem's code together with its code system, or neither.",
            code="code_without_system",
        )
    return {k: v.value if isinstance(v, StrEnum) else v for k, v in asdict(fields).items()}


@dataclass(frozen=True, slots=True)
class Chart:
    """The whole record as a clinician (or the patient) sees it."""

    patient: Patient
    problems: list[Condition]
    medications: list[MedicationStatement]
    allergies: list[Allergy]
    screenings: list[Screening]
    open_safety_flags: list[SafetyFlag]
    encounters: list[Encounter]


async def entries_of(db: AsyncSession, model: type[EntryT], patient_id: int) -> list[EntryT]:
    rows = await db.execute(
        select(model).where(model.patient_id == patient_id).order_by(model.recorded_at, model.id)
    )
    return list(rows.scalars())


async def encounters_of(db: AsyncSession, patient_id: int) -> list[Encounter]:
    rows = await db.execute(
        select(Encounter)
        .where(Encounter.patient_id == patient_id)
        .order_by(Encounter.started_at.desc(), Encounter.id.desc())
    )
    return list(rows.scalars())


async def chart_of(db: AsyncSession, patient: Patient) -> Chart:
    return Chart(
        patient=patient,
        problems=await entries_of(db, Condition, patient.id),
        medications=await entries_of(db, MedicationStatement, patient.id),
        allergies=await entries_of(db, Allergy, patient.id),
        screenings=await screenings_of(db, patient.id),
        open_safety_flags=await open_flags(db, patient.id),
        encounters=await encounters_of(db, patient.id),
    )


async def patient_of_user(db: AsyncSession, user_id: int) -> Patient:
    """The patient record a patient account belongs to."""
    found = await db.execute(select(Patient).where(Patient.user_id == user_id))
    patient = found.scalar_one_or_none()
    if patient is None:
        raise NotFound("Your account is not linked to a patient record.", code="no_patient_record")
    return patient


class RecordService:
    def __init__(self, guard: RecordGuard) -> None:
        self._guard = guard

    # --- problems, medications, allergies -----------------------------------------------------

    async def entries(self, who: Actor, patient_id: int, model: type[EntryT]) -> list[EntryT]:
        async def work(db: AsyncSession, _access: Access) -> list[EntryT]:
            return await entries_of(db, model, patient_id)

        return await self._guard.read(
            who,
            patient_id,
            Action.READ_RECORD,
            Audited(AuditAction.RECORD_READ, detail={"section": TARGET_OF[model]}),
            work,
        )

    async def add(self, who: Actor, patient_id: int, fields: EntryFields) -> Entry:
        model = _MODEL_OF[type(fields)]
        columns = _columns(fields)

        async def work(db: AsyncSession, _access: Access) -> tuple[Entry, list[Audited]]:
            now = self._guard.clock()
            entry = model(
                patient_id=patient_id,
                recorded_at=now,
                recorded_by=who.user_id,
                updated_at=now,
                **columns,
            )
            db.add(entry)
            await db.flush()
            target = f"{TARGET_OF[model]}:{entry.id}"
            return entry, [Audited(AuditAction.RECORD_WRITE, target, {"change": "create"})]

        return await self._guard.write(
            who,
            patient_id,
            Action.WRITE_RECORD,
            work,
            denied_as=Audited(AuditAction.RECORD_WRITE, detail={"section": TARGET_OF[model]}),
        )

    async def update(
        self, who: Actor, patient_id: int, entry_id: int, fields: EntryFields
    ) -> Entry:
        model = _MODEL_OF[type(fields)]
        columns = _columns(fields)
        target = f"{TARGET_OF[model]}:{entry_id}"

        async def work(db: AsyncSession, _access: Access) -> tuple[Entry, list[Audited]]:
            entry = cast(Entry | None, await db.get(model, entry_id))
            if entry is None or entry.patient_id != patient_id:
                raise NotFound("No such entry in this record.", code="entry_not_found")
            changed = sorted(k for k, v in columns.items() if getattr(entry, k) != v)
            for key, value in columns.items():
                setattr(entry, key, value)
            entry.updated_at = self._guard.clock()
            await db.flush()
            detail = {"change": "update", "fields": changed}
            return entry, [Audited(AuditAction.RECORD_WRITE, target, detail)]

        return await self._guard.write(
            who,
            patient_id,
            Action.WRITE_RECORD,
            work,
            denied_as=Audited(AuditAction.RECORD_WRITE, target),
        )

    # --- encounters ------------------------------------------------------------------------------

    async def encounters(self, who: Actor, patient_id: int) -> list[Encounter]:
        async def work(db: AsyncSession, _access: Access) -> list[Encounter]:
            return await encounters_of(db, patient_id)

        return await self._guard.read(
            who,
            patient_id,
            Action.READ_RECORD,
            Audited(AuditAction.RECORD_READ, detail={"section": "encounters"}),
            work,
        )

    async def add_encounter(
        self,
        who: Actor,
        patient_id: int,
        kind: EncounterKind,
        started_at: datetime,
        ended_at: datetime | None,
    ) -> Encounter:
        """Record a contact that did not come from a video visit (an e-consult, a curbside)."""
        if kind is EncounterKind.VISIT:
            raise ValidationFailed(
                "Visit encounters are recorded by the visit itself.", code="encounter_kind"
            )
        if ended_at is not None and ended_at < started_at:
            raise ValidationFailed("An encounter cannot end before it starts.", code="ends_first")

        async def work(db: AsyncSession, _access: Access) -> tuple[Encounter, list[Audited]]:
            encounter = Encounter(
                patient_id=patient_id, kind=kind.value, started_at=started_at, ended_at=ended_at
            )
            db.add(encounter)
            await db.flush()
            detail = {"change": "create", "kind": kind.value}
            return encounter, [
                Audited(AuditAction.RECORD_WRITE, f"encounter:{encounter.id}", detail)
            ]

        return await self._guard.write(
            who,
            patient_id,
            Action.WRITE_RECORD,
            work,
            denied_as=Audited(AuditAction.RECORD_WRITE, detail={"section": "encounters"}),
        )

    # --- the whole record ------------------------------------------------------------------------

    async def chart(self, who: Actor, patient_id: int) -> Chart:
        async def work(db: AsyncSession, access: Access) -> Chart:
            return await chart_of(db, access.patient)

        return await self._guard.read(
            who,
            patient_id,
            Action.READ_RECORD,
            Audited(AuditAction.RECORD_READ, detail={"section": "chart"}),
            work,
        )

    async def my_patient_id(self, who: Actor) -> int:
        async with self._guard.db() as db:
            return (await patient_of_user(db, who.user_id)).id

    # --- who accessed the record ---------------------------------------------------------------

    async def access_log(
        self, who: Actor, patient_id: int, *, before_seq: int | None = None, limit: int = 50
    ) -> list[AccessLine]:
        async def work(db: AsyncSession, _access: Access) -> None:
            return None

        await self._guard.read(
            who,
            patient_id,
            Action.READ_ACCESS_LOG,
            Audited(AuditAction.RECORD_READ, detail={"section": "access_log"}),
            work,
        )
        return await self._guard.audit.accesses_for_patient(
            patient_id, limit=min(limit, MAX_ACCESS_LOG_PAGE), before_seq=before_seq
        )
