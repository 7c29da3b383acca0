"""Two `liaison serve` processes sharing one PostgreSQL database and one Redis, as behind a
load balancer: a visit whose patient and clinician are on different processes, curbside
ringing and first-accept-wins across them, and a process stopped (SIGTERM) under a live call,
whose patient moves to the other process and whose call resumes.

Select these with ``-m cluster``; they need PostgreSQL and Redis (tools/run-tests starts both).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server.auth.roles import Role
from server.record.patients import NewPatient, TeamRole
from server.settings import Settings
from server.state import open_services
from signaling import curbside as cs
from signaling import events as ev
from signaling.probe import ProbeClient, ProbeError
from tests.conftest import (
    PASSWORD,
    Persona,
    make_settings,
    redis_url,
    sign_in_at,
)
from tests.integration.curbside_support import QUESTION, Dashboard, session_cookie
from tests.integration.serve_support import ServeProcess
from tests.integration.visit_support import Holder, ok_json

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(60)]

USERS = {
    "admin": Role.ADMIN,
    "dr.rivera": Role.PSYCHIATRIST,  # on Jordan's care team: sees Jordan in visits
    "dr.chen": Role.PCP,  # Jordan's PCP: asks curbside questions
    "dr.ahmed": Role.PSYCHIATRIST,  # on call
    "dr.baker": Role.PSYCHIATRIST,  # on call
}


@dataclass(frozen=True)
class Who:
    user_id: int
    role: Role


@dataclass
class Cluster:
    nodes: list[ServeProcess]
    user_ids: dict[str, int]
    patient_id: int
    _http: list[aiohttp.ClientSession] = field(default_factory=list)
    _probes: list[ProbeClient] = field(default_factory=list)

    async def persona(self, node: ServeProcess, username: str) -> Persona:
        persona = await sign_in_at(node.base_url, username, self.user_ids[username])
        self._http.append(persona.http)
        return persona

    def probe(self, node: ServeProcess, cookies: dict[str, str]) -> ProbeClient:
        probe = ProbeClient(node.base_url, cookies)
        self._probes.append(probe)
        return probe

    async def ready_patient(self, node: ServeProcess, link_url: str) -> Holder:
        """The patient opens the link on ``node`` and passes every step."""
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self._http.append(http)
        holder = Holder(http, node.base_url)
        await holder.join(link_url)
        await ok_json(await holder.verify())
        await ok_json(await holder.consent())
        await ok_json(await holder.locate())
        return holder

    async def close(self) -> None:
        for probe in self._probes:
            await probe.close()
        for http in self._http:
            await http.close()


async def seed(settings: Settings) -> tuple[dict[str, int], int]:
    """The accounts, Jordan (the PCP's patient, with dr.rivera on the team) and two
    psychiatrists on call now, licensed where Jordan lives."""
    async with open_services(settings) as svc:
        ids = {
            name: (await svc.users.create(name, name.title(), role, PASSWORD)).id
            for name, role in USERS.items()
        }
        pcp = Who(ids["dr.chen"], Role.PCP)
        record = await svc.patients.create(
            pcp, NewPatient("Jordan", "Alvarez", date(1988, 4, 12), "en", "CA", "+1 415 555 0134")
        )
        patient_id = record.patient.id
        await svc.patients.add_to_care_team(
            pcp, patient_id, ids["dr.rivera"], TeamRole.PSYCHIATRIST
        )
        now = svc.clock()
        admin = Who(ids["admin"], Role.ADMIN)
        for name in ("dr.ahmed", "dr.baker"):
            who = Who(ids[name], Role.PSYCHIATRIST)
            shift = (now - timedelta(minutes=5), now + timedelta(hours=8))
            await svc.curbside.oncall.add_shift(admin, who.user_id, cs.Tier.PRIMARY, *shift)
            await svc.curbside.oncall.set_licenses(who, ["CA"])
    return ids, patient_id


@pytest.fixture
async def cluster(postgres_database_url: str, tmp_path: Path) -> AsyncIterator[Cluster]:
    redis = redis_url()
    async with AsyncExitStack() as stack:
        settings = make_settings(tmp_path, LIAISON_DATABASE__URL=postgres_database_url)
        user_ids, patient_id = await seed(settings)
        nodes = [
            ServeProcess(
                settings,
                tmp_path / f"node-{n}.log",
                {
                    "LIAISON_CLUSTER__REDIS_URL": redis,
                    "LIAISON_CLUSTER__NODE_ID": f"node-{n}",
                    "LIAISON_CLUSTER__SHUTDOWN_GRACE_S": "10",
                },
            )
            for n in (1, 2)
        ]
        for node in nodes:
            stack.push_async_callback(node.stop)
            await node.start()
        the_cluster = Cluster(nodes, user_ids, patient_id)
        stack.push_async_callback(the_cluster.close)
        yield the_cluster


async def until(event: asyncio.Event, seconds: float = 15) -> None:
    async with asyncio.timeout(seconds):
        await event.wait()


async def media_from(probe: ProbeClient, conn_id: str, frames: int) -> None:
    """Wait until ``probe`` receives ``frames`` video frames from connection ``conn_id``."""
    async with asyncio.timeout(20):
        while conn_id not in probe.links or not probe.links[conn_id].counters:
            probe.track_arrived.clear()
            await probe.track_arrived.wait()
        for counter in probe.links[conn_id].counters:
            await counter.wait_for(frames)


async def test_a_visit_across_nodes_resumes_when_the_patients_node_stops(
    cluster: Cluster,
) -> None:
    node1, node2 = cluster.nodes
    rivera = await cluster.persona(node2, "dr.rivera")
    start = datetime.now(UTC) + timedelta(minutes=5)
    scheduled = await ok_json(
        await rivera.post(
            "/api/v1/visits",
            json={
                "patient_id": cluster.patient_id,
                "scheduled_start": start.isoformat(),
                "duration_minutes": 30,
                "clinician_ids": [rivera.user_id],
            },
        ),
        201,
    )
    visit_id = scheduled["visit"]["id"]
    holder = await cluster.ready_patient(node1, scheduled["patient_link"]["url"])

    patient = cluster.probe(node1, {"liaison_visit": holder.session_token})
    await patient.connect()
    assert (await patient.join(visit_id))["presence"] == "waiting"
    clinician = cluster.probe(node2, session_cookie(rivera))
    await clinician.connect()
    assert (await clinician.join(visit_id))["presence"] == "in_call"
    await until(clinician.lobby_changed)  # the waiting room, told across the processes
    await clinician.admit(clinician.lobby[0]["participant_id"])
    await until(patient.joined)
    async with asyncio.timeout(20):
        await patient.wait_media(frames=3)
        await clinician.wait_media(frames=3)

    draining = asyncio.Event()
    patient.sio.on(ev.SERVER_DRAINING, lambda data: draining.set(), namespace=ev.NAMESPACE)
    node1.terminate()
    await until(draining)
    await until(clinician.peer_left)  # the patient's connection on node 1 is gone
    # As the web client does on `server:draining`: connect again, which the load balancer
    # sends to a live process, and rejoin. The room's reconnect grace keeps Jordan admitted.
    back = cluster.probe(node2, patient.cookies)
    await patient.close()
    await back.connect()
    assert (await back.join(visit_id))["presence"] == "in_call"
    await until(back.joined)
    await back.wait_media(frames=3)
    await media_from(clinician, back.conn_id, frames=3)
    assert await node1.exit_code() == 0, node1.log_tail()


async def test_a_request_on_one_node_rings_the_other_and_one_accept_wins(
    cluster: Cluster,
) -> None:
    node1, node2 = cluster.nodes
    pcp = await cluster.persona(node1, "dr.chen")
    ahmed = await cluster.persona(node2, "dr.ahmed")
    baker = await cluster.persona(node1, "dr.baker")
    on_node2 = Dashboard(ahmed, cluster.probe(node2, session_cookie(ahmed)))
    on_node1 = Dashboard(baker, cluster.probe(node1, session_cookie(baker)))
    for dashboard in (on_node2, on_node1):
        await dashboard.probe.connect()
        await dashboard.watch()

    asked = await ok_json(
        await pcp.post(
            "/api/v1/curbside/requests",
            json={
                "patient_id": cluster.patient_id,
                "question": QUESTION,
                "urgency": "urgent",
                "mode": "call_now",
                "patient_consented": True,
            },
        ),
        201,
    )
    rid = asked["id"]
    assert asked["status"] == "ringing"
    for dashboard in (on_node2, on_node1):
        ring = await dashboard.ring(rid)  # on node 2: through Redis
        assert ring["request"]["question"] == QUESTION

    results: list[Any] = await asyncio.gather(
        on_node2.send(ev.CURBSIDE_ACCEPT, rid),
        on_node1.send(ev.CURBSIDE_ACCEPT, rid),
        return_exceptions=True,
    )
    wins = [r for r in results if isinstance(r, dict)]
    losses = [r for r in results if isinstance(r, ProbeError)]
    assert len(wins) == 1 and len(losses) == 1, results
    assert losses[0].code == "already_taken"
    loser = on_node1 if isinstance(results[0], dict) else on_node2
    await loser.wait(ev.CURBSIDE_TAKEN, lambda d: d["request_id"] == rid)
    request = await ok_json(await pcp.get(f"/api/v1/curbside/requests/{rid}"))
    assert request["status"] == "accepted"
