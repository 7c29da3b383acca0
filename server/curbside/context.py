"""The record's context a curbside request carries: what a psychiatrist needs at a glance.

Taken from the shared record when the PCP asks (a snapshot: the record may change later) and
only what the record holds: current problems, current medications, the latest PHQ-9 and GAD-7
and whether a safety flag is open. No demographics beyond what routing needs, no free text of
the PCP's own (the question is kept apart).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Condition, MedicationStatement
from server.record.chart import entries_of
from server.record.entries import ConditionStatus, MedicationStatus
from server.record.screening_service import open_flags, screenings_of
from server.record.screenings import Instrument

CURRENT_PROBLEMS = frozenset(
    {ConditionStatus.ACTIVE, ConditionStatus.RECURRENCE, ConditionStatus.RELAPSE}
)
CURRENT_MEDICATIONS = frozenset({MedicationStatus.ACTIVE, MedicationStatus.ON_HOLD})


async def snapshot(db: AsyncSession, patient_id: int) -> dict[str, Any]:
    problems = [
        {"text": c.text, "code": c.code, "code_system": c.code_system}
        for c in await entries_of(db, Condition, patient_id)
        if c.clinical_status in CURRENT_PROBLEMS
    ]
    medications = [
        {
            "name": m.name,
            "dose": m.dose,
            "route": m.route,
            "frequency": m.frequency,
            "status": m.status,
        }
        for m in await entries_of(db, MedicationStatement, patient_id)
        if m.status in CURRENT_MEDICATIONS
    ]
    latest: dict[str, Any] = {}
    for screening in await screenings_of(db, patient_id):  # newest first
        latest.setdefault(
            screening.instrument,
            {
                "total": screening.total,
                "severity": screening.severity,
                "administered_at": screening.administered_at.isoformat(),
            },
        )
    return {
        "problems": problems,
        "medications": medications,
        "screenings": {i.value: latest.get(i.value) for i in Instrument},
        "safety_flag_open": bool(await open_flags(db, patient_id)),
    }
