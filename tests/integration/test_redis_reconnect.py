"""Liaison's socket.io message queue (signaling/cluster.py `RedisQueue`) when Redis drops its
connections or goes away for a while: two socket.io servers ("nodes") on loopback, each with
its own queue and a socket.io client of its own, on a private redis-server of the test's own
(killing every client of the shared test Redis, or stopping it, would break the tests running
beside this one).

After forced reconnects the nodes hold as many connections to Redis as before and hear each
other again; on shutdown they leave none open, and nothing for the garbage collector either. An
outage is logged once per node, and its end once with the number of messages lost. While Redis
is away (stopped, or paused as a hung server or a partition leaves it), the sockets of one
process keep hearing each other: only what crosses processes is lost, until Redis is back.

python-socketio's own manager opened a new client and subscription at each reconnect and left
the old ones open. They are in reference cycles, so only the cyclic garbage collector closes
them, in a long-running server whenever a full collection happens to run: these tests hold the
collector off, so that what is left open is counted rather than collected by chance.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import socketio
from aiohttp import web
from aiohttp.test_utils import TestServer
from redis import asyncio as aioredis

from bench.procs import RedisServer
from server.clock import FakeClock
from signaling import events as ev
from signaling.cluster import RedisQueue
from signaling.probe import ProbeClient
from signaling.setup import SOCKETIO
from tests.conftest import AppFactory, SignIn, free_port, sign_in_on
from tests.integration.curbside_support import session_cookie
from tests.integration.visit_support import Client, Holders, ready_patient, set_up_clinic

pytestmark = pytest.mark.timeout(120)  # an outage lasts through redis-py's own retries

CHANNEL = "liaison-test-reconnect"
RECONNECTS = 5


@pytest.fixture
async def redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = RedisServer(tmp_path)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


class Admin:
    """The test's own connection to Redis, left out of every count."""

    def __init__(self, redis: RedisServer) -> None:
        self.port = redis.port
        self.client = aioredis.Redis.from_url(redis.url, single_connection_client=True)

    async def __aenter__(self) -> Admin:
        info = await self.client.client_info()
        self.id = str(info["id"])
        self.local_port = int(str(info["addr"]).rsplit(":", 1)[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    async def clients(self) -> int:
        """Connections the Redis server has from anyone but this admin."""
        return sum(1 for c in await self.client.client_list() if str(c["id"]) != self.id)

    async def subscriptions(self, channel: str) -> int:
        ((_, count),) = await self.client.pubsub_numsub(channel)
        return int(count)

    async def kill_connections(self) -> None:
        """What a Redis restart or a proxy dropping idle connections does to every client."""
        await self.client.client_kill_filter(_type="pubsub")
        await self.client.client_kill_filter(_type="normal", skipme=True)

    def process_sockets(self) -> int:
        """Sockets this process holds open to the Redis port, the admin's aside (from /proc:
        a socket the server has closed but nobody closed here still counts)."""
        ours = set()
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue  # closed meanwhile
            if target.startswith("socket:["):
                ours.add(target[len("socket:[") : -1])
        count = 0
        with open("/proc/self/net/tcp") as table:
            for line in table.readlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if remote_port == self.port and local_port != self.local_port and fields[9] in ours:
                    count += 1
        return count


@contextmanager
def collector_held_off() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def collected_resource_warnings() -> list[str]:
    """Run the garbage collector; the ResourceWarnings of what it had to close."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


@dataclass
class Node:
    name: str
    sio: socketio.AsyncServer
    queue: RedisQueue
    heard: asyncio.Queue[str]  # the names of the nodes whose emits its client heard


async def start_node(
    name: str, redis: RedisServer, stack: AsyncExitStack, channel: str = CHANNEL
) -> Node:
    queue = RedisQueue(redis.url, channel)
    sio = socketio.AsyncServer(
        async_mode="aiohttp", client_manager=queue, logger=False, engineio_logger=False
    )
    app = web.Application()
    sio.attach(app)
    server = TestServer(app, host="127.0.0.1", port=free_port())
    await server.start_server()
    stack.push_async_callback(server.close)
    stack.push_async_callback(queue.close)  # runs first: as the app's shutdown does

    heard: asyncio.Queue[str] = asyncio.Queue()
    client = socketio.AsyncClient(reconnection=False)

    @client.on("ping")  # type: ignore[untyped-decorator]
    async def ping(data: dict[str, Any]) -> None:
        heard.put_nowait(data["from"])

    # The server's first connection starts its queue's listener.
    await client.connect(str(server.make_url("")), transports=["websocket"], wait_timeout=10)
    stack.push_async_callback(client.disconnect)
    return Node(name, sio, queue, heard)


async def hears(listener: Node, speaker: Node) -> None:
    """Emit from ``speaker`` until ``listener``'s client hears it: pub/sub keeps nothing, so
    what is published before the listener has subscribed again is lost."""
    async with asyncio.timeout(30):
        while True:
            await speaker.sio.emit("ping", {"from": speaker.name})
            try:
                async with asyncio.timeout(0.2):
                    while await listener.heard.get() != speaker.name:
                        pass
            except TimeoutError:
                continue
            return


async def hear_each_other(a: Node, b: Node) -> None:
    await hears(b, a)
    await hears(a, b)


async def test_forced_reconnects_leave_no_connection_open_and_messages_flow_again(
    redis: RedisServer,
) -> None:
    with collector_held_off():
        async with Admin(redis) as admin:
            async with AsyncExitStack() as stack:
                a = await start_node("a", redis, stack)
                b = await start_node("b", redis, stack)
                await hear_each_other(a, b)
                # Each node: its subscription and the connection it publishes on.
                assert admin.process_sockets() == 4
                assert await admin.clients() == 4

                for _ in range(RECONNECTS):
                    await admin.kill_connections()
                    await hear_each_other(a, b)

                assert admin.process_sockets() == 4
                assert await admin.clients() == 4
                assert await admin.subscriptions(CHANNEL) == 2
            # Both nodes shut down.
            assert admin.process_sockets() == 0
            assert await admin.clients() == 0
        assert collected_resource_warnings() == []


async def test_an_outage_is_logged_once_and_the_nodes_hear_each_other_when_redis_is_back(
    redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="liaison.cluster")
    async with AsyncExitStack() as stack:
        a = await start_node("a", redis, stack)
        b = await start_node("b", redis, stack)
        await hear_each_other(a, b)

        await redis.stop()
        # Sent while Redis is away: the first fails, the others are not even tried, all lost.
        await asyncio.gather(
            *(a.sio.emit("ping", {"from": "a"}) for _ in range(3)),
            *(b.sio.emit("ping", {"from": "b"}) for _ in range(2)),
        )
        await redis.start()
        await hear_each_other(a, b)

        async with Admin(redis) as admin:
            assert await admin.subscriptions(CHANNEL) == 2

    records = [r for r in caplog.records if r.name == "liaison.cluster"]
    lost = [r for r in records if r.levelno == logging.WARNING]
    back = [r for r in records if r.getMessage() == "Redis is back"]
    assert [r.getMessage().split(":")[0] for r in lost] == ["Redis is out of reach"] * 2
    # Counted too: pings sent after Redis came back, before this node had reached it again.
    fewest, most = sorted(r.__dict__["unsent_messages"] for r in back)
    assert fewest >= 2 and most >= 3
    assert len(records) == 4


async def test_an_app_leaves_no_redis_connection_open_on_shutdown_after_reconnects(
    redis: RedisServer, make_app: AppFactory
) -> None:
    with collector_held_off():
        async with Admin(redis) as admin:
            node = await make_app(LIAISON_CLUSTER__REDIS_URL=redis.url)
            channel = node.app[SOCKETIO].manager.channel
            persona = await sign_in_on(node)
            probe = ProbeClient(str(node.make_url("")), session_cookie(persona))
            try:
                await probe.connect()  # the app's first socket starts its Redis listener
                for _ in range(RECONNECTS):
                    async with asyncio.timeout(30):
                        while await admin.subscriptions(channel) == 0:  # noqa: ASYNC110 - bounded poll
                            await asyncio.sleep(0.05)
                    await admin.kill_connections()
            finally:
                await probe.close()
                await persona.http.close()
            await node.close()
            assert admin.process_sockets() == 0
            assert await admin.clients() == 0
        assert collected_resource_warnings() == []


@pytest.fixture
async def app_client(make_app: AppFactory, redis: RedisServer) -> Client:
    """The app as one node of a cluster on the test's private Redis (``sign_in`` signs in here)."""
    return await make_app(LIAISON_CLUSTER__REDIS_URL=redis.url)


async def chat_arrives(sender: ProbeClient, receiver: ProbeClient, text: str) -> None:
    """Sent (its ack waits for everything the server does for it, the publish included) and
    heard, within a bound far above a local round trip and the publisher's 1 s Redis timeout
    on a loaded machine, yet below the 10 s an emit stuck behind a hung Redis used to take."""
    count = len(receiver.chat)
    async with asyncio.timeout(8):
        await sender.send_chat(text)
        while len(receiver.chat) == count:
            receiver.chat_received.clear()
            await receiver.chat_received.wait()
    assert receiver.chat[-1]["text"] == text


async def reaches_socket(speaker: Node, probe: ProbeClient) -> None:
    """Emit a chat message from ``speaker`` to ``probe``'s socket on the app until it arrives
    (pub/sub keeps nothing for a listener that has not subscribed again yet)."""
    async with asyncio.timeout(30):
        while True:
            count = len(probe.chat)
            await speaker.sio.emit(
                ev.CHAT_MESSAGE, {"text": "from another process"}, to=probe.conn_id,
                namespace=ev.NAMESPACE,
            )  # fmt: skip
            await asyncio.sleep(0.2)
            if len(probe.chat) > count:
                return


@pytest.mark.parametrize("outage", ["stopped", "paused"])
async def test_sockets_on_one_process_keep_talking_while_redis_is_away(
    app_client: Client,
    clock: FakeClock,
    sign_in: SignIn,
    redis: RedisServer,
    outage: str,
) -> None:
    clinic = await set_up_clinic(app_client, clock, sign_in)
    visit = await clinic.schedule(start_in=timedelta(minutes=5))
    visit_id = visit["visit"]["id"]
    base = str(app_client.make_url("")).rstrip("/")
    sio = app_client.app[SOCKETIO]
    async with Holders(app_client) as holders, AsyncExitStack() as stack:
        holder = await ready_patient(clinic, holders, visit["patient_link"]["url"])
        patient = ProbeClient(base, {"liaison_visit": holder.session_token}, send_video=False)
        clinician = ProbeClient(base, session_cookie(clinic.psychiatrist), send_video=False)
        for probe in (patient, clinician):
            stack.push_async_callback(probe.close)
            await probe.connect()
        await patient.join(visit_id)
        await clinician.join(visit_id)
        async with asyncio.timeout(10):
            while not clinician.lobby:
                clinician.lobby_changed.clear()
                await clinician.lobby_changed.wait()
        await clinician.admit(clinician.lobby[0]["participant_id"])
        async with asyncio.timeout(10):
            await patient.joined.wait()
        # Another server process on the app's channel, and the app seen as a node.
        other = await start_node("other", redis, stack, channel=sio.manager.channel)
        app = Node("app", sio, sio.manager, asyncio.Queue())
        await hears(other, app)
        await reaches_socket(other, clinician)

        if outage == "paused":
            redis.pause()
        else:
            await redis.stop()
        # Each event of a socket waits for the one before it, publishes and all.
        for n in range(3):
            await chat_arrives(patient, clinician, f"still there? {n}")
            await chat_arrives(clinician, patient, f"yes {n}")

        if outage == "paused":
            redis.resume()
        else:
            await redis.start()
        await hears(other, app)
        await reaches_socket(other, clinician)
        await chat_arrives(patient, clinician, "and Redis is back")
