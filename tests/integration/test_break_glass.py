"""Break the glass: a clinician off the care team states a reason, reads for a while (never a
psychotherapy note, never writes), and an admin reviews the grant. All of it audited."""

from __future__ import annotations

import pytest

from server.auth.roles import Role
from server.clock import FakeClock
from tests.conftest import AppFactory, SignIn
from tests.integration.record_support import PSYCHOTHERAPY, RecordClinic, set_up_record_clinic
from tests.integration.visit_support import Client, create_patient, error_code, ok_json

REASON = "ED physician: patient unresponsive, need medication list and recent notes"


@pytest.fixture
async def rc(app_client: Client, clock: FakeClock, sign_in: SignIn) -> RecordClinic:
    return await set_up_record_clinic(app_client, clock, sign_in)


async def test_break_the_glass_opens_the_record_for_reading_for_an_hour(rc: RecordClinic) -> None:
    shared = await rc.signed_note(rc.psychiatrist)
    draft = await rc.new_note(rc.psychiatrist)
    private = await rc.signed_note(rc.therapist, "psychotherapy_note", PSYCHOTHERAPY)
    out = rc.outsider
    assert await error_code(await out.get(rc.path("/record")), 403) == "not_on_care_team"

    short = await out.post(rc.path("/break-glass"), json={"reason": "need it"})
    assert await error_code(short, 422) == "break_glass_reason_required"
    grant = await ok_json(await out.post(rc.path("/break-glass"), json={"reason": REASON}), 201)
    assert grant["reason"] == REASON
    assert grant["expires_at"].startswith("2026-01-05T10:00")  # the fake clock's 09:00 + 60 min

    await ok_json(await out.get(rc.path("/record")))
    await ok_json(await out.get(f"/api/v1/patients/{rc.patient_id}"))  # demographics
    assert (await ok_json(await out.get(f"/api/v1/notes/{shared['id']}")))["id"] == shared["id"]
    listed = await ok_json(await out.get(rc.path("/notes")))
    assert [n["id"] for n in listed["notes"]] == [shared["id"]]
    for hidden in (draft, private):
        response = await out.get(f"/api/v1/notes/{hidden['id']}")
        assert await error_code(response, 404) == "note_not_found"

    # Reading only: no writes, no notes, no export, no running the team.
    for response in (
        await out.post(rc.path("/problems"), json={"text": "x"}),
        await out.post(rc.path("/notes"), json={"template_id": "progress_note", "body": {}}),
        await out.post(f"/api/v1/notes/{shared['id']}/addenda", json={"body": {"text": "x"}}),
        await out.get(rc.path("/fhir")),
        await out.post(
            rc.path("/care-team"), json={"user_id": out.user_id, "role_on_team": "psychiatrist"}
        ),
    ):
        assert await error_code(response, 403) == "not_on_care_team"

    for _ in range(5):  # 65 minutes, keeping the session alive (15 minutes idle ends it)
        rc.clock.advance(13 * 60)
        await ok_json(await out.get("/api/v1/note-templates"))
    assert await error_code(await out.get(rc.path("/record")), 403) == "not_on_care_team"

    accesses = [a for a in reversed(await rc.accesses()) if a.actor == f"user:{out.user_id}"]
    assert [a.action for a in accesses if a.action == "break_glass"] == ["break_glass"]
    assert ("record.read", "ok") in [(a.action, a.outcome) for a in accesses]


async def test_a_team_member_or_a_non_clinician_cannot_break_the_glass(rc: RecordClinic) -> None:
    response = await rc.pcp.post(rc.path("/break-glass"), json={"reason": REASON})
    assert await error_code(response, 403) == "already_on_care_team"
    response = await rc.admin.post(rc.path("/break-glass"), json={"reason": REASON})
    assert await error_code(response, 403) == "role_forbidden"
    response = await rc.outsider.post("/api/v1/patients/999/break-glass", json={"reason": REASON})
    assert await error_code(response, 404) == "patient_not_found"


async def test_an_admin_reviews_every_grant(rc: RecordClinic) -> None:
    grant = await ok_json(
        await rc.outsider.post(rc.path("/break-glass"), json={"reason": REASON}), 201
    )
    listed = await ok_json(await rc.admin.get("/api/v1/admin/break-glass?unreviewed=true"))
    [line] = listed["grants"]
    assert (line["id"], line["clinician_name"], line["reason"]) == (
        grant["id"],
        "Dr.Okafor",
        REASON,
    )
    assert line["reviewed_at"] is None
    reviewed = await ok_json(await rc.admin.post(f"/api/v1/admin/break-glass/{grant['id']}/review"))
    assert reviewed["reviewed_by"] == rc.admin.user_id
    again = await rc.admin.post(f"/api/v1/admin/break-glass/{grant['id']}/review")
    assert await error_code(again, 409) == "grant_reviewed"
    assert (await ok_json(await rc.admin.get("/api/v1/admin/break-glass?unreviewed=1")))[
        "grants"
    ] == []
    assert len((await ok_json(await rc.admin.get("/api/v1/admin/break-glass")))["grants"]) == 1
    refused = await rc.psychiatrist.get("/api/v1/admin/break-glass")
    assert await error_code(refused, 403) == "role_forbidden"
    missing = await rc.admin.post("/api/v1/admin/break-glass/999/review")
    assert await error_code(missing, 404) == "grant_not_found"
    reviews = [a for a in await rc.accesses() if a.actor == f"user:{rc.admin.user_id}"]
    assert {a.action for a in reviews} == {"break_glass", "record.read"}


async def test_the_grant_and_reason_lengths_are_settings(
    make_app: AppFactory, sign_in: SignIn
) -> None:
    client = await make_app(
        LIAISON_RECORD__BREAK_GLASS_MINUTES="5", LIAISON_RECORD__BREAK_GLASS_MIN_REASON="30"
    )
    doc = await sign_in(Role.PSYCHIATRIST, "dr.a", client=client)
    other = await sign_in(Role.PSYCHIATRIST, "dr.b", client=client)
    patient = await create_patient(doc)
    path = f"/api/v1/patients/{patient['id']}/break-glass"
    short = await other.post(path, json={"reason": "r" * 29})
    assert await error_code(short, 422) == "break_glass_reason_required"
    grant = await ok_json(await other.post(path, json={"reason": "r" * 30}), 201)
    assert grant["expires_at"].startswith("2026-01-05T09:05")
