"""A headless participant that joins a visit through Liaison's signaling, as a browser does.

Used by `liaison probe`, the integration tests and the benchmarks. It speaks the `/rtc`
protocol over a real socket.io connection (authenticated by the same cookies a browser holds),
and carries real media with aiortc: a synthetic video track out, a frame counter on every
track in.

Negotiation follows the mesh rule the web client uses: whoever joins the call offers to every
peer already in it (the `peers` of `room:joined`); the others answer. A fresh client has no
link to anyone who is `away` in that answer (they offer when they come back), so it only
records who they are. aiortc gathers all its
candidates before a description is set, so descriptions carry their candidates and no
trickle is needed; candidates that a browser trickles are added as they come.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

import socketio
from aiortc import RTCIceCandidate, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

from signaling import events as ev
from signaling.media import (
    FrameCounter,
    SyntheticAudioTrack,
    SyntheticVideoTrack,
    new_peer_connection,
)

log = logging.getLogger("liaison.probe")


@dataclass
class PeerLink:
    conn_id: str
    pc: RTCPeerConnection
    counters: list[FrameCounter] = field(default_factory=list)


class ProbeError(Exception):
    """The server refused a probe's request; `code` is the server's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class ProbeClient:
    def __init__(
        self,
        base_url: str,
        cookies: dict[str, str],
        *,
        send_video: bool = True,
        send_audio: bool = False,
        use_ice_servers: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.cookies = cookies
        self.send_video = send_video
        self.send_audio = send_audio
        self.use_ice_servers = use_ice_servers
        self.sio = socketio.AsyncClient(reconnection=False)
        self.links: dict[str, PeerLink] = {}
        self.joined = asyncio.Event()
        self.waiting = asyncio.Event()
        self.ended = asyncio.Event()
        self.removed: str | None = None
        self.lobby: list[dict[str, Any]] = []
        self.lobby_changed = asyncio.Event()
        self.chat: list[dict[str, Any]] = []
        self.chat_received = asyncio.Event()
        self.peer_left = asyncio.Event()
        self.left: list[dict[str, Any]] = []  # every peer:left payload, in order
        self.track_arrived = asyncio.Event()
        self.ice_servers: list[RTCIceServer] = []
        self.you: dict[str, Any] = {}
        # From the latest room:joined: connected now, and dropped but keeping their seat.
        self.peers: list[dict[str, Any]] = []
        self.away: list[dict[str, Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._register()

    # --- connection ----------------------------------------------------------------------------

    async def connect(self) -> None:
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        await self.sio.connect(
            self.base_url,
            headers={"Cookie": cookie, "Origin": self.base_url},
            namespaces=[ev.NAMESPACE],
            transports=["websocket"],
            socketio_path="/socket.io",
            wait_timeout=10,
        )

    @property
    def conn_id(self) -> str:
        sid = self.sio.get_sid(ev.NAMESPACE)
        assert isinstance(sid, str)
        return sid

    async def request(
        self,
        event: str,
        data: dict[str, Any] | None = None,
        timeout: float = 10,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        """Send an event and return its ack; raise ProbeError when the server refuses."""
        ack: dict[str, Any] = await self.sio.call(
            event, data or {}, namespace=ev.NAMESPACE, timeout=timeout
        )
        if not ack.get("ok"):
            error = ack.get("error", {})
            raise ProbeError(error.get("code", "unknown"), error.get("message", ""))
        return ack

    async def join(self, visit_id: int) -> dict[str, Any]:
        return await self.request(ev.ROOM_JOIN, {"visit_id": visit_id})

    async def admit(self, participant_id: str) -> dict[str, Any]:
        return await self.request(ev.LOBBY_ADMIT, {"participant_id": participant_id})

    async def send_chat(self, text: str) -> dict[str, Any]:
        return await self.request(ev.CHAT_MESSAGE, {"text": text})

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for link in list(self.links.values()):
            await self._close_link(link)
        self.links.clear()
        if self.sio.connected:
            await self.sio.disconnect()
        http = self.sio.eio.http  # left open by a refused connect
        if http is not None and not http.closed:
            await http.close()

    async def wait_media(self, frames: int = 5) -> None:
        """Wait until every peer has sent at least `frames` video frames."""
        while not self.links or not all(link.counters for link in self.links.values()):
            self.track_arrived.clear()
            await self.track_arrived.wait()
        for link in self.links.values():
            for counter in link.counters:
                await counter.wait_for(frames)

    # --- event handlers ------------------------------------------------------------------------

    def _register(self) -> None:
        ns = ev.NAMESPACE
        self.sio.on(ev.ROOM_JOINED, self._on_joined, namespace=ns)
        self.sio.on(ev.ROOM_WAITING, self._on_waiting, namespace=ns)
        self.sio.on(ev.LOBBY_UPDATE, self._on_lobby, namespace=ns)
        self.sio.on(ev.RTC_SIGNAL, self._on_signal, namespace=ns)
        self.sio.on(ev.PEER_LEFT, self._on_peer_left, namespace=ns)
        self.sio.on(ev.VISIT_ENDED, self._on_ended, namespace=ns)
        self.sio.on(ev.ROOM_REMOVED, self._on_removed, namespace=ns)
        self.sio.on(ev.CHAT_MESSAGE, self._on_chat, namespace=ns)

    async def _on_joined(self, data: dict[str, Any]) -> None:
        self.you = data["you"]
        self.peers = data["peers"]
        self.away = data.get("away", [])
        if self.use_ice_servers:
            self.ice_servers = [RTCIceServer(**s) for s in data.get("ice_servers", [])]
        self.waiting.clear()
        self.joined.set()
        for peer in data["peers"]:
            self._spawn(self._offer(peer["conn_id"]))

    async def _on_waiting(self, data: dict[str, Any]) -> None:
        self.joined.clear()
        self.waiting.set()

    async def _on_lobby(self, data: dict[str, Any]) -> None:
        self.lobby = data["waiting"]
        self.lobby_changed.set()

    async def _on_peer_left(self, data: dict[str, Any]) -> None:
        self.left.append(data)
        # No conn_id: someone away whose seat ended; their link went when they dropped.
        link = self.links.pop(data["conn_id"], None) if data["conn_id"] else None
        if link is not None:
            await self._close_link(link)
        self.peer_left.set()

    async def _on_ended(self, data: dict[str, Any]) -> None:
        self.ended.set()

    async def _on_removed(self, data: dict[str, Any]) -> None:
        self.removed = data["reason"]

    async def _on_chat(self, data: dict[str, Any]) -> None:
        self.chat.append(data)
        self.chat_received.set()

    async def _on_signal(self, data: dict[str, Any]) -> None:
        sender = data["from"]
        if "description" in data:
            description = RTCSessionDescription(**data["description"])
            link = self.links.get(sender) or self._new_link(sender)
            await link.pc.setRemoteDescription(description)
            if description.type == "offer":
                await link.pc.setLocalDescription(await link.pc.createAnswer())
                await self._send_description(sender, link.pc)
        elif "candidate" in data and sender in self.links:
            c = data["candidate"]
            if c.get("candidate"):
                candidate: RTCIceCandidate = candidate_from_sdp(
                    c["candidate"].removeprefix("candidate:")
                )
                candidate.sdpMid = c.get("sdpMid")
                candidate.sdpMLineIndex = c.get("sdpMLineIndex")
                await self.links[sender].pc.addIceCandidate(candidate)

    # --- media ---------------------------------------------------------------------------------

    def _new_link(self, conn_id: str) -> PeerLink:
        pc = new_peer_connection(self.ice_servers)
        link = PeerLink(conn_id, pc)
        if self.send_video:
            pc.addTrack(SyntheticVideoTrack())
        if self.send_audio:
            pc.addTrack(SyntheticAudioTrack())

        @pc.on("track")
        def on_track(track: Any) -> None:
            if track.kind == "video":
                counter = FrameCounter(track)
                counter.start()
                link.counters.append(counter)
                self.track_arrived.set()

        self.links[conn_id] = link
        return link

    async def _offer(self, conn_id: str) -> None:
        # Readmitted, we offer again to peers we may still hold a connection to.
        stale = self.links.pop(conn_id, None)
        if stale is not None:
            await self._close_link(stale)
        link = self._new_link(conn_id)
        await link.pc.setLocalDescription(await link.pc.createOffer())
        await self._send_description(conn_id, link.pc)

    async def _send_description(self, to: str, pc: RTCPeerConnection) -> None:
        local = pc.localDescription
        await self.request(
            ev.RTC_SIGNAL, {"to": to, "description": {"type": local.type, "sdp": local.sdp}}
        )

    async def _close_link(self, link: PeerLink) -> None:
        for counter in link.counters:
            await counter.stop()
        await link.pc.close()

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
