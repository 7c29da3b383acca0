"""Two Liaison apps as two server processes: one database (a SQLite file, and PostgreSQL when
LIAISON_TEST_POSTGRES_URL is set), one Redis (LIAISON_TEST_REDIS_URL) as socket.io's message
queue, each on its own port with its own node id, and real socket.io clients on either.

A visit's people on different nodes hear each other; an HTTP change on one node reaches a
socket on the other; a node that goes silent is swept by another (its patient comes back
admitted on the survivor, and the silent node, once it wakes, closes its stale sockets); two
sweepers at once do the work once; a node restarted under the same id cleans up after its
earlier life; a sign-out on one node closes the sockets on the other.

Heartbeats are manual here (`Member.tick`), with a long period so the background task never
runs during a test: the apps share a FakeClock, and moving it past the node timeout is what
makes a node silent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from server.app import create_app
from server.auth.roles import Role
from server.clock import FakeClock
from server.db.models import ClusterNode, LoginSession
from server.settings import Settings
from server.state import SERVICES
from signaling import events as ev
from signaling.probe import ProbeClient
from signaling.setup import CLUSTER, RTC
from tests.conftest import (
    Persona,
    free_port,
    make_settings,
    redis_url,
    sign_in_on,
)
from tests.integration.curbside_support import session_cookie
from tests.integration.visit_support import (
    Client,
    Clinic,
    Holders,
    ok_json,
    ready_patient,
    set_up_clinic,
)

pytestmark = pytest.mark.timeout(120)

HEARTBEAT_S = 60.0  # the longest allowed: the tests beat by hand
TIMEOUT_S = 600.0  # shorter than a clinician's idle timeout, so sessions outlive it


@dataclass
class Cluster:
    tmp_path: Path
    clock: FakeClock
    database_url: str
    redis: str
    stack: AsyncExitStack
    nodes: list[Client] = field(default_factory=list)
    sessions: list[aiohttp.ClientSession] = field(default_factory=list)
    probes: list[ProbeClient] = field(default_factory=list)

    def settings(self, node_id: str, port: int) -> Settings:
        return make_settings(
            self.tmp_path,
            LIAISON_DATABASE__URL=self.database_url,
            LIAISON_SERVER__PUBLIC_URL=f"http://127.0.0.1:{port}",
            LIAISON_CLUSTER__REDIS_URL=self.redis,
            LIAISON_CLUSTER__NODE_ID=node_id,
            LIAISON_CLUSTER__HEARTBEAT_S=str(HEARTBEAT_S),
            LIAISON_CLUSTER__NODE_TIMEOUT_S=str(TIMEOUT_S),
        )

    async def node(self, node_id: str) -> Client:
        port = free_port()
        app = create_app(self.settings(node_id, port), clock=self.clock)
        client: Client = TestClient(TestServer(app, host="127.0.0.1", port=port))
        await client.start_server()
        self.nodes.append(client)
        return client

    async def sign_in(
        self,
        role: Role = Role.PSYCHIATRIST,
        username: str | None = None,
        client: Client | None = None,
    ) -> Persona:
        """As conftest's `sign_in`, through the first node; the session holds on every node."""
        persona = await sign_in_on(client or self.nodes[0], role, username)
        self.sessions.append(persona.http)
        return persona

    async def probe(self, node: Client, cookies: dict[str, str]) -> ProbeClient:
        client = ProbeClient(str(node.make_url("")), cookies)
        self.probes.append(client)
        await client.connect()
        return client


def base_url(node: Client) -> str:
    return str(node.make_url("")).rstrip("/")


@pytest.fixture
async def cluster(
    shared_database_url: str, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Cluster]:
    redis = redis_url()
    async with AsyncExitStack() as stack:
        the_cluster = Cluster(tmp_path, clock, shared_database_url, redis, stack)
        try:
            yield the_cluster
        finally:
            for probe in the_cluster.probes:
                await probe.close()
            for http in the_cluster.sessions:
                await http.close()
            for node in reversed(the_cluster.nodes):
                await node.close()


async def until(event: asyncio.Event, seconds: float = 10) -> None:
    async with asyncio.timeout(seconds):
        await event.wait()


@dataclass
class Visit:
    clinic: Clinic
    visit_id: int
    link_url: str


