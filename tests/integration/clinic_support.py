"""A clinic session to book into, through the real server: where the clinic tests and the
reminder tests start."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from server.clock import FakeClock
from tests.conftest import SignIn
from tests.integration.visit_support import Client, Clinic, create_patient, ok_json, set_up_clinic

BASE = "/api/v1/clinics"


@dataclass(frozen=True)
class ClinicSession:
    clinic: Clinic
    session: dict[str, Any]  # as the API returned it: three 20-minute slots
    patient_id: int  # Sam Lee, with an email address, on the care manager's caseload


async def set_up_clinic_session(
    client: Client, clock: FakeClock, sign_in: SignIn, starts_in: timedelta
) -> ClinicSession:
    """The visit tests' clinic, Sam Lee, and the psychiatrist's one-hour session "Tuesday
    consults" starting ``starts_in`` from now, made by the care manager."""
    clinic = await set_up_clinic(client, clock, sign_in)
    patient = await create_patient(
        clinic.psychiatrist, given_name="Sam", family_name="Lee", email="sam@example.org"
    )
    added = await clinic.psychiatrist.post(
        f"/api/v1/patients/{patient['id']}/care-team",
        json={"user_id": clinic.care_manager.user_id, "role_on_team": "care_manager"},
    )
    await ok_json(added, 201)
    start = clock.now + starts_in
    session = await ok_json(
        await clinic.care_manager.post(
            f"{BASE}/sessions",
            json={
                "psychiatrist_id": clinic.psychiatrist.user_id,
                "title": "Tuesday consults",
                "starts_at": start.isoformat(),
                "ends_at": (start + timedelta(hours=1)).isoformat(),
                "slot_minutes": 20,
            },
        ),
        201,
    )
    return ClinicSession(clinic, session, patient["id"])
