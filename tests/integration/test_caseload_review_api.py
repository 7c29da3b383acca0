"""The systematic caseload review through the API: the psychiatrist's recommendation note
(authored by psychiatrists only, read by the care manager once signed), follow-up tasks tied to
it, and the registry's "last reviewed" date derived from the signed notes. Runs on SQLite, and
on PostgreSQL with LIAISON_TEST_DATABASE=postgresql tools/run-tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from server.audit import Action as AuditAction
from server.state import SERVICES
from tests.conftest import Persona
from tests.integration.test_registry_api import caseload, clinic, enrol
from tests.integration.visit_support import Clinic, error_code, ok_json

__all__ = ["clinic"]  # the fixture, shared with the registry's own tests

pytestmark = pytest.mark.timeout(90)

REVIEW = {
    "current_status": "PHQ-9 20 to 13 (-35%) at week 12; adherent to sertraline 50 mg.",
    "recommendation": "Not improving: increase the dose.",
    "medication": "Sertraline 100 mg daily; watch for GI upset.",
    "safety_plan_addressed": True,
    "follow_up": "Care manager calls in 1 week; repeat PHQ-9 in 4 weeks.",
}


async def signed_review(by: Persona, patient_id: int, body: dict[str, Any] = REVIEW) -> Any:
    draft = await ok_json(
        await by.post(
            f"/api/v1/patients/{patient_id}/notes",
            json={"template_id": "caseload_review", "body": body},
        ),
        201,
    )
    return await ok_json(await by.post(f"/api/v1/notes/{draft['id']}/sign", json={}))


async def add_task(by: Persona, patient_id: int, owner: int, note_id: int | None) -> Any:
    due = datetime.now().date() + timedelta(days=7)
    return await by.post(
        f"/api/v1/registry/{patient_id}/tasks",
        json={
            "title": "Increase sertraline to 100 mg",
            "due": due.isoformat(),
            "owner_id": owner,
            "source_note_id": note_id,
        },
    )


async def test_the_psychiatrist_signs_a_recommendation_the_care_manager_reads(
    clinic: Clinic,
) -> None:
    pid = await enrol(clinic, mrn="CR1")
    note = await signed_review(clinic.psychiatrist, pid)
    assert (note["state"], note["kind"], note["template_id"]) == (
        "signed",
        "consult",
        "caseload_review",
    )
    assert note["title"] == "Caseload review recommendation"
    read = await ok_json(await clinic.care_manager.get(f"/api/v1/notes/{note['id']}"))
    assert read["body"] == REVIEW
    listed = await ok_json(await clinic.care_manager.get(f"/api/v1/patients/{pid}/notes"))
    assert [n["id"] for n in listed["notes"]] == [note["id"]]


async def test_a_care_manager_may_not_author_a_recommendation(clinic: Clinic) -> None:
    pid = await enrol(clinic, mrn="CR2")
    response = await clinic.care_manager.post(
        f"/api/v1/patients/{pid}/notes", json={"template_id": "caseload_review", "body": {}}
    )
    assert await error_code(response, 403) == "template_not_for_role"
    listed = await ok_json(await clinic.care_manager.get(f"/api/v1/patients/{pid}/notes"))
    assert listed["notes"] == []
    # The refusal is in the patient's audit trail like any other.
    accesses = await clinic.client.app[SERVICES].audit.accesses_for_patient(pid, limit=100)
    refused = [(a.action, a.actor_role) for a in accesses if a.outcome == "denied"]
    assert refused == [(AuditAction.NOTE_WRITE, "care_manager")]
    # Other templates stay open to the care manager.
    progress = await clinic.care_manager.post(
        f"/api/v1/patients/{pid}/notes", json={"template_id": "progress_note", "body": {}}
    )
    await ok_json(progress, 201)


async def test_a_task_comes_from_a_note_of_the_same_patient_only(clinic: Clinic) -> None:
    pid = await enrol(clinic, mrn="CR3")
    other = await enrol(clinic, mrn="CR4")
    cm = clinic.care_manager
    note = await signed_review(clinic.psychiatrist, pid)
    elsewhere = await signed_review(clinic.psychiatrist, other)

    task = await ok_json(await add_task(cm, pid, cm.user_id, note["id"]), 201)
    assert task["source_note_id"] == note["id"]
    listed = await ok_json(await cm.get(f"/api/v1/registry/{pid}/tasks"))
    assert [t["source_note_id"] for t in listed["tasks"]] == [note["id"]]

    response = await add_task(cm, pid, cm.user_id, elsewhere["id"])
    assert await error_code(response, 422) == "source_note_not_found"
    response = await add_task(cm, pid, cm.user_id, 999_999)
    assert await error_code(response, 422) == "source_note_not_found"
    # A draft is no source, not even for its author (the review links tasks to the signed
    # recommendation): it may yet be deleted.
    draft = await ok_json(
        await clinic.psychiatrist.post(
            f"/api/v1/patients/{pid}/notes", json={"template_id": "caseload_review", "body": {}}
        ),
        201,
    )
    response = await add_task(cm, pid, cm.user_id, draft["id"])
    assert await error_code(response, 422) == "source_note_not_found"
    response = await add_task(clinic.psychiatrist, pid, cm.user_id, draft["id"])
    assert await error_code(response, 422) == "source_note_not_found"
    # A psychotherapy note is never the source of a shared task, even for its author.
    private = await ok_json(
        await clinic.psychiatrist.post(
            f"/api/v1/patients/{pid}/notes",
            json={"template_id": "psychotherapy_note", "body": {"session_notes": "x"}},
        ),
        201,
    )
    response = await add_task(clinic.psychiatrist, pid, cm.user_id, private["id"])
    assert await error_code(response, 422) == "source_note_not_found"


async def test_a_draft_the_author_tried_to_task_from_can_still_be_deleted(
    clinic: Clinic,
) -> None:
    pid = await enrol(clinic, mrn="CR5")
    doc = clinic.psychiatrist
    draft = await ok_json(
        await doc.post(
            f"/api/v1/patients/{pid}/notes", json={"template_id": "caseload_review", "body": {}}
        ),
        201,
    )
    response = await add_task(doc, pid, clinic.care_manager.user_id, draft["id"])
    assert await error_code(response, 422) == "source_note_not_found"
    deleted = await doc.http.delete(
        doc.base_url + f"/api/v1/notes/{draft['id']}", headers={"X-CSRF-Token": doc.csrf_token}
    )
    assert deleted.status == 204
    assert (await ok_json(await doc.get(f"/api/v1/patients/{pid}/notes")))["notes"] == []
    # Once signed, the same recommendation is a task's source.
    note = await signed_review(doc, pid)
    await ok_json(await add_task(doc, pid, clinic.care_manager.user_id, note["id"]), 201)


async def test_last_reviewed_is_the_newest_signed_recommendation(clinic: Clinic) -> None:
    never = await enrol(clinic, given_name="Ana", family_name="Never", mrn="CR5")
    twice = await enrol(clinic, given_name="Ben", family_name="Twice", mrn="CR6")
    drafted = await enrol(clinic, given_name="Cy", family_name="Draft", mrn="CR7")
    progress = await enrol(clinic, given_name="Di", family_name="Progress", mrn="CR8")
    doc = clinic.psychiatrist

    first = await signed_review(doc, twice)
    await clinic.wait(3)
    second = await signed_review(doc, twice)
    assert second["signed_at"] > first["signed_at"]
    # An addendum to the older note does not make it newer.
    addendum = await ok_json(
        await doc.post(f"/api/v1/notes/{first['id']}/addenda", json={"body": {"text": "typo"}}),
        201,
    )
    await ok_json(await doc.post(f"/api/v1/notes/{addendum['id']}/sign", json={}))
    await ok_json(
        await doc.post(
            f"/api/v1/patients/{drafted}/notes",
            json={"template_id": "caseload_review", "body": {"recommendation": "draft"}},
        ),
        201,
    )
    other = await ok_json(
        await doc.post(
            f"/api/v1/patients/{progress}/notes",
            json={"template_id": "progress_note", "body": {}},
        ),
        201,
    )
    assert other["template_id"] == "progress_note"

    rows = await caseload(clinic)
    assert rows[never]["last_reviewed"] is None
    assert rows[drafted]["last_reviewed"] is None
    assert rows[progress]["last_reviewed"] is None
    assert datetime.fromisoformat(rows[twice]["last_reviewed"]) == datetime.fromisoformat(
        second["signed_at"]
    )
    # The psychiatrist's caseload says the same (they are on every one of these care teams).
    theirs = await ok_json(await doc.get("/api/v1/registry"))
    assert {r["patient_id"]: r["last_reviewed"] for r in theirs["patients"]}[twice] == rows[twice][
        "last_reviewed"
    ]

    order = await ok_json(await clinic.care_manager.get("/api/v1/registry?sort=last_reviewed"))
    ids = [r["patient_id"] for r in order["patients"]]
    assert ids.index(twice) == len(ids) - 1  # never reviewed first, by name; reviewed last
    assert ids[:3] == [drafted, never, progress]
