"""The server's echo peer for the patient's device and network check, and its client side.

A browser (or an aiortc client) sends an SDP offer; :meth:`EchoPeers.answer` makes a
server-side ``RTCPeerConnection`` that

* sends back every audio and video track it receives, on the same transceiver, so the patient
  sees and hears themselves through the network rather than from the local camera;
* answers a data channel labelled ``"probe"`` by echoing every message at once. The client
  opens it unordered with ``maxRetransmits=0`` (lost messages stay lost), sends numbered pings
  and counts the replies: it measures round-trip time and loss itself, so nothing here keeps
  per-ping state.

The aiortc client side is here too: :func:`measure_round_trips` runs the pings, and
:func:`run_echo_check` does the whole check (synthetic camera and microphone, offer, answer,
echoed frames, pings) over any offer/answer exchange, for tests, ``liaison probe`` and benchmarks.

aiortc gathers its candidates before it produces the answer, so the answer is complete and no
trickle ICE is needed. Browsers that hide host addresses behind mDNS names make the answer wait
for those names to resolve (aioice gives up after 1 s each, all in parallel).

Each peer ends after ``max_lifetime_s`` or when its connection fails or closes; at most
``max_peers`` live at once. Every peer is owned by one task the service holds, and
:meth:`EchoPeers.close` ends them all and waits for them (app shutdown).

Errors (client-safe ``code`` in brackets)::

    ValidationFailed (422)
    └── InvalidSdp      [invalid_sdp]   the offer cannot be parsed or cannot be answered
    TooManyRequests (429)
    └── EchoBusy        [echo_busy]     every echo slot is taken, or the service is stopping
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import statistics
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from aiortc import (
    MediaStreamTrack,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.exceptions import InvalidAccessError, OperationError
from aiortc.sdp import DIRECTIONS, SessionDescription

from server.errors import TooManyRequests, ValidationFailed
from signaling.media import (
    FrameCounter,
    SyntheticAudioTrack,
    SyntheticVideoTrack,
    new_peer_connection,
    wait_connected,
)

log = logging.getLogger("liaison.echo")

PROBE_LABEL: Final = "probe"
MAX_SDP_BYTES: Final = 20_000
# A device check needs one audio, one video and one data section. A few spare sections let a
# browser offer screen share or a second camera; many more would only cost the server sockets
# (without BUNDLE every section gets its own ICE transport).
MAX_MEDIA_SECTIONS: Final = 6
# Pings are a few bytes. Anything much larger is not a probe and is not echoed.
MAX_PROBE_MESSAGE_BYTES: Final = 1024
_MEDIA_KINDS: Final = frozenset({"audio", "video", "application"})


class InvalidSdp(ValidationFailed):
    default_code = "invalid_sdp"


class EchoBusy(TooManyRequests):
    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after, code="echo_busy")


@dataclass(frozen=True, slots=True)
class EchoAnswer:
    peer_id: str
    sdp: str


@dataclass(eq=False)
class _EchoPeer:
    id: str
    owner: str
    pc: RTCPeerConnection
    expires_at: float  # loop time
    done: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


def check_offer(sdp: str) -> SessionDescription:
    """Parse an offer and refuse what aiortc would choke on or what no device check needs.

    aiortc's parser signals bad input with whatever the failing line raises (``ValueError``,
    ``KeyError``, ``IndexError``, ``AttributeError``, ``AssertionError``, ``StopIteration``),
    none of it documented, so any exception from it counts as malformed SDP.
    """
    if len(sdp.encode()) > MAX_SDP_BYTES:
        raise InvalidSdp(f"The offer is larger than {MAX_SDP_BYTES} bytes.")
    try:
        description = SessionDescription.parse(sdp)
    except Exception as exc:
        raise InvalidSdp(
            "The offer is not valid SDP.", detail=f"{type(exc).__name__}: {exc}"
        ) from None
    if not description.media:
        raise InvalidSdp("The offer has no media or data channel.")
    if len(description.media) > MAX_MEDIA_SECTIONS:
        raise InvalidSdp(f"The offer has more than {MAX_MEDIA_SECTIONS} media sections.")
    mids = [media.rtp.muxId for media in description.media]
    # aiortc matches sections to transports by mid; a missing, repeated or unknown one makes
    # it fail later, inside a task of its own, instead of refusing the offer.
    if not all(mids) or len(set(mids)) != len(mids):
        raise InvalidSdp("Every media section needs a mid of its own.")
    if any(str(item) not in mids for group in description.group for item in group.items):
        raise InvalidSdp("The offer groups a mid it does not have.")
    for media in description.media:
        if media.kind not in _MEDIA_KINDS:
            raise InvalidSdp(f"The offer has an unsupported media kind ({media.kind[:16]!r}).")
        if media.kind != "application" and media.direction not in DIRECTIONS:
            raise InvalidSdp("Every audio and video section needs a direction (a=sendrecv).")
        if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
            raise InvalidSdp("The offer lacks ICE credentials (ice-ufrag, ice-pwd).")
        if media.dtls is None or not media.dtls.fingerprints:
            raise InvalidSdp("The offer lacks a DTLS fingerprint.")
        if media.kind != "application" and not media.rtcp_mux:
            raise InvalidSdp("The offer must multiplex RTCP (a=rtcp-mux).")
    return description


class EchoPeers:
    """Server-side echo peers: at most ``max_peers`` at once, each for ``max_lifetime_s``."""

    def __init__(
        self,
        *,
        max_peers: int = 20,
        max_peers_per_owner: int = 2,
        max_lifetime_s: float = 60.0,
        ice_servers: Iterable[RTCIceServer] | None = None,
    ) -> None:
        if max_peers < 1 or max_peers_per_owner < 1:
            raise ValueError("max_peers and max_peers_per_owner must be at least 1")
        if max_lifetime_s <= 0:
            raise ValueError("max_lifetime_s must be positive")
        self.max_peers = max_peers
        self.max_peers_per_owner = max_peers_per_owner
        self.max_lifetime_s = max_lifetime_s
        self.ice_servers = list(ice_servers or [])
        self._peers: dict[str, _EchoPeer] = {}
        self._closing = False

    @property
    def active(self) -> int:
        """Peers holding a slot: being negotiated, connecting or connected."""
        return len(self._peers)

    @property
    def peer_ids(self) -> frozenset[str]:
        return frozenset(self._peers)

    async def answer(self, offer_sdp: str, *, owner: str) -> EchoAnswer:
        """Answer an offer with a new echo peer. Raises ``InvalidSdp`` or ``EchoBusy``.

        ``owner`` names who asked (a user, later a visit link). A new offer ends the owner's
        oldest peer when they already hold ``max_peers_per_owner``, or hold any while the
        server is full: one account cannot take every slot, and a patient who reloads the
        page is never locked out by the peer the old page left behind.
        """
        check_offer(offer_sdp)
        await self._evict_oldest_of(owner)
        loop = asyncio.get_running_loop()
        if self._closing:
            raise EchoBusy("The device check is restarting. Try again shortly.", retry_after=5)
        if len(self._peers) >= self.max_peers:
            soonest = min(peer.expires_at for peer in self._peers.values())
            raise EchoBusy(
                "The network check is busy. Try again in a moment.",
                retry_after=max(1, math.ceil(soonest - loop.time())),
            )
        # The slot is taken and the supervising task started before the first await, so
        # neither a burst of offers nor a shutdown during negotiation can miss this peer.
        peer = _EchoPeer(
            id=secrets.token_urlsafe(12),
            owner=owner,
            pc=new_peer_connection(self.ice_servers),
            expires_at=loop.time() + self.max_lifetime_s,
        )
        self._peers[peer.id] = peer
        peer.task = asyncio.create_task(self._supervise(peer), name=f"echo-peer-{peer.id}")
        try:
            answer_sdp = await self._negotiate(peer, offer_sdp)
        except BaseException as exc:
            # Shutdown or a newer offer from the same owner may have ended this peer while it
            # negotiated; aiortc then fails with whatever its closed connection raises.
            superseded = peer.done.is_set() and type(exc) is not InvalidSdp
            peer.done.set()
            if superseded and isinstance(exc, Exception):
                raise _superseded() from None
            raise
        if peer.done.is_set():
            raise _superseded()
        log.info("echo peer answered", extra={"peer_id": peer.id, "active": len(self._peers)})
        return EchoAnswer(peer_id=peer.id, sdp=answer_sdp)

    async def close(self) -> None:
        """End every peer and wait until each is closed. Later offers get ``EchoBusy``."""
        self._closing = True
        tasks = [peer.task for peer in self._peers.values() if peer.task is not None]
        for peer in self._peers.values():
            peer.done.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _evict_oldest_of(self, owner: str) -> None:
        # Dicts keep insertion order, so an owner's peers come oldest first.
        mine = [peer for peer in self._peers.values() if peer.owner == owner]
        excess = len(mine) - self.max_peers_per_owner + 1
        if len(self._peers) >= self.max_peers:
            # A full server still lets an owner replace their own peer.
            excess = max(excess, 1)
        evicted = mine[: max(0, excess)]
        for peer in evicted:
            peer.done.set()
        await asyncio.gather(
            *(peer.task for peer in evicted if peer.task is not None), return_exceptions=True
        )

    async def _negotiate(self, peer: _EchoPeer, offer_sdp: str) -> str:
        pc = peer.pc

        def on_state_change() -> None:
            if pc.connectionState in ("failed", "closed"):
                peer.done.set()

        def on_datachannel(channel: RTCDataChannel) -> None:
            if channel.label == PROBE_LABEL:
                channel.on("message", lambda message: _echo(channel, message))
            else:
                channel.close()

        pc.on("connectionstatechange", on_state_change)
        pc.on("datachannel", on_datachannel)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        except (ValueError, OperationError, InvalidAccessError) as exc:
            # e.g. no codec in common with aiortc (VP8, H.264, Opus, G.722, PCMU/PCMA)
            raise InvalidSdp(
                "The offer cannot be answered.", detail=f"{type(exc).__name__}: {exc}"
            ) from None
        # Echo each incoming track on its own transceiver: addTrack() would pick the first
        # free transceiver of the same kind, which is the wrong one when a recvonly section
        # comes before a sendrecv one.
        for transceiver in pc.getTransceivers():
            track = transceiver.receiver.track
            if track is not None:
                transceiver.sender.replaceTrack(track)
                transceiver.direction = "sendrecv"
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp

    async def _supervise(self, peer: _EchoPeer) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        reason = "ended"
        try:
            async with asyncio.timeout_at(peer.expires_at):
                await peer.done.wait()
        except TimeoutError:
            reason = "lifetime reached"
        finally:
            state = peer.pc.connectionState
            await peer.pc.close()
            self._peers.pop(peer.id, None)
            log.info(
                "echo peer closed",
                extra={
                    "peer_id": peer.id,
                    "reason": reason,
                    "state": state,
                    "lived_s": round(loop.time() - started, 1),
                },
            )


def _superseded() -> EchoBusy:
    return EchoBusy("This network check was replaced or stopped. Try again.", retry_after=1)


def _echo(channel: RTCDataChannel, message: str | bytes) -> None:
    size = len(message.encode() if isinstance(message, str) else message)
    if size <= MAX_PROBE_MESSAGE_BYTES and channel.readyState == "open":
        channel.send(message)


@dataclass(frozen=True, slots=True)
class RoundTrips:
    """What a probe run measured: pings sent, replies received and their round trips."""

    sent: int
    received: int
    rtts_ms: tuple[float, ...]

    @property
    def loss(self) -> float:
        return 1 - self.received / self.sent if self.sent else 0.0

    @property
    def rtt_median_ms(self) -> float | None:
        return statistics.median(self.rtts_ms) if self.rtts_ms else None

    @property
    def rtt_max_ms(self) -> float | None:
        return max(self.rtts_ms) if self.rtts_ms else None


async def measure_round_trips(
    channel: RTCDataChannel, *, count: int = 20, interval: float = 0.02, grace: float = 1.0
) -> RoundTrips:
    """Send ``count`` numbered pings on an open probe channel and time the echoes.

    A ping is its sequence number in decimal. Replies still missing ``grace`` seconds after
    the last ping count as lost; a duplicate or unknown reply is ignored. Open the channel
    with ``ordered=False, maxRetransmits=0`` so that loss shows instead of being repaired.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    if channel.readyState != "open":
        raise ValueError(f"the probe channel is {channel.readyState}, not open")
    loop = asyncio.get_running_loop()
    sent_at: dict[int, float] = {}
    rtts: dict[int, float] = {}
    all_back = asyncio.Event()

    def on_message(message: str | bytes) -> None:
        now = loop.time()
        with contextlib.suppress(ValueError):
            seq = int(message)
            if seq in sent_at and seq not in rtts:
                rtts[seq] = (now - sent_at[seq]) * 1000
                if len(rtts) == count:
                    all_back.set()

    channel.on("message", on_message)
    try:
        for seq in range(count):
            if seq:
                await asyncio.sleep(interval)
            sent_at[seq] = loop.time()
            channel.send(str(seq))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await all_back.wait()
    finally:
        # A channel that closed meanwhile has dropped its listeners already.
        with contextlib.suppress(KeyError):
            channel.remove_listener("message", on_message)
    return RoundTrips(sent=count, received=len(rtts), rtts_ms=tuple(rtts[s] for s in sorted(rtts)))


