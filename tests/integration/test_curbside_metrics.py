"""The admin's curbside figures and billing flags, on requests crafted with the routing
machine at chosen instants and stored through the real store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from server.clock import FakeClock
from server.state import SERVICES
from signaling import curbside as cs
from signaling.curbside_store import NewRequest
from tests.conftest import SignIn
from tests.integration.visit_support import Client, Clinic, ok_json, set_up_clinic

pytestmark = pytest.mark.timeout(120)

Steps = Callable[[cs.CurbsideState, datetime], cs.CurbsideState]
POLICY = cs.RoutingPolicy()


def at(seconds: float, base: datetime) -> datetime:
    return base + timedelta(seconds=seconds)


async def craft(
    clinic: Clinic,
    *,
    mode: cs.Mode,
    roster: list[cs.OnCall],
    steps: Steps,
    consent: bool = True,
) -> int:
    """Open a request now (the clock's time) and take it through ``steps`` at chosen times."""
    store = clinic.client.app[SERVICES].curbside.store
    now = clinic.clock.now
    new = NewRequest(
        pcp_id=clinic.pcp.user_id,
        patient_id=clinic.patient_id,
        urgency=cs.Urgency.URGENT,
        mode=mode,
        question="Crafted.",
        patient_state="CA",
        context={},
        consent_recorded_at=now if consent else None,
    )

    def route(request: cs.ConsultRequest, start: datetime) -> cs.Transition:
        opened = cs.open_request(request, roster, POLICY, start).state
        return cs.Transition(steps(opened, start), (), True)

    result = await store.open(new, route)
    return result.state.request.id


@pytest.fixture
async def clinic(app_client: Client, clock: FakeClock, sign_in: SignIn) -> Clinic:
    return await set_up_clinic(app_client, clock, sign_in)


async def test_metrics_and_billing_flags_on_crafted_requests(clinic: Clinic) -> None:
    rivera, okafor, pcp = clinic.psychiatrist.user_id, clinic.outsider.user_id, clinic.pcp.user_id
    primary = [cs.OnCall(rivera, cs.Tier.PRIMARY, cs.Presence.AVAILABLE, frozenset({"CA"}))]
    backup = [cs.OnCall(okafor, cs.Tier.BACKUP, cs.Presence.AVAILABLE, frozenset({"CA"}))]
    start = clinic.clock.now
    # Rivera sees Jordan in a video visit ten days on: a face-to-face visit with the consultant.
    await clinic.schedule(start_in=timedelta(days=10), clinicians=[rivera])

    def call(accept_s: float, by: int, talk: tuple[float, float], done_s: float) -> Steps:
        def steps(s: cs.CurbsideState, t0: datetime) -> cs.CurbsideState:
            s = cs.accept(s, by, at(accept_s, t0)).state
            s = cs.call_connected(s, pcp, at(talk[0], t0)).state
            s = cs.end_call(s, pcp, at(talk[1], t0)).state
            return cs.complete(s, by, at(done_s, t0)).state

        return steps

    def escalated_then_written(s: cs.CurbsideState, t0: datetime) -> cs.CurbsideState:
        s = cs.tick(s, primary + backup, at(60, t0)).state
        s = cs.tick(s, primary + backup, at(120, t0)).state
        return cs.answer_written(s, okafor, at(3600, t0)).state

    ids: dict[str, int] = {}
    # a: answered in 20 s, 5 minutes talking, 3 documenting; no consent recorded.
    ids["a"] = await craft(
        clinic,
        mode=cs.Mode.CALL_NOW,
        roster=primary,
        steps=call(20, rivera, (30, 330), 510),
        consent=False,
    )
    await clinic.wait(60)  # an hour, the clinicians staying signed in
    # b: nobody primary, so the backup rang at once; answered in 90 s; 10 + 2 minutes.
    ids["b"] = await craft(
        clinic, mode=cs.Mode.CALL_NOW, roster=backup, steps=call(90, okafor, (100, 700), 820)
    )
    await clinic.wait(60)  # an hour, the clinicians staying signed in
    # c: rang the primary, then the backup, then went to writing; answered after an hour.
    ids["c"] = await craft(
        clinic, mode=cs.Mode.CALL_NOW, roster=primary + backup, steps=escalated_then_written
    )
    await clinic.wait(60)  # an hour, the clinicians staying signed in
    # d: written, answered in 30 minutes.
    ids["d"] = await craft(
        clinic,
        mode=cs.Mode.WRITTEN,
        roster=[],
        steps=lambda s, t0: cs.answer_written(s, rivera, at(1800, t0)).state,
    )
    await clinic.wait(60)  # an hour, the clinicians staying signed in
    # e: cancelled while ringing; f: written, not answered yet.
    ids["e"] = await craft(
        clinic,
        mode=cs.Mode.CALL_NOW,
        roster=primary,
        steps=lambda s, t0: cs.cancel(s, pcp, at(10, t0)).state,
    )
    ids["f"] = await craft(clinic, mode=cs.Mode.WRITTEN, roster=[], steps=lambda s, t0: s)

    since = (start - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    until = (clinic.clock.now + timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    body: Any = await ok_json(
        await clinic.admin.get(
            "/api/v1/admin/curbside/metrics", params={"since": since, "until": until}
        )
    )
    assert (body["requests"], body["call_now"], body["written"]) == (6, 4, 2)
    assert (body["cancelled"], body["answered"]) == (1, 4)
    # Time to answer: 20, 90, 3600, 1800 s.
    assert body["time_to_answer_median_s"] == (90 + 1800) / 2
    assert body["time_to_answer_p90_s"] == 3600
    assert body["share_escalated"] == 2 / 4  # b (at once) and c
    assert body["share_unanswered_then_written"] == 1 / 4  # c
    assert body["share_unanswered"] == 1 / 5  # f, of the five not cancelled
    assert body["minutes_per_consult"] == (8 + 12) / 2
    assert body["ringing_median_s"] == (20 + 90) / 2  # 10, 20, 90, 120

    lines = {line["id"]: line for line in body["consults"]}
    assert set(lines[ids["a"]]["billing_flags"]) == {"no_consent", "face_to_face_with_consultant"}
    assert lines[ids["a"]]["consultant_minutes"] == 8
    assert lines[ids["b"]]["billing_flags"] == ["repeat_consult"]
    assert "not_answered" in lines[ids["f"]]["billing_flags"]
    assert lines[ids["d"]]["times"]["to_answer_s"] == 1800

    empty = await ok_json(
        await clinic.admin.get(
            "/api/v1/admin/curbside/metrics",
            params={"since": "2020-01-01T00:00:00Z", "until": "2020-01-02T00:00:00Z"},
        )
    )
    assert empty["requests"] == 0 and empty["time_to_answer_median_s"] is None
    bad = await clinic.admin.get("/api/v1/admin/curbside/metrics", params={"since": "yesterday"})
    assert bad.status == 422
