"""Patients and care teams: creating, finding and reading them, and who may."""

from __future__ import annotations

from typing import Any

import pytest

from server.auth.roles import Role
from server.clock import FakeClock
from tests.conftest import SignIn
from tests.integration.visit_support import (
    DOB,
    Client,
    Clinic,
    create_patient,
    error_code,
    ok_json,
    set_up_clinic,
)


@pytest.fixture
async def clinic(app_client: Client, clock: FakeClock, sign_in: SignIn) -> Clinic:
    return await set_up_clinic(app_client, clock, sign_in)


async def test_a_clinician_who_creates_a_patient_joins_their_care_team(clinic: Clinic) -> None:
    patient = await create_patient(clinic.pcp, given_name=" Ana ", family_name="Ruiz")
    assert patient["given_name"] == "Ana"  # trimmed
    assert patient["mrn"] == f"LIA-{patient['id']:07d}"
    assert patient["date_of_birth"] == DOB
    assert patient["preferred_language"] == "es"
    assert [(m["user_id"], m["role_on_team"]) for m in patient["care_team"]] == [
        (clinic.pcp.user_id, "pcp")
    ]


async def test_an_admin_who_creates_a_patient_does_not_join_the_care_team(clinic: Clinic) -> None:
    patient = await create_patient(clinic.admin)
    assert patient["care_team"] == []


async def test_a_given_mrn_is_kept_and_must_be_unique(clinic: Clinic) -> None:
    first = await create_patient(clinic.psychiatrist, mrn="A-1001")
    assert first["mrn"] == "A-1001"
    again = await clinic.psychiatrist.post(
        "/api/v1/patients",
        json={
            "mrn": "A-1001",
            "given_name": "Sam",
            "family_name": "Lee",
            "date_of_birth": "1990-01-01",
            "state": "NY",
            "phone": "212 555 0100",
        },
    )
    assert await error_code(again, 409) == "mrn_taken"


async def test_mrns_of_the_form_liaison_assigns_are_reserved(clinic: Clinic) -> None:
    response = await clinic.psychiatrist.post(
        "/api/v1/patients",
        json={
            "mrn": "LIA-0000099",
            "given_name": "Sam",
            "family_name": "Lee",
            "date_of_birth": "1990-01-01",
            "state": "NY",
            "phone": "212 555 0100",
        },
    )
    assert await error_code(response, 422) == "mrn_reserved"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("state", "XX"),
        ("phone", "call me"),
        ("phone", "555-0100"),
        ("preferred_language", "spanish!"),
        ("email", "not-an-email"),
        ("given_name", ""),
        ("date_of_birth", "1988-02-30"),
    ],
)
async def test_it_refuses_a_badly_formed_field(clinic: Clinic, field: str, value: str) -> None:
    body: dict[str, Any] = {
        "given_name": "Sam",
        "family_name": "Lee",
        "date_of_birth": "1990-01-01",
        "state": "NY",
        "phone": "212 555 0100",
        field: value,
    }
    response = await clinic.psychiatrist.post("/api/v1/patients", json=body)
    assert await error_code(response, 422) == "validation_failed"
    fields = [f["field"] for f in (await response.json())["error"]["fields"]]
    assert fields == [field]


async def test_it_refuses_a_birth_date_in_the_future(clinic: Clinic) -> None:
    response = await clinic.psychiatrist.post(
        "/api/v1/patients",
        json={
            "given_name": "Sam",
            "family_name": "Lee",
            "date_of_birth": "2030-01-01",
            "state": "NY",
            "phone": "212 555 0100",
        },
    )
    assert await error_code(response, 422) == "invalid_birth_date"


async def test_it_normalises_language_state_and_phone(clinic: Clinic) -> None:
    patient = await create_patient(
        clinic.psychiatrist, preferred_language="PT-br", state="ny", phone="  212  555 0100 "
    )
    assert patient["preferred_language"] == "pt-BR"
    assert patient["state"] == "NY"
    assert patient["phone"] == "212 555 0100"


async def test_a_patient_account_may_not_create_or_list_patients(clinic: Clinic) -> None:
    assert (
        await error_code(await clinic.patient_user.post("/api/v1/patients", json={}), 403)
        == "role_forbidden"
    )
    assert (
        await error_code(await clinic.patient_user.get("/api/v1/patients"), 403) == "role_forbidden"
    )