# Sends an offer's SDP to an echo service and returns the answer's SDP (e.g. an HTTP POST).
Exchange = Callable[[str], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class EchoCheck:
    """One device check against an echo peer, timed from just before the offer was made."""

    connected_s: float
    first_frame_s: float | None
    frames: int
    # Send to echoed arrival of one numbered synthetic frame: two encodes, two decodes, and
    # the network both ways.
    video_round_trip_ms: float | None
    round_trips: RoundTrips


async def run_echo_check(
    exchange: Exchange,
    *,
    ice_servers: Iterable[RTCIceServer] | None = None,
    media: bool = True,
    frames: int = 10,
    pings: int = 20,
    ping_interval: float = 0.02,
    ping_grace: float = 1.0,
) -> EchoCheck:
    """Connect a synthetic camera and microphone to an echo peer, count echoed frames, ping.

    Waits for ``frames`` echoed video frames and then sends ``pings`` probes; a reply later
    than ``ping_grace`` seconds after the last ping counts as lost. With
    ``media=False`` only the probe channel is opened (a network-only check; ``frames`` must
    be 0). Bound it with ``asyncio.timeout``; the peer connection is closed on every way out.
    """
    if not media and frames:
        raise ValueError("frames need media")
    loop = asyncio.get_running_loop()
    pc = new_peer_connection(ice_servers)
    video = SyntheticVideoTrack()
    counters: list[FrameCounter] = []
    echoed_video: asyncio.Future[FrameCounter] = loop.create_future()

    def on_track(track: MediaStreamTrack) -> None:
        counter = FrameCounter(track)
        counters.append(counter)
        counter.start()
        if track.kind == "video" and not echoed_video.done():
            echoed_video.set_result(counter)

    pc.on("track", on_track)
    try:
        if media:
            pc.addTrack(video)
            pc.addTrack(SyntheticAudioTrack())
        channel = pc.createDataChannel(PROBE_LABEL, ordered=False, maxRetransmits=0)
        opened = asyncio.Event()
        channel.on("open", opened.set)
        started = loop.time()
        await pc.setLocalDescription(await pc.createOffer())
        answer_sdp = await exchange(pc.localDescription.sdp)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
        connected_at = await wait_connected(pc)
        echoed = await echoed_video if frames else None
        if echoed is not None:
            await echoed.wait_for(frames)
        await opened.wait()
        round_trips = await measure_round_trips(
            channel, count=pings, interval=ping_interval, grace=ping_grace
        )
        return EchoCheck(
            connected_s=connected_at - started,
            first_frame_s=_since(started, echoed.first_frame_at if echoed else None),
            frames=echoed.frames if echoed else 0,
            video_round_trip_ms=_video_round_trip_ms(video, echoed),
            round_trips=round_trips,
        )
    finally:
        for counter in counters:
            await counter.stop()
        await pc.close()


def _since(start: float, at: float | None) -> float | None:
    return None if at is None else at - start


def _video_round_trip_ms(video: SyntheticVideoTrack, echoed: FrameCounter | None) -> float | None:
    if echoed is None or echoed.last_number is None or echoed.last_number_at is None:
        return None
    sent_at = video.sent_at(echoed.last_number)
    return None if sent_at is None else (echoed.last_number_at - sent_at) * 1000
