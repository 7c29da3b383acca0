"""Signaling benchmark: Liaison's `/rtc` relay against a bare aiohttp WebSocket relay.

    .venv/bin/python bench/signaling.py              # 10 and 100 rooms
    .venv/bin/python bench/signaling.py --rooms 1000

Starts a real ``liaison serve`` (its own SQLite file, seeded here) and bench/bare_relay.py on
free 127.0.0.1 ports, then for each room count connects two clients per room to each relay
and has every pair ping-pong an ICE candidate for a fixed window. It prints relay round-trip
p50/p99, relayed messages per second and server CPU per relayed message for both, then aiortc
time to connected through Liaison next to a direct in-process exchange, and last the ratio
Liaison/bare. A script that prints figures, never a test. See bench/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder is first on sys.path, and this file's name would hide the
# project's `signaling` package. The project's root goes there instead.
_BENCH_DIR = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0] or ".").resolve() == _BENCH_DIR:
    sys.path[0] = str(_BENCH_DIR.parent)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import functools  # noqa: E402
import gc  # noqa: E402
import os  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import dataclass, replace  # noqa: E402

import aiohttp  # noqa: E402

from bench.common import RATE_LIMIT, liaison_argv, liaison_env, progress, say  # noqa: E402
from bench.connect_time import ConnectTimes, connect_times, median_ms  # noqa: E402
from bench.procs import ServerProcess, free_port, load_average  # noqa: E402
from bench.relay_load import (  # noqa: E402
    BarePeer,
    ErrorCount,
    Figures,
    LiaisonPeer,
    LoadShape,
    Pair,
    Peer,
    bounded,
    joined_pair,
    measure,
)
from bench.seed import Room, seed_rooms  # noqa: E402
from server.db.engine import create_engine  # noqa: E402
from server.db.migrate import upgrade  # noqa: E402
from server.settings import Settings, load_settings  # noqa: E402

DEFAULT_ROOMS = (10, 100)


async def prepare_database(settings: Settings, rooms: int) -> list[Room]:
    engine = create_engine(settings.database)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    return await seed_rooms(settings, rooms)


async def load_liaison(
    server: ServerProcess,
    cookie_name: str,
    rooms: Sequence[Room],
    concurrency: int,
    shape: LoadShape,
) -> Figures:
    client_errors = ErrorCount()
    log = client_errors.logger()
    sides = [
        (
            LiaisonPeer(server.base_url, cookie_name, room.first, log),
            LiaisonPeer(server.base_url, cookie_name, room.second, log),
            room,
        )
        for room in rooms
    ]
    ready: list[Pair] = []

    async def set_up(a: LiaisonPeer, b: LiaisonPeer, room: Room) -> None:
        ready.append(await joined_pair(a, b, room.visit_id))

    peers: list[Peer] = [p for a, b, _ in sides for p in (a, b)]
    try:
        started = time.monotonic()
        errors = await bounded(
            concurrency, [functools.partial(set_up, a, b, room) for a, b, room in sides]
        )
        setup = SetUp(peers, ready, errors, time.monotonic() - started)
        figures = await _measured("liaison", server, setup, shape)
        # Counted up to the end of the window: closing makes the clients log as well.
        if client_errors.count:
            logged = f"clients logged {client_errors.count} errors, first: {client_errors.first}"
            figures = replace(figures, note=f"{figures.note}; {logged}".lstrip("; "))
        return figures
    finally:
        await bounded(concurrency, [p.close for p in peers])


async def load_bare(
    server: ServerProcess, rooms: int, concurrency: int, shape: LoadShape
) -> Figures:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        sides = [
            (BarePeer(server.base_url, http, f"a{i}"), BarePeer(server.base_url, http, f"b{i}"))
            for i in range(rooms)
        ]
        ready: list[Pair] = []

        async def set_up(a: BarePeer, b: BarePeer) -> None:
            await a.connect()
            await b.connect()
            pair = Pair(a, b)
            await pair.round_trip(checked=True)
            ready.append(pair)

        peers: list[Peer] = [p for a, b in sides for p in (a, b)]
        try:
            started = time.monotonic()
            errors = await bounded(concurrency, [functools.partial(set_up, a, b) for a, b in sides])
            setup = SetUp(peers, ready, errors, time.monotonic() - started)
            async with http.get(server.base_url + "/stats") as response:
                counted = (await response.json())["clients"]
            return await _measured("bare", server, setup, shape, f"relay counts {counted}")
        finally:
            await bounded(concurrency, [p.close for p in peers])


@dataclass(frozen=True)
class SetUp:
    peers: Sequence[Peer]
    ready: Sequence[Pair]  # pairs that joined and passed a checked round trip
    errors: Sequence[BaseException]
    seconds: float


async def _measured(
    relay: str, server: ServerProcess, setup: SetUp, shape: LoadShape, note: str = ""
) -> Figures:
    connected = sum(p.connected for p in setup.peers)
    # Everything set up so far lives for the whole run: keep the collector off it, so that this
    # process (the load) spends its time sending, not rescanning 2,000 clients.
    gc.collect()
    gc.freeze()
    try:
        sample = await measure(setup.ready, server, shape)
    finally:
        gc.unfreeze()
    if setup.errors:
        first = f"{type(setup.errors[0]).__name__}: {setup.errors[0]}"[:160]
        note = f"{note}; {len(setup.errors)} set-up errors, first: {first}".lstrip("; ")
    return Figures(
        relay=relay,
        rooms=len(setup.peers) // 2,
        clients=len(setup.peers),
        connected=connected,
        pairs=len(setup.ready),
        setup_s=setup.seconds,
        seconds=sample.seconds,
        delivered=sample.window.delivered,
        rtts=sample.window.rtts,
        server=sample.server,
        bench=sample.bench,
        stalled=sample.window.stalled,
        note=note,
    )


HEADER = (
    f"{'rooms':>5} {'relay':<8} {'connected':>11} {'pairs':>5} {'set-up':>6} {'msgs/s':>8} "
    f"{'p50 ms':>8} {'p99 ms':>8} {'cpu/msg µs':>10} {'server cpu/wait':>15} "
    f"{'bench cpu/wait':>14} {'stalled':>7}"
)


def row(f: Figures) -> str:
    server = f"{f.share(f.server.cpu_s):.0%}/{f.share(f.server.wait_s):.0%}"
    bench = f"{f.share(f.bench.cpu_s):.0%}/{f.share(f.bench.wait_s):.0%}"
    line = (
        f"{f.rooms:>5} {f.relay:<8} {f'{f.connected}/{f.clients}':>11} {f.pairs:>5} "
        f"{f.setup_s:>6.1f} {f.msgs_per_s:>8.0f} {f.p50_ms:>8.2f} {f.p99_ms:>8.2f} "
        f"{f.cpu_per_msg_us:>10.0f} {server:>15} {bench:>14} {f.stalled:>7}"
    )
    return f"{line}  {f.note}" if f.note else line


def ratio(liaison: Figures, bare: Figures) -> str:
    def div(a: float, b: float) -> float:
        return a / b if b else float("nan")

    return (
        f"ratio liaison/bare ({liaison.rooms} rooms): "
        f"msgs/s {div(liaison.msgs_per_s, bare.msgs_per_s):.2f}, "
        f"cpu/msg {div(liaison.cpu_per_msg_us, bare.cpu_per_msg_us):.1f}x, "
        f"p50 {div(liaison.p50_ms, bare.p50_ms):.1f}x, p99 {div(liaison.p99_ms, bare.p99_ms):.1f}x"
    )


async def run(args: argparse.Namespace) -> int:
    counts: list[int] = [args.rooms] if args.rooms else list(DEFAULT_ROOMS)
    shape = LoadShape(duration_s=args.duration)
    workdir = Path(tempfile.mkdtemp(prefix="liaison-bench-"))
    liaison_port, bare_port = free_port(), free_port()
    env = liaison_env(workdir, liaison_port)
    settings = load_settings(environ=env)
    argv = shlex.split(args.serve_command) if args.serve_command else liaison_argv()
    liaison = ServerProcess(
        "liaison serve", argv, env, liaison_port, "/readyz", workdir / "liaison.log"
    )
    bare = ServerProcess(
        "bare relay",
        [sys.executable, str(_BENCH_DIR / "bare_relay.py"), "--port", str(bare_port)],
        env,
        bare_port,
        "/stats",
        workdir / "bare.log",
    )
    say(f"signaling bench: {os.cpu_count()} CPUs, load average at start {load_average()}")
    say(
        f"  each room: 2 clinicians on one visit, both in its call; pairs ping-pong an ICE "
        f"candidate for {shape.duration_s:g} s after a warm-up"
    )
    say(
        f"  liaison serve: SQLite in {workdir}, logging WARNING, signaling rate limit raised to "
        f"{RATE_LIMIT:,} events/s (burst {RATE_LIMIT:,}) so the bench is not throttled"
    )
    results: list[tuple[Figures, Figures]] = []
    connect: ConnectTimes | None = None
    try:
        started = time.monotonic()
        rooms = await prepare_database(settings, sum(counts) + args.reps)
        progress(f"seeded {len(rooms)} visits in {time.monotonic() - started:.1f} s")
        await liaison.start()
        await bare.start()
        say(f"  liaison pid {liaison.pid} on {liaison.base_url}: {shlex.join(argv)}")
        say(f"  bare relay pid {bare.pid} on {bare.base_url}")
        cookie = settings.sessions.cookie_name
        if args.reps:
            progress(f"aiortc time to connected, {args.reps} repetitions each way")
            connect = await connect_times(liaison.base_url, cookie, rooms[: args.reps])
        say("")
        say(HEADER)
        offset = args.reps
        for count in counts:
            await liaison.settle()
            progress(f"liaison, {count} rooms")
            ours = await load_liaison(
                liaison, cookie, rooms[offset : offset + count], args.concurrency, shape
            )
            offset += count
            say(row(ours))
            await bare.settle()
            progress(f"bare relay, {count} rooms")
            theirs = await load_bare(bare, count, args.concurrency, shape)
            say(row(theirs))
            results.append((ours, theirs))
    except BaseException:
        progress(f"failed: the database and the servers' logs are kept in {workdir}")
        raise
    finally:
        await liaison.stop()
        await bare.stop()
    say("")
    say("  connected: clients connected/started; pairs: pairs that joined and relayed once;")
    say("  set-up: seconds to connect, join and check every pair, before the warm-up.")
    say("  server / bench cpu/wait: CPU used by the relay / by this load process (all threads),")
    say("  and time its event loop waited for a CPU held by other work, as shares of the window.")
    if connect is not None:
        say(
            f"aiortc time to connected, median of {args.reps} (ms): through Liaison "
            f"{median_ms(connect.through_liaison_s):.1f}, direct in one process "
            f"{median_ms(connect.direct_s):.1f}"
        )
        say(f"  through Liaison, from the second room:join: {connect.stages_ms()}")
    logged = liaison.log_path.read_text(errors="replace").splitlines()
    where = str(liaison.log_path) if args.keep else "--keep keeps it"
    say(f"liaison server log: {len(logged)} lines at WARNING or above ({where})")
    say(f"load average at end {load_average()}")
    for ours, theirs in results:
        say(ratio(ours, theirs))
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if results else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rooms", type=int, help="one room count (default: 10, then 100); 1000 is documented"
    )
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument(
        "--reps", type=int, default=5, help="aiortc connect repetitions each way (0: skip)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=50, help="clients connecting or joining at once"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary database and logs")
    parser.add_argument(
        "--serve-command",
        help="run this instead of `liaison serve` (a variant to compare: a wrapper that tunes "
        "or patches the server, then calls server.cli.main); it gets the same LIAISON_* "
        "environment, and its own pid must be the server's",
    )
    args = parser.parse_args(argv)
    if args.rooms is not None and args.rooms < 1:
        parser.error("--rooms must be at least 1")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
