"""Small aiortc pieces shared by the echo peer, ``liaison probe``, tests and benchmarks.

* :func:`new_peer_connection`: a :class:`PeerConnection` whose ICE server list defaults to
  *empty*. aiortc's own default asks a public STUN server, which on a closed network only
  delays candidate gathering; callers that need STUN or TURN pass the list explicitly.
* :class:`PeerConnection`: an ``RTCPeerConnection`` that can be closed or abandoned at any
  moment without leaking the UDP sockets of a candidate gathering still under way.
* :class:`SyntheticVideoTrack`: 640x480 frames at a steady rate, drawn without numpy. Each
  frame carries its number in a coarse black-and-white band at the top (see
  :func:`read_frame_number`), which survives VP8/H.264 compression, so a receiver can tell
  which frame arrived and a sender can time a frame's round trip through an echo.
* :class:`SyntheticAudioTrack`: 48 kHz mono, 20 ms frames, a sine tone or silence.
* :class:`FrameCounter`: consumes a remote track, counts frames, and records when the first
  one arrived.
* :func:`wait_connected`: waits for a peer connection to reach ``connected``.

Times are the event loop's monotonic clock (``loop.time()``), so every figure taken here can be
compared with any other taken here.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import math
from array import array
from collections.abc import Iterable
from typing import Final

from aiortc import (
    MediaStreamError,
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from av import AudioFrame, VideoFrame

VIDEO_WIDTH: Final = 640
VIDEO_HEIGHT: Final = 480
VIDEO_FPS: Final = 15
VIDEO_CLOCK_RATE: Final = 90_000
AUDIO_SAMPLE_RATE: Final = 48_000
AUDIO_PTIME: Final = 0.020

# The frame-number band: _BLOCKS blocks across the top _BAND_ROWS rows, each fully dark or
# fully bright. Two guard blocks at each end (bright-dark ... dark-bright) tell a synthetic
# frame from any other picture, and the 16 blocks between them are the frame number,
# most significant bit first. Blocks this large keep their level through lossy coding.
_BLOCKS: Final = 20
_GUARD_HEAD: Final = (1, 0)
_GUARD_TAIL: Final = (0, 1)
_NUMBER_BITS: Final = _BLOCKS - len(_GUARD_HEAD) - len(_GUARD_TAIL)
_BAND_ROWS: Final = 32
_DARK: Final = 16  # video-range luma black and white (BT.601)
_BRIGHT: Final = 235
_BAR_WIDTH: Final = 32
_BAR_STEP: Final = 8  # pixels the bar moves per frame, so motion is visible to an encoder
# How many send times a video track remembers, for timing echoed frames.
_SENT_HISTORY: Final = 512


class PeerConnection(RTCPeerConnection):
    """An ``RTCPeerConnection`` whose candidate gathering is never cut short.

    ``setLocalDescription`` gathers candidates: aioice opens a UDP socket per host address and
    records them on its connection only once all are open. A gathering that is cancelled half
    way, or that is still running when the connection is closed, leaves sockets that nothing
    closes until the garbage collector finds them. So the gathering runs in a task of its own
    that a cancelled caller does not cancel, and :meth:`close` waits for it first (host
    candidates take milliseconds; with STUN or TURN, aioice bounds it at 5 s). When the caller
    was cancelled and nobody closes the connection, nothing awaits the gathering: its failure is
    retrieved by the task itself, so that it is never reported as an exception nobody saw.
    """

    def __init__(self, configuration: RTCConfiguration | None = None) -> None:
        super().__init__(configuration)
        self._describing: set[asyncio.Task[None]] = set()

    async def setLocalDescription(
        self, sessionDescription: RTCSessionDescription | None = None
    ) -> None:
        step = asyncio.create_task(super().setLocalDescription(sessionDescription))
        self._describing.add(step)
        step.add_done_callback(self._describing.discard)
        step.add_done_callback(_retrieve)
        await asyncio.shield(step)

    async def close(self) -> None:
        if self._describing:
            await asyncio.wait(self._describing)
        await super().close()


def _retrieve(task: asyncio.Task[None]) -> None:
    # The shield hands the failure to a caller still waiting; one who was cancelled has gone.
    if not task.cancelled():
        task.exception()


def new_peer_connection(ice_servers: Iterable[RTCIceServer] | None = None) -> PeerConnection:
    """A peer connection using exactly ``ice_servers`` (none by default: host candidates only)."""
    return PeerConnection(RTCConfiguration(iceServers=list(ice_servers or [])))


async def wait_connected(pc: RTCPeerConnection) -> float:
    """Wait until ``pc`` is connected; return the loop time when it was seen connected.

    Raises ``ConnectionError`` if it fails or closes first. Bound the wait with
    ``asyncio.timeout``.
    """
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()

    def on_change() -> None:
        changed.set()

    pc.on("connectionstatechange", on_change)
    try:
        while True:
            state = pc.connectionState
            if state == "connected":
                return loop.time()
            if state in ("failed", "closed"):
                raise ConnectionError(f"peer connection {state}")
            changed.clear()
            await changed.wait()
    finally:
        # A closed connection has already dropped every listener.
        with contextlib.suppress(KeyError):
            pc.remove_listener("connectionstatechange", on_change)


class SyntheticVideoTrack(MediaStreamTrack):
    """Numbered yuv420p frames with a moving bar, paced at ``fps`` from the first ``recv``."""

    kind = "video"

    def __init__(
        self, *, width: int = VIDEO_WIDTH, height: int = VIDEO_HEIGHT, fps: int = VIDEO_FPS
    ) -> None:
        super().__init__()
        if width < _BLOCKS * 2 or height < _BAND_ROWS * 2 or width % 2 or height % 2:
            raise ValueError(f"frame size {width}x{height} is too small or odd")
        if not 1 <= fps <= 60:
            raise ValueError("fps must be 1-60")
        self.width = width
        self.height = height
        self.fps = fps
        self.frames_sent = 0
        self._start: float | None = None
        self._sent_at: dict[int, float] = {}

    def sent_at(self, number: int) -> float | None:
        """The loop time frame ``number`` was handed to the encoder, if still remembered."""
        return self._sent_at.get(number)

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        index = self.frames_sent
        if self._start is None:
            self._start = loop.time()
        else:
            # Pace against the start time, not the previous frame, so delays do not add up.
            delay = self._start + index / self.fps - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        frame = self._draw(index)
        frame.pts = index * VIDEO_CLOCK_RATE // self.fps
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK_RATE)
        self.frames_sent = index + 1
        number = index % (1 << _NUMBER_BITS)
        self._sent_at[number] = loop.time()
        self._sent_at.pop((number - _SENT_HISTORY) % (1 << _NUMBER_BITS), None)
        return frame

    def _draw(self, index: int) -> VideoFrame:
        frame = VideoFrame(self.width, self.height, "yuv420p")
        luma, cb, cr = frame.planes
        stride = luma.line_size
        bits = (
            *_GUARD_HEAD,
            *((index >> shift) & 1 for shift in reversed(range(_NUMBER_BITS))),
            *_GUARD_TAIL,
        )
        block = self.width // _BLOCKS
        band = bytearray([_DARK]) * stride
        for position, bit in enumerate(bits):
            if bit:
                band[position * block : (position + 1) * block] = bytes([_BRIGHT]) * block
        body = bytearray([_DARK + 48]) * stride
        bar = (index * _BAR_STEP) % max(1, self.width - _BAR_WIDTH)
        body[bar : bar + _BAR_WIDTH] = bytes([_BRIGHT]) * _BAR_WIDTH
        luma.update(bytes(band) * _BAND_ROWS + bytes(body) * (luma.height - _BAND_ROWS))
        for chroma in (cb, cr):
            chroma.update(bytes([128]) * chroma.buffer_size)  # no colour
        return frame


def read_frame_number(frame: VideoFrame) -> int | None:
    """The number drawn by :class:`SyntheticVideoTrack`, or None for any other picture."""
    if frame.format.name != "yuv420p" or frame.width < _BLOCKS * 2 or frame.height < _BAND_ROWS:
        return None
    luma = frame.planes[0]
    row = memoryview(luma)[(_BAND_ROWS // 2) * luma.line_size :]
    block = frame.width // _BLOCKS
    bits = [
        1 if row[i * block + block // 2] > (_DARK + _BRIGHT) // 2 else 0 for i in range(_BLOCKS)
    ]
    head, tail = len(_GUARD_HEAD), len(_GUARD_TAIL)
    if tuple(bits[:head]) != _GUARD_HEAD or tuple(bits[-tail:]) != _GUARD_TAIL:
        return None
    number = 0
    for bit in bits[head:-tail]:
        number = number << 1 | bit
    return number


class SyntheticAudioTrack(MediaStreamTrack):
    """48 kHz mono s16 in 20 ms frames: a sine tone at ``frequency`` Hz, or silence if None."""

    kind = "audio"

    def __init__(self, *, frequency: int | None = 440, amplitude: float = 0.2) -> None:
        super().__init__()
        if frequency is not None and not 1 <= frequency < AUDIO_SAMPLE_RATE // 2:
            raise ValueError(f"frequency must be 1-{AUDIO_SAMPLE_RATE // 2 - 1} Hz")
        if not 0 <= amplitude <= 1:
            raise ValueError("amplitude must be 0-1")
        self.frames_sent = 0
        self._start: float | None = None
        self._samples_per_frame = int(AUDIO_SAMPLE_RATE * AUDIO_PTIME)
        # One second of signal: a whole number of periods for an integer frequency, so slicing
        # it round and round never clicks. Built once; each frame is then a slice.
        self._second = array("h", bytes(2 * AUDIO_SAMPLE_RATE))
        if frequency is not None:
            level = int(amplitude * 32767)
            step = 2 * math.pi * frequency / AUDIO_SAMPLE_RATE
            self._second = array(
                "h", (int(level * math.sin(step * n)) for n in range(AUDIO_SAMPLE_RATE))
            )

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        index = self.frames_sent
        if self._start is None:
            self._start = loop.time()
        else:
            delay = self._start + index * AUDIO_PTIME - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        count = self._samples_per_frame
        offset = (index * count) % AUDIO_SAMPLE_RATE
        frame = AudioFrame(format="s16", layout="mono", samples=count)
        frame.planes[0].update(self._second[offset : offset + count].tobytes())
        frame.pts = index * count
        frame.sample_rate = AUDIO_SAMPLE_RATE
        frame.time_base = fractions.Fraction(1, AUDIO_SAMPLE_RATE)
        self.frames_sent = index + 1
        return frame


class FrameCounter:
    """Reads a (remote) track until it ends, counting frames and timing the first.

    ``start()`` launches the reading task and ``stop()`` cancels and awaits it; use it as an
    async context manager to get both. For synthetic video, ``last_number`` is the number of
    the latest frame (see :func:`read_frame_number`) and ``last_number_at`` when it arrived.
    """

    def __init__(self, track: MediaStreamTrack) -> None:
        self.track = track
        self.frames = 0
        self.first_frame_at: float | None = None
        self.first_frame = asyncio.Event()
        self.ended = asyncio.Event()
        self.last_size: tuple[int, int] | None = None
        self.last_number: int | None = None
        self.last_number_at: float | None = None
        self._progress = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._consume(), name=f"frame-counter-{self.track.id}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> FrameCounter:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def wait_for(self, frames: int) -> None:
        """Wait until at least ``frames`` frames have arrived; bound it with ``asyncio.timeout``.

        Raises ``MediaStreamError`` if the track ends first.
        """
        while self.frames < frames:
            if self.ended.is_set():
                raise MediaStreamError(f"track ended after {self.frames} frames")
            self._progress.clear()
            await self._progress.wait()

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    frame = await self.track.recv()
                except MediaStreamError:
                    return
                now = loop.time()
                self.frames += 1
                if self.first_frame_at is None:
                    self.first_frame_at = now
                    self.first_frame.set()
                if isinstance(frame, VideoFrame):
                    self.last_size = (frame.width, frame.height)
                    number = read_frame_number(frame)
                    if number is not None:
                        self.last_number, self.last_number_at = number, now
                self._progress.set()
        finally:
            self.ended.set()
            self._progress.set()
