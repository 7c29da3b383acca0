"""Ping-pong load through a relay: pairs of clients bouncing one ICE candidate between them.

In every pair, A sends a candidate to B; B's handler sends it straight back; A times the round
trip and sends again, for as long as the load runs. So each pair keeps one message in flight,
and ``pairs / round-trip time`` is what the relay sustains. Two kinds of client speak the same
pattern: :class:`LiaisonPeer` (python-socketio's AsyncClient on Liaison's ``/rtc`` namespace,
authenticated by a login-session cookie, no acks asked for while loaded) and :class:`BarePeer`
(a plain aiohttp WebSocket to bench/bare_relay.py).

Each Liaison client gets its own aiohttp session: engine.io moves the ``Cookie`` header into
the session's cookie jar, so clients sharing a session would all end up as one user. Every
session (and the bare clients' shared one) uses ``TCPConnector(limit=0)``, so aiohttp's
100-connection default can never hold a WebSocket back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import statistics
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import socketio

from bench.procs import ServerProcess, cpu_seconds, run_delay_seconds
from signaling import events as ev

# What a browser trickles: the payload every relayed message carries.
CANDIDATE: dict[str, Any] = {
    "candidate": "candidate:842163049 1 udp 1677729535 192.0.2.2 54321 typ srflx "
    "raddr 0.0.0.0 rport 0 generation 0 ufrag sK3v network-cost 999",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
}
# A round trip this late means the relay dropped a message: the pair stops and counts as
# stalled (as it does when its client is disconnected).
STALL_S = 60.0
CONNECT_TIMEOUT_S = 60.0


class Peer(ABC):
    """One client of a relay; ``on_message`` is called with the sender's address."""

    def __init__(self) -> None:
        self.on_message: Callable[[str], Awaitable[None]] = _ignore

    @property
    @abstractmethod
    def address(self) -> str:
        """How others name this client in ``to``."""

    @property
    @abstractmethod
    def connected(self) -> bool: ...

    @abstractmethod
    async def connect(self) -> None: ...

    @abstractmethod
    async def send(self, to: str) -> None:
        """Send the candidate to ``to``, asking for nothing back from the relay."""

    async def send_checked(self, to: str) -> None:
        """Send and raise if the relay refuses (where the relay can say so)."""
        await self.send(to)

    @abstractmethod
    async def close(self) -> None: ...


async def _ignore(sender: str) -> None:
    return None


class RelayRefused(Exception):
    pass


