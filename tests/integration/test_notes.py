"""Consult notes over HTTP, with personas: drafts, autosave, stale saves, signing, immutability,
addenda, psychotherapy notes, and who reads what."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest

from consult_notes.templates import encode_body
from server.clock import FakeClock
from server.db.models import FollowUpTask
from server.state import SERVICES
from tests.conftest import SignIn
from tests.integration.record_support import (
    PROGRESS,
    PSYCHOTHERAPY,
    RecordClinic,
    set_up_record_clinic,
)
from tests.integration.visit_support import Client, create_patient, error_code, ok_json


@pytest.fixture
async def rc(app_client: Client, clock: FakeClock, sign_in: SignIn) -> RecordClinic:
    return await set_up_record_clinic(app_client, clock, sign_in)


def note_path(note: Any, tail: str = "") -> str:
    return f"/api/v1/notes/{note['id']}{tail}"


async def test_the_templates_are_listed_for_the_editor(rc: RecordClinic) -> None:
    body = await ok_json(await rc.pcp.get("/api/v1/note-templates"))
    ids = [t["id"] for t in body["templates"]]
    assert ids == [
        "psychiatric_consult",
        "progress_note",
        "curbside_recommendation",
        "psychotherapy_note",
        "caseload_review",
    ]
    consult = body["templates"][0]
    assert any(s["group"] == "Mental status examination" for s in consult["sections"])
    assert body["templates"][3]["private"] is True


async def test_each_template_says_who_may_author_it_and_whether_you_may(rc: RecordClinic) -> None:
    for persona, may_review in ((rc.care_manager, False), (rc.psychiatrist, True)):
        body = await ok_json(await persona.get("/api/v1/note-templates"))
        by_id = {t["id"]: t for t in body["templates"]}
        assert by_id["caseload_review"]["authors"] == ["psychiatrist"]
        assert by_id["caseload_review"]["can_author"] is may_review
        assert by_id["progress_note"]["authors"] is None
        assert by_id["progress_note"]["can_author"] is True
    # What the list says matches what starting a note does.
    refused = await rc.care_manager.post(
        f"/api/v1/patients/{rc.patient_id}/notes", json={"template_id": "caseload_review"}
    )
    assert await error_code(refused, 403) == "template_not_for_role"


async def test_a_draft_autosaves_then_is_signed_and_never_changes(rc: RecordClinic) -> None:
    doc = rc.psychiatrist
    note = await rc.new_note(doc, body={"interval_history": "first words"})
    assert (note["state"], note["version"], note["kind"]) == ("draft", 1, "progress")
    assert note["author_name"] == "Dr.Rivera"

    saved = await ok_json(
        await doc.put(note_path(note), json={"body": PROGRESS, "base_version": 1})
    )
    assert saved["version"] == 2
    assert saved["body"] == PROGRESS
    # The same body again: nothing new to save, the version stays.
    again = await ok_json(
        await doc.put(note_path(note), json={"body": PROGRESS, "base_version": 2})
    )
    assert again["version"] == 2

    # A second tab still on version 1 is refused.
    stale = await doc.put(note_path(note), json={"body": {"plan": "tab 2"}, "base_version": 1})
    assert await error_code(stale, 409) == "stale_draft"

    signed = await ok_json(await doc.post(note_path(note, "/sign"), json={"version": 2}))
    assert signed["state"] == "signed"
    assert signed["signed_by"] == doc.user_id
    assert signed["content_sha256"] == hashlib.sha256(encode_body(PROGRESS)).hexdigest()

    for attempt in (
        await doc.put(note_path(note), json={"body": PROGRESS, "base_version": 2}),
        await doc.post(note_path(note, "/sign"), json={}),
        await doc.http.delete(
            doc.base_url + note_path(note), headers={"X-CSRF-Token": doc.csrf_token}
        ),
    ):
        assert await error_code(attempt, 409) == "note_signed"
    read = await ok_json(await doc.get(note_path(note)))
    assert read["body"] == PROGRESS


async def test_signing_needs_every_required_section(rc: RecordClinic) -> None:
    note = await rc.new_note(rc.psychiatrist, body={"plan": "only a plan"})
    response = await rc.psychiatrist.post(note_path(note, "/sign"), json={})
    assert await error_code(response, 422) == "invalid_note_body"
    fields = {f["field"] for f in (await response.json())["error"]["fields"]}
    assert {"interval_history", "assessment"} <= fields
    assert "only a plan" not in await response.text()


async def test_signing_a_version_other_than_the_one_read_is_refused(rc: RecordClinic) -> None:
    note = await rc.new_note(rc.psychiatrist)
    response = await rc.psychiatrist.post(note_path(note, "/sign"), json={"version": 5})
    assert await error_code(response, 409) == "stale_draft"


async def test_a_draft_is_its_authors_alone(rc: RecordClinic) -> None:
    note = await rc.new_note(rc.psychiatrist)
    for persona in (rc.pcp, rc.therapist, rc.care_manager):
        assert await error_code(await persona.get(note_path(note)), 404) == "note_not_found"
        put = await persona.put(note_path(note), json={"body": PROGRESS, "base_version": 1})
        assert await error_code(put, 404) == "note_not_found"
        sign = await persona.post(note_path(note, "/sign"), json={})
        assert await error_code(sign, 404) == "note_not_found"
        listed = await ok_json(await persona.get(rc.path("/notes")))
        assert listed["notes"] == []
    mine = await ok_json(await rc.psychiatrist.get(rc.path("/notes")))
    assert [n["id"] for n in mine["notes"]] == [note["id"]]


async def test_a_signed_note_is_read_by_the_care_team_and_not_beyond(rc: RecordClinic) -> None:
    note = await rc.signed_note(rc.psychiatrist)
    for persona in (rc.pcp, rc.therapist, rc.care_manager):
        read = await ok_json(await persona.get(note_path(note)))
        assert read["body"] == PROGRESS
    assert await error_code(await rc.outsider.get(note_path(note)), 403) == "not_on_care_team"
    response = await rc.admin.get(note_path(note))
    assert await error_code(response, 403) == "admin_no_clinical_access"
    listed = await rc.outsider.get(rc.path("/notes"))
    assert await error_code(listed, 403) == "not_on_care_team"
    # Patients read theirs through /me, not through the clinicians' endpoints.
    assert await error_code(await rc.patient_user.get(note_path(note)), 403) == "role_forbidden"


async def test_only_clinicians_on_the_team_write_notes(rc: RecordClinic) -> None:
    body = {"template_id": "progress_note", "body": {}}
    response = await rc.outsider.post(rc.path("/notes"), json=body)
    assert await error_code(response, 403) == "not_on_care_team"
    response = await rc.admin.post(rc.path("/notes"), json=body)
    assert await error_code(response, 403) == "role_forbidden"
    response = await rc.pcp.post(rc.path("/notes"), json=body | {"template_id": "nope"})
    assert await error_code(response, 404) == "unknown_template"
    denied = [a for a in await rc.accesses() if a.outcome == "denied"]
    assert [(a.actor, a.action) for a in denied] == [(f"user:{rc.outsider.user_id}", "note.write")]


async def test_addenda_go_on_signed_notes_and_are_signed_themselves(rc: RecordClinic) -> None:
    note = await rc.signed_note(rc.psychiatrist)
    addendum = await ok_json(
        await rc.pcp.post(note_path(note, "/addenda"), json={"body": {"text": "BP 150/95."}}), 201
    )
    assert (addendum["amends"], addendum["state"], addendum["title"]) == (
        note["id"],
        "draft",
        "Addendum",
    )
    # Not visible to others while a draft.
    read = await ok_json(await rc.psychiatrist.get(note_path(note)))
    assert read["addenda"] == []
    await ok_json(
        await rc.pcp.put(
            note_path(addendum), json={"body": {"text": "BP 150/95; recheck."}, "base_version": 1}
        )
    )
    await ok_json(await rc.pcp.post(note_path(addendum, "/sign"), json={}))
    read = await ok_json(await rc.psychiatrist.get(note_path(note)))
    assert [a["body"] for a in read["addenda"]] == [{"text": "BP 150/95; recheck."}]
    listed = await ok_json(await rc.psychiatrist.get(rc.path("/notes")))
    assert [(n["id"], n["addenda"]) for n in listed["notes"]] == [(note["id"], 1)]

    on_addendum = await rc.psychiatrist.post(note_path(addendum, "/addenda"), json={"body": {}})
    assert await error_code(on_addendum, 409) == "addendum_to_addendum"
    draft = await rc.new_note(rc.pcp)
    on_draft = await rc.pcp.post(note_path(draft, "/addenda"), json={"body": {}})
    assert await error_code(on_draft, 409) == "note_not_signed"
    off_team = await rc.outsider.post(note_path(note, "/addenda"), json={"body": {}})
    assert await error_code(off_team, 403) == "not_on_care_team"


async def test_a_psychotherapy_note_is_its_authors_alone(rc: RecordClinic) -> None:
    note = await rc.signed_note(rc.therapist, "psychotherapy_note", PSYCHOTHERAPY)
    assert note["private"] is True
    assert (await ok_json(await rc.therapist.get(note_path(note))))["body"] == PSYCHOTHERAPY
    for persona in (rc.psychiatrist, rc.pcp, rc.care_manager, rc.outsider):
        assert await error_code(await persona.get(note_path(note)), 404) == "note_not_found"
        response = await persona.post(note_path(note, "/addenda"), json={"body": {"text": "x"}})
        assert await error_code(response, 404) == "note_not_found"
    assert await error_code(await rc.admin.get(note_path(note)), 404) == "note_not_found"
    for persona in (rc.psychiatrist, rc.pcp):
        assert (await ok_json(await persona.get(rc.path("/notes"))))["notes"] == []
    own = await ok_json(await rc.therapist.get(rc.path("/notes")))
    assert [n["id"] for n in own["notes"]] == [note["id"]]
    added = await rc.therapist.post(note_path(note, "/addenda"), json={"body": {"text": "more"}})
    assert (await ok_json(added, 201))["kind"] == "psychotherapy"


async def test_a_note_can_belong_to_an_encounter_of_its_patient(rc: RecordClinic) -> None:
    encounter = await ok_json(
        await rc.psychiatrist.post(
            rc.path("/encounters"),
            json={"kind": "econsult", "started_at": rc.clock.now.isoformat()},
        ),
        201,
    )
    note = await rc.new_note(rc.psychiatrist, encounter_id=encounter["id"])
    assert note["encounter_id"] == encounter["id"]
    other = await create_patient(rc.psychiatrist, given_name="Sam", mrn="B-2")
    response = await rc.psychiatrist.post(
        f"/api/v1/patients/{other['id']}/notes",
        json={"template_id": "progress_note", "body": {}, "encounter_id": encounter["id"]},
    )
    assert await error_code(response, 422) == "encounter_not_found"


async def test_an_author_discards_a_draft(rc: RecordClinic) -> None:
    note = await rc.new_note(rc.pcp)
    headers = {"X-CSRF-Token": rc.pcp.csrf_token}
    response = await rc.pcp.http.delete(rc.pcp.base_url + note_path(note), headers=headers)
    assert response.status == 204
    assert await error_code(await rc.pcp.get(note_path(note)), 404) == "note_not_found"


async def test_a_draft_an_older_task_came_from_is_discarded_and_the_task_kept(
    rc: RecordClinic, clock: FakeClock
) -> None:
    note = await rc.new_note(rc.psychiatrist)
    # Before tasks had to come from signed notes, a task could point at a draft.
    svc = rc.clinic.client.app[SERVICES]
    async with svc.db.begin() as db:
        task = FollowUpTask(
            patient_id=rc.patient_id,
            title="Call about the sleep diary",
            due=clock.now.date(),
            owner_id=rc.care_manager.user_id,
            created_by=rc.psychiatrist.user_id,
            created_at=clock.now,
            source_note_id=note["id"],
        )
        db.add(task)
    doc = rc.psychiatrist
    headers = {"X-CSRF-Token": doc.csrf_token}
    response = await doc.http.delete(doc.base_url + note_path(note), headers=headers)
    assert response.status == 204, await response.text()
    assert await error_code(await doc.get(note_path(note)), 404) == "note_not_found"
    async with svc.db() as db:
        kept = await db.get(FollowUpTask, task.id)
    assert kept is not None
    assert (kept.title, kept.source_note_id) == ("Call about the sleep diary", None)


async def test_the_patient_sees_signed_shared_notes_only(rc: RecordClinic) -> None:
    shared = await rc.signed_note(rc.psychiatrist)
    draft = await rc.new_note(rc.psychiatrist)
    private = await rc.signed_note(rc.therapist, "psychotherapy_note", PSYCHOTHERAPY)
    other_patient = await create_patient(rc.psychiatrist, given_name="Sam", mrn="B-3")
    elsewhere = await ok_json(
        await rc.psychiatrist.post(
            f"/api/v1/patients/{other_patient['id']}/notes",
            json={"template_id": "progress_note", "body": PROGRESS},
        ),
        201,
    )
    await ok_json(await rc.psychiatrist.post(note_path(elsewhere, "/sign"), json={}))

    me = rc.patient_user
    listed = await ok_json(await me.get("/api/v1/me/notes"))
    assert [n["id"] for n in listed["notes"]] == [shared["id"]]
    assert (await ok_json(await me.get(f"/api/v1/me/notes/{shared['id']}")))["body"] == PROGRESS
    for hidden in (draft, private, elsewhere):
        response = await me.get(f"/api/v1/me/notes/{hidden['id']}")
        assert await error_code(response, 404) == "note_not_found"
    assert "psychotherapy" not in await (await me.get("/api/v1/me/notes")).text()


async def test_every_note_operation_is_audited(rc: RecordClinic) -> None:
    note = await rc.signed_note(rc.psychiatrist)
    await ok_json(await rc.pcp.get(note_path(note)))
    await rc.outsider.get(note_path(note))
    actions = [(a.actor, a.action, a.outcome) for a in reversed(await rc.accesses())]
    doc, pcp, out = (f"user:{p.user_id}" for p in (rc.psychiatrist, rc.pcp, rc.outsider))
    assert actions[-4:] == [
        (doc, "note.write", "ok"),
        (doc, "note.sign", "ok"),
        (pcp, "note.read", "ok"),
        (out, "note.read", "denied"),
    ]


async def test_reading_a_draft_while_it_autosaves_always_shows_one_saved_version(
    rc: RecordClinic,
) -> None:
    # A save can commit between reading a note's metadata and its sealed body; the body is bound
    # to its version, so a reader must get the two from one moment, never a mismatch (which
    # looked like tampering: 500 note_integrity_failed).
    doc = rc.psychiatrist
    note = await rc.new_note(doc, body={"interval_history": "words 1"})
    saves = 20

    async def autosave() -> None:
        for version in range(1, saves + 1):
            body = {"interval_history": f"words {version + 1}"}
            response = await doc.put(note_path(note), json={"body": body, "base_version": version})
            assert (await ok_json(response))["version"] == version + 1

    async def read() -> list[tuple[int, str]]:
        seen = []
        for _ in range(3 * saves):
            shown = await ok_json(await doc.get(note_path(note)))
            seen.append((shown["version"], shown["body"]["interval_history"]))
        return seen

    _, *readers = await asyncio.gather(autosave(), read(), read())
    for seen in readers:
        assert all(text == f"words {version}" for version, text in seen), seen