async def test_search_lists_only_patients_on_my_care_teams(clinic: Clinic) -> None:
    await create_patient(clinic.outsider, given_name="Riley", family_name="Stone", mrn="B-77")
    mine = await ok_json(await clinic.psychiatrist.get("/api/v1/patients"))
    assert [p["family_name"] for p in mine["patients"]] == ["Alvarez"]
    theirs = await ok_json(await clinic.outsider.get("/api/v1/patients"))
    assert [p["family_name"] for p in theirs["patients"]] == ["Stone"]
    everyone = await ok_json(await clinic.admin.get("/api/v1/patients"))
    assert [p["family_name"] for p in everyone["patients"]] == ["Alvarez", "Stone"]
    nobody = await ok_json(await clinic.care_manager.get("/api/v1/patients"))
    assert nobody["patients"] == []


@pytest.mark.parametrize(
    ("query", "found"),
    [("alva", ["Alvarez"]), ("JORDAN", ["Alvarez"]), ("b-77", ["Stone"]), ("%", []), ("_", [])],
)
async def test_search_matches_names_and_mrns(clinic: Clinic, query: str, found: list[str]) -> None:
    await create_patient(clinic.admin, given_name="Riley", family_name="Stone", mrn="B-77")
    response = await clinic.admin.get("/api/v1/patients", params={"query": query})
    assert [p["family_name"] for p in (await ok_json(response))["patients"]] == found


async def test_reading_a_patient_needs_the_care_team(clinic: Clinic) -> None:
    path = f"/api/v1/patients/{clinic.patient_id}"
    record = await ok_json(await clinic.pcp.get(path))
    assert record["phone"] == "+1 (415) 555-0134"
    assert {m["user_id"] for m in record["care_team"]} == {
        clinic.psychiatrist.user_id,
        clinic.pcp.user_id,
    }
    assert await error_code(await clinic.outsider.get(path), 403) == "not_on_care_team"
    assert await error_code(await clinic.care_manager.get(path), 403) == "not_on_care_team"
    assert await error_code(await clinic.patient_user.get(path), 403) == "role_forbidden"
    await ok_json(await clinic.admin.get(path))


async def test_an_unknown_patient_is_404(clinic: Clinic) -> None:
    for path in ("/api/v1/patients/9999", "/api/v1/patients/abc"):
        assert await error_code(await clinic.admin.get(path), 404) == "patient_not_found"


async def test_a_care_team_member_adds_a_clinician(clinic: Clinic) -> None:
    path = f"/api/v1/patients/{clinic.patient_id}/care-team"
    body = {"user_id": clinic.care_manager.user_id, "role_on_team": "care_manager"}
    added = await ok_json(await clinic.pcp.post(path, json=body), 201)
    assert added["role_on_team"] == "care_manager"
    assert added["display_name"] == "Cm.Patel"
    await ok_json(await clinic.care_manager.get(f"/api/v1/patients/{clinic.patient_id}"))
    again = await clinic.pcp.post(path, json=body)
    assert await error_code(again, 409) == "already_on_care_team"


async def test_only_clinicians_join_a_care_team(clinic: Clinic) -> None:
    path = f"/api/v1/patients/{clinic.patient_id}/care-team"
    for user_id in (clinic.patient_user.user_id, clinic.admin.user_id, 9999):
        response = await clinic.psychiatrist.post(
            path, json={"user_id": user_id, "role_on_team": "pcp"}
        )
        assert await error_code(response, 422) == "not_a_clinician"


async def test_someone_off_the_care_team_cannot_add_to_it(clinic: Clinic) -> None:
    response = await clinic.outsider.post(
        f"/api/v1/patients/{clinic.patient_id}/care-team",
        json={"user_id": clinic.outsider.user_id, "role_on_team": "psychiatrist"},
    )
    assert await error_code(response, 403) == "not_on_care_team"


async def test_a_disabled_clinician_cannot_join_a_care_team(
    clinic: Clinic, sign_in: SignIn
) -> None:
    therapist = await sign_in(Role.THERAPIST, "t.nguyen")
    await ok_json(await clinic.admin.post(f"/api/v1/admin/users/{therapist.user_id}/disable"))
    response = await clinic.psychiatrist.post(
        f"/api/v1/patients/{clinic.patient_id}/care-team",
        json={"user_id": therapist.user_id, "role_on_team": "therapist"},
    )
    assert await error_code(response, 422) == "not_a_clinician"
