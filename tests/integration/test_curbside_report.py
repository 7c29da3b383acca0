"""A written consult's consultant time through the real server (the answer form opened, the
minutes attested) and the admin's CSV export of consult lines: its rows, its headers, its
audit event, who may have it, and cells a spreadsheet would run as formulas.

Personas (visit_support): Dr. Chen is the PCP on Jordan's care team; Dr. Rivera and Dr. Okafor
are psychiatrists (either may answer from the written queue); the admin exports.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from server.audit import Action
from server.clock import FakeClock
from server.db.migrate import alembic_config, current_revision, upgrade
from server.db.models import AuditEvent, ConsultRequest, User
from server.state import SERVICES
from signaling import curbside as cs
from signaling.curbside_store import decode
from tests.conftest import SignIn
from tests.integration.curbside_support import Curbside
from tests.integration.visit_support import Client, Clinic, error_code, ok_json, set_up_clinic

pytestmark = pytest.mark.timeout(120)

REPORT = "/api/v1/admin/curbside/report.csv"
ANSWER = {
    "assessment": "Partial response; no psychotic features.",
    "recommendations": "Switch to escitalopram 10 mg, cross-taper over a week.",
    "follow_up": "PHQ-9 in 4 weeks; call if worse.",
    "face_to_face_advised": False,
}


@pytest.fixture
async def cb(app_client: Client, clock: FakeClock, sign_in: SignIn) -> AsyncIterator[Curbside]:
    curbside = Curbside(await set_up_clinic(app_client, clock, sign_in), sign_in)
    try:
        yield curbside
    finally:
        await curbside.close()


def z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def window(clinic: Clinic, back: timedelta = timedelta(hours=1)) -> dict[str, str]:
    now = clinic.clock.now
    return {"since": z(now - back), "until": z(now + timedelta(minutes=1))}


def rows_of(text: str) -> list[dict[str, str]]:
    assert text.startswith("\ufeff")  # so that spreadsheets read it as UTF-8
    return list(csv.DictReader(io.StringIO(text[1:], newline="")))


async def exports(clinic: Clinic) -> list[AuditEvent]:
    async with clinic.client.app[SERVICES].db() as db:
        query = select(AuditEvent).where(AuditEvent.action == Action.EXPORT_CURBSIDE_REPORT)
        return list((await db.scalars(query.order_by(AuditEvent.seq))).all())


async def answer_in_writing(cb: Curbside, minutes: int | None) -> int:
    """Dr. Chen asks in writing; Dr. Rivera opens the answer form after 2 minutes and sends the
    answer 9 minutes later, attesting ``minutes``."""
    clinic, rivera = cb.clinic, cb.clinic.psychiatrist
    rid: int = (await cb.ask(mode="written", urgency="routine"))["id"]
    clinic.clock.advance(2 * 60)
    start = f"/api/v1/curbside/requests/{rid}/writing"
    started = await ok_json(await rivera.post(start))
    assert started == {
        "started_at": z(clinic.clock.now),
        "elapsed_s": 0.0,
        "max_minutes": 2,
    }
    clinic.clock.advance(9 * 60)
    again = await ok_json(await rivera.post(start))  # a reload: the first start holds
    assert (again["started_at"], again["elapsed_s"], again["max_minutes"]) == (
        started["started_at"],
        9 * 60.0,
        11,
    )
    body = ANSWER | ({} if minutes is None else {"minutes": minutes})
    answered = await ok_json(
        await rivera.post(f"/api/v1/curbside/requests/{rid}/answer", json=body)
    )
    assert answered["status"] == "answered"
    assert answered["times"]["writing_s"] == 9 * 60
    assert answered["times"]["attested_minutes"] == minutes
    return rid


async def test_a_written_answer_with_attested_minutes_is_counted_and_exported(
    cb: Curbside,
) -> None:
    clinic = cb.clinic
    rid = await answer_in_writing(cb, minutes=8)
    untimed = (await cb.ask(mode="written", urgency="urgent", patient_consented=False))["id"]

    metrics = await ok_json(
        await clinic.admin.get("/api/v1/admin/curbside/metrics", params=window(clinic))
    )
    lines = {line["id"]: line for line in metrics["consults"]}
    assert lines[rid]["consultant_minutes"] == 8 and lines[rid]["minutes_source"] == "attested"
    assert lines[rid]["times"]["writing_s"] == 540 and lines[rid]["times"]["to_answer_s"] == 660
    assert lines[untimed]["consultant_minutes"] is None and lines[untimed]["minutes_source"] is None
    assert metrics["minutes_per_consult"] == 8  # the written answer counts; the waiting one not

    response = await clinic.admin.get(REPORT, params=window(clinic))
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    day = f"{clinic.clock.now:%Y%m%d}"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="curbside-consults-{day}-{day}.csv"'
    )
    assert response.headers["Cache-Control"] == "no-store"
    rows = rows_of(await response.text())
    assert [row["request_id"] for row in rows] == [str(rid), str(untimed)]
    answered, waiting = rows
    asked = clinic.clock.now - timedelta(minutes=11)
    assert answered == {
        "request_id": str(rid),
        "asked_at": asked.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "mode": "written",
        "urgency": "routine",
        "status": "answered",
        "patient_id": str(clinic.patient_id),
        "pcp_id": str(clinic.pcp.user_id),
        "pcp_name": "Dr.Chen",
        "consultant_id": str(clinic.psychiatrist.user_id),
        "consultant_name": "Dr.Rivera",
        "consent_recorded": "yes",
        "to_answer_s": "660",
        "ringing_s": "",
        "talking_s": "",
        "documenting_s": "",
        "writing_s": "540",
        "attested_minutes": "8",
        "consultant_minutes": "8.0",
        "minutes_source": "attested",
        "billing_flags": "",
    }
    assert (
        waiting["status"],
        waiting["consultant_id"],
        waiting["consultant_minutes"],
        waiting["minutes_source"],
    ) == ("queued_written", "", "", "")
    assert waiting["consent_recorded"] == "no"
    # The first was answered minutes before: this one is a repeat within 7 days.
    assert waiting["billing_flags"] == "no_consent;not_answered;repeat_consult"
    # No clinical content and no patient name leaves with it.
    text = await response.text()
    for secret in ("escitalopram", "Sertraline", "Jordan", "Alvarez"):
        assert secret not in text

    (event,) = await exports(clinic)
    assert (event.actor, event.actor_role, event.target, event.patient_id) == (
        f"user:{clinic.admin.user_id}",
        "admin",
        "curbside_report",
        None,
    )
    detail = json.loads(event.detail)
    assert (detail["format"], detail["consults"], detail["patients"]) == ("csv", 2, 1)
    assert event.client_address == "127.0.0.1"


async def test_an_answer_without_minutes_reports_the_measured_writing_time(cb: Curbside) -> None:
    rid = await answer_in_writing(cb, minutes=None)
    rows = rows_of(await (await cb.clinic.admin.get(REPORT, params=window(cb.clinic))).text())
    (row,) = [r for r in rows if r["request_id"] == str(rid)]
    # Measured, not attested: the biller is told where the figure came from.
    assert (
        row["writing_s"],
        row["attested_minutes"],
        row["consultant_minutes"],
        row["minutes_source"],
    ) == ("540", "", "9.0", "measured_writing")


async def test_minutes_that_could_not_be_true_are_refused_with_a_reason(cb: Curbside) -> None:
    clinic, rivera = cb.clinic, cb.clinic.psychiatrist
    rid = (await cb.ask(mode="written", urgency="routine"))["id"]
    clinic.clock.advance(10 * 60)
    answer = f"/api/v1/curbside/requests/{rid}/answer"
    for minutes in (-5, 0, 241, 12.5, "ten", True):
        refused = await rivera.post(answer, json=ANSWER | {"minutes": minutes})
        assert await error_code(refused, 422) == "validation_failed", minutes
        assert [f["field"] for f in (await refused.json())["error"]["fields"]] == ["minutes"]
    too_many = await rivera.post(answer, json=ANSWER | {"minutes": 11})  # asked 10 minutes ago
    assert await error_code(too_many, 422) == "invalid_minutes"
    assert "from 1 to 10" in (await too_many.json())["error"]["message"]
    assert (await cb.get(rid))["status"] == "queued_written"  # nothing was saved
    done = await ok_json(await rivera.post(answer, json=ANSWER | {"minutes": 10}))
    assert done["times"]["attested_minutes"] == 10


async def test_only_a_psychiatrist_starts_writing_and_only_while_it_waits(cb: Curbside) -> None:
    clinic, rivera, okafor = cb.clinic, cb.clinic.psychiatrist, cb.clinic.outsider
    rid = (await cb.ask(mode="written"))["id"]
    start = f"/api/v1/curbside/requests/{rid}/writing"
    refused = await clinic.pcp.post(start)
    assert await error_code(refused, 403) == "role_forbidden"
    missing = await rivera.post("/api/v1/curbside/requests/999999/writing")
    assert await error_code(missing, 404) == "request_not_found"
    await ok_json(await okafor.post(start))  # Dr. Okafor looks first, and leaves it
    await ok_json(await rivera.post(f"/api/v1/curbside/requests/{rid}/answer", json=ANSWER))
    late = await okafor.post(start)
    assert await error_code(late, 409) == "already_answered"
    mine = await ok_json(await rivera.post(start))  # the author, after answering: nothing
    assert mine["started_at"] is None
    # A call-now request that is ringing has no answer form.
    await cb.psychiatrist("dr.ahmed")
    await cb.dashboard(await cb.psychiatrist("dr.baker"))
    ringing = (await cb.ask())["id"]
    not_queued = await rivera.post(f"/api/v1/curbside/requests/{ringing}/writing")
    assert await error_code(not_queued, 409) == "invalid_state"


async def test_only_an_admin_exports_and_a_bad_range_is_refused_without_an_export(
    cb: Curbside,
) -> None:
    clinic = cb.clinic
    await cb.ask(mode="written")
    for persona in (clinic.pcp, clinic.psychiatrist, clinic.care_manager, clinic.patient_user):
        refused = await persona.get(REPORT, params=window(clinic))
        assert await error_code(refused, 403) == "role_forbidden"
    now = clinic.clock.now
    for params, code in (
        ({"since": "2026-01-01"}, "invalid_time"),  # a date has no offset: which midnight?
        ({"since": "yesterday"}, "invalid_time"),
        ({"since": z(now), "until": z(now - timedelta(days=1))}, "invalid_window"),
        ({"since": z(now), "until": z(now)}, "invalid_window"),
        ({"since": z(now - timedelta(days=367)), "until": z(now)}, "invalid_window"),
    ):
        bad = await clinic.admin.get(REPORT, params=params)
        assert await error_code(bad, 422) == code, params
    assert await exports(clinic) == []
    # An empty range is a header and nothing else, and still an export.
    empty = await clinic.admin.get(
        REPORT, params={"since": "2020-01-01T00:00:00Z", "until": "2020-02-01T00:00:00Z"}
    )
    assert empty.status == 200
    assert rows_of(await empty.text()) == []
    assert empty.headers["Content-Disposition"].endswith(
        '"curbside-consults-20200101-20200131.csv"'
    )
    assert [json.loads(e.detail)["consults"] for e in await exports(clinic)] == [0]


async def test_cells_a_spreadsheet_would_run_are_written_as_text(cb: Curbside) -> None:
    clinic = cb.clinic
    async with clinic.client.app[SERVICES].db.begin() as db:
        await db.execute(
            update(User).where(User.id == clinic.pcp.user_id).values(display_name="=HYPERLINK(1)")
        )
        await db.execute(
            update(User)
            .where(User.id == clinic.psychiatrist.user_id)
            .values(display_name='@SUM(1+1)*cmd|" /C calc"!A0')
        )
    rid = (await cb.ask(mode="written"))["id"]
    clinic.clock.advance(60)
    await ok_json(
        await clinic.psychiatrist.post(
            f"/api/v1/curbside/requests/{rid}/answer", json=ANSWER | {"minutes": 1}
        )
    )
    text = await (await clinic.admin.get(REPORT, params=window(clinic))).text()
    (row,) = rows_of(text)
    assert row["pcp_name"] == "'=HYPERLINK(1)"
    assert row["consultant_name"] == '\'@SUM(1+1)*cmd|" /C calc"!A0'
    # Every cell of the file, header included: none starts a formula.
    for cells in csv.reader(io.StringIO(text[1:], newline="")):
        assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")], cells


async def test_the_export_is_declared_in_the_openapi_document(app_client: Client) -> None:
    document = await ok_json(await app_client.get("/api/openapi.json"))
    operation = document["paths"][REPORT]["get"]
    assert operation["responses"]["200"]["content"] == {"text/csv": {"schema": {"type": "string"}}}
    assert {"401", "403", "422"} <= set(operation["responses"])
    writing = document["paths"]["/api/v1/curbside/requests/{request_id}/writing"]["post"]
    assert "200" in writing["responses"]


async def test_migration_0009_rewrites_stored_states_both_ways(cb: Curbside) -> None:
    """States stored before 0009 (format 1) read after it with no written time, and back."""
    rid = await answer_in_writing(cb, minutes=8)
    services = cb.clinic.client.app[SERVICES]
    engine = services.engine

    async def stored() -> dict[str, Any]:
        async with services.db() as db:
            text = await db.scalar(select(ConsultRequest.state).where(ConsultRequest.id == rid))
        assert text is not None
        data: dict[str, Any] = json.loads(text)
        return data

    before = await stored()
    async with engine.begin() as conn:
        await conn.run_sync(_downgrade, str(engine.url.render_as_string(hide_password=False)))
    assert await current_revision(engine) == "0008"
    old = await stored()
    assert old["format"] == 1
    assert {
        k: v for k, v in before.items() if k not in ("writing_started", "attested_minutes")
    } == (old | {"format": 2})
    await upgrade(engine)
    state = decode(json.dumps(await stored()))
    assert (state.writing_started, state.attested_minutes) == ((), None)
    assert (
        state.status is cs.Status.ANSWERED and state.answered_by == cb.clinic.psychiatrist.user_id
    )


def _downgrade(conn: Any, url: str) -> None:
    from alembic import command

    config = alembic_config(url)
    config.attributes["connection"] = conn
    command.downgrade(config, "0008")
