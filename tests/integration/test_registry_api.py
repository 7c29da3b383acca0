"""The registry through the API: flags on crafted score histories (at each rule's edge), the
score chart, minutes, follow-up tasks, and who sees which caseload."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from server.auth.roles import Role
from server.clock import FakeClock
from server.db.models import SafetyFlag, Screening
from server.record.screenings import Instrument, score
from server.state import SERVICES
from tests.conftest import SignIn
from tests.integration.visit_support import (
    Client,
    Clinic,
    create_patient,
    error_code,
    ok_json,
    set_up_clinic,
)

pytestmark = pytest.mark.timeout(90)


async def history(clinic: Clinic, patient_id: int, *points: tuple[str, list[int], int]) -> None:
    """Screenings ``days`` before now, as if entered then (ten weeks cannot pass in a test
    without the personas' sessions expiring)."""
    svc = clinic.client.app[SERVICES]
    async with svc.db.begin() as db:
        for instrument, answers, days_ago in points:
            scored = score(Instrument(instrument), answers)
            row = Screening(
                patient_id=patient_id,
                instrument=instrument,
                answers=json.dumps(answers),
                total=scored.total,
                severity=scored.severity.value,
                entered_by="user:1",
                entered_by_role="psychiatrist",
                administered_at=clinic.clock.now - timedelta(days=days_ago),
            )
            db.add(row)
            await db.flush()
            if scored.safety_concern:
                db.add(
                    SafetyFlag(
                        patient_id=patient_id,
                        screening_id=row.id,
                        kind="phq9_item9",
                        item_value=answers[8],
                        raised_at=row.administered_at,
                    )
                )


def phq(total: int, item9: int = 0) -> list[int]:
    """PHQ-9 answers adding up to ``total`` with item 9 as given."""
    rest = total - item9
    answers = [min(3, max(0, rest - 3 * i)) for i in range(8)] + [item9]
    assert sum(answers) == total
    return answers


async def enrol(clinic: Clinic, **fields: Any) -> int:
    patient = await create_patient(clinic.psychiatrist, **fields)
    added = await clinic.psychiatrist.post(
        f"/api/v1/patients/{patient['id']}/care-team",
        json={"user_id": clinic.care_manager.user_id, "role_on_team": "care_manager"},
    )
    await ok_json(added, 201)
    pid: int = patient["id"]
    return pid


async def log_contact(
    clinic: Clinic, patient_id: int, minutes: int, kind: str = "phone", days_ago: int | None = None
) -> Any:
    """The care manager logs a contact with the patient: now, or ``days_ago`` days before."""
    body: dict[str, Any] = {"minutes": minutes, "kind": kind}
    if days_ago is not None:
        body["at"] = (clinic.clock.now - timedelta(days=days_ago)).isoformat()
    posted = await clinic.care_manager.post(f"/api/v1/registry/{patient_id}/contacts", json=body)
    return await ok_json(posted, 201)


@pytest.fixture
async def clinic(app_client: Client, clock: FakeClock, sign_in: SignIn) -> Clinic:
    return await set_up_clinic(app_client, clock, sign_in)


async def caseload(clinic: Clinic, query: str = "") -> dict[int, Any]:
    body = await ok_json(await clinic.care_manager.get(f"/api/v1/registry{query}"))
    return {row["patient_id"]: row for row in body["patients"]}


async def test_flags_on_crafted_histories(clinic: Clinic) -> None:
    lagging = await enrol(clinic, given_name="Ana", family_name="Lag", mrn="R1")
    exact = await enrol(clinic, given_name="Ben", family_name="Half", mrn="R2")
    early = await enrol(clinic, given_name="Cy", family_name="Early", mrn="R3")
    unsafe = await enrol(clinic, given_name="Di", family_name="Safe", mrn="R4")
    await history(clinic, lagging, ("phq9", phq(20), 70), ("phq9", phq(11), 0))  # 45 % at 10 wk
    await history(clinic, exact, ("phq9", phq(20), 70), ("phq9", phq(10), 0))  # exactly 50 %
    await history(clinic, early, ("phq9", phq(20), 69), ("phq9", phq(19), 0))  # 9 weeks
    await history(clinic, unsafe, ("phq9", phq(12), 14), ("phq9", phq(8, item9=1), 0))
    for pid in (lagging, exact, early, unsafe):
        await log_contact(clinic, pid, 15)
    rows = await caseload(clinic)
    assert rows[lagging]["flags"] == ["not_improving"]
    assert rows[lagging]["weeks_in_treatment"] == 10
    assert rows[lagging]["phq9"]["change_percent"] == -45.0
    assert rows[exact]["flags"] == []
    assert rows[early]["flags"] == [] and rows[early]["weeks_in_treatment"] == 9
    assert rows[unsafe]["flags"] == ["safety"]
    assert rows[unsafe]["open_safety_flags"] == 1

    body = await ok_json(await clinic.care_manager.get("/api/v1/registry?sort=flags"))
    assert body["patients"][0]["patient_id"] == unsafe
    flagged = await caseload(clinic, "?flag=not_improving")
    assert set(flagged) == {lagging}
    assert set(await caseload(clinic, "?flagged=true")) == {lagging, unsafe}

    chart = await ok_json(await clinic.care_manager.get(f"/api/v1/registry/{lagging}/scores"))
    assert [p["total"] for p in chart["phq9"]] == [20, 11] and chart["gad7"] == []


async def test_contact_is_overdue_one_day_after_the_limit_not_on_it(clinic: Clinic) -> None:
    limit = clinic.client.app[SERVICES].registry.rules.contact_overdue_days
    on_edge = await enrol(clinic, given_name="Eve", family_name="Edge", mrn="R6")
    past_edge = await enrol(clinic, given_name="Fay", family_name="Past", mrn="R7")
    for pid, days in ((on_edge, limit), (past_edge, limit + 1)):
        await log_contact(clinic, pid, 10, days_ago=days)
    rows = await caseload(clinic)
    assert rows[on_edge]["days_since_contact"] == limit
    assert rows[on_edge]["flags"] == []
    assert rows[past_edge]["days_since_contact"] == limit + 1
    assert rows[past_edge]["flags"] == ["overdue_contact"]
    assert set(await caseload(clinic, "?flag=overdue_contact")) == {past_edge}


async def test_phq9_item9_above_zero_entered_through_the_api_flags_safety(clinic: Clinic) -> None:
    calm = await enrol(clinic, given_name="Gil", family_name="Calm", mrn="R8")
    at_risk = await enrol(clinic, given_name="Hal", family_name="Risk", mrn="R9")
    for pid, item9 in ((calm, 0), (at_risk, 1)):
        entered = await clinic.psychiatrist.post(
            f"/api/v1/patients/{pid}/screenings",
            json={"instrument": "phq9", "answers": phq(12, item9=item9)},
        )
        await ok_json(entered, 201)
        await log_contact(clinic, pid, 15)
    rows = await caseload(clinic)
    assert rows[calm]["flags"] == [] and rows[calm]["open_safety_flags"] == 0
    assert rows[at_risk]["flags"] == ["safety"] and rows[at_risk]["open_safety_flags"] == 1
    assert set(await caseload(clinic, "?flag=safety")) == {at_risk}


async def test_overdue_contact_and_monthly_minutes(clinic: Clinic) -> None:
    pid = await enrol(clinic, mrn="R9")
    assert (await caseload(clinic))[pid]["flags"] == []  # enrolled today
    await log_contact(clinic, pid, 25, kind="video", days_ago=31)
    await log_contact(clinic, pid, 20)
    rows = await caseload(clinic)
    assert rows[pid]["days_since_contact"] == 0
    month = clinic.clock.now.strftime("%Y-%m")
    minutes = await ok_json(
        await clinic.care_manager.get(f"/api/v1/registry/minutes?month={month}")
    )
    mine = {r["patient_id"]: r for r in minutes["patients"]}
    assert (mine[pid]["minutes"], mine[pid]["contacts"]) == (20, 1)


async def test_follow_up_tasks(clinic: Clinic) -> None:
    pid = await enrol(clinic, mrn="R5")
    due = (clinic.clock.now + timedelta(days=7)).date().isoformat()
    task = await ok_json(
        await clinic.psychiatrist.post(
            f"/api/v1/registry/{pid}/tasks",
            json={
                "title": "Increase sertraline to 100 mg",
                "due": due,
                "owner_id": clinic.care_manager.user_id,
            },
        ),
        201,
    )
    mine = await ok_json(await clinic.care_manager.get("/api/v1/registry/tasks"))
    assert [t["id"] for t in mine["tasks"]] == [task["id"]]
    response = await clinic.care_manager.http.patch(
        clinic.care_manager.base_url + f"/api/v1/registry/tasks/{task['id']}",
        json={"done": True},
        headers={"X-CSRF-Token": clinic.care_manager.csrf_token},
    )
    assert (await ok_json(response))["done_at"] is not None
    assert (await caseload(clinic))[pid]["open_tasks"] == 0
    response = await clinic.psychiatrist.post(
        f"/api/v1/registry/{pid}/tasks",
        json={"title": "x", "due": due, "owner_id": clinic.outsider.user_id},
    )
    assert await error_code(response, 422) == "owner_not_on_care_team"


async def test_a_care_manager_sees_only_their_caseload(clinic: Clinic, sign_in: SignIn) -> None:
    pid = await enrol(clinic, mrn="R6")
    other = await sign_in(Role.CARE_MANAGER, "cm.other")
    body = await ok_json(await other.get("/api/v1/registry"))
    assert body["patients"] == []
    assert await error_code(await other.get(f"/api/v1/registry/{pid}/scores"), 403) == (
        "not_on_care_team"
    )
    response = await other.post(
        f"/api/v1/registry/{pid}/contacts", json={"minutes": 5, "kind": "phone"}
    )
    assert await error_code(response, 403) == "not_on_care_team"
    assert await error_code(await clinic.admin.get("/api/v1/registry"), 403) == "role_forbidden"
    assert await error_code(await clinic.pcp.get("/api/v1/registry"), 403) == "role_forbidden"
