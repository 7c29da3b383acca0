"""Curbside benchmark: ring latency to every on-call dashboard, and accept-to-connected.

    .venv/bin/python bench/curbside.py                  # 50 dashboards, 5 rounds
    .venv/bin/python bench/curbside.py --dashboards 200 --rounds 3

Starts a real ``liaison serve`` on a free 127.0.0.1 port over a fresh SQLite file, seeded here
with N psychiatrists on a primary shift (licensed where the patient lives), a PCP and a
patient on the PCP's care team. Connects N dashboards (python-socketio clients, each with its
own aiohttp session, ``TCPConnector(limit=0)``). Each round: the PCP posts a call-now request
(the clock starts as the POST goes out) and every dashboard's ``curbside:ring`` arrival is
timed; then one psychiatrist accepts on their dashboard, and the winner's and the PCP's call
views (aiortc ProbeClients) join the call's room when ``curbside:connected`` arrives, as the
web client does; the clock stops when both peer connections are connected. The winner hangs
up and the next round starts. Prints ring latency p50/p99 per round and overall, the time
until the last dashboard rang, and accept-to-connected. A script that prints figures, never a
test.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder is first on sys.path and would hide the project's
# packages behind bench/'s modules; the project's root goes there instead.
_BENCH_DIR = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0] or ".").resolve() == _BENCH_DIR:
    sys.path[0] = str(_BENCH_DIR.parent)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import date, timedelta  # noqa: E402
from typing import Any  # noqa: E402

import aiohttp  # noqa: E402
import socketio  # noqa: E402

from bench.common import (  # noqa: E402
    liaison_argv,
    liaison_env,
    median_ms,
    migrate_fresh,
    percentile_ms,
    progress,
    say,
    seed_user,
)
from bench.procs import ServerProcess, free_port, load_average  # noqa: E402
from bench.relay_load import bounded  # noqa: E402
from bench.seed import seed_clinicians  # noqa: E402
from server.auth.roles import Role  # noqa: E402
from server.auth.tokens import csrf_token_for  # noqa: E402
from server.record.patients import NewPatient  # noqa: E402
from server.settings import load_settings  # noqa: E402
from server.state import open_services  # noqa: E402
from signaling import curbside as cs  # noqa: E402
from signaling import events as ev  # noqa: E402
from signaling.media import wait_connected  # noqa: E402
from signaling.probe import ProbeClient  # noqa: E402

TIMEOUT_S = 60.0
QUESTION = "Benchmark: which SSRI for a patient with QTc 470 ms?"


@dataclass(frozen=True)
class Clinic:
    pcp_token: str
    patient_id: int
    psychiatrists: list[tuple[int, str]]  # user id, session cookie token


@dataclass(frozen=True)
class Who:
    user_id: int
    role: Role


async def seed(env: dict[str, str], dashboards: int) -> Clinic:
    settings = load_settings(environ=env)
    await migrate_fresh(settings)
    async with open_services(settings) as svc:
        pcp, pcp_token = await seed_user(svc, Role.PCP, "Dr. Bench PCP")
        patient = await svc.patients.create(
            Who(pcp.id, Role.PCP),
            NewPatient("Bench", "Patient", date(1980, 1, 1), "en", "CA", "+1 415 555 0100"),
        )
        psychiatrists = await seed_clinicians(svc, dashboards)
        now = svc.clock()
        for user, _ in psychiatrists:
            who = Who(user.id, Role.PSYCHIATRIST)
            await svc.curbside.oncall.add_shift(
                who, user.id, cs.Tier.PRIMARY, now - timedelta(hours=1), now + timedelta(days=1)
            )
            await svc.curbside.oncall.set_licenses(who, ["CA"])
    return Clinic(pcp_token, patient.patient.id, [(u.id, token) for u, token in psychiatrists])


def pcp_headers(base_url: str, cookie_name: str, clinic: Clinic) -> dict[str, str]:
    """The PCP's session cookie, CSRF token and origin, for its REST calls."""
    return {
        "Cookie": f"{cookie_name}={clinic.pcp_token}",
        "X-CSRF-Token": csrf_token_for(clinic.pcp_token),
        "Origin": base_url,
    }


