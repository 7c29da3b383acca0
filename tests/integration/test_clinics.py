"""Remote clinics through the real server: booking makes a visit and an invitation in the
outbox folder; reschedule, cancel, resend; the board as a patient joins the waiting room and
fills in a PHQ-9; running late; who may do what."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from server.auth.roles import Role
from server.clock import FakeClock
from server.state import SERVICES
from signaling.probe import ProbeClient
from tests.conftest import SignIn
from tests.integration.clinic_support import BASE, ClinicSession, poll, set_up_clinic_session
from tests.integration.visit_support import (
    Client,
    Holders,
    error_code,
    ok_json,
    ready_patient,
)

pytestmark = pytest.mark.timeout(90)


class Setup(ClinicSession):
    async def board(self) -> Any:
        return await ok_json(
            await self.clinic.psychiatrist.get(f"{BASE}/sessions/{self.session['id']}/board")
        )


@pytest.fixture
async def setup(app_client: Client, clock: FakeClock, sign_in: SignIn) -> Setup:
    made = await set_up_clinic_session(app_client, clock, sign_in, timedelta(minutes=10))
    assert len(made.session["slots"]) == 3
    return Setup(made.clinic, made.session, made.patient_id)


async def test_booking_creates_a_visit_and_an_invitation_with_its_join_link(setup: Setup) -> None:
    booked = await setup.book()
    assert booked["status"] == "booked"
    invitation = booked["invitation"]
    assert invitation["sent_at"] is not None and invitation["error"] is None
    files = sorted(setup.outbox.glob("*.eml"))
    assert len(files) == 1
    text = files[0].read_text()
    assert "To: sam@example.org" in text and "/join#" in text
    visit = await ok_json(
        await setup.clinic.psychiatrist.get(f"/api/v1/visits/{booked['visit_id']}")
    )
    assert visit["status"] == "scheduled"
    # The stored copy no longer holds a usable link.
    async with setup.clinic.client.app[SERVICES].db() as db:
        from server.db.models import OutboxMessage

        stored = await db.get(OutboxMessage, invitation["id"])
        assert stored is not None and "/join#" not in stored.body


async def test_a_taken_slot_is_refused_and_leaves_no_visit_behind(setup: Setup) -> None:
    await setup.book()
    response = await setup.clinic.care_manager.post(
        f"{BASE}/sessions/{setup.session['id']}/bookings",
        json={"patient_id": setup.patient_id, "slot_start": setup.session["slots"][0]},
    )
    assert await error_code(response, 409) == "slot_taken"


async def test_reschedule_cancels_the_old_visit_and_invites_again(setup: Setup) -> None:
    first = await setup.book(0)
    moved = await ok_json(
        await setup.clinic.care_manager.post(
            f"{BASE}/bookings/{first['id']}/reschedule",
            json={"session_id": setup.session["id"], "slot_start": setup.session["slots"][2]},
        ),
        201,
    )
    assert moved["visit_id"] != first["visit_id"]
    old = await ok_json(await setup.clinic.psychiatrist.get(f"/api/v1/visits/{first['visit_id']}"))
    assert old["status"] == "cancelled"
    detail = await ok_json(
        await setup.clinic.care_manager.get(f"{BASE}/sessions/{setup.session['id']}")
    )
    statuses = {b["id"]: (b["status"], b["replaced_by"]) for b in detail["bookings"]}
    assert statuses[first["id"]] == ("rescheduled", moved["id"])
    assert len(list(setup.outbox.glob("*.eml"))) == 2


async def test_cancel_and_resend(setup: Setup) -> None:
    booked = await setup.book()
    resent = await ok_json(
        await setup.clinic.care_manager.post(
            f"{BASE}/bookings/{booked['id']}/invitation", json={"kind": "reminder"}
        ),
        201,
    )
    assert resent["kind"] == "reminder" and resent["sent_at"] is not None
    bodies = [p.read_text() for p in sorted(setup.outbox.glob("*.eml"))]
    assert len(bodies) == 2 and "Reminder" in bodies[1]
    cancelled = await ok_json(
        await setup.clinic.care_manager.post(f"{BASE}/bookings/{booked['id']}/cancel")
    )
    assert cancelled["status"] == "cancelled"
    response = await setup.clinic.care_manager.post(f"{BASE}/bookings/{booked['id']}/cancel")
    assert await error_code(response, 409) == "booking_not_active"
    assert (await setup.board())["rows"] == []


async def test_the_board_follows_the_waiting_room_and_the_screening(setup: Setup) -> None:
    booked = await setup.book()
    clinic = setup.clinic
    base = str(clinic.client.make_url("")).rstrip("/")
    board = await setup.board()
    assert [r["status"] for r in board["rows"]] == ["scheduled"]

    # The psychiatrist's dashboard socket hears of every change.
    psych = ProbeClient(base, {"liaison_session": _cookie(clinic.psychiatrist)})
    pings: list[dict[str, Any]] = []
    psych.sio.on("clinic:board", lambda data: pings.append(data), namespace="/rtc")
    async with Holders(clinic.client) as holders:
        # The patient opens the link from the invitation in the outbox folder.
        text = sorted(setup.outbox.glob("*.eml"))[-1].read_text()
        url = next(w for w in text.split() if "/join#" in w)
        holder = await ready_patient(clinic, holders, url)
        patient = ProbeClient(base, {"liaison_visit": holder.session_token})
        notices: list[dict[str, Any]] = []
        patient.sio.on("visit:notice", lambda data: notices.append(data), namespace="/rtc")
        try:
            await psych.connect()
            await patient.connect()
            await patient.join(booked["visit_id"])

            async def waiting() -> bool:
                rows = (await setup.board())["rows"]
                return bool(rows[0]["status"] == "waiting")

            await poll(waiting)
            await poll(lambda: _true(bool(pings)))
            row = (await setup.board())["rows"][0]
            assert row["waiting_since"] is not None
            assert row["patient_participant_id"].startswith("link:")

            entered = await holder.http.post(
                base + f"{BASE}/waiting-room/screenings",
                json={"instrument": "phq9", "answers": [2, 2, 2, 1, 1, 1, 1, 0, 1]},
                headers={"X-CSRF-Token": holder.csrf_token},
            )
            assert entered.status == 204, await entered.text()
            row = (await setup.board())["rows"][0]
            assert [(s["instrument"], s["total"]) for s in row["screenings"]] == [("phq9", 11)]
            assert len(row["safety_flags"]) == 1

            late = await clinic.psychiatrist.post(
                f"{BASE}/sessions/{setup.session['id']}/running-late", json={"minutes": 10}
            )
            assert (await ok_json(late))["notified"] == 1
            await poll(lambda: _true(bool(notices)))
            assert "about 10 minutes late" in notices[0]["text"]

            await patient.close()

            async def gone() -> bool:
                return bool((await setup.board())["rows"][0]["status"] != "waiting")

            await poll(gone)
        finally:
            await patient.close()
            await psych.close()


async def test_the_board_shows_a_no_show_and_a_finished_visit_as_they_happen(
    setup: Setup, clock: FakeClock
) -> None:
    clinic = setup.clinic
    missed = await setup.book(0)
    before = set(setup.outbox.glob("*.eml"))
    seen = await setup.book(1)
    (invitation,) = set(setup.outbox.glob("*.eml")) - before
    no_show = f"/api/v1/visits/{missed['visit_id']}/no-show"
    response = await clinic.care_manager.post(no_show)
    assert await error_code(response, 409) == "visit_not_started_yet"
    clock.advance(timedelta(minutes=10).total_seconds())

    base = str(clinic.client.make_url("")).rstrip("/")
    psych = ProbeClient(base, {"liaison_session": _cookie(clinic.psychiatrist)}, send_video=False)
    pings: list[dict[str, Any]] = []
    psych.sio.on("clinic:board", lambda data: pings.append(data), namespace="/rtc")

    async def status_of(booking: dict[str, Any]) -> str:
        rows = (await setup.board())["rows"]
        found: str = next(r["status"] for r in rows if r["booking_id"] == booking["id"])
        return found

    async with Holders(clinic.client) as holders:
        patient: ProbeClient | None = None
        try:
            await psych.connect()
            # The care manager marks it over HTTP; the psychiatrist's board hears of it.
            marked = await ok_json(await clinic.care_manager.post(no_show))
            assert marked["status"] == "no_show"
            await poll(lambda: _true(bool(pings)))
            assert pings[-1] == {"session_id": setup.session["id"]}
            assert await status_of(missed) == "no_show"
            response = await clinic.care_manager.post(no_show)
            assert await error_code(response, 409) == "visit_closed"

            url = next(w for w in invitation.read_text().split() if "/join#" in w)
            holder = await ready_patient(clinic, holders, url)
            patient = ProbeClient(base, {"liaison_visit": holder.session_token}, send_video=False)
            await patient.connect()
            assert (await patient.join(seen["visit_id"]))["presence"] == "waiting"
            assert (await psych.join(seen["visit_id"]))["presence"] == "in_call"
            await poll(lambda: _true(bool(psych.lobby)))
            await psych.admit(psych.lobby[0]["participant_id"])
            await poll(lambda: _true(patient is not None and patient.joined.is_set()))
            assert await status_of(seen) == "in_visit"
            pings.clear()
            await psych.request("visit:end")
            await poll(lambda: _true(bool(pings)))
            assert await status_of(seen) == "done"
            assert await status_of(missed) == "no_show"
        finally:
            if patient is not None:
                await patient.close()
            await psych.close()


async def test_who_may_do_what(setup: Setup, sign_in: SignIn) -> None:
    clinic = setup.clinic
    body = {
        "psychiatrist_id": clinic.psychiatrist.user_id,
        "title": "x",
        "starts_at": (clinic.clock.now + timedelta(hours=1)).isoformat(),
        "ends_at": (clinic.clock.now + timedelta(hours=2)).isoformat(),
        "slot_minutes": 30,
    }
    for persona in (clinic.pcp, clinic.psychiatrist):
        response = await persona.post(f"{BASE}/sessions", json=body)
        assert await error_code(response, 403) == "role_forbidden"
    response = await clinic.outsider.get(f"{BASE}/sessions/{setup.session['id']}/board")
    assert await error_code(response, 403) == "not_your_clinic"
    response = await clinic.admin.get(f"{BASE}/sessions/{setup.session['id']}/board")
    assert await error_code(response, 403) == "role_forbidden"
    # A care manager off the patient's care team cannot book them.
    other_cm = await sign_in(Role.CARE_MANAGER, "cm.other")
    response = await other_cm.post(
        f"{BASE}/sessions/{setup.session['id']}/bookings",
        json={"patient_id": setup.patient_id, "slot_start": setup.session["slots"][0]},
    )
    assert await error_code(response, 403) == "not_on_care_team"
    response = await clinic.psychiatrist.post(
        f"{BASE}/waiting-room/screenings", json={"instrument": "gad7", "answers": [0] * 7}
    )
    assert await error_code(response, 403) == "role_forbidden"


async def _true(value: bool) -> bool:
    return value


def _cookie(persona: Any) -> str:
    from yarl import URL

    jar = persona.http.cookie_jar.filter_cookies(URL(persona.base_url))
    value: str = jar["liaison_session"].value
    return value