class ErrorCount(logging.Handler):
    """Counts what the engine.io clients log (a client giving up on a silent server logs
    "packet queue is empty, aborting"), instead of printing thousands of lines."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.first = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        self.first = self.first or record.getMessage()

    def logger(self) -> logging.Logger:
        logger = logging.getLogger(f"bench.engineio.{id(self)}")
        logger.propagate = False
        logger.setLevel(logging.WARNING)
        logger.handlers = [self]
        return logger


class LiaisonPeer(Peer):
    def __init__(self, base_url: str, cookie_name: str, token: str, log: logging.Logger) -> None:
        super().__init__()
        self.base_url = base_url
        self.cookie = f"{cookie_name}={token}"
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self.sio = socketio.AsyncClient(
            reconnection=False,
            handle_sigint=False,
            http_session=self.http,
            logger=log,
            engineio_logger=log,
        )
        self.sio.on(ev.RTC_SIGNAL, self._on_signal, namespace=ev.NAMESPACE)

    @property
    def address(self) -> str:
        sid = self.sio.get_sid(ev.NAMESPACE)
        assert isinstance(sid, str)
        return sid

    @property
    def connected(self) -> bool:
        return bool(self.sio.connected) and self.sio.get_sid(ev.NAMESPACE) is not None

    async def connect(self) -> None:
        await self.sio.connect(
            self.base_url,
            headers={"Cookie": self.cookie, "Origin": self.base_url},
            namespaces=[ev.NAMESPACE],
            transports=["websocket"],
            socketio_path="/socket.io",
            wait_timeout=CONNECT_TIMEOUT_S,
        )

    async def request(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        ack: dict[str, Any] = await self.sio.call(
            event, data, namespace=ev.NAMESPACE, timeout=CONNECT_TIMEOUT_S
        )
        if not ack.get("ok"):
            raise RelayRefused(f"{event}: {ack.get('error')}")
        return ack

    async def join(self, visit_id: int) -> None:
        ack = await self.request(ev.ROOM_JOIN, {"visit_id": visit_id})
        if ack.get("presence") != "in_call":
            raise RelayRefused(f"joined as {ack.get('presence')!r}, not in the call")

    async def send(self, to: str) -> None:
        await self.sio.emit(
            ev.RTC_SIGNAL, {"to": to, "candidate": CANDIDATE}, namespace=ev.NAMESPACE
        )

    async def send_checked(self, to: str) -> None:
        await self.request(ev.RTC_SIGNAL, {"to": to, "candidate": CANDIDATE})

    async def _on_signal(self, data: dict[str, Any]) -> None:
        await self.on_message(data["from"])

    async def close(self) -> None:
        try:
            if self.sio.connected:
                await self.sio.disconnect()
        finally:
            await self.http.close()


class BarePeer(Peer):
    def __init__(self, base_url: str, http: aiohttp.ClientSession, name: str) -> None:
        super().__init__()
        self.base_url = base_url
        self.http = http
        self.name = name
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        return self.name

    @property
    def connected(self) -> bool:
        return self.ws is not None and not self.ws.closed

    async def connect(self) -> None:
        self.ws = await self.http.ws_connect(f"{self.base_url}/ws?id={self.name}")
        self._reader = asyncio.create_task(self._read(self.ws), name=f"bare-{self.name}")

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                await self.on_message(json.loads(msg.data)["from"])

    async def send(self, to: str) -> None:
        assert self.ws is not None
        await self.ws.send_str(json.dumps({"to": to, "payload": {"candidate": CANDIDATE}}))

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)


@dataclass
class Window:
    """What the pairs report: deliveries and round trips count only while ``measuring``."""

    measuring: bool = False
    stopping: bool = False
    round_trips: int = 0  # all of them, warm-up included
    warm_after: int = 0  # round trips before the window may open
    warm: asyncio.Event = field(default_factory=asyncio.Event)
    delivered: int = 0
    rtts: list[float] = field(default_factory=list)
    stalled: int = 0


class Pair:
    def __init__(self, a: Peer, b: Peer) -> None:
        self.a, self.b = a, b
        self._pending: asyncio.Future[float] | None = None
        self._window = Window()
        a.on_message = self._a_received
        b.on_message = self._b_received

    async def _b_received(self, sender: str) -> None:
        if self._window.measuring:
            self._window.delivered += 1
        # B's client may have been disconnected meanwhile: A then counts the pair as stalled.
        with contextlib.suppress(Exception):
            await self.b.send(sender)

    async def _a_received(self, sender: str) -> None:
        if self._window.measuring:
            self._window.delivered += 1
        pending = self._pending
        if pending is not None and not pending.done():
            pending.set_result(time.perf_counter())

    async def round_trip(self, *, checked: bool = False) -> float:
        """One candidate A -> B -> A; returns the seconds it took."""
        self._pending = asyncio.get_running_loop().create_future()
        started = time.perf_counter()
        if checked:
            await self.a.send_checked(self.b.address)
        else:
            await self.a.send(self.b.address)
        async with asyncio.timeout(STALL_S):
            returned = await self._pending
        return returned - started

    async def run(self, window: Window) -> None:
        self._window = window
        while not window.stopping:
            try:
                rtt = await self.round_trip()
            except Exception:  # no answer within STALL_S, or the client was disconnected
                window.stalled += 1
                return
            window.round_trips += 1
            if window.round_trips >= window.warm_after:
                window.warm.set()
            if window.measuring:
                window.rtts.append(rtt)


async def joined_pair(a: LiaisonPeer, b: LiaisonPeer, visit_id: int) -> Pair:
    """Connect both clinicians, put them in the visit's room and check that the server relays
    between them (a round trip with acks) before any load is measured."""
    await a.connect()
    await b.connect()
    await a.join(visit_id)
    await b.join(visit_id)
    pair = Pair(a, b)
    await pair.round_trip(checked=True)
    return pair


@dataclass(frozen=True)
class Usage:
    """CPU time one process used over the window (all threads), and the time its event loop
    thread waited for a CPU."""

    cpu_s: float
    wait_s: float


@dataclass(frozen=True)
class Figures:
    """One relay at one load."""

    relay: str
    rooms: int
    clients: int
    connected: int
    pairs: int  # pairs that joined and passed a first checked round trip
    setup_s: float  # connecting, joining and checking every pair
    seconds: float
    delivered: int
    rtts: Sequence[float]
    server: Usage
    bench: Usage
    stalled: int
    note: str = ""

    @property
    def msgs_per_s(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0

    @property
    def p50_ms(self) -> float:
        return _percentile(self.rtts, 50) * 1000

    @property
    def p99_ms(self) -> float:
        return _percentile(self.rtts, 99) * 1000

    @property
    def cpu_per_msg_us(self) -> float:
        return self.server.cpu_s / self.delivered * 1e6 if self.delivered else float("nan")

    def share(self, seconds: float) -> float:
        """``seconds`` as a share of the window (of one core, for CPU time)."""
        return seconds / self.seconds if self.seconds else 0.0


def _percentile(values: Sequence[float], pct: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


async def bounded(limit: int, jobs: Sequence[Callable[[], Awaitable[None]]]) -> list[BaseException]:
    """Run the jobs, at most ``limit`` at once; return the errors they raised."""
    gate = asyncio.Semaphore(limit)
    errors: list[BaseException] = []

    async def one(job: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            try:
                await job()
            except Exception as exc:
                errors.append(exc)

    await asyncio.gather(*(one(job) for job in jobs))
    return errors


@dataclass(frozen=True)
class LoadShape:
    duration_s: float = 5.0
    min_warmup_s: float = 1.0
    max_warmup_s: float = 60.0
    warmup_round_trips: int = 2  # per pair, before the window opens


@dataclass(frozen=True)
class Sample:
    window: Window
    seconds: float
    server: Usage
    bench: Usage


async def measure(pairs: Sequence[Pair], server: ServerProcess, shape: LoadShape) -> Sample:
    """Run every pair's ping-pong; return what was counted in the window, its length, and what
    the server and this (load) process used of the machine meanwhile."""
    own = os.getpid()
    window = Window(warm_after=shape.warmup_round_trips * len(pairs))
    tasks = [asyncio.create_task(p.run(window), name="ping-pong") for p in pairs]
    if not pairs:
        window.warm.set()  # nothing got set up: measure the empty window, do not wait
    try:
        await asyncio.sleep(shape.min_warmup_s)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(shape.max_warmup_s):
                await window.warm.wait()
        before = _usage(server.pid, own)
        opened = time.perf_counter()
        window.measuring = True
        await asyncio.sleep(shape.duration_s)
        window.measuring = False
        seconds = time.perf_counter() - opened
        after = _usage(server.pid, own)
        window.stopping = True
        await asyncio.wait(tasks, timeout=STALL_S + 5)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return Sample(
        window,
        seconds,
        Usage(after[0] - before[0], after[1] - before[1]),
        Usage(after[2] - before[2], after[3] - before[3]),
    )


def _usage(server: int, own: int) -> tuple[float, float, float, float]:
    return (
        cpu_seconds(server),
        run_delay_seconds(server),
        cpu_seconds(own),
        run_delay_seconds(own),
    )