async def post_call_now(
    http: aiohttp.ClientSession, base_url: str, headers: dict[str, str], patient_id: int
) -> int:
    """The PCP asks for an emergent call now; returns the request's id."""
    body = {
        "patient_id": patient_id,
        "question": QUESTION,
        "urgency": "emergent",
        "mode": "call_now",
        "patient_consented": True,
    }
    async with http.post(
        base_url + "/api/v1/curbside/requests", json=body, headers=headers
    ) as response:
        if response.status != 201:
            raise RuntimeError(f"request refused: {await response.text()}")
        request_id: int = (await response.json())["id"]
    return request_id


class Dashboard:
    """A psychiatrist's dashboard socket; records when each request's ring arrived."""

    def __init__(self, base_url: str, cookie: str) -> None:
        self.base_url = base_url
        self.cookie = cookie
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self.sio = socketio.AsyncClient(
            reconnection=False, handle_sigint=False, http_session=self.http
        )
        self.rang: dict[int, float] = {}
        self.sio.on(ev.CURBSIDE_RING, self._on_ring, namespace=ev.NAMESPACE)
        self.everyone: Rings | None = None

    async def _on_ring(self, data: dict[str, Any]) -> None:
        self.rang[data["request"]["id"]] = asyncio.get_running_loop().time()
        if self.everyone is not None:
            self.everyone.arrived()

    async def connect(self) -> None:
        await self.sio.connect(
            self.base_url,
            headers={"Cookie": self.cookie, "Origin": self.base_url},
            namespaces=[ev.NAMESPACE],
            transports=["websocket"],
            wait_timeout=TIMEOUT_S,
        )
        # As the dashboard page does: only a watching socket makes its psychiatrist present.
        ack: dict[str, Any] = await self.sio.call(
            ev.CURBSIDE_WATCH, {}, namespace=ev.NAMESPACE, timeout=TIMEOUT_S
        )
        if not ack.get("ok"):
            raise RuntimeError(f"watch refused: {ack}")

    async def accept(self, request_id: int) -> dict[str, Any]:
        ack: dict[str, Any] = await self.sio.call(
            ev.CURBSIDE_ACCEPT,
            {"request_id": request_id},
            namespace=ev.NAMESPACE,
            timeout=TIMEOUT_S,
        )
        if not ack.get("ok"):
            raise RuntimeError(f"accept refused: {ack}")
        return ack

    async def end(self, request_id: int) -> None:
        await self.sio.call(
            ev.CURBSIDE_END, {"request_id": request_id}, namespace=ev.NAMESPACE, timeout=TIMEOUT_S
        )

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()
        await self.http.close()


@dataclass
class Rings:
    """Counts ring arrivals until every dashboard has rung."""

    expected: int
    count: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def arrived(self) -> None:
        self.count += 1
        if self.count >= self.expected:
            self.done.set()


class CallView:
    """A call page: joins the call's room when ``curbside:connected`` arrives."""

    def __init__(self, base_url: str, cookie: dict[str, str]) -> None:
        self.probe = ProbeClient(base_url, cookie)
        self.probe.sio.on(ev.CURBSIDE_CONNECTED, self._on_connected, namespace=ev.NAMESPACE)
        self.joining: asyncio.Task[Any] | None = None

    async def _on_connected(self, data: dict[str, Any]) -> None:
        self.joining = asyncio.create_task(self.probe.join(data["visit_id"]))

    async def connected_at(self) -> float:
        while not self.probe.links:  # noqa: ASYNC110 (the probe has no event for a new link)
            await asyncio.sleep(0.001)
        times = [await wait_connected(link.pc) for link in self.probe.links.values()]
        return max(times)

    async def close(self) -> None:
        if self.joining is not None:
            await asyncio.gather(self.joining, return_exceptions=True)
        await self.probe.close()


@dataclass(frozen=True)
class Round:
    ring_s: list[float]
    last_ring_s: float
    accept_to_connected_s: float


