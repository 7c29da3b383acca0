"""signaling.echo: offer checks, the echo peers' limits and lifetimes, and the probe channel.

``data/chromium-156-offer.sdp`` is an offer captured from Debian's Chromium 156 (fake camera
and microphone plus a "probe" data channel), the way aiortc tests its parser on browser SDP.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from signaling.echo import (
    MAX_MEDIA_SECTIONS,
    MAX_SDP_BYTES,
    PROBE_LABEL,
    EchoBusy,
    EchoPeers,
    InvalidSdp,
    check_offer,
    measure_round_trips,
)
from signaling.media import SyntheticVideoTrack, new_peer_connection, wait_connected

CHROMIUM_OFFER = (Path(__file__).parent / "data" / "chromium-156-offer.sdp").read_bytes().decode()
TIMEOUT_S = 10.0


@pytest.fixture
async def peers() -> AsyncIterator[list[RTCPeerConnection]]:
    """Client peer connections made by a test, closed whatever happens."""
    made: list[RTCPeerConnection] = []
    try:
        yield made
    finally:
        for pc in made:
            await pc.close()


@pytest.fixture
async def echo() -> AsyncIterator[EchoPeers]:
    service = EchoPeers()
    try:
        yield service
    finally:
        await service.close()
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("echo-peer-")]


async def until(condition: Callable[[], bool]) -> None:
    """Poll for a state that no event announces (a peer's slot freed), at most TIMEOUT_S."""
    async with asyncio.timeout(TIMEOUT_S):
        while not condition():  # noqa: ASYNC110 - bounded poll
            await asyncio.sleep(0.02)


def sections(sdp: str) -> list[list[str]]:
    blocks: list[list[str]] = []
    for line in sdp.splitlines():
        if line.startswith("m="):
            blocks.append([])
        if blocks:
            blocks[-1].append(line)
    return blocks


async def test_it_answers_every_section_of_a_chromium_offer(echo: EchoPeers) -> None:
    answer = await echo.answer(CHROMIUM_OFFER, owner="user:1")
    media = sections(answer.sdp)
    assert [block[0].split()[0] for block in media] == ["m=audio", "m=video", "m=application"]
    # The browser sends audio and video, so both come back.
    assert all("a=sendrecv" in block for block in media[:2])
    assert "a=group:BUNDLE 0 1 2" in answer.sdp
    assert any(line.startswith("a=candidate:") for line in answer.sdp.splitlines())
    assert echo.active == 1


def without(sdp: str, prefix: str) -> str:
    return "\r\n".join(line for line in sdp.splitlines() if not line.startswith(prefix)) + "\r\n"


@pytest.mark.parametrize(
    ("sdp", "message"),
    [
        ("v=zero\r\n", "not valid SDP"),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", "no media"),
        (without(CHROMIUM_OFFER, "a=ice-ufrag"), "ICE credentials"),
        (without(CHROMIUM_OFFER, "a=fingerprint"), "DTLS fingerprint"),
        (without(CHROMIUM_OFFER, "a=rtcp-mux"), "rtcp-mux"),
        (without(CHROMIUM_OFFER, "a=sendrecv"), "direction"),
        (CHROMIUM_OFFER.replace("a=mid:1", "a=mid:0"), "mid of its own"),
        (CHROMIUM_OFFER.replace("BUNDLE 0 1 2", "BUNDLE 0 1 7"), "groups a mid"),
        (CHROMIUM_OFFER.replace("m=application", "m=text"), "unsupported media kind"),
        (
            CHROMIUM_OFFER
            + "".join(
                "\r\n".join(sections(CHROMIUM_OFFER)[2]).replace("a=mid:2", f"a=mid:x{n}") + "\r\n"
                for n in range(MAX_MEDIA_SECTIONS)
            ),
            "more than",
        ),
        # Under the limit in characters, over it in bytes.
        (CHROMIUM_OFFER + "a=x-note:" + "é" * (MAX_SDP_BYTES // 2) + "\r\n", "larger than"),
    ],
    ids=[
        "not-sdp",
        "no-media",
        "no-ice",
        "no-fingerprint",
        "no-rtcp-mux",
        "no-direction",
        "repeated-mid",
        "unknown-bundle-mid",
        "unknown-kind",
        "too-many-sections",
        "too-many-bytes",
    ],
)
def test_it_refuses_offers_it_cannot_or_need_not_answer(sdp: str, message: str) -> None:
    with pytest.raises(InvalidSdp, match=message) as refused:
        check_offer(sdp)
    assert refused.value.code == "invalid_sdp"
    assert refused.value.status == 422


async def test_an_offer_without_a_codec_in_common_is_refused_and_leaves_no_peer(
    echo: EchoPeers,
) -> None:
    # Video offered as AV1 only, which aiortc does not speak.
    def keep(line: str) -> bool:
        codec_line = line.startswith(("a=rtpmap:", "a=rtcp-fb:", "a=fmtp:"))
        return not codec_line or line.split(":", 1)[1].split()[0] in {"45", "111"}

    av1_only = "\r\n".join(
        "m=video 9 UDP/TLS/RTP/SAVPF 45" if line.startswith("m=video") else line
        for line in CHROMIUM_OFFER.splitlines()
        if keep(line)
    )
    with pytest.raises(InvalidSdp, match="cannot be answered"):
        await echo.answer(av1_only + "\r\n", owner="user:1")
    await until(lambda: echo.active == 0)


async def test_a_peer_ends_when_its_lifetime_is_up() -> None:
    echo = EchoPeers(max_lifetime_s=0.2)
    try:
        await echo.answer(CHROMIUM_OFFER, owner="user:1")
        assert echo.active == 1
        await until(lambda: echo.active == 0)
    finally:
        await echo.close()


async def test_a_full_service_tells_another_owner_when_to_retry() -> None:
    echo = EchoPeers(max_peers=1, max_lifetime_s=30)
    try:
        await echo.answer(CHROMIUM_OFFER, owner="user:1")
        with pytest.raises(EchoBusy) as busy:
            await echo.answer(CHROMIUM_OFFER, owner="user:2")
        assert busy.value.code == "echo_busy"
        assert busy.value.status == 429
        assert 1 <= busy.value.retry_after <= 30
    finally:
        await echo.close()


async def test_an_owner_at_their_cap_replaces_their_oldest_peer() -> None:
    echo = EchoPeers(max_peers_per_owner=2)
    try:
        first = await echo.answer(CHROMIUM_OFFER, owner="user:1")
        await echo.answer(CHROMIUM_OFFER, owner="user:1")
        other = await echo.answer(CHROMIUM_OFFER, owner="user:2")
        third = await echo.answer(CHROMIUM_OFFER, owner="user:1")
        assert echo.active == 3
        # The first is gone; the other owner's peer and the newest are still held.
        assert first.peer_id not in echo.peer_ids
        assert {other.peer_id, third.peer_id} <= echo.peer_ids
    finally:
        await echo.close()


async def test_after_close_nothing_is_left_and_offers_are_refused() -> None:
    echo = EchoPeers()
    await echo.answer(CHROMIUM_OFFER, owner="user:1")
    await echo.answer(CHROMIUM_OFFER, owner="user:2")
    await echo.close()
    assert echo.active == 0
    with pytest.raises(EchoBusy):
        await echo.answer(CHROMIUM_OFFER, owner="user:1")


async def test_the_probe_channel_echoes_and_any_other_channel_is_closed(
    echo: EchoPeers, peers: list[RTCPeerConnection]
) -> None:
    client = new_peer_connection()
    peers.append(client)
    probe = client.createDataChannel(PROBE_LABEL, ordered=False, maxRetransmits=0)
    other = client.createDataChannel("chat")
    opened, other_closed = asyncio.Event(), asyncio.Event()
    probe.on("open", opened.set)
    other.on("close", other_closed.set)
    await client.setLocalDescription(await client.createOffer())
    answer = await echo.answer(client.localDescription.sdp, owner="user:1")
    await client.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
    async with asyncio.timeout(TIMEOUT_S):
        await wait_connected(client)
        await opened.wait()
        # A generous grace, as in the device-check tests: on a loaded machine a late reply is
        # not a lost one (the measure ends as soon as every reply is in).
        result = await measure_round_trips(probe, count=10, interval=0.01, grace=5)
        await other_closed.wait()
    assert result.sent == 10 and result.received == 10 and result.loss == 0
    assert result.rtt_median_ms is not None and result.rtt_median_ms > 0


async def test_the_echo_peer_ends_when_the_client_closes(
    echo: EchoPeers, peers: list[RTCPeerConnection]
) -> None:
    client = new_peer_connection()
    peers.append(client)
    client.addTrack(SyntheticVideoTrack())
    await client.setLocalDescription(await client.createOffer())
    answer = await echo.answer(client.localDescription.sdp, owner="user:1")
    await client.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
    async with asyncio.timeout(TIMEOUT_S):
        await wait_connected(client)
    await client.close()
    await until(lambda: echo.active == 0)


async def test_pings_need_an_open_channel(peers: list[RTCPeerConnection]) -> None:
    client = new_peer_connection()
    peers.append(client)
    channel = client.createDataChannel(PROBE_LABEL)
    with pytest.raises(ValueError, match="connecting"):
        await measure_round_trips(channel)
