"""Who may answer the waiting-room questionnaire for a patient, and the staff's list of
psychiatrists for creating clinic sessions."""

from __future__ import annotations

from typing import Any

import pytest

from server.auth.roles import Role
from server.clock import FakeClock
from tests.conftest import SignIn
from tests.integration.visit_support import (
    Client,
    Clinic,
    Holders,
    error_code,
    ok_json,
    set_up_clinic,
)

SCREENING = "/api/v1/clinics/waiting-room/screenings"
PHQ9 = {"instrument": "phq9", "answers": [1, 1, 1, 1, 1, 1, 1, 1, 0]}


@pytest.fixture
async def clinic(app_client: Client, clock: FakeClock, sign_in: SignIn) -> Clinic:
    return await set_up_clinic(app_client, clock, sign_in)


async def screenings_of(clinic: Clinic) -> list[Any]:
    body = await ok_json(
        await clinic.psychiatrist.get(f"/api/v1/patients/{clinic.patient_id}/screenings")
    )
    found: list[Any] = body["screenings"]
    return found


async def test_only_the_verified_patient_answers_in_the_waiting_room(clinic: Clinic) -> None:
    visit = await clinic.schedule()
    invited = await clinic.psychiatrist.post(
        f"/api/v1/visits/{visit['visit']['id']}/links",
        json={"guest_role": "family", "display_name": "Alex (brother)"},
    )
    guest_url = (await ok_json(invited, 201))["url"]
    base = str(clinic.client.make_url("")).rstrip("/")
    async with Holders(clinic.client) as holders:
        # A guest (here a relative) must not answer for the patient.
        guest = holders()
        await guest.join(guest_url)
        await ok_json(await guest.consent())
        response = await guest.http.post(
            base + SCREENING, json=PHQ9, headers={"X-CSRF-Token": guest.csrf_token}
        )
        assert await error_code(response, 403) == "not_a_link"

        # Nor the patient's link before the date of birth is confirmed.
        early = holders()
        await early.join(visit["patient_link"]["url"])
        response = await early.http.post(
            base + SCREENING, json=PHQ9, headers={"X-CSRF-Token": early.csrf_token}
        )
        assert await error_code(response, 403) == "not_a_link"
        assert await screenings_of(clinic) == []

        await ok_json(await early.verify())
        await ok_json(await early.consent())
        await ok_json(await early.locate())
        response = await early.http.post(
            base + SCREENING, json=PHQ9, headers={"X-CSRF-Token": early.csrf_token}
        )
        assert response.status == 204, await response.text()
    assert [(s["instrument"], s["total"]) for s in await screenings_of(clinic)] == [("phq9", 8)]


async def test_staff_list_active_psychiatrists_and_nobody_else_does(
    clinic: Clinic, sign_in: SignIn
) -> None:
    disabled = await sign_in(Role.PSYCHIATRIST, "dr.gone")
    await ok_json(await clinic.admin.post(f"/api/v1/admin/users/{disabled.user_id}/disable"))
    for staff in (clinic.care_manager, clinic.admin):
        body = await ok_json(await staff.get("/api/v1/clinics/psychiatrists"))
        ids = [p["id"] for p in body["psychiatrists"]]
        assert set(ids) == {clinic.psychiatrist.user_id, clinic.outsider.user_id}
    for other in (clinic.psychiatrist, clinic.pcp, clinic.patient_user):
        response = await other.get("/api/v1/clinics/psychiatrists")
        assert await error_code(response, 403) == "role_forbidden"