async def one_round(
    base_url: str,
    cookie_name: str,
    clinic: Clinic,
    dashboards: Sequence[Dashboard],
    winner: int,
) -> Round:
    loop = asyncio.get_running_loop()
    rings = Rings(len(dashboards))
    for dashboard in dashboards:
        dashboard.everyone = rings
    pcp_view = CallView(base_url, {cookie_name: clinic.pcp_token})
    winner_view = CallView(base_url, {cookie_name: clinic.psychiatrists[winner][1]})
    try:
        await pcp_view.probe.connect()
        await winner_view.probe.connect()
        async with aiohttp.ClientSession() as http, asyncio.timeout(TIMEOUT_S):
            headers = pcp_headers(base_url, cookie_name, clinic)
            submitted = loop.time()
            request_id = await post_call_now(http, base_url, headers, clinic.patient_id)
            await rings.done.wait()
            ring_s = [d.rang[request_id] - submitted for d in dashboards]

            accepted = loop.time()
            await dashboards[winner].accept(request_id)
            connected = await asyncio.gather(pcp_view.connected_at(), winner_view.connected_at())
            round_ = Round(ring_s, max(ring_s), max(connected) - accepted)
            await dashboards[winner].end(request_id)
        return round_
    finally:
        await winner_view.close()
        await pcp_view.close()


async def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="liaison-bench-curbside-"))
    port = free_port()
    # A long ring timeout: no round escalates while it is measured.
    env = liaison_env(workdir, port, LIAISON_CURBSIDE__RING_TIMEOUT_S="3600")
    cookie_name = load_settings(environ=env).sessions.cookie_name
    server = ServerProcess(
        "liaison serve", liaison_argv(), env, port, "/readyz", workdir / "liaison.log"
    )
    say(f"curbside bench: {os.cpu_count()} CPUs, load average at start {load_average()}")
    say(
        f"  {args.dashboards} psychiatrists on a primary shift, each with a dashboard socket; "
        f"{args.rounds} rounds of one call-now request"
    )
    clinic = await seed(env, args.dashboards)
    dashboards = [
        Dashboard(server.base_url, f"{cookie_name}={token}") for _, token in clinic.psychiatrists
    ]
    rounds: list[Round] = []
    try:
        await server.start()
        say(f"  liaison serve pid {server.pid} on {server.base_url}, SQLite in {workdir}")
        errors = await bounded(args.concurrency, [d.connect for d in dashboards])
        connected = sum(bool(d.sio.connected) for d in dashboards)
        say(f"  dashboards connected: {connected}/{len(dashboards)}")
        if errors:
            say(f"  {len(errors)} failed to connect, first: {errors[0]!r}"[:200])
            return 1
        say("")
        say(
            f"{'round':>5} {'ring p50 ms':>11} {'ring p99 ms':>11} {'last ring ms':>12} "
            f"{'accept->connected ms':>20}"
        )
        for i in range(args.rounds):
            await server.settle()
            progress(f"round {i + 1}")
            result = await one_round(
                server.base_url, cookie_name, clinic, dashboards, i % len(dashboards)
            )
            rounds.append(result)
            say(
                f"{i + 1:>5} {percentile_ms(result.ring_s, 0.5):>11.1f} "
                f"{percentile_ms(result.ring_s, 0.99):>11.1f} {result.last_ring_s * 1000:>12.1f} "
                f"{result.accept_to_connected_s * 1000:>20.1f}"
            )
    finally:
        await bounded(args.concurrency, [d.close for d in dashboards])
        await server.stop()
    every_ring = [s for r in rounds for s in r.ring_s]
    say("")
    say(
        f"all rounds: ring latency p50 {percentile_ms(every_ring, 0.5):.1f} ms, "
        f"p99 {percentile_ms(every_ring, 0.99):.1f} ms over {len(every_ring)} rings; "
        f"accept->connected median "
        f"{median_ms([r.accept_to_connected_s for r in rounds]):.1f} ms"
    )
    say("  ring latency: from the PCP's POST going out to each dashboard's curbside:ring.")
    say("  accept->connected: from curbside:accept going out until the winner's and the PCP's")
    say("  aiortc peer connections are both connected (joining on curbside:connected).")
    logged = server.log_path.read_text(errors="replace").splitlines()
    say(f"liaison server log: {len(logged)} lines at WARNING or above ({server.log_path})")
    say(f"load average at end {load_average()}")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if rounds else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dashboards", type=int, default=50, help="on-call dashboards")
    parser.add_argument("--rounds", type=int, default=5, help="requests, one after another")
    parser.add_argument("--concurrency", type=int, default=50, help="dashboards connecting at once")
    parser.add_argument("--keep", action="store_true", help="keep the temporary database and logs")
    args = parser.parse_args(argv)
    if args.dashboards < 1 or args.rounds < 1:
        parser.error("--dashboards and --rounds must be at least 1")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
