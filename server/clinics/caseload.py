"""The collaborative-care registry: a care manager's caseload with the registry's rules applied
(server/clinics/registry.py), each patient's scores over time, care-management minutes and
follow-up tasks from caseload reviews.

A caseload is the patients whose care team the user is on (care managers, and psychiatrists for
the systematic caseload review). Everything about one patient goes through the record's access
rule (a clinician on the care team); admins see no clinical information.

A patient was last reviewed when the newest signed caseload-review note about them was signed
(``consult_notes.templates.CASELOAD_REVIEW``): derived from the notes' metadata columns, so no
note body is loaded (they are encrypted) and there is nothing else to keep in step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from consult_notes.templates import CASELOAD_REVIEW, NoteKind
from server.audit import Action as AuditAction
from server.audit import AuditLog, Event
from server.clinics.kinds import ContactKind
from server.clinics.registry import Assessment, Flag, Rules, ScorePoint, assess
from server.clock import Clock
from server.db.models import (
    CareContact,
    CareTeamMember,
    ConsultNote,
    FollowUpTask,
    Patient,
    SafetyFlag,
    Screening,
)
from server.errors import NotFound, ValidationFailed
from server.record.access import Actor, on_care_team, require
from server.record.patients import audit_actor
from server.record.policy import Action
from server.record.screening_service import answers_of
from server.record.screenings import PHQ9_SELF_HARM_ITEM, Instrument
from server.settings import RegistrySettings


@dataclass(frozen=True, slots=True)
class CaseloadEntry:
    patient: Patient
    assessment: Assessment
    open_safety_flags: int
    open_tasks: int
    last_reviewed: datetime | None = None  # the newest signed caseload-review note


def point_of(s: Screening) -> ScorePoint:
    instrument = Instrument(s.instrument)
    item9 = answers_of(s)[PHQ9_SELF_HARM_ITEM - 1] if instrument is Instrument.PHQ9 else None
    return ScorePoint(instrument, s.total, s.administered_at, item9)


def month_bounds(month: str) -> tuple[datetime, datetime]:
    try:
        first = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        raise ValidationFailed("Give the month as YYYY-MM.", code="invalid_month") from None
    nxt = (first + timedelta(days=32)).replace(day=1)
    return first, nxt


class RegistryService:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        clock: Clock,
        audit: AuditLog,
        settings: RegistrySettings,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self.rules = Rules(
            not_improving_weeks=settings.not_improving_weeks,
            improvement_target_percent=settings.improvement_target_percent,
            contact_overdue_days=settings.contact_overdue_days,
        )

    async def caseload(self, who: Actor) -> list[CaseloadEntry]:
        now = self._clock()
        if not who.role.is_clinician:
            return []
        async with self._db() as db:
            members = (
                await db.execute(
                    select(Patient, CareTeamMember.added_at)
                    .join(CareTeamMember, CareTeamMember.patient_id == Patient.id)
                    .where(CareTeamMember.user_id == who.user_id)
                    .order_by(Patient.family_name, Patient.given_name, Patient.id)
                )
            ).all()
            ids = [p.id for p, _ in members]
            scores: dict[int, list[ScorePoint]] = {}
            for s in (
                await db.execute(select(Screening).where(Screening.patient_id.in_(ids)))
            ).scalars():
                scores.setdefault(s.patient_id, []).append(point_of(s))
            contacts: dict[int, list[datetime]] = {}
            for pid, at in await db.execute(
                select(CareContact.patient_id, CareContact.at).where(
                    CareContact.patient_id.in_(ids)
                )
            ):
                contacts.setdefault(pid, []).append(at)
            flags: dict[int, int] = {
                pid: n
                for pid, n in await db.execute(
                    select(SafetyFlag.patient_id, func.count())
                    .where(SafetyFlag.patient_id.in_(ids), SafetyFlag.resolved_at.is_(None))
                    .group_by(SafetyFlag.patient_id)
                )
            }
            tasks: dict[int, int] = {
                pid: n
                for pid, n in await db.execute(
                    select(FollowUpTask.patient_id, func.count())
                    .where(FollowUpTask.patient_id.in_(ids), FollowUpTask.done_at.is_(None))
                    .group_by(FollowUpTask.patient_id)
                )
            }
            reviewed: dict[int, datetime | None] = {
                pid: at
                for pid, at in await db.execute(
                    select(ConsultNote.patient_id, func.max(ConsultNote.signed_at))
                    .where(
                        ConsultNote.patient_id.in_(ids),
                        ConsultNote.template_id == CASELOAD_REVIEW.id,
                        ConsultNote.signed_at.is_not(None),
                    )
                    .group_by(ConsultNote.patient_id)
                )
            }
        entries = [
            CaseloadEntry(
                patient,
                assess(
                    scores.get(patient.id, []),
                    contacts.get(patient.id, []),
                    now=now,
                    rules=self.rules,
                    open_safety_flags=flags.get(patient.id, 0),
                    enrolled_at=added_at,
                ),
                flags.get(patient.id, 0),
                tasks.get(patient.id, 0),
                reviewed.get(patient.id),
            )
            for patient, added_at in members
        ]
        for pid in ids:
            await self._audit.record(self._read(who, pid, "registry"))
        return entries

    async def scores(self, who: Actor, patient_id: int) -> list[Screening]:
        async with self._db() as db:
            await require(db, who, patient_id, Action.READ_RECORD, self._clock())
            rows = await db.execute(
                select(Screening)
                .where(Screening.patient_id == patient_id)
                .order_by(Screening.administered_at, Screening.id)
            )
            found = list(rows.scalars())
        await self._audit.record(self._read(who, patient_id, "screenings"))
        return found

    # --- care-management minutes --------------------------------------------------------------

    async def add_contact(
        self, who: Actor, patient_id: int, minutes: int, kind: ContactKind, at: datetime | None
    ) -> CareContact:
        now = self._clock()
        when = (at or now).astimezone(UTC)
        if when > now + timedelta(minutes=5):
            raise ValidationFailed("A contact cannot be in the future.", code="contact_in_future")
        async with self._db.begin() as db:
            await require(db, who, patient_id, Action.WRITE_RECORD, now)
            contact = CareContact(
                patient_id=patient_id,
                user_id=who.user_id,
                at=when,
                minutes=minutes,
                kind=kind.value,
                created_at=now,
            )
            db.add(contact)
            await db.flush()
            await self._audit.record_in(
                db, self._write(who, patient_id, f"care_contact:{contact.id}")
            )
        return contact

    async def contacts(self, who: Actor, patient_id: int) -> list[CareContact]:
        async with self._db() as db:
            await require(db, who, patient_id, Action.READ_RECORD, self._clock())
            rows = await db.execute(
                select(CareContact)
                .where(CareContact.patient_id == patient_id)
                .order_by(CareContact.at.desc(), CareContact.id.desc())
            )
            return list(rows.scalars())

    async def monthly_minutes(self, who: Actor, month: str) -> list[tuple[Patient, int, int]]:
        """(patient, minutes, contacts) in the month for every patient of the caseload."""
        start, end = month_bounds(month)
        async with self._db() as db:
            rows = await db.execute(
                select(
                    Patient,
                    func.coalesce(func.sum(CareContact.minutes), 0),
                    func.count(CareContact.id),
                )
                .join(CareTeamMember, CareTeamMember.patient_id == Patient.id)
                .outerjoin(
                    CareContact,
                    (CareContact.patient_id == Patient.id)
                    & (CareContact.at >= start)
                    & (CareContact.at < end),
                )
                .where(CareTeamMember.user_id == who.user_id)
                .group_by(Patient.id)
                .order_by(Patient.family_name, Patient.given_name, Patient.id)
            )
            return [(p, int(m), int(n)) for p, m, n in rows]

    # --- follow-up tasks ----------------------------------------------------------------------

    async def tasks(self, who: Actor, patient_id: int) -> list[FollowUpTask]:
        async with self._db() as db:
            await require(db, who, patient_id, Action.READ_RECORD, self._clock())
            rows = await db.execute(
                select(FollowUpTask)
                .where(FollowUpTask.patient_id == patient_id)
                .order_by(FollowUpTask.done_at.is_not(None), FollowUpTask.due, FollowUpTask.id)
            )
            return list(rows.scalars())

    async def my_tasks(self, who: Actor) -> list[FollowUpTask]:
        async with self._db() as db:
            rows = await db.execute(
                select(FollowUpTask)
                .where(FollowUpTask.owner_id == who.user_id, FollowUpTask.done_at.is_(None))
                .order_by(FollowUpTask.due, FollowUpTask.id)
            )
            return list(rows.scalars())

    async def add_task(
        self,
        who: Actor,
        patient_id: int,
        *,
        title: str,
        due: date,
        owner_id: int,
        source_note_id: int | None,
    ) -> FollowUpTask:
        now = self._clock()
        async with self._db.begin() as db:
            await require(db, who, patient_id, Action.WRITE_RECORD, now)
            await self._check_owner(db, patient_id, owner_id)
            if source_note_id is not None:
                await self._check_source_note(db, who, patient_id, source_note_id)
            task = FollowUpTask(
                patient_id=patient_id,
                title=title,
                due=due,
                owner_id=owner_id,
                created_by=who.user_id,
                created_at=now,
                source_note_id=source_note_id,
            )
            db.add(task)
            await db.flush()
            await self._audit.record_in(db, self._write(who, patient_id, f"follow_up:{task.id}"))
        return task

    async def update_task(
        self,
        who: Actor,
        task_id: int,
        *,
        title: str | None = None,
        due: date | None = None,
        owner_id: int | None = None,
        done: bool | None = None,
    ) -> FollowUpTask:
        now = self._clock()
        async with self._db.begin() as db:
            task = await self._task(db, who, task_id, now)
            if owner_id is not None:
                await self._check_owner(db, task.patient_id, owner_id)
                task.owner_id = owner_id
            if title is not None:
                task.title = title
            if due is not None:
                task.due = due
            if done is True and task.done_at is None:
                task.done_at, task.done_by = now, who.user_id
            elif done is False:
                task.done_at, task.done_by = None, None
            await self._audit.record_in(
                db, self._write(who, task.patient_id, f"follow_up:{task.id}")
            )
        return task

    async def delete_task(self, who: Actor, task_id: int) -> None:
        now = self._clock()
        async with self._db.begin() as db:
            task = await self._task(db, who, task_id, now)
            await db.delete(task)
            await self._audit.record_in(
                db, self._write(who, task.patient_id, f"follow_up:{task_id}", change="delete")
            )

    async def _task(
        self, db: AsyncSession, who: Actor, task_id: int, now: datetime
    ) -> FollowUpTask:
        task = await db.get(FollowUpTask, task_id)
        if task is None:
            raise NotFound("No such task.", code="task_not_found")
        await require(db, who, task.patient_id, Action.WRITE_RECORD, now)
        return task

    async def _check_owner(self, db: AsyncSession, patient_id: int, owner_id: int) -> None:
        if not await on_care_team(db, patient_id, owner_id):
            raise ValidationFailed(
                "The task's owner must be on the patient's care team.",
                code="owner_not_on_care_team",
            )

    async def _check_source_note(
        self, db: AsyncSession, who: Actor, patient_id: int, note_id: int
    ) -> None:
        """A task may come from a signed shared note of the same patient. Never a draft, even
        its author's: a draft can be deleted (the task would keep pointing at nothing, and the
        reference would stop the deletion) and says nothing yet to the others who read the
        task. Never a psychotherapy note: the task list is shared. Metadata only; one answer
        for every refusal, so nothing is learnt about other notes."""
        row = (
            await db.execute(
                select(
                    ConsultNote.patient_id,
                    ConsultNote.kind,
                    ConsultNote.signed_at,
                ).where(ConsultNote.id == note_id)
            )
        ).one_or_none()
        if (
            row is None
            or row.patient_id != patient_id
            or NoteKind(row.kind).private
            or row.signed_at is None
        ):
            raise ValidationFailed(
                "The note a task comes from must be one of this patient's signed notes.",
                code="source_note_not_found",
            )

    def _read(self, who: Actor, patient_id: int, section: str) -> Event:
        return Event(
            AuditAction.RECORD_READ,
            audit_actor(who),
            patient_id=patient_id,
            detail={"section": section},
        )

    def _write(self, who: Actor, patient_id: int, target: str, **detail: str) -> Event:
        return Event(
            AuditAction.RECORD_WRITE,
            audit_actor(who),
            patient_id=patient_id,
            target=target,
            detail=detail,
        )


def sort_caseload(entries: Sequence[CaseloadEntry], key: str) -> list[CaseloadEntry]:
    """``flags`` (default: by the most urgent flag in ``Flag``'s order, safety, then not
    improving, then contact overdue; then more flags first; unflagged last), ``name``, ``weeks``,
    ``phq9`` (latest, highest first), ``change`` (least improved first), ``last_contact`` and
    ``last_reviewed`` (longest ago first, never before that). Ties go by name, ignoring case.

    The flags order is the registry page's (``caseloadView`` in web_client/src/clinics/format.js)
    and the caseload review walks it: the two must not drift apart."""
    far = datetime.min.replace(tzinfo=UTC)
    rank = {flag: i for i, flag in enumerate(Flag)}

    def by(e: CaseloadEntry) -> tuple[object, ...]:
        p = e.patient
        a, name = e.assessment, (p.family_name.casefold(), p.given_name.casefold(), p.id)
        phq = a.phq9.latest.total if a.phq9.latest else -1
        change = a.phq9.change_percent if a.phq9.change_percent is not None else -1000.0
        match key:
            case "name":
                return name
            case "weeks":
                return (-(a.weeks_in_treatment or -1), *name)
            case "phq9":
                return (-phq, *name)
            case "change":
                return (-change, *name)
            case "last_contact":
                return (a.last_contact or far, *name)
            case "last_reviewed":
                return (e.last_reviewed or far, *name)
            case _:
                urgency = min((rank[f] for f in a.flags), default=len(rank))
                return (urgency, -len(a.flags), *name)

    if key not in ("flags", "name", "weeks", "phq9", "change", "last_contact", "last_reviewed"):
        raise ValidationFailed("Unknown sort.", code="invalid_sort")
    return sorted(entries, key=by)
