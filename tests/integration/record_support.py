"""Builders for the record, notes and break-the-glass tests: the visit tests' clinic of personas
around Jordan, plus a therapist and the care manager on Jordan's care team and Jordan's own
patient account linked to the record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import update

from server.audit import Access
from server.auth.roles import Role
from server.clock import FakeClock
from server.db.models import Patient
from server.state import SERVICES
from tests.conftest import Persona, SignIn
from tests.integration.visit_support import Client, Clinic, ok_json, set_up_clinic

PROGRESS = {
    "interval_history": "Sleeping better since the dose change.",
    "mental_status": "Calm, linear, no SI or HI.",
    "risk_assessment": "Low; safety plan reviewed.",
    "assessment": "Depression improving.",
    "plan": "Continue sertraline 100 mg; follow up in 4 weeks.",
}
PSYCHOTHERAPY = {"session_notes": "Explored grief about her father; tearful; CBT homework set."}


@dataclass
class RecordClinic:
    """``clinic``'s personas; on Jordan's care team: psychiatrist, pcp, therapist, care_manager.
    Off it: outsider. ``patient_user`` is Jordan's own account."""

    clinic: Clinic
    therapist: Persona

    @property
    def client(self) -> Client:
        return self.clinic.client

    @property
    def clock(self) -> FakeClock:
        return self.clinic.clock

    @property
    def patient_id(self) -> int:
        return self.clinic.patient_id

    @property
    def psychiatrist(self) -> Persona:
        return self.clinic.psychiatrist

    @property
    def pcp(self) -> Persona:
        return self.clinic.pcp

    @property
    def outsider(self) -> Persona:
        return self.clinic.outsider

    @property
    def care_manager(self) -> Persona:
        return self.clinic.care_manager

    @property
    def patient_user(self) -> Persona:
        return self.clinic.patient_user

    @property
    def admin(self) -> Persona:
        return self.clinic.admin

    def path(self, tail: str = "") -> str:
        return f"/api/v1/patients/{self.patient_id}{tail}"

    async def accesses(self) -> list[Access]:
        return await self.client.app[SERVICES].audit.accesses_for_patient(
            self.patient_id, limit=200
        )

    async def new_note(
        self, by: Persona, template_id: str = "progress_note", body: Any = None, **extra: Any
    ) -> Any:
        payload = {"template_id": template_id, "body": PROGRESS if body is None else body}
        return await ok_json(await by.post(self.path("/notes"), json=payload | extra), 201)

    async def signed_note(
        self, by: Persona, template_id: str = "progress_note", body: Any = None
    ) -> Any:
        note = await self.new_note(by, template_id, body)
        response = await by.post(f"/api/v1/notes/{note['id']}/sign", json={})
        return await ok_json(response)


async def set_up_record_clinic(client: Client, clock: FakeClock, sign_in: SignIn) -> RecordClinic:
    clinic = await set_up_clinic(client, clock, sign_in)
    therapist = await sign_in(Role.THERAPIST, "t.nguyen")
    for persona, role in ((therapist, "therapist"), (clinic.care_manager, "care_manager")):
        added = await clinic.psychiatrist.post(
            f"/api/v1/patients/{clinic.patient_id}/care-team",
            json={"user_id": persona.user_id, "role_on_team": role},
        )
        await ok_json(added, 201)
    svc = client.app[SERVICES]
    async with svc.db.begin() as db:
        await db.execute(
            update(Patient)
            .where(Patient.id == clinic.patient_id)
            .values(user_id=clinic.patient_user.user_id)
        )
    return RecordClinic(clinic, therapist)
