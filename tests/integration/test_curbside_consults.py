"""Curbside consults through the real server: psychiatrists' dashboards and the PCP are real
socket.io clients, the winner and the PCP carry real aiortc media, and time moves only when a
test advances the FakeClock and runs the scheduler's tick (as every process does each second).

Personas (visit_support): Dr. Chen is the PCP on Jordan's care team (Jordan lives in CA); Dr.
Rivera treats Jordan; Dr. Okafor is a psychiatrist off the team and off call. On-call
psychiatrists are made per test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from server.auth.roles import Role
from server.clock import FakeClock
from server.db.models import AuditEvent, Encounter, Visit
from server.state import SERVICES
from signaling import events as ev
from signaling.curbside_events import CURBSIDE_SCHEDULER
from signaling.probe import ProbeError
from tests.conftest import AppFactory, SignIn
from tests.integration.curbside_support import QUESTION, Curbside, Dashboard
from tests.integration.visit_support import Client, error_code, ok_json, set_up_clinic

pytestmark = pytest.mark.timeout(120)

RECOMMENDATION = {
    "question": "Partial response to sertraline.",
    "recommendation": "Augment with aripiprazole 2 mg daily; recheck PHQ-9 in 4 weeks.",
    "follow_up_advice": "Call back if akathisia or any suicidal thoughts.",
    "face_to_face_advised": False,
}


@pytest.fixture
async def app_client(make_app: AppFactory) -> Client:
    # An urgent written answer is due in 10 minutes here (4 hours by default), so that time
    # can pass it without every session idling out.
    return await make_app(LIAISON_CURBSIDE__ANSWER_MINUTES_URGENT="10")


@pytest.fixture
async def cb(app_client: Client, clock: FakeClock, sign_in: SignIn) -> AsyncIterator[Curbside]:
    clinic = await set_up_clinic(app_client, clock, sign_in)
    curbside = Curbside(clinic, sign_in)
    try:
        yield curbside
    finally:
        await curbside.close()


async def test_two_ring_both_accept_at_once_one_wins_and_the_call_connects(cb: Curbside) -> None:
    p1 = await cb.dashboard(await cb.psychiatrist("dr.ahmed"))
    p2 = await cb.dashboard(await cb.psychiatrist("dr.baker"))
    pcp = await cb.dashboard(cb.clinic.pcp)

    asked = await cb.ask()
    rid = asked["id"]
    assert asked["status"] == "ringing" and asked["ringing_tier"] == "primary"
    for dashboard in (p1, p2):
        ring = await dashboard.ring(rid)
        assert ring["tier"] == "primary"
        assert ring["request"]["question"] == QUESTION
        assert ring["request"]["pcp"]["display_name"] == "Dr.Chen"
        assert set(ring["request"]["context"]) >= {"problems", "medications", "screenings"}
    assert "Ringing 2 primary" in (await pcp.status(rid, "ringing"))["detail"]

    results = await asyncio.gather(
        p1.send(ev.CURBSIDE_ACCEPT, rid), p2.send(ev.CURBSIDE_ACCEPT, rid), return_exceptions=True
    )
    wins = [r for r in results if isinstance(r, dict)]
    losses = [r for r in results if isinstance(r, ProbeError)]
    assert len(wins) == 1 and len(losses) == 1, results
    assert losses[0].code == "already_taken"
    winner, loser = (p1, p2) if isinstance(results[0], dict) else (p2, p1)
    visit_id = wins[0]["visit_id"]

    await loser.wait(ev.CURBSIDE_TAKEN, lambda d: d["request_id"] == rid)
    for side in (winner, pcp):
        connected = await side.wait(ev.CURBSIDE_CONNECTED, lambda d: d["request_id"] == rid)
        assert connected["visit_id"] == visit_id
    accepted = await pcp.status(rid, "accepted")
    assert accepted["psychiatrist"] == {
        "id": winner.persona.user_id,
        "display_name": winner.persona.username.title(),
    }

    # The call starts with no further step: both join the call's room and media flows.
    assert (await pcp.probe.join(visit_id))["presence"] == "in_call"
    assert (await winner.probe.join(visit_id))["presence"] == "in_call"
    async with asyncio.timeout(30):
        await pcp.probe.wait_media(frames=3)
        await winner.probe.wait_media(frames=3)
    await pcp.status(rid, "in_call")

    # Either side hangs up; the room closes; the consultant documents in the shared record.
    await winner.send(ev.CURBSIDE_END, rid)
    async with asyncio.timeout(15):
        await pcp.probe.ended.wait()
    assert (await cb.get(rid))["status"] == "documenting"
    consult = await cb.get(rid, winner.persona)
    note = await ok_json(
        await winner.persona.post(
            f"/api/v1/patients/{consult['patient_id']}/notes",
            json={
                "template_id": "curbside_recommendation",
                "body": RECOMMENDATION,
                "encounter_id": consult["encounter_id"],
            },
        ),
        201,
    )
    await ok_json(await winner.persona.post(f"/api/v1/notes/{note['id']}/sign", json={}))
    done = await ok_json(
        await winner.persona.post(
            f"/api/v1/curbside/requests/{rid}/complete", json={"note_id": note["id"]}
        )
    )
    assert done["status"] == "completed" and done["note_id"] == note["id"]
    assert done["times"]["talking_s"] is not None and done["billing_flags"] == []
    read = await ok_json(await cb.clinic.pcp.get(f"/api/v1/notes/{note['id']}"))
    assert read["body"]["recommendation"] == RECOMMENDATION["recommendation"]

    svc = cb.client.app[SERVICES]
    async with svc.db() as db:
        visit = await db.get(Visit, visit_id)
        encounter = await db.get(Encounter, consult["encounter_id"])
        visits = await db.scalar(select(func.count()).select_from(Visit))
    assert visit is not None and visit.status == "completed"
    assert encounter is not None and encounter.kind == "curbside"
    assert encounter.visit_id == visit_id and encounter.ended_at is not None
    assert visits == 1


async def test_unanswered_rings_escalate_to_backup_then_to_the_written_queue(
    cb: Curbside,
) -> None:
    primary = await cb.dashboard(await cb.psychiatrist("dr.ahmed"))
    backup = await cb.dashboard(await cb.psychiatrist("dr.baker", tier="backup"))
    pcp = await cb.dashboard(cb.clinic.pcp)
    rid = (await cb.ask())["id"]
    await primary.ring(rid)
    assert not backup.rung_for(rid)

    await cb.advance(59)
    assert (await cb.get(rid))["ringing_tier"] == "primary"

    await cb.advance(1)
    assert (await backup.ring(rid))["tier"] == "backup"
    stop = await primary.wait(ev.CURBSIDE_STOP, lambda d: d["request_id"] == rid)
    assert stop["reason"] == "escalated"
    await pcp.wait(
        ev.CURBSIDE_STATUS, lambda d: d["detail"] == "Ringing 1 backup on-call psychiatrist."
    )
    assert (await cb.get(rid))["ringing_tier"] == "backup"

    await cb.advance(60)
    queued = await pcp.status(rid, "queued_written")
    assert "written consult queue" in queued["detail"]
    await backup.wait(ev.CURBSIDE_STOP, lambda d: d["request_id"] == rid)
    queue = await ok_json(await primary.persona.get("/api/v1/curbside/queue"))
    assert [(r["id"], r["overdue"]) for r in queue["requests"]] == [(rid, False)]

    # A click that arrives after the ringing ended is refused plainly.
    with pytest.raises(ProbeError) as late:
        await backup.send(ev.CURBSIDE_ACCEPT, rid)
    assert late.value.code == "not_ringing"


async def test_a_psychiatrist_who_disconnects_while_ringing_is_skipped(cb: Curbside) -> None:
    leaving = await cb.dashboard(await cb.psychiatrist("dr.ahmed"))
    staying = await cb.dashboard(await cb.psychiatrist("dr.baker"))
    backup = await cb.dashboard(await cb.psychiatrist("dr.cole", tier="backup"))
    rid = (await cb.ask())["id"]
    await leaving.ring(rid)
    await staying.ring(rid)

    await leaving.probe.close()
    # The other primary says no: the tier is empty at once, and the backup rings, without
    # waiting for the timeout and without ringing the one who left.
    await staying.send(ev.CURBSIDE_DECLINE, rid)
    assert (await backup.ring(rid))["tier"] == "backup"
    back = await cb.dashboard(leaving.persona)
    with pytest.raises(ProbeError) as refused:
        await back.send(ev.CURBSIDE_ACCEPT, rid)
    assert refused.value.code == "not_rung"
    assert (await backup.send(ev.CURBSIDE_ACCEPT, rid))["visit_id"] >= 1


async def test_the_last_ringing_psychiatrist_leaving_moves_the_request_on_at_once(
    cb: Curbside,
) -> None:
    only = await cb.dashboard(await cb.psychiatrist("dr.ahmed"))
    pcp = await cb.dashboard(cb.clinic.pcp)
    rid = (await cb.ask())["id"]
    await only.ring(rid)
    await only.probe.close()
    await pcp.status(rid, "queued_written")


async def test_the_pcp_can_cancel_and_a_late_accept_fails_cleanly(cb: Curbside) -> None:
    p1 = await cb.dashboard(await cb.psychiatrist("dr.ahmed"))
    rid = (await cb.ask())["id"]
    await p1.ring(rid)

    refused = await p1.persona.post(f"/api/v1/curbside/requests/{rid}/cancel")
    assert await error_code(refused, 403) == "role_forbidden"
    cancelled = await ok_json(await cb.clinic.pcp.post(f"/api/v1/curbside/requests/{rid}/cancel"))
    assert cancelled["status"] == "cancelled"
    stop = await p1.wait(ev.CURBSIDE_STOP, lambda d: d["request_id"] == rid)
    assert stop["reason"] == "cancelled"
    with pytest.raises(ProbeError) as late:
        await p1.send(ev.CURBSIDE_ACCEPT, rid)
    assert late.value.code == "cancelled"

    # Over the socket too, and only by the PCP who asked.
    rid2 = (await cb.ask())["id"]
    await p1.ring(rid2)
    with pytest.raises(ProbeError) as not_theirs:
        await p1.send(ev.CURBSIDE_CANCEL, rid2)
    assert not_theirs.value.code == "not_participant"
    pcp = await cb.dashboard(cb.clinic.pcp)
    assert (await pcp.send(ev.CURBSIDE_CANCEL, rid2))["ok"]


async def _trail(cb: Curbside, action: str, target: str) -> list[AuditEvent]:
    async with cb.client.app[SERVICES].db() as db:
        found = await db.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == action, AuditEvent.target == target)
            .order_by(AuditEvent.seq)
        )
        return list(found)


async def _accepted(cb: Curbside) -> tuple[int, int, Dashboard, Dashboard]:
    """A call-now request Dr. Ahmed has accepted: its id, its visit, their and the PCP's
    dashboards."""
    psychiatrist = await cb.dashboard(await cb.psychiatrist("dr.ahmed"))
    pcp = await cb.dashboard(cb.clinic.pcp)
    rid = (await cb.ask())["id"]
    await psychiatrist.ring(rid)
    visit_id = (await psychiatrist.send(ev.CURBSIDE_ACCEPT, rid))["visit_id"]
    return rid, visit_id, psychiatrist, pcp


async def test_a_call_hung_up_over_http_is_audited_as_whoever_hung_up(cb: Curbside) -> None:
    rid, visit_id, psychiatrist, pcp = await _accepted(cb)
    assert (await pcp.probe.join(visit_id))["presence"] == "in_call"
    assert (await psychiatrist.probe.join(visit_id))["presence"] == "in_call"
    await pcp.status(rid, "in_call")
    ended = await ok_json(await cb.clinic.pcp.post(f"/api/v1/curbside/requests/{rid}/end"))
    assert ended["status"] == "documenting"
    (end,) = await _trail(cb, "visit.end", f"visit:{visit_id}")
    assert (end.actor, end.actor_role) == (f"user:{cb.clinic.pcp.user_id}", "pcp")


async def test_a_call_cancelled_over_http_is_audited_as_the_pcp(cb: Curbside) -> None:
    rid, visit_id, _, _ = await _accepted(cb)
    cancelled = await ok_json(await cb.clinic.pcp.post(f"/api/v1/curbside/requests/{rid}/cancel"))
    assert cancelled["status"] == "cancelled"
    # The room closes as cancelled: no call was held, so no visit.end; the consult's own
    # change names the PCP.
    assert await _trail(cb, "visit.end", f"visit:{visit_id}") == []
    changes = await _trail(cb, "record.write", f"consult:{rid}")
    assert changes[-1].actor == f"user:{cb.clinic.pcp.user_id}"
    async with cb.client.app[SERVICES].db() as db:
        visit = await db.get(Visit, visit_id)
    assert visit is not None and visit.status == "cancelled"


async def test_call_now_rings_only_psychiatrists_licensed_where_the_patient_is(
    cb: Curbside,
) -> None:
    california = await cb.dashboard(await cb.psychiatrist("dr.ahmed", states=("CA",)))
    new_york = await cb.dashboard(await cb.psychiatrist("dr.baker", states=("NY",)))
    rid = (await cb.ask())["id"]
    await california.ring(rid)
    ringing_ny = await ok_json(await new_york.persona.get("/api/v1/curbside/ringing"))
    assert ringing_ny["requests"] == []
    ringing_ca = await ok_json(await california.persona.get("/api/v1/curbside/ringing"))
    assert [r["id"] for r in ringing_ca["requests"]] == [rid]

    # The patient is in New York today: the request names it.
    rid_ny = (await cb.ask(patient_state="ny"))["id"]
    await new_york.ring(rid_ny)
    assert not california.rung_for(rid_ny)

    policy = await cb.clinic.admin.put(
        "/api/v1/admin/curbside/policy", json={"require_license_match": False}
    )
    assert (await ok_json(policy))["overridden"] is True
    rid_any = (await cb.ask())["id"]
    await california.ring(rid_any)
    await new_york.ring(rid_any)


async def test_on_call_roster_shows_presence(cb: Curbside) -> None:
    await cb.psychiatrist("dr.ahmed")
    online = await cb.dashboard(await cb.psychiatrist("dr.baker", tier="backup"))
    roster = await ok_json(await cb.clinic.pcp.get("/api/v1/curbside/on-call"))
    assert [(m["display_name"], m["tier"], m["presence"]) for m in roster["on_call"]] == [
        ("Dr.Ahmed", "primary", "offline"),
        ("Dr.Baker", "backup", "available"),
    ]
    # In a visit's room, from any page (here a visit page's socket, which does not watch): busy,
    # from this process's next presence heartbeat.
    await ok_json(
        await cb.clinic.psychiatrist.post(
            f"/api/v1/patients/{cb.clinic.patient_id}/care-team",
            json={"user_id": online.persona.user_id, "role_on_team": "psychiatrist"},
        ),
        201,
    )
    visit = await cb.clinic.schedule(clinicians=[online.persona.user_id])
    visit_page = await cb.dashboard(online.persona, watch=False)
    await visit_page.probe.join(visit["visit"]["id"])
    await cb.client.app[CURBSIDE_SCHEDULER].beat()
    roster = await ok_json(await cb.clinic.pcp.get("/api/v1/curbside/on-call"))
    assert roster["on_call"][1]["presence"] == "busy"
    rid = (await cb.ask())["id"]  # nobody available on the primary tier, and Dr. Baker is busy
    await visit_page.probe.request(ev.ROOM_LEAVE)
    await cb.client.app[CURBSIDE_SCHEDULER].beat()
    roster = await ok_json(await cb.clinic.pcp.get("/api/v1/curbside/on-call"))
    assert roster["on_call"][1]["presence"] == "available"
    assert not online.rung_for(rid)


async def test_only_a_page_that_watches_makes_a_psychiatrist_available(cb: Curbside) -> None:
    # The clinic board and a visit page hold /rtc sockets too, but have no ring handler: a
    # psychiatrist with only those open must not be rung (nobody would hear it).
    other_page = await cb.dashboard(await cb.psychiatrist("dr.ahmed"), watch=False)
    first = (await cb.ask())["id"]
    assert (await cb.get(first))["status"] == "queued_written"  # nobody to ring: in the queue
    roster = await ok_json(await cb.clinic.pcp.get("/api/v1/curbside/on-call"))
    assert [m["presence"] for m in roster["on_call"]] == ["offline"]
    await cb.client.app[CURBSIDE_SCHEDULER].beat()  # a heartbeat does not make it count either
    roster = await ok_json(await cb.clinic.pcp.get("/api/v1/curbside/on-call"))
    assert [m["presence"] for m in roster["on_call"]] == ["offline"]

    dashboard = await cb.dashboard(other_page.persona)
    assert await dashboard.watch() == {"ok": True}  # idempotent: the page re-sends it freely
    roster = await ok_json(await cb.clinic.pcp.get("/api/v1/curbside/on-call"))
    assert [m["presence"] for m in roster["on_call"]] == ["available"]
    pcp = await cb.dashboard(cb.clinic.pcp)
    second = (await cb.ask())["id"]
    await dashboard.ring(second)

    # The dashboard closes: offline again, however many other pages stay open. The server
    # handles the disconnect after the client has gone: the PCP's status event says when.
    await dashboard.probe.close()
    await pcp.status(second, "queued_written")
    roster = await ok_json(await cb.clinic.pcp.get("/api/v1/curbside/on-call"))
    assert [m["presence"] for m in roster["on_call"]] == ["offline"]
    assert (await cb.get(second))["status"] == "queued_written"


async def test_written_consult_is_answered_then_acknowledged(cb: Curbside) -> None:
    answerer = await cb.psychiatrist("dr.ahmed")
    other = await cb.psychiatrist("dr.baker")
    pcp = await cb.dashboard(cb.clinic.pcp)
    asked = await cb.ask(mode="written", urgency="urgent")
    rid = asked["id"]
    assert asked["status"] == "queued_written"
    due = datetime.fromisoformat(asked["answer_due_at"])
    assert due == cb.clinic.clock.now + timedelta(minutes=10)
    queue = await ok_json(await answerer.get("/api/v1/curbside/queue"))
    assert [(r["id"], r["overdue"]) for r in queue["requests"]] == [(rid, False)]

    cb.clinic.clock.advance(10 * 60)
    queue = await ok_json(await answerer.get("/api/v1/curbside/queue"))
    assert [(r["id"], r["overdue"]) for r in queue["requests"]] == [(rid, True)]

    answer = {
        "assessment": "Partial response; no psychotic features.",
        "recommendations": "Switch to escitalopram 10 mg, cross-taper over a week.",
        "follow_up": "PHQ-9 in 4 weeks; call if worse.",
        "face_to_face_advised": False,
    }
    answered = await answerer.post(f"/api/v1/curbside/requests/{rid}/answer", json=answer)
    assert (await ok_json(answered))["answer"]["recommendations"] == answer["recommendations"]
    status = await pcp.status(rid, "answered")
    assert status["psychiatrist"]["id"] == answerer.user_id
    again = await other.post(f"/api/v1/curbside/requests/{rid}/answer", json=answer)
    assert await error_code(again, 409) == "already_answered"
    # The answerer joined the care team and reads the record from now on.
    assert (await answerer.get(f"/api/v1/patients/{cb.clinic.patient_id}")).status == 200
    assert (await ok_json(await other.get("/api/v1/curbside/queue")))["requests"] == []

    done = await ok_json(await cb.clinic.pcp.post(f"/api/v1/curbside/requests/{rid}/acknowledge"))
    assert done["status"] == "acknowledged"
    await pcp.status(rid, "acknowledged")
    refused = await answerer.post(f"/api/v1/curbside/requests/{rid}/acknowledge")
    assert await error_code(refused, 403) == "role_forbidden"


async def test_a_pcp_counts_only_their_own_answers_awaiting_acknowledgement(
    cb: Curbside,
) -> None:
    awaiting = "/api/v1/curbside/awaiting-acknowledgement"
    answerer = await cb.psychiatrist("dr.ahmed")
    lee = await cb.sign_in(Role.PCP, "dr.lee")
    added = await cb.clinic.psychiatrist.post(
        f"/api/v1/patients/{cb.clinic.patient_id}/care-team",
        json={"user_id": lee.user_id, "role_on_team": "pcp"},
    )
    await ok_json(added, 201)
    chens = [(await cb.ask(mode="written"))["id"] for _ in range(3)]
    lees = [(await cb.ask(lee, mode="written"))["id"]]
    assert (await ok_json(await cb.clinic.pcp.get(awaiting))) == {"count": 0}

    answer = {
        "assessment": "Partial response.",
        "recommendations": "Cross-taper to escitalopram.",
        "follow_up": "PHQ-9 in 4 weeks.",
        "face_to_face_advised": False,
    }
    for rid in [*chens[:2], *lees]:  # Dr. Chen's third stays in the queue
        await ok_json(await answerer.post(f"/api/v1/curbside/requests/{rid}/answer", json=answer))
    assert (await ok_json(await cb.clinic.pcp.get(awaiting))) == {"count": 2}
    assert (await ok_json(await lee.get(awaiting))) == {"count": 1}

    read = await cb.clinic.pcp.post(f"/api/v1/curbside/requests/{chens[0]}/acknowledge")
    await ok_json(read)
    assert (await ok_json(await cb.clinic.pcp.get(awaiting))) == {"count": 1}
    assert (await ok_json(await lee.get(awaiting))) == {"count": 1}

    # Only a PCP has requests to acknowledge; the answerer is told no, as everyone else is.
    for persona in (answerer, cb.clinic.care_manager, cb.clinic.admin, cb.clinic.patient_user):
        assert await error_code(await persona.get(awaiting), 403) == "role_forbidden"


async def test_authorisation_is_checked_on_every_step(cb: Curbside) -> None:
    rung = await cb.dashboard(await cb.psychiatrist("dr.ahmed"))
    off_call = await cb.dashboard(cb.clinic.outsider)
    pcp = await cb.dashboard(cb.clinic.pcp)
    rid = (await cb.ask())["id"]
    await rung.ring(rid)

    with pytest.raises(ProbeError) as pcp_accepts:
        await pcp.send(ev.CURBSIDE_ACCEPT, rid)
    assert pcp_accepts.value.code == "role_forbidden"
    with pytest.raises(ProbeError) as pcp_watches:
        await pcp.watch()
    assert pcp_watches.value.code == "forbidden"
    with pytest.raises(ProbeError) as not_rung:
        await off_call.send(ev.CURBSIDE_ACCEPT, rid)
    assert not_rung.value.code == "not_rung"
    with pytest.raises(ProbeError) as unknown:
        await rung.send(ev.CURBSIDE_ACCEPT, 999_999)
    assert unknown.value.code == "request_not_found"
    with pytest.raises(ProbeError) as malformed:
        await rung.probe.request(ev.CURBSIDE_ACCEPT, {"request_id": "one"})
    assert malformed.value.code == "invalid_event"

    hidden = await cb.clinic.outsider.get(f"/api/v1/curbside/requests/{rid}")
    assert await error_code(hidden, 404) == "request_not_found"
    as_psychiatrist = await cb.post_request(cb.clinic.psychiatrist)
    assert await error_code(as_psychiatrist, 403) == "role_forbidden"
    off_team = await cb.post_request(await cb.sign_in(Role.PCP, "dr.lee"))
    assert await error_code(off_team, 403) == "not_on_care_team"
    metrics = await cb.clinic.pcp.get("/api/v1/admin/curbside/metrics")
    assert await error_code(metrics, 403) == "role_forbidden"
    someone_elses = await rung.persona.post(
        "/api/v1/curbside/shifts",
        json={
            "psychiatrist_id": cb.clinic.outsider.user_id,
            "tier": "primary",
            "starts_at": cb.clinic.clock.now.isoformat(),
            "ends_at": (cb.clinic.clock.now + timedelta(hours=1)).isoformat(),
        },
    )
    assert await error_code(someone_elses, 403) == "not_your_shift"


async def test_a_request_can_bring_a_minimal_new_patient(cb: Curbside) -> None:
    asked = await cb.ask(
        patient_id=None,
        mode="written",
        new_patient={
            "given_name": "Sam",
            "family_name": "Ortiz",
            "date_of_birth": "1990-02-03",
            "state": "NV",
            "phone": "775-555-0199",
        },
    )
    assert asked["patient_state"] == "NV" and asked["patient_id"] != cb.clinic.patient_id
    assert asked["context"]["problems"] == []
    both = await cb.post_request(new_patient={"given_name": "X"})
    assert await error_code(both, 422) == "validation_failed"


async def test_requests_carry_the_record_context(cb: Curbside) -> None:
    pid = cb.clinic.patient_id
    by = cb.clinic.psychiatrist
    await ok_json(
        await by.post(f"/api/v1/patients/{pid}/problems", json={"text": "Major depression"}),
        201,
    )
    await ok_json(
        await by.post(
            f"/api/v1/patients/{pid}/medications", json={"name": "Sertraline", "dose": "100 mg"}
        ),
        201,
    )
    asked = await cb.ask(mode="written")
    context = asked["context"]
    assert [p["text"] for p in context["problems"]] == ["Major depression"]
    assert [(m["name"], m["dose"]) for m in context["medications"]] == [("Sertraline", "100 mg")]
    assert context["screenings"] == {"phq9": None, "gad7": None}


async def test_nothing_rings_when_nobody_is_on_call(cb: Curbside) -> None:
    asked = await cb.ask()
    assert asked["status"] == "queued_written"


async def test_psychiatrists_manage_their_own_shifts_and_licences(cb: Curbside) -> None:
    me = await cb.sign_in(Role.PSYCHIATRIST, "dr.ahmed")
    now = cb.clinic.clock.now
    shift = {
        "psychiatrist_id": me.user_id,
        "tier": "backup",
        "starts_at": (now + timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(hours=9)).isoformat(),
    }
    added = await ok_json(await me.post("/api/v1/curbside/shifts", json=shift), 201)
    listed = await ok_json(await cb.clinic.pcp.get("/api/v1/curbside/shifts"))
    assert [(s["id"], s["tier"], s["psychiatrist_name"]) for s in listed["shifts"]] == [
        (added["id"], "backup", "Dr.Ahmed")
    ]
    backwards = shift | {"ends_at": shift["starts_at"], "starts_at": shift["ends_at"]}
    assert await error_code(await me.post("/api/v1/curbside/shifts", json=backwards), 422) == (
        "invalid_shift"
    )

    path = cb.base + f"/api/v1/curbside/shifts/{added['id']}"
    other = cb.clinic.outsider
    refused = await other.http.delete(path, headers={"X-CSRF-Token": other.csrf_token})
    assert await error_code(refused, 403) == "not_your_shift"
    removed = await me.http.delete(path, headers={"X-CSRF-Token": me.csrf_token})
    assert removed.status == 204
    assert (await ok_json(await cb.clinic.pcp.get("/api/v1/curbside/shifts")))["shifts"] == []

    licences = await ok_json(
        await me.put("/api/v1/curbside/licenses", json={"states": ["ca", "NY"]})
    )
    assert licences["states"] == ["CA", "NY"]
    assert (await ok_json(await me.get("/api/v1/curbside/licenses")))["states"] == ["CA", "NY"]
    bad = await me.put("/api/v1/curbside/licenses", json={"states": ["Narnia"]})
    assert await error_code(bad, 422) == "validation_failed"
    assert await error_code(await cb.clinic.pcp.get("/api/v1/curbside/licenses"), 403) == (
        "role_forbidden"
    )
