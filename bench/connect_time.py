"""Time to connected for an aiortc pair: through Liaison's signaling, and directly.

Through Liaison: two ProbeClients (signaling/probe.py) of the same visit, both connected; the
first joins the room, then the clock starts as the second sends ``room:join``. The server
answers with the first as a peer, the second offers, the first answers, both through
``rtc:signal``; the clock stops when both peer connections are ``connected``.

Directly: the same two peer connections (one synthetic video track each, no ICE servers)
exchange offer and answer by function call in this process; the clock starts at
``createOffer``. The difference is what signaling through the server adds.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from aiortc import RTCPeerConnection, RTCSessionDescription

from bench.seed import Room
from signaling.media import SyntheticVideoTrack, new_peer_connection, wait_connected
from signaling.probe import ProbeClient

CONNECT_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class ThroughLiaison:
    """Seconds from the second participant's ``room:join``."""

    joined: float  # its ack came back
    offer_arrived: float  # the first has the offer (its peer connection exists)
    connected: float  # both peer connections are connected


@dataclass(frozen=True)
class ConnectTimes:
    through_liaison: Sequence[ThroughLiaison]
    direct_s: Sequence[float]

    @property
    def through_liaison_s(self) -> list[float]:
        return [t.connected for t in self.through_liaison]

    def stages_ms(self) -> str:
        """Medians of where the time through Liaison goes."""
        joined = median_ms([t.joined for t in self.through_liaison])
        offer = median_ms([t.offer_arrived for t in self.through_liaison])
        return f"join acked {joined:.1f}, offer at the answerer {offer:.1f}"


def median_ms(values: Sequence[float]) -> float:
    return statistics.median(values) * 1000 if values else float("nan")


async def through_liaison(base_url: str, cookie_name: str, room: Room) -> ThroughLiaison:
    first = ProbeClient(base_url, {cookie_name: room.first})
    second = ProbeClient(base_url, {cookie_name: room.second})
    try:
        await first.connect()
        await second.connect()
        await first.join(room.visit_id)
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            started = loop.time()
            await second.join(room.visit_id)
            joined = loop.time()
            # The peer connections appear as the offer is made and as it arrives; the probe
            # has no event for that, and a 1 ms poll is well inside the ~40 ms measured.
            while not (first.links and second.links):  # noqa: ASYNC110
                await asyncio.sleep(0.001)
            offer_arrived = loop.time()
            done = await asyncio.gather(
                *(wait_connected(link.pc) for p in (first, second) for link in p.links.values())
            )
        return ThroughLiaison(joined - started, offer_arrived - started, max(done) - started)
    finally:
        await second.close()
        await first.close()


async def direct() -> float:
    offerer, answerer = new_peer_connection(), new_peer_connection()
    try:
        for pc in (offerer, answerer):
            pc.addTrack(SyntheticVideoTrack())
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            started = loop.time()
            waits = [asyncio.create_task(wait_connected(pc)) for pc in (offerer, answerer)]
            await offerer.setLocalDescription(await offerer.createOffer())
            await answerer.setRemoteDescription(_local(offerer))
            await answerer.setLocalDescription(await answerer.createAnswer())
            await offerer.setRemoteDescription(_local(answerer))
            done = await asyncio.gather(*waits)
        return max(done) - started
    finally:
        await offerer.close()
        await answerer.close()


def _local(pc: RTCPeerConnection) -> RTCSessionDescription:
    description = pc.localDescription
    assert description is not None
    return description


async def connect_times(base_url: str, cookie_name: str, rooms: Sequence[Room]) -> ConnectTimes:
    """One repetition per room, alternating the two ways so that load drifts hit both."""
    liaison: list[ThroughLiaison] = []
    plain: list[float] = []
    for room in rooms:
        liaison.append(await through_liaison(base_url, cookie_name, room))
        plain.append(await direct())
    return ConnectTimes(liaison, plain)
