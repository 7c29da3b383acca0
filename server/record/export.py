"""Exporting a patient's record as FHIR R4 (``consult_notes.fhir``), audited.

Who may export is the policy's ``export_fhir`` (the care team; the patient, their own record).
Only signed, non-psychotherapy notes are read for it (``NoteService.exportable``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from consult_notes.fhir import ExportedNote, PatientExport, build_bundle
from server.audit import Action as AuditAction
from server.db.models import User
from server.record.access import Access, Actor
from server.record.chart import chart_of
from server.record.guard import Audited, RecordGuard
from server.record.notes import NoteService
from server.record.policy import Action


class ExportService:
    def __init__(self, guard: RecordGuard, notes: NoteService, base_url: str) -> None:
        self._guard = guard
        self._notes = notes
        self._base_url = base_url

    async def fhir(self, who: Actor, patient_id: int) -> dict[str, Any]:
        async def work(db: AsyncSession, access: Access) -> PatientExport:
            chart = await chart_of(db, access.patient)
            notes = await self._notes.exportable(db, patient_id)
            author_ids = {meta.author_id for meta, _body in notes}
            names: dict[int, str] = {}
            if author_ids:
                rows = await db.execute(
                    select(User.id, User.display_name).where(User.id.in_(author_ids))
                )
                names = {uid: name for uid, name in rows.all()}
            return PatientExport(
                patient=chart.patient,
                encounters=chart.encounters,
                conditions=chart.problems,
                medications=chart.medications,
                allergies=chart.allergies,
                screenings=chart.screenings,
                notes=[ExportedNote(m, b, names.get(m.author_id, "")) for m, b in notes],
            )

        export = await self._guard.read(
            who,
            patient_id,
            Action.EXPORT_FHIR,
            Audited(AuditAction.EXPORT_FHIR, f"patient:{patient_id}", {"format": "fhir-r4"}),
            work,
        )
        return build_bundle(export, base_url=self._base_url, generated_at=self._guard.clock())
