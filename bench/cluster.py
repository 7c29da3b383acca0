"""Cluster benchmark: what scale-out costs, as one process against two sharing Redis.

    .venv/bin/python bench/cluster.py                       # SQLite file shared by the processes
    .venv/bin/python bench/cluster.py --postgres postgresql+asyncpg://user@127.0.0.1:25432/postgres

In one run, over one database, with the same clients: first one ``liaison serve`` alone (the
default: no Redis, rooms cached in the process), then two ``liaison serve`` processes sharing
a Redis (python-socketio's AsyncRedisManager; no room cache) with the clients split across
them. It prints, for each, the signaling relay (pairs of clinicians ping-ponging an ICE
candidate, as bench/signaling.py does: round trip p50/p99, messages per second) and curbside
ring latency (a PCP's call-now request to every on-call dashboard's ``curbside:ring``,
p50/p99, as bench/curbside.py does), then the ratio two/one. With two processes, the two
clients of every pair are on different processes and half the dashboards are on the process
the request was not posted to: every relayed message, and half the rings, cross Redis.

Redis: a private ``redis-server`` on a free loopback port, started and stopped here, unless
``--redis URL``. PostgreSQL: ``--postgres ADMIN_URL`` creates a fresh database there (dropped
afterwards). A script that prints figures, never a test. See bench/README.md.
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
import functools  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import AsyncIterator, Sequence  # noqa: E402
from contextlib import AsyncExitStack, asynccontextmanager  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import aiohttp  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from bench.common import liaison_argv, liaison_env, percentile_ms, progress, say  # noqa: E402
from bench.curbside import (  # noqa: E402
    TIMEOUT_S,
    Clinic,
    Dashboard,
    Rings,
    pcp_headers,
    post_call_now,
)
from bench.curbside import seed as seed_clinic  # noqa: E402
from bench.procs import RedisServer, ServerProcess, free_port, load_average  # noqa: E402
from bench.relay_load import (  # noqa: E402
    ErrorCount,
    Figures,
    LiaisonPeer,
    LoadShape,
    Pair,
    bounded,
    joined_pair,
    measure,
)
from bench.seed import Room, seed_rooms  # noqa: E402
from server.settings import load_settings  # noqa: E402


@dataclass(frozen=True)
class Result:
    nodes: int
    relay: Figures
    rings_s: list[float]

    @property
    def cpu_per_msg_us(self) -> float:
        """Server CPU per relayed message, all processes: the first process's CPU in the window
        times the processes (each sends half the messages and delivers the other half)."""
        return self.relay.cpu_per_msg_us * self.nodes

    @property
    def ring_p50_ms(self) -> float:
        return percentile_ms(self.rings_s, 0.5)

    @property
    def ring_p99_ms(self) -> float:
        return percentile_ms(self.rings_s, 0.99)


# --- services ----------------------------------------------------------------------------------


@asynccontextmanager
async def private_redis(workdir: Path) -> AsyncIterator[str]:
    server = RedisServer(workdir)
    await server.start()
    try:
        yield server.url
    finally:
        await server.stop()


@asynccontextmanager
async def fresh_postgres(admin_url: str) -> AsyncIterator[str]:
    name = f"liaison_bench_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


# --- the two loads -----------------------------------------------------------------------------


async def relay(
    nodes: Sequence[ServerProcess], cookie_name: str, rooms: Sequence[Room], shape: LoadShape
) -> Figures:
    """Pairs ping-pong; with two nodes, A is on the first and B on the second."""
    errors = ErrorCount()
    log = errors.logger()
    first, second = nodes[0], nodes[-1]
    sides = [
        (
            LiaisonPeer(first.base_url, cookie_name, room.first, log),
            LiaisonPeer(second.base_url, cookie_name, room.second, log),
            room,
        )
        for room in rooms
    ]
    ready: list[Pair] = []

    async def set_up(a: LiaisonPeer, b: LiaisonPeer, room: Room) -> None:
        ready.append(await joined_pair(a, b, room.visit_id))

    peers = [p for a, b, _ in sides for p in (a, b)]
    try:
        started = time.monotonic()
        failed = await bounded(50, [functools.partial(set_up, *side) for side in sides])
        setup_s = time.monotonic() - started
        sample = await measure(ready, first, shape)  # the CPU figures are the first node's
        note = f"{len(failed)} set-up errors, first: {failed[0]!r}"[:160] if failed else ""
        return Figures(
            relay=f"{len(nodes)} node{'s' if len(nodes) > 1 else ''}",
            rooms=len(rooms),
            clients=len(peers),
            connected=sum(p.connected for p in peers),
            pairs=len(ready),
            setup_s=setup_s,
            seconds=sample.seconds,
            delivered=sample.window.delivered,
            rtts=sample.window.rtts,
            server=sample.server,
            bench=sample.bench,
            stalled=sample.window.stalled,
            note=note,
        )
    finally:
        await bounded(50, [p.close for p in peers])


async def rings(
    nodes: Sequence[ServerProcess], cookie_name: str, clinic: Clinic, rounds: int
) -> list[float]:
    """Call-now requests posted to the first node; every dashboard's ring is timed. With two
    nodes, every other dashboard is on the second."""
    dashboards = [
        Dashboard(nodes[i % len(nodes)].base_url, f"{cookie_name}={token}")
        for i, (_, token) in enumerate(clinic.psychiatrists)
    ]
    loop = asyncio.get_running_loop()
    base = nodes[0].base_url
    headers = pcp_headers(base, cookie_name, clinic)
    times: list[float] = []
    try:
        failed = await bounded(50, [d.connect for d in dashboards])
        if failed:
            raise RuntimeError(f"{len(failed)} dashboards failed to connect: {failed[0]!r}")
        async with aiohttp.ClientSession() as http:
            for _ in range(rounds):
                for node in nodes:
                    await node.settle()
                everyone = Rings(len(dashboards))
                for dashboard in dashboards:
                    dashboard.everyone = everyone
                async with asyncio.timeout(TIMEOUT_S):
                    submitted = loop.time()
                    request_id = await post_call_now(http, base, headers, clinic.patient_id)
                    await everyone.done.wait()
                times += [d.rang[request_id] - submitted for d in dashboards]
                cancel = f"{base}/api/v1/curbside/requests/{request_id}/cancel"
                async with http.post(cancel, json={}, headers=headers) as response:
                    if response.status != 200:
                        raise RuntimeError(f"cancel refused: {await response.text()}")
    finally:
        await bounded(50, [d.close for d in dashboards])
    return times


# --- running -----------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="liaison-bench-cluster-"))
    shape = LoadShape(duration_s=args.duration)
    say(f"cluster bench: {os.cpu_count()} CPUs, load average at start {load_average()}")
    results: list[Result] = []
    async with AsyncExitStack() as stack:
        database = (
            await stack.enter_async_context(fresh_postgres(args.postgres))
            if args.postgres
            else f"sqlite+aiosqlite:///{workdir / 'liaison.db'}"
        )
        redis = args.redis or await stack.enter_async_context(private_redis(workdir))
        say(f"  database: {make_url(database).get_backend_name()}; redis: {redis}")
        say(
            f"  relay: {args.rooms} rooms, 2 clinicians each, ping-pong for {args.duration:g} s; "
            f"curbside: {args.dashboards} dashboards, {args.rounds} call-now requests"
        )
        ports = [free_port(), free_port()]
        common = {"LIAISON_DATABASE__URL": database, "LIAISON_CURBSIDE__RING_TIMEOUT_S": "3600"}
        env = liaison_env(workdir, ports[0], **common)
        settings = load_settings(environ=env)
        cookie_name = settings.sessions.cookie_name
        started = time.monotonic()
        clinic = await seed_clinic(env, args.dashboards)  # migrates the fresh database
        rooms = await seed_rooms(settings, 2 * args.rooms)
        progress(f"seeded in {time.monotonic() - started:.1f} s")

        for count in (1, 2):
            nodes = [
                ServerProcess(
                    f"liaison serve {n + 1}",
                    liaison_argv(),
                    liaison_env(
                        workdir,
                        ports[n],
                        **common,
                        **(
                            {
                                "LIAISON_CLUSTER__REDIS_URL": redis,
                                "LIAISON_CLUSTER__NODE_ID": f"bench-{n + 1}",
                            }
                            if count == 2
                            else {}
                        ),
                    ),
                    ports[n],
                    "/readyz",
                    workdir / f"liaison-{count}-{n + 1}.log",
                )
                for n in range(count)
            ]
            try:
                for node in nodes:
                    await node.start()
                for node in nodes:
                    await node.settle()
                progress(f"{count} node(s): relay")
                mine = rooms[(count - 1) * args.rooms : count * args.rooms]
                figures = await relay(nodes, cookie_name, mine, shape)
                progress(f"{count} node(s): curbside rings")
                ring_times = await rings(nodes, cookie_name, clinic, args.rounds)
                results.append(Result(count, figures, ring_times))
            finally:
                for node in nodes:
                    await node.stop()

    say("")
    say(
        f"{'processes':>9} {'pairs':>7} {'msgs/s':>8} {'relay p50 ms':>12} {'relay p99 ms':>12} "
        f"{'cpu/msg µs':>10} {'rings':>5} {'ring p50 ms':>11} {'ring p99 ms':>11} {'stalled':>7}"
    )
    for r in results:
        f = r.relay
        line = (
            f"{r.nodes:>9} {f'{f.pairs}/{f.rooms}':>7} {f.msgs_per_s:>8.0f} {f.p50_ms:>12.2f} "
            f"{f.p99_ms:>12.2f} {r.cpu_per_msg_us:>10.0f} {len(r.rings_s):>5} "
            f"{r.ring_p50_ms:>11.1f} {r.ring_p99_ms:>11.1f} {f.stalled:>7}"
        )
        say(f"{line}  {f.note}" if f.note else line)
    if len(results) == 2:
        one, two = results

        def div(a: float, b: float) -> float:
            return a / b if b else float("nan")

        say(
            f"ratio two/one: msgs/s {div(two.relay.msgs_per_s, one.relay.msgs_per_s):.2f}, "
            f"relay p50 {div(two.relay.p50_ms, one.relay.p50_ms):.2f}x, "
            f"p99 {div(two.relay.p99_ms, one.relay.p99_ms):.2f}x, "
            f"cpu/msg {div(two.cpu_per_msg_us, one.cpu_per_msg_us):.2f}x; "
            f"ring p50 {div(two.ring_p50_ms, one.ring_p50_ms):.2f}x, "
            f"p99 {div(two.ring_p99_ms, one.ring_p99_ms):.2f}x"
        )
    say("  two processes: each pair's clients on different processes, every other dashboard")
    say("  on the process the request was not posted to; emits between them go through Redis.")
    say(f"load average at end {load_average()}")
    if args.keep:
        say(f"logs and database kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if len(results) == 2 else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=20, help="relay pairs")
    parser.add_argument("--duration", type=float, default=5.0, help="relay seconds measured")
    parser.add_argument("--dashboards", type=int, default=20, help="on-call dashboards")
    parser.add_argument("--rounds", type=int, default=5, help="curbside requests per setup")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("LIAISON_BENCH_POSTGRES_URL"),
        help="a PostgreSQL admin URL (a fresh database is made there); default: a SQLite file",
    )
    parser.add_argument("--redis", help="a Redis URL to use (default: start a private one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and logs")
    args = parser.parse_args(argv)
    if min(args.rooms, args.dashboards, args.rounds) < 1:
        parser.error("--rooms, --dashboards and --rounds must be at least 1")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
