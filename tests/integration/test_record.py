"""The shared record over HTTP: problems, medications, allergies, encounters, screenings and
safety flags, the patient's own view and access log, and the audit trail behind them."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from server.auth.roles import Role
from server.clock import FakeClock
from server.db.models import VisitLink
from server.errors import Forbidden
from server.record.screening_service import EnteredBy
from server.record.screenings import Instrument
from server.state import SERVICES
from tests.conftest import SignIn
from tests.integration.record_support import RecordClinic, set_up_record_clinic
from tests.integration.visit_support import Client, error_code, ok_json


@pytest.fixture
async def rc(app_client: Client, clock: FakeClock, sign_in: SignIn) -> RecordClinic:
    return await set_up_record_clinic(app_client, clock, sign_in)


PHQ9_FLAGGED = [1, 1, 1, 1, 1, 1, 1, 1, 2]  # total 10, moderate; item 9 = 2


async def test_problems_medications_and_allergies(rc: RecordClinic) -> None:
    doc = rc.psychiatrist
    problem = await ok_json(
        await doc.post(
            rc.path("/problems"),
            json={"text": "Major depressive disorder", "code": "F33.1", "code_system": "icd10cm"},
        ),
        201,
    )
    assert (problem["clinical_status"], problem["recorded_by"]) == ("active", doc.user_id)
    changed = await ok_json(
        await rc.pcp.put(
            rc.path(f"/problems/{problem['id']}"),
            json={"text": "Major depressive disorder", "clinical_status": "remission"},
        )
    )
    assert (changed["clinical_status"], changed["code"]) == ("remission", None)
    med = await ok_json(
        await rc.care_manager.post(
            rc.path("/medications"),
            json={"name": "sertraline", "dose": "100 mg", "route": "oral", "frequency": "daily"},
        ),
        201,
    )
    await ok_json(
        await doc.put(
            rc.path(f"/medications/{med['id']}"), json={"name": "sertraline", "status": "stopped"}
        )
    )
    await ok_json(
        await rc.therapist.post(
            rc.path("/allergies"),
            json={"substance": "penicillin", "reaction": "hives", "severity": "moderate"},
        ),
        201,
    )
    record = await ok_json(await rc.pcp.get(rc.path("/record")))
    assert [p["clinical_status"] for p in record["problems"]] == ["remission"]
    assert [(m["name"], m["status"]) for m in record["medications"]] == [("sertraline", "stopped")]
    assert [a["substance"] for a in record["allergies"]] == ["penicillin"]
    assert (await ok_json(await doc.get(rc.path("/problems"))))["problems"][0]["id"] == problem[
        "id"
    ]

    # A code needs its system; an entry of another patient is not found here.
    bad = await doc.post(rc.path("/problems"), json={"text": "x", "code": "F32.9"})
    assert await error_code(bad, 422) == "code_without_system"
    missing = await doc.put(rc.path("/allergies/999"), json={"substance": "x"})
    assert await error_code(missing, 404) == "entry_not_found"


@pytest.mark.parametrize(
    ("persona", "status", "code"),
    [
        ("outsider", 403, "not_on_care_team"),
        ("admin", 403, "admin_no_clinical_access"),
        ("patient_user", 403, "role_forbidden"),
    ],
)
async def test_the_record_is_the_care_teams(
    rc: RecordClinic, persona: str, status: int, code: str
) -> None:
    who = getattr(rc, persona)
    for tail in ("/record", "/problems", "/medications", "/allergies", "/screenings", "/notes"):
        assert await error_code(await who.get(rc.path(tail)), status) == code, tail
    write = await who.post(rc.path("/problems"), json={"text": "x"})
    expected = "not_a_clinician" if persona == "admin" else code
    assert await error_code(write, status) == expected


async def test_a_phq9_with_item_9_raises_a_flag_the_whole_team_sees(rc: RecordClinic) -> None:
    entered = await ok_json(
        await rc.pcp.post(
            rc.path("/screenings"), json={"instrument": "phq9", "answers": PHQ9_FLAGGED}
        ),
        201,
    )
    assert (entered["screening"]["total"], entered["screening"]["severity"]) == (10, "moderate")
    flag = entered["safety_flag"]
    assert (flag["kind"], flag["item_value"], flag["resolved_at"]) == ("phq9_item9", 2, None)

    for persona in (rc.psychiatrist, rc.pcp, rc.therapist, rc.care_manager):
        flags = await ok_json(await persona.get(rc.path("/safety-flags")))
        assert [f["id"] for f in flags["safety_flags"]] == [flag["id"]]
        worklist = await ok_json(await persona.get("/api/v1/safety-flags"))
        assert [(f["flag"]["id"], f["patient_id"]) for f in worklist["safety_flags"]] == [
            (flag["id"], rc.patient_id)
        ]
        record = await ok_json(await persona.get(rc.path("/record")))
        assert [f["id"] for f in record["open_safety_flags"]] == [flag["id"]]
    assert (await ok_json(await rc.outsider.get("/api/v1/safety-flags")))["safety_flags"] == []

    resolve = rc.path(f"/safety-flags/{flag['id']}/resolve")
    refused = await rc.outsider.post(resolve, json={"note": "not mine"})
    assert await error_code(refused, 403) == "not_on_care_team"
    rc.clock.advance(600)
    done = await ok_json(
        await rc.psychiatrist.post(resolve, json={"note": "Called her; safety plan; no intent."})
    )
    assert done["resolved_by"] == rc.psychiatrist.user_id
    assert done["resolved_at"].startswith(rc.clock.now.isoformat()[:16])
    again = await rc.pcp.post(resolve, json={"note": "me too"})
    assert await error_code(again, 409) == "safety_flag_resolved"
    assert (await ok_json(await rc.pcp.get(rc.path("/safety-flags"))))["safety_flags"] == []
    everything = await ok_json(await rc.pcp.get(rc.path("/safety-flags?all=true")))
    assert [f["resolution"] for f in everything["safety_flags"]] == [
        "Called her; safety plan; no intent."
    ]
    actions = [a.action for a in await rc.accesses()]
    assert "safety_flag.address" in actions and "screening.write" in actions


@pytest.mark.parametrize(
    ("instrument", "answers", "total", "severity"),
    [("gad7", [3, 3, 3, 3, 3, 0, 0], 15, "severe"), ("phq9", [0] * 9, 0, "minimal")],
)
async def test_screenings_are_scored(
    rc: RecordClinic, instrument: str, answers: list[int], total: int, severity: str
) -> None:
    body = {"instrument": instrument, "answers": answers}
    entered = await ok_json(await rc.therapist.post(rc.path("/screenings"), json=body), 201)
    assert (entered["screening"]["total"], entered["screening"]["severity"]) == (total, severity)
    assert entered["safety_flag"] is None


async def test_malformed_answers_are_refused(rc: RecordClinic) -> None:
    body = {"instrument": "gad7", "answers": [0, 1, 2, 3, 4, 0, 0]}
    response = await rc.pcp.post(rc.path("/screenings"), json=body)
    assert await error_code(response, 422) == "invalid_answers"
    short = await rc.pcp.post(rc.path("/screenings"), json={"instrument": "phq9", "answers": [0]})
    assert await error_code(short, 422) == "invalid_answers"


async def test_the_patient_sees_their_record_and_enters_screenings(rc: RecordClinic) -> None:
    await ok_json(await rc.psychiatrist.post(rc.path("/problems"), json={"text": "GAD"}), 201)
    me = rc.patient_user
    entered = await ok_json(
        await me.post(
            "/api/v1/me/screenings", json={"instrument": "phq9", "answers": PHQ9_FLAGGED}
        ),
        201,
    )
    assert entered["safety_flag"] is None  # the care team's to act on, not shown back
    flags = await ok_json(await rc.pcp.get(rc.path("/safety-flags")))
    assert len(flags["safety_flags"]) == 1
    record = await ok_json(await me.get("/api/v1/me/record"))
    assert [p["text"] for p in record["problems"]] == ["GAD"]
    assert [s["entered_by_role"] for s in record["screenings"]] == ["patient"]
    assert "open_safety_flags" not in record


async def test_a_patient_link_holder_enters_a_screening_through_the_service(
    rc: RecordClinic,
) -> None:
    visit = await rc.clinic.schedule()
    svc = rc.client.app[SERVICES]
    async with svc.db() as db:
        link_id = (
            await db.execute(
                select(VisitLink.id).where(
                    VisitLink.visit_id == visit["visit"]["id"], VisitLink.kind == "patient"
                )
            )
        ).scalar_one()
    entered = await svc.screenings.enter(
        EnteredBy.link(link_id), rc.patient_id, Instrument.GAD7, [1] * 7
    )
    assert (entered.screening.entered_by, entered.screening.total) == (f"link:{link_id}", 7)
    with pytest.raises(Forbidden) as refused:
        await svc.screenings.enter(
            EnteredBy.link(link_id + 999), rc.patient_id, Instrument.GAD7, [0] * 7
        )
    assert refused.value.code == "not_own_record"
    actors = {(a.actor, a.outcome) for a in await rc.accesses() if a.action == "screening.write"}
    assert actors == {(f"link:{link_id}", "ok"), (f"link:{link_id + 999}", "denied")}


async def test_the_patient_sees_who_accessed_their_record(rc: RecordClinic) -> None:
    await ok_json(await rc.pcp.get(rc.path("/record")))
    await rc.outsider.get(rc.path("/record"))
    log: dict[str, Any] = await ok_json(await rc.patient_user.get("/api/v1/me/access-log"))
    seen = [(a["actor_name"], a["action"], a["outcome"]) for a in log["accesses"]]
    assert ("Dr.Chen", "record.read", "ok") in seen
    assert ("Dr.Okafor", "record.read", "denied") in seen
    page = await ok_json(await rc.patient_user.get("/api/v1/me/access-log?limit=1"))
    assert len(page["accesses"]) == 1 and page["next_before"] == page["accesses"][0]["seq"]
    older = await ok_json(
        await rc.patient_user.get(f"/api/v1/me/access-log?before={page['next_before']}")
    )
    assert all(a["seq"] < page["next_before"] for a in older["accesses"])

    admin_view = await ok_json(await rc.admin.get(rc.path("/access-log")))
    assert admin_view["accesses"]
    refused = await rc.pcp.get(rc.path("/access-log"))
    assert await error_code(refused, 403) == "access_log_restricted"


async def test_a_patient_account_without_a_record_gets_404(
    rc: RecordClinic, sign_in: SignIn
) -> None:
    stranger = await sign_in(Role.PATIENT, "someone-else")
    response = await stranger.get("/api/v1/me/record")
    assert await error_code(response, 404) == "no_patient_record"


async def test_encounters_other_than_visits_are_recorded_by_hand(rc: RecordClinic) -> None:
    start = rc.clock.now.isoformat()
    made = await ok_json(
        await rc.pcp.post(rc.path("/encounters"), json={"kind": "curbside", "started_at": start}),
        201,
    )
    listed = await ok_json(await rc.psychiatrist.get(rc.path("/encounters")))
    assert [(e["id"], e["kind"]) for e in listed["encounters"]] == [(made["id"], "curbside")]
    visit = await rc.pcp.post(rc.path("/encounters"), json={"kind": "visit", "started_at": start})
    assert await error_code(visit, 422) == "encounter_kind"