async def a_visit(cluster: Cluster, holders: Holders) -> Visit:
    clinic = await set_up_clinic(cluster.nodes[0], cluster.clock, cluster.sign_in)
    visit = await clinic.schedule(start_in=timedelta(minutes=5))
    return Visit(clinic, visit["visit"]["id"], visit["patient_link"]["url"])


async def patient_on(cluster: Cluster, node: Client, visit: Visit, holders: Holders) -> Any:
    holder = await ready_patient(visit.clinic, holders, visit.link_url)
    return await cluster.probe(node, {"liaison_visit": holder.session_token})


async def admitted_call(
    cluster: Cluster, visit: Visit, holders: Holders, patient_node: Client, clinician_node: Client
) -> tuple[ProbeClient, ProbeClient]:
    patient = await patient_on(cluster, patient_node, visit, holders)
    assert (await patient.join(visit.visit_id))["presence"] == "waiting"
    clinician = await cluster.probe(clinician_node, session_cookie(visit.clinic.psychiatrist))
    assert (await clinician.join(visit.visit_id))["presence"] == "in_call"
    await until(clinician.lobby_changed)  # the patient's lobby entry, decided on the other node
    await clinician.admit(clinician.lobby[0]["participant_id"])
    await until(patient.joined)
    return patient, clinician


async def test_people_on_different_nodes_share_a_call_with_media_and_chat(
    cluster: Cluster,
) -> None:
    a, b = await cluster.node("node-a"), await cluster.node("node-b")
    async with Holders(a) as holders:
        visit = await a_visit(cluster, holders)
        patient, clinician = await admitted_call(cluster, visit, holders, a, b)

        # rtc:signal relayed by each node to a socket held by the other, through Redis.
        async with asyncio.timeout(30):
            await patient.wait_media(frames=3)
            await clinician.wait_media(frames=3)
        await patient.send_chat("Can you hear me?")
        await until(clinician.chat_received)
        assert clinician.chat[0]["text"] == "Can you hear me?"

        await clinician.request("visit:end")
        await until(patient.ended)


async def test_a_change_over_http_on_one_node_reaches_a_socket_on_the_other(
    cluster: Cluster,
) -> None:
    a, b = await cluster.node("node-a"), await cluster.node("node-b")
    async with Holders(a) as holders:
        visit = await a_visit(cluster, holders)
        patient = await patient_on(cluster, b, visit, holders)
        await patient.join(visit.visit_id)
        await until(patient.waiting)

        # The clinician's HTTP request lands on node A; the patient's socket is on node B.
        cancelled = await visit.clinic.psychiatrist.post(
            f"/api/v1/visits/{visit.visit_id}/cancel", json={}
        )
        await ok_json(cancelled)
        await until(patient.ended)


async def test_a_silent_nodes_patient_is_swept_and_comes_back_admitted_on_the_other(
    cluster: Cluster,
) -> None:
    a, b = await cluster.node("node-a"), await cluster.node("node-b")
    async with Holders(a) as holders:
        visit = await a_visit(cluster, holders)
        patient, clinician = await admitted_call(cluster, visit, holders, a, b)
        stale = patient.cookies

        # Node A stops beating (a pause, a partition, a crash): B alone beats past the timeout.
        cluster.clock.advance(TIMEOUT_S + 1)
        await b.app[CLUSTER].tick()
        await until(clinician.peer_left)
        room = await b.app[RTC].store.load(visit.visit_id)
        seat = room.participant(patient.you["participant_id"])
        assert seat is not None and seat.presence.value == "away"

        # The patient's browser reconnects to the survivor within the grace: admitted still.
        back = await cluster.probe(b, stale)
        assert (await back.join(visit.visit_id))["presence"] == "in_call"
        await until(back.joined)

        # Node A wakes: its row was claimed, so it closes the sockets the rooms no longer
        # list, and carries on as a new instance that the sweep of the old one cannot touch.
        closed = asyncio.Event()
        patient.sio.on("disconnect", closed.set, namespace=ev.NAMESPACE)
        old = a.app[CLUSTER].instance
        await a.app[CLUSTER].tick()
        await until(closed)
        assert a.app[CLUSTER].instance != old
        assert a.app[RTC].node_id == a.app[CLUSTER].instance
        async with b.app[SERVICES].db() as db:
            instances = set((await db.execute(select(ClusterNode.instance))).scalars())
        assert instances == {a.app[CLUSTER].instance, b.app[CLUSTER].instance}
        room = await b.app[RTC].store.load(visit.visit_id)
        seat = room.participant(back.you["participant_id"])
        assert (
            seat is not None and seat.presence.value == "in_call" and seat.conn_id == back.conn_id
        )


