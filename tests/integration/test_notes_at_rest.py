"""No note text ever reaches the database or the logs in plaintext: notes written with a known
marker, through every path that carries a body, then the SQLite file, its WAL and every log
record captured are scanned for it."""

from __future__ import annotations

import logging
import os
import stat

import pytest
from sqlalchemy import select

from server.clock import FakeClock
from server.db.models import ConsultNote
from server.state import SERVICES
from tests.conftest import SignIn
from tests.integration.record_support import RecordClinic, set_up_record_clinic
from tests.integration.visit_support import Client, ok_json

MARKER = "ZEBRA-4f1c-PLAINTEXT-MARKER"


@pytest.fixture
async def rc(app_client: Client, clock: FakeClock, sign_in: SignIn) -> RecordClinic:
    return await set_up_record_clinic(app_client, clock, sign_in)


def body(tag: str) -> dict[str, str]:
    text = f"{MARKER} {tag}"
    return {
        "interval_history": text,
        "mental_status": text,
        "risk_assessment": text,
        "assessment": text,
        "plan": text,
    }


@pytest.mark.sqlite_only("scans the database file")
async def test_note_text_never_reaches_the_database_or_the_logs(
    rc: RecordClinic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    doc = rc.psychiatrist
    note = await rc.new_note(doc, body=body("draft"))
    saved = await doc.put(
        f"/api/v1/notes/{note['id']}", json={"body": body("v2"), "base_version": 1}
    )
    await ok_json(saved)
    stale = await doc.put(
        f"/api/v1/notes/{note['id']}", json={"body": body("x"), "base_version": 1}
    )
    assert stale.status == 409
    bad = await doc.put(
        f"/api/v1/notes/{note['id']}", json={"body": {"nope": MARKER}, "base_version": 2}
    )
    assert bad.status == 422 and MARKER not in await bad.text()
    await ok_json(await doc.post(f"/api/v1/notes/{note['id']}/sign", json={}))
    addendum = await ok_json(
        await rc.pcp.post(
            f"/api/v1/notes/{note['id']}/addenda", json={"body": {"text": f"{MARKER} addendum"}}
        ),
        201,
    )
    await ok_json(await rc.pcp.post(f"/api/v1/notes/{addendum['id']}/sign", json={}))
    await rc.signed_note(rc.therapist, "psychotherapy_note", {"session_notes": MARKER})
    await rc.outsider.get(f"/api/v1/notes/{note['id']}")  # a refusal, logged and audited

    # The text comes back to its readers: it was stored, encrypted.
    read = await ok_json(await rc.care_manager.get(f"/api/v1/notes/{note['id']}"))
    assert read["body"]["plan"] == f"{MARKER} v2"
    assert read["addenda"][0]["body"]["text"] == f"{MARKER} addendum"
    await ok_json(await rc.patient_user.get(f"/api/v1/me/notes/{note['id']}"))
    await ok_json(await doc.get(rc.path("/fhir")))

    svc = rc.client.app[SERVICES]
    async with svc.db() as db:
        rows = (await db.execute(select(ConsultNote))).scalars().all()
    assert len(rows) == 3
    assert all(r.kek_id == "k1" and len(r.ciphertext) > len(MARKER) for r in rows)

    stored = rc.clinic.database_bytes()
    assert stored  # the file and its write-ahead log
    for encoding in ("utf-8", "utf-16-le"):
        assert MARKER.encode(encoding) not in stored
    for record in caplog.records:
        assert MARKER not in record.getMessage()
        assert MARKER not in repr(vars(record))
    assert caplog.records  # the logs did run

    key_file = svc.settings.notes.key_file
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert MARKER.encode() not in key_file.read_bytes()
