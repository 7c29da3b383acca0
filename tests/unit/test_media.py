"""signaling.media: synthetic tracks, the frame counter, and two real aiortc peers in-process.

The peers use ``iceServers=[]`` and the machine's interface addresses (FIELD_NOTES); every wait
is bounded by ``asyncio.timeout`` and every peer is closed in ``finally``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import warnings
from typing import Any

import pytest
from aiortc import (
    InvalidStateError,
    MediaStreamError,
    MediaStreamTrack,
    RTCPeerConnection,
    RTCSessionDescription,
)
from av import VideoFrame

from signaling.media import (
    VIDEO_HEIGHT,
    VIDEO_WIDTH,
    FrameCounter,
    PeerConnection,
    SyntheticAudioTrack,
    SyntheticVideoTrack,
    new_peer_connection,
    read_frame_number,
    wait_connected,
)

CONNECT_TIMEOUT_S = 10.0


async def connect(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> None:
    """Offer/answer in-process; aiortc puts every candidate in the descriptions."""
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)


def open_sockets() -> set[str]:
    fds = "/proc/self/fd"
    links = set()
    for fd in os.listdir(fds):
        with contextlib.suppress(OSError):  # the listing's own descriptor is gone by now
            links.add(os.readlink(f"{fds}/{fd}"))
    return {link for link in links if link.startswith("socket:")}


@pytest.mark.parametrize("interrupt", ["close", "cancel"])
async def test_interrupting_candidate_gathering_leaves_no_socket_open(interrupt: str) -> None:
    # Closing the connection, or cancelling whoever awaits the description, at each point of
    # the gathering in turn; a plain RTCPeerConnection leaks sockets at several of them.
    before = open_sockets()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for steps in range(16):
            pc = new_peer_connection()
            pc.addTransceiver("audio")
            pc.addTransceiver("video")
            pc.createDataChannel("probe")
            describing = asyncio.create_task(pc.setLocalDescription(await pc.createOffer()))
            for _ in range(steps):
                await asyncio.sleep(0)
            if interrupt == "cancel":
                describing.cancel()
            await pc.close()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await describing
        gc.collect()
    assert open_sockets() <= before
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


class _FailsWhileGathering(RTCPeerConnection):
    """Stands in for aiortc failing part way through a description (it raises only before its
    first suspension today, where the shield still hands the error to the cancelled caller)."""

    async def setLocalDescription(
        self, sessionDescription: RTCSessionDescription | None = None
    ) -> None:
        await asyncio.sleep(0)
        raise InvalidStateError("RTCPeerConnection is closed")


class _FailingPeer(PeerConnection, _FailsWhileGathering):
    pass


async def test_a_description_failing_after_its_caller_gave_up_is_not_reported_unseen() -> None:
    # The caller is cancelled and the connection never closed: nothing awaits the gathering.
    # Unretrieved, its error would be logged when the task is collected, in whichever test
    # that happens.
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        pc = _FailingPeer()
        caller = asyncio.create_task(pc.setLocalDescription())
        await asyncio.sleep(0)  # the gathering has started
        (gathering,) = pc._describing
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        await asyncio.wait({gathering})  # waits without retrieving its outcome
        del caller, pc, gathering
        gc.collect()
    finally:
        loop.set_exception_handler(previous)
    assert [c["message"] for c in reported] == []


async def test_two_peers_connect_and_the_synthetic_tracks_arrive() -> None:
    sender, receiver = new_peer_connection(), new_peer_connection()
    video, audio = SyntheticVideoTrack(), SyntheticAudioTrack()
    sender.addTrack(video)
    sender.addTrack(audio)
    counters: dict[str, FrameCounter] = {}

    def on_track(track: MediaStreamTrack) -> None:
        counters[track.kind] = FrameCounter(track)
        counters[track.kind].start()

    receiver.on("track", on_track)
    try:
        await connect(sender, receiver)
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await wait_connected(sender)
            await wait_connected(receiver)
            await counters["video"].wait_for(10)
            await counters["audio"].wait_for(10)
        received = counters["video"]
        assert received.last_size == (VIDEO_WIDTH, VIDEO_HEIGHT)
        assert received.first_frame.is_set() and received.first_frame_at is not None
        # The number drawn into the frame survives VP8 and names a frame that was sent.
        assert received.last_number is not None and received.last_number_at is not None
        sent_at = video.sent_at(received.last_number)
        assert sent_at is not None and 0 < received.last_number_at - sent_at < 5
    finally:
        for counter in counters.values():
            await counter.stop()
        await sender.close()
        await receiver.close()


async def test_a_new_peer_connection_gathers_host_candidates_only() -> None:
    pc = new_peer_connection()
    try:
        pc.addTrack(SyntheticAudioTrack())
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await pc.setLocalDescription(await pc.createOffer())
        candidates = [
            line for line in pc.localDescription.sdp.splitlines() if line.startswith("a=candidate")
        ]
        assert candidates
        assert all(" typ host" in line for line in candidates)
    finally:
        await pc.close()


@pytest.mark.parametrize("number", [0, 1, 0b1010_0101_1100_0011, 65_535])
async def test_the_frame_number_reads_back(number: int) -> None:
    track = SyntheticVideoTrack()
    track.frames_sent = number  # the next frame drawn is this one
    try:
        frame = await track.recv()
    finally:
        track.stop()
    assert read_frame_number(frame) == number


def test_a_picture_without_the_guard_blocks_has_no_number() -> None:
    frame = VideoFrame(VIDEO_WIDTH, VIDEO_HEIGHT, "yuv420p")
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    assert read_frame_number(frame) is None


async def test_the_counter_counts_a_local_track_and_notices_its_end() -> None:
    track = SyntheticVideoTrack(width=320, height=240, fps=60)
    async with FrameCounter(track) as counter:
        async with asyncio.timeout(5):
            await counter.wait_for(3)
            track.stop()
            await counter.ended.wait()
        with pytest.raises(MediaStreamError):
            await counter.wait_for(counter.frames + 1)
    assert counter.last_size == (320, 240)
    assert counter.last_number == counter.frames - 1


async def test_audio_frames_are_20_ms_at_48_khz() -> None:
    track = SyntheticAudioTrack()
    try:
        frames = [await track.recv() for _ in range(3)]
    finally:
        track.stop()
    assert [f.samples for f in frames] == [960, 960, 960]
    assert [f.pts for f in frames] == [0, 960, 1920]
    assert frames[0].sample_rate == 48_000
    # A tone: not every sample is zero.
    assert any(bytes(frames[1].planes[0]))


async def test_silence_is_silent() -> None:
    track = SyntheticAudioTrack(frequency=None)
    try:
        frame = await track.recv()
    finally:
        track.stop()
    assert not any(bytes(frame.planes[0]))


async def test_waiting_for_a_closed_connection_raises() -> None:
    pc = new_peer_connection()
    await pc.close()
    with pytest.raises(ConnectionError, match="closed"):
        async with asyncio.timeout(1):
            await wait_connected(pc)


@pytest.mark.parametrize(("width", "height", "fps"), [(20, 480, 15), (641, 480, 15), (640, 480, 0)])
def test_it_refuses_unusable_video_parameters(width: int, height: int, fps: int) -> None:
    with pytest.raises(ValueError):
        SyntheticVideoTrack(width=width, height=height, fps=fps)
