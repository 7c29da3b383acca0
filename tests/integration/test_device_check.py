"""POST /api/v1/device-check/offer: a real aiortc client against the real app's echo peer.

The client signs in through the app, sends its synthetic camera and microphone, gets its own
numbered frames back, and pings the "probe" data channel. Every wait is bounded, and every
peer connection is closed in ``finally`` (``run_echo_check`` closes its own).
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from server.auth.roles import Role
from server.clock import FakeClock
from server.state import SERVICES
from signaling.echo import MAX_SDP_BYTES, Exchange, run_echo_check
from signaling.media import SyntheticVideoTrack, new_peer_connection
from tests.conftest import AppFactory, Persona, SignIn, error_code
from tests.integration.visit_support import Holders, set_up_clinic

Client = TestClient[web.Request, web.Application]
OFFER_PATH = "/api/v1/device-check/offer"
CHECK_TIMEOUT_S = 20.0


async def until(condition: Callable[[], bool]) -> None:
    """Poll for a state that no event announces (a peer's slot freed), at most 10 s."""
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110 - bounded poll
            await asyncio.sleep(0.02)


def exchange_as(persona: Persona) -> Exchange:
    async def exchange(sdp: str) -> str:
        response = await persona.post(OFFER_PATH, json={"sdp": sdp, "type": "offer"})
        assert response.status == 200, await response.text()
        body = await response.json()
        assert body["type"] == "answer" and body["peer_id"]
        answer: str = body["sdp"]
        return answer

    return exchange


@pytest.fixture
async def offer_sdp() -> AsyncIterator[str]:
    """A genuine aiortc offer (camera and probe channel); its peer is closed afterwards."""
    pc = new_peer_connection()
    try:
        pc.addTrack(SyntheticVideoTrack())
        pc.createDataChannel("probe", ordered=False, maxRetransmits=0)
        await pc.setLocalDescription(await pc.createOffer())
        yield pc.localDescription.sdp
    finally:
        await pc.close()


async def test_a_signed_in_user_sees_their_own_video_and_measures_the_network(
    sign_in: SignIn, app_client: Client
) -> None:
    patient = await sign_in(Role.PATIENT)
    echo = app_client.app[SERVICES].echo

    async with asyncio.timeout(CHECK_TIMEOUT_S):
        # A generous grace: on a loaded CI machine a late reply is not a lost one.
        check = await run_echo_check(exchange_as(patient), frames=10, pings=20, ping_grace=5)

    assert check.frames >= 10
    assert check.first_frame_s is not None and check.first_frame_s > check.connected_s > 0
    # The frames carry the numbers the client drew: its own video came back through the server.
    assert check.video_round_trip_ms is not None and check.video_round_trip_ms > 0
    assert check.round_trips.sent == 20
    assert check.round_trips.received >= 19
    median = check.round_trips.rtt_median_ms
    assert median is not None and median > 0
    # The client closed its side; the echo peer notices and gives its slot back.
    await until(lambda: echo.active == 0)


async def test_it_requires_a_session(app_client: Client, offer_sdp: str) -> None:
    response = await app_client.post(OFFER_PATH, json={"sdp": offer_sdp, "type": "offer"})
    assert await error_code(response, 401) == "not_signed_in"


async def test_it_requires_the_csrf_token(sign_in: SignIn, offer_sdp: str) -> None:
    pcp = await sign_in(Role.PCP)
    response = await pcp.http.post(
        pcp.base_url + OFFER_PATH, json={"sdp": offer_sdp, "type": "offer"}
    )
    assert await error_code(response, 403) == "csrf_failed"


@pytest.mark.parametrize(
    "sdp",
    [
        "hello",
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n",  # no media at all
        "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 97\r\na=mid:0\r\n",  # no ICE or DTLS
    ],
    ids=["not-sdp", "no-media", "no-credentials"],
)
async def test_malformed_sdp_is_refused(sign_in: SignIn, app_client: Client, sdp: str) -> None:
    patient = await sign_in(Role.PATIENT)
    response = await patient.post(OFFER_PATH, json={"sdp": sdp, "type": "offer"})
    assert await error_code(response, 422) == "invalid_sdp"
    assert app_client.app[SERVICES].echo.active == 0


async def test_an_answer_is_not_an_offer(sign_in: SignIn, offer_sdp: str) -> None:
    patient = await sign_in(Role.PATIENT)
    response = await patient.post(OFFER_PATH, json={"sdp": offer_sdp, "type": "answer"})
    assert await error_code(response, 422) == "validation_failed"


async def test_an_oversized_offer_is_refused(sign_in: SignIn, offer_sdp: str) -> None:
    patient = await sign_in(Role.PATIENT)
    padded = offer_sdp + "a=x-padding:" + "x" * MAX_SDP_BYTES + "\r\n"
    response = await patient.post(OFFER_PATH, json={"sdp": padded, "type": "offer"})
    assert await error_code(response, 422) == "validation_failed"
    assert (await response.json())["error"]["fields"][0]["field"] == "sdp"


async def test_a_body_past_the_server_limit_is_refused_before_it_is_read(
    sign_in: SignIn, offer_sdp: str
) -> None:
    patient = await sign_in(Role.PATIENT)
    huge = offer_sdp + "a=x-padding:" + "x" * 2_000_000 + "\r\n"
    body = json.dumps({"sdp": huge, "type": "offer"}).encode()
    response = await patient.post(
        OFFER_PATH, data=io.BytesIO(body), headers={"Content-Type": "application/json"}
    )
    assert await error_code(response, 413) == "payload_too_large"


async def test_past_the_limit_a_check_is_told_to_retry(
    make_app: AppFactory, sign_in: SignIn, offer_sdp: str
) -> None:
    app = await make_app(LIAISON_DEVICE_CHECK__MAX_PEERS=1)
    first = await sign_in(Role.PATIENT, client=app)
    second = await sign_in(Role.PCP, client=app)

    taken = await first.post(OFFER_PATH, json={"sdp": offer_sdp, "type": "offer"})
    assert taken.status == 200, await taken.text()
    refused = await second.post(OFFER_PATH, json={"sdp": offer_sdp, "type": "offer"})
    assert await error_code(refused, 429) == "echo_busy"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # The same user offering again replaces their own peer instead of being refused.
    again = await first.post(OFFER_PATH, json={"sdp": offer_sdp, "type": "offer"})
    assert again.status == 200, await again.text()
    assert app.app[SERVICES].echo.active == 1


async def test_shutting_down_closes_every_echo_peer(
    make_app: AppFactory, sign_in: SignIn, offer_sdp: str
) -> None:
    app = await make_app()
    patient = await sign_in(Role.PATIENT, client=app)
    response = await patient.post(OFFER_PATH, json={"sdp": offer_sdp, "type": "offer"})
    assert response.status == 200, await response.text()
    echo = app.app[SERVICES].echo
    assert echo.active == 1

    await app.close()

    assert echo.active == 0
    running = [t for t in asyncio.all_tasks() if t.get_name().startswith("echo-peer-")]
    assert running == []


async def test_a_patient_with_a_visit_link_can_run_the_check(
    app_client: Client, clock: FakeClock, sign_in: SignIn
) -> None:
    clinic = await set_up_clinic(app_client, clock, sign_in)
    visit = await clinic.schedule()
    async with Holders(app_client) as holders:
        holder = holders()
        await holder.join(visit["patient_link"]["url"])

        async def exchange(sdp: str) -> str:
            response = await holder.http.post(
                holder.base_url + OFFER_PATH,
                json={"sdp": sdp, "type": "offer"},
                headers={"X-CSRF-Token": holder.csrf_token},
            )
            assert response.status == 200, await response.text()
            answer: str = (await response.json())["sdp"]
            return answer

        async with asyncio.timeout(CHECK_TIMEOUT_S):
            check = await run_echo_check(exchange, frames=3, pings=10, ping_grace=5)
        assert check.frames >= 3 and check.round_trips.received >= 9

        no_csrf = await holder.http.post(
            holder.base_url + OFFER_PATH, json={"sdp": "v=0", "type": "offer"}
        )
        assert await error_code(no_csrf, 403) == "csrf_failed"
