"""The FHIR R4 export over HTTP: it validates, carries signed shared notes only, and is
audited; the patient exports their own record."""

from __future__ import annotations

import base64

import pytest
from fhir.resources.R4B.bundle import Bundle

from server.clock import FakeClock
from tests.conftest import SignIn
from tests.integration.record_support import PROGRESS, RecordClinic, set_up_record_clinic
from tests.integration.visit_support import Client, error_code, ok_json

SECRET = "PSYCHOTHERAPY-ONLY-7d2e"
DRAFT = "DRAFT-ONLY-91ab"


@pytest.fixture
async def rc(app_client: Client, clock: FakeClock, sign_in: SignIn) -> RecordClinic:
    return await set_up_record_clinic(app_client, clock, sign_in)


async def test_the_export_validates_and_leaves_out_private_notes_and_drafts(
    rc: RecordClinic,
) -> None:
    doc = rc.psychiatrist
    await ok_json(await doc.post(rc.path("/problems"), json={"text": "MDD"}), 201)
    await ok_json(await doc.post(rc.path("/medications"), json={"name": "sertraline"}), 201)
    await ok_json(await doc.post(rc.path("/allergies"), json={"substance": "latex"}), 201)
    await ok_json(
        await doc.post(rc.path("/screenings"), json={"instrument": "phq9", "answers": [1] * 9}),
        201,
    )
    await ok_json(
        await doc.post(rc.path("/screenings"), json={"instrument": "gad7", "answers": [2] * 7}),
        201,
    )
    shared = await rc.signed_note(doc)
    await rc.signed_note(rc.therapist, "psychotherapy_note", {"session_notes": SECRET})
    await rc.new_note(doc, body={"plan": DRAFT})

    bundle = await ok_json(await rc.pcp.get(rc.path("/fhir")))
    Bundle.model_validate(bundle)
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds.count("DocumentReference") == 1
    for kind in ("Patient", "Condition", "MedicationStatement", "AllergyIntolerance"):
        assert kinds.count(kind) == 1
    assert kinds.count("QuestionnaireResponse") == kinds.count("Observation") == 2
    [document] = [e["resource"] for e in bundle["entry"] if "content" in e["resource"]]
    text = base64.b64decode(document["content"][0]["attachment"]["data"]).decode()
    assert PROGRESS["plan"] in text
    raw = str(bundle)
    for hidden in (SECRET, DRAFT):
        assert hidden not in raw and hidden not in text
    assert shared["id"]

    exports = [a for a in await rc.accesses() if a.action == "export.fhir"]
    assert [(a.actor, a.outcome) for a in exports] == [(f"user:{rc.pcp.user_id}", "ok")]


async def test_the_patient_exports_their_own_record_and_others_cannot(rc: RecordClinic) -> None:
    await rc.signed_note(rc.psychiatrist)
    mine = await ok_json(await rc.patient_user.get("/api/v1/me/fhir"))
    Bundle.model_validate(mine)
    assert await error_code(await rc.admin.get(rc.path("/fhir")), 403) == "role_forbidden"
    assert await error_code(await rc.outsider.get(rc.path("/fhir")), 403) == "not_on_care_team"
