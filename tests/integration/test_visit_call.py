"""The whole video-visit path through the real server: a patient with a join link and a
clinician, both real socket.io clients carrying real aiortc media."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import socketio
from sqlalchemy import select
from yarl import URL

from server.clock import FakeClock
from server.db.models import Encounter, Visit
from server.state import SERVICES
from signaling.probe import ProbeClient, ProbeError
from signaling.setup import RTC
from tests.conftest import AppFactory, Persona, SignIn
from tests.integration.visit_support import Client, Clinic, Holders, ready_patient, set_up_clinic

pytestmark = pytest.mark.timeout(90)


def session_cookie(persona: Persona) -> dict[str, str]:
    jar = persona.http.cookie_jar.filter_cookies(URL(persona.base_url))
    return {"liaison_session": jar["liaison_session"].value}


class Call:
    """A clinic, a scheduled visit, and a ready patient, with probes to close afterwards."""

    def __init__(self, clinic: Clinic, visit: dict[str, Any], holders: Holders) -> None:
        self.clinic = clinic
        self.visit_id: int = visit["visit"]["id"]
        self.link_url: str = visit["patient_link"]["url"]
        self.link_id: int = visit["patient_link"]["link"]["id"]
        self.holders = holders
        self.base = str(clinic.client.make_url("")).rstrip("/")
        self.probes: list[ProbeClient] = []

    def probe(self, cookies: dict[str, str], **kw: Any) -> ProbeClient:
        client = ProbeClient(self.base, cookies, **kw)
        self.probes.append(client)
        return client

    async def patient(self) -> ProbeClient:
        holder = await ready_patient(self.clinic, self.holders, self.link_url)
        probe = self.probe({"liaison_visit": holder.session_token})
        await probe.connect()
        return probe

    async def interpreter(self) -> ProbeClient:
        """A guest invited by link, joined and consented (guests skip the other steps)."""
        invited = await self.clinic.psychiatrist.post(
            f"/api/v1/visits/{self.visit_id}/links",
            json={"guest_role": "interpreter", "display_name": "Luis (interpreter)"},
        )
        assert invited.status == 201, await invited.text()
        holder = self.holders()
        await holder.join((await invited.json())["url"])
        assert (await holder.consent()).status == 200
        probe = self.probe({"liaison_visit": holder.session_token})
        await probe.connect()
        return probe

    async def admitted(self, clinician: ProbeClient, who: ProbeClient) -> None:
        await who.join(self.visit_id)
        async with asyncio.timeout(10):
            while not clinician.lobby:
                clinician.lobby_changed.clear()
                await clinician.lobby_changed.wait()
        await clinician.admit(clinician.lobby[0]["participant_id"])
        await until(who.joined)

    async def clinician(self, persona: Persona | None = None) -> ProbeClient:
        probe = self.probe(session_cookie(persona or self.clinic.psychiatrist))
        await probe.connect()
        return probe


@pytest.fixture
async def app_client(make_app: AppFactory) -> Client:
    # A small flood allowance, so that the flood test needs few messages; a quick heartbeat,
    # which is when a server notices that a reconnect grace has run out.
    return await make_app(
        LIAISON_SIGNALING__EVENTS_PER_SECOND="20",
        LIAISON_SIGNALING__EVENT_BURST="40",
        LIAISON_SIGNALING__FLOOD_STRIKES="10",
        LIAISON_CLUSTER__HEARTBEAT_S="0.2",
    )


@pytest.fixture
async def call(app_client: Client, clock: FakeClock, sign_in: SignIn) -> AsyncIterator[Call]:
    clinic = await set_up_clinic(app_client, clock, sign_in)
    visit = await clinic.schedule(start_in=timedelta(minutes=5))
    async with Holders(app_client) as holders:
        the_call = Call(clinic, visit, holders)
        try:
            yield the_call
        finally:
            for probe in the_call.probes:
                await probe.close()


async def until(event: asyncio.Event, seconds: float = 10) -> None:
    async with asyncio.timeout(seconds):
        await event.wait()


async def test_an_admitted_patient_and_the_clinician_exchange_video(call: Call) -> None:
    patient = await call.patient()
    waiting = await patient.join(call.visit_id)
    assert waiting["presence"] == "waiting"
    await until(patient.waiting)

    clinician = await call.clinician()
    assert (await clinician.join(call.visit_id))["presence"] == "in_call"
    await until(clinician.lobby_changed)
    assert [w["display_name"] for w in clinician.lobby] == ["Jordan A."]
    assert not patient.joined.is_set()  # arriving first earned nothing

    await clinician.admit(clinician.lobby[0]["participant_id"])
    await until(patient.joined)
    async with asyncio.timeout(20):
        await patient.wait_media(frames=5)
        await clinician.wait_media(frames=5)

    await patient.send_chat("Can you hear me?")
    await until(clinician.chat_received)
    assert clinician.chat[0]["text"] == "Can you hear me?"
    assert clinician.chat[0]["name"] == "Jordan A."

    await clinician.request("visit:end")
    await until(patient.ended)

    svc = call.clinic.client.app[SERVICES]
    async with svc.db() as db:
        visit = await db.get(Visit, call.visit_id)
        encounter = (
            await db.execute(select(Encounter).where(Encounter.visit_id == call.visit_id))
        ).scalar_one()
    assert visit is not None and visit.status == "completed"
    assert encounter.started_at is not None and encounter.ended_at is not None
    attendees = {a["display_name"] for a in json.loads(encounter.participants)}
    assert attendees == {"Jordan A.", "Dr.Rivera"}


async def test_a_patient_cannot_signal_before_admission(call: Call) -> None:
    patient = await call.patient()
    await patient.join(call.visit_id)
    clinician = await call.clinician()
    await clinician.join(call.visit_id)
    with pytest.raises(ProbeError) as refused:
        await patient.request(
            "rtc:signal",
            {"to": clinician.conn_id, "description": {"type": "offer", "sdp": "v=0"}},
        )
    assert refused.value.code == "not_in_call"
    with pytest.raises(ProbeError) as chat:
        await patient.send_chat("let me in")
    assert chat.value.code == "not_in_call"


async def test_a_clinician_off_the_visit_cannot_join_its_room(call: Call) -> None:
    outsider = await call.clinician(call.clinic.outsider)
    with pytest.raises(ProbeError) as refused:
        await outsider.join(call.visit_id)
    assert refused.value.code == "not_on_visit"


async def test_a_patient_cannot_join_another_visits_room(call: Call) -> None:
    other = await call.clinic.schedule(start_in=timedelta(minutes=30))
    patient = await call.patient()
    with pytest.raises(ProbeError) as refused:
        await patient.join(other["visit"]["id"])
    assert refused.value.code == "not_on_visit"


async def test_a_patient_who_reconnects_within_grace_comes_back_admitted(call: Call) -> None:
    patient = await call.patient()
    await patient.join(call.visit_id)
    clinician = await call.clinician()
    await clinician.join(call.visit_id)
    await until(clinician.lobby_changed)
    await clinician.admit(clinician.lobby[0]["participant_id"])
    await until(patient.joined)

    cookies = patient.cookies
    await patient.sio.disconnect()
    await until(clinician.peer_left)
    back = call.probe(cookies)
    await back.connect()
    assert (await back.join(call.visit_id))["presence"] == "in_call"
    await until(back.joined)
    async with asyncio.timeout(20):
        await back.wait_media(frames=3)


@pytest.mark.parametrize("interpreter_meanwhile", ["leaves", "drops"])
async def test_a_returning_patient_is_told_who_is_away_and_who_is_gone(
    call: Call, interpreter_meanwhile: str
) -> None:
    clinician = await call.clinician()
    await clinician.join(call.visit_id)
    patient = await call.patient()
    await call.admitted(clinician, patient)
    interpreter = await call.interpreter()
    await call.admitted(clinician, interpreter)
    interpreter_id = interpreter.you["participant_id"]

    cookies = patient.cookies
    clinician.peer_left.clear()
    await patient.sio.disconnect()
    await until(clinician.peer_left)
    # While the patient is offline, the interpreter hangs up for good, or drops too.
    clinician.peer_left.clear()
    if interpreter_meanwhile == "leaves":
        await interpreter.request("room:leave")
    else:
        await interpreter.sio.disconnect()
    await until(clinician.peer_left)

    back = call.probe(cookies)
    await back.connect()
    assert (await back.join(call.visit_id))["presence"] == "in_call"
    await until(back.joined)
    assert [p["participant_id"] for p in back.peers] == [clinician.you["participant_id"]]
    if interpreter_meanwhile == "leaves":
        assert back.away == []
    else:
        (away,) = back.away
        assert away["participant_id"] == interpreter_id
        assert away["display_name"] == "Luis (interpreter)"
        assert away["kind"] == "guest"
        # The test clock stands still: the whole grace is left.
        grace = call.clinic.client.app[SERVICES].settings.signaling.reconnect_grace_s
        assert away["grace_left_ms"] == grace * 1000
    async with asyncio.timeout(20):
        await back.wait_media(frames=3)


@pytest.mark.parametrize("seat_ends", ["removed", "returned_to_lobby", "timed_out"])
async def test_the_call_is_told_at_once_when_someone_away_is_gone_for_good(
    call: Call, seat_ends: str
) -> None:
    clinician = await call.clinician()
    await clinician.join(call.visit_id)
    patient = await call.patient()
    await call.admitted(clinician, patient)
    patient_id = patient.you["participant_id"]
    clinician.peer_left.clear()
    await patient.sio.disconnect()
    await until(clinician.peer_left)
    assert clinician.left[-1]["reason"] == "disconnected"

    clinician.peer_left.clear()
    if seat_ends == "removed":
        revoked = await call.clinic.psychiatrist.post(f"/api/v1/links/{call.link_id}/revoke")
        assert revoked.status == 200, await revoked.text()
    elif seat_ends == "returned_to_lobby":
        await clinician.request("lobby:return", {"participant_id": patient_id})
    else:
        # Nothing happens in the room: the server's own sweep notices the grace is over.
        grace = call.clinic.client.app[SERVICES].settings.signaling.reconnect_grace_s
        call.clinic.clock.advance(grace)
    await until(clinician.peer_left)

    # Named by identity: the patient has had no connection since the drop.
    assert clinician.left[-1] == {
        "visit_id": call.visit_id,
        "participant_id": patient_id,
        "conn_id": None,
        "reason": seat_ends,
    }


async def test_malformed_and_unknown_events_are_refused_and_the_server_keeps_serving(
    call: Call,
) -> None:
    clinician = await call.clinician()
    with pytest.raises(ProbeError) as bad:
        await clinician.request("room:join", {"visit_id": "seven"})
    assert bad.value.code == "invalid_event"
    with pytest.raises(ProbeError) as unknown:
        await clinician.request("room:explode", {})
    assert unknown.value.code == "unknown_event"
    with pytest.raises(ProbeError) as not_in_room:
        await clinician.request("rtc:signal", {"to": "x", "candidate": {"candidate": ""}})
    assert not_in_room.value.code == "not_in_room"
    assert (await clinician.join(call.visit_id))["ok"]


async def test_an_oversized_message_closes_only_that_socket(call: Call) -> None:
    clinician = await call.clinician()
    await clinician.join(call.visit_id)
    flooder = await call.clinician(call.clinic.pcp)
    disconnected = asyncio.Event()
    flooder.sio.on("disconnect", disconnected.set, namespace="/rtc")
    await flooder.sio.emit("chat:message", {"text": "x" * 200_000}, namespace="/rtc")
    await until(disconnected)
    assert clinician.sio.connected
    assert (await clinician.request("room:join", {"visit_id": call.visit_id}))["ok"]


async def test_a_flooding_socket_is_throttled_then_cut_off(call: Call) -> None:
    bystander = await call.clinician()
    await bystander.join(call.visit_id)
    flooder = await call.clinician(call.clinic.pcp)
    disconnected = asyncio.Event()
    flooder.sio.on("disconnect", disconnected.set, namespace="/rtc")
    # All at once, not one after another's answer: sent one at a time, a loaded machine's
    # round trip (over 1/20 s) would let the bucket refill as fast as it is drained.
    sent = [asyncio.create_task(flooder.request("room:leave")) for _ in range(200)]
    try:
        await until(disconnected)
    finally:
        for request in sent:
            request.cancel()  # those the server never answered: it hung up first
        answers = await asyncio.gather(*sent, return_exceptions=True)
    codes = [a.code for a in answers if isinstance(a, ProbeError)]
    assert codes.count("rate_limited") >= 1
    assert not flooder.sio.connected
    assert (await bystander.request("room:join", {"visit_id": call.visit_id}))["ok"]


async def test_the_socket_is_refused_without_a_session(call: Call) -> None:
    stranger = call.probe({})
    refusals: list[Any] = []
    stranger.sio.on("connect_error", refusals.append, namespace="/rtc")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await stranger.connect()
    assert refusals == [{"message": "Please sign in.", "data": {"code": "not_signed_in"}}]


async def test_the_socket_is_refused_from_another_origin(call: Call) -> None:
    probe = call.probe(session_cookie(call.clinic.psychiatrist))
    refusals: list[Any] = []
    probe.sio.on("connect_error", refusals.append, namespace="/rtc")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await probe.sio.connect(
            call.base,
            headers={"Origin": "https://evil.example"},
            namespaces=["/rtc"],
            transports=["websocket"],
        )
    # engine.io's CORS check refuses the handshake itself, before any namespace sees it.
    assert refusals == ["Connection error"]
    assert call.clinic.client.app[RTC].sockets == {}


async def test_a_patient_sent_back_to_the_waiting_room_can_no_longer_signal(call: Call) -> None:
    patient = await call.patient()
    await patient.join(call.visit_id)
    clinician = await call.clinician()
    await clinician.join(call.visit_id)
    await until(clinician.lobby_changed)
    participant = clinician.lobby[0]["participant_id"]
    await clinician.admit(participant)
    await until(patient.joined)
    signal = {"to": clinician.conn_id, "candidate": {"candidate": ""}}
    assert (await patient.request("rtc:signal", signal))["ok"]  # relayed while in the call

    await clinician.request("lobby:return", {"participant_id": participant})
    await until(patient.waiting)
    with pytest.raises(ProbeError) as refused:
        await patient.request("rtc:signal", signal)
    assert refused.value.code == "not_in_call"