async def test_two_sweepers_at_once_clean_up_a_dead_node_once(cluster: Cluster) -> None:
    a, b, c = [await cluster.node(n) for n in ("node-a", "node-b", "node-c")]
    async with Holders(a) as holders:
        visit = await a_visit(cluster, holders)
        _, clinician = await admitted_call(cluster, visit, holders, a, b)

        cluster.clock.advance(TIMEOUT_S + 1)
        for node in (b, c):
            assert await node.app[CLUSTER].registry.beat()
        swept = await asyncio.gather(b.app[CLUSTER].sweep(), c.app[CLUSTER].sweep())

        assert sorted(swept) == [0, 1]
        await until(clinician.peer_left)
        async with b.app[SERVICES].db() as db:
            instances = set((await db.execute(select(ClusterNode.instance))).scalars())
        assert instances == {b.app[CLUSTER].instance, c.app[CLUSTER].instance}


async def test_a_node_restarted_under_its_id_cleans_up_after_its_earlier_life(
    cluster: Cluster,
) -> None:
    a, b = await cluster.node("node-a"), await cluster.node("node-b")
    async with Holders(a) as holders:
        visit = await a_visit(cluster, holders)
        _, clinician = await admitted_call(cluster, visit, holders, a, b)
        psychiatrist = await cluster.sign_in(Role.PSYCHIATRIST, "dr.online")
        dashboard = await cluster.probe(a, session_cookie(psychiatrist))
        await dashboard.request(ev.CURBSIDE_WATCH)  # an on-call dashboard: a presence row
        presence = b.app[SERVICES].curbside.oncall.presence
        assert psychiatrist.user_id in await presence.live([psychiatrist.user_id])

        # "node-a" starts again (its earlier life hung, or the restart came first): before it
        # serves anyone it drops the earlier life's seats and presence, whatever its heartbeat.
        await cluster.node("node-a")
        await until(clinician.peer_left)
        assert psychiatrist.user_id not in await presence.live([psychiatrist.user_id])


async def test_a_sign_out_on_one_node_closes_the_sockets_on_the_other(cluster: Cluster) -> None:
    a, b = await cluster.node("node-a"), await cluster.node("node-b")
    alice = await cluster.sign_in(Role.PSYCHIATRIST, "dr.alice")
    bob = await cluster.sign_in(Role.PSYCHIATRIST, "dr.bob")
    on_b = await cluster.probe(b, session_cookie(alice))
    bystander = await cluster.probe(b, session_cookie(bob))
    ended: list[dict[str, Any]] = []
    closed = asyncio.Event()
    on_b.sio.on(ev.SESSION_ENDED, ended.append, namespace=ev.NAMESPACE)
    on_b.sio.on("disconnect", closed.set, namespace=ev.NAMESPACE)

    assert alice.base_url == base_url(a)
    assert (await alice.post("/api/v1/auth/logout")).status == 204  # handled by node A

    await until(closed)  # node B's sweeper, within about a second
    assert ended == [{"reason": "session_ended"}]
    assert bystander.sio.connected
    async with b.app[SERVICES].db() as db:
        revoked = await db.scalar(
            select(func.count())
            .select_from(LoginSession)
            .where(LoginSession.revoked_at.is_not(None))
        )
    assert revoked == 1


async def test_an_expired_session_closes_its_socket(cluster: Cluster) -> None:
    b = await cluster.node("node-b")
    alice = await cluster.sign_in(Role.PSYCHIATRIST, "dr.alice")
    on_b = await cluster.probe(b, session_cookie(alice))
    closed = asyncio.Event()
    on_b.sio.on("disconnect", closed.set, namespace=ev.NAMESPACE)
    await asyncio.sleep(1.5)  # let the sweeper learn the session's deadline first
    assert on_b.sio.connected

    cluster.clock.advance(16 * 60)  # past a clinician's idle timeout, nothing in between
    await until(closed)
