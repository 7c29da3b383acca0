"""How long one socket.io emit waits on Redis while Redis is away: signaling/cluster.py
`RedisQueue`, a private ``redis-server`` on a free loopback port, stopped and paused here.

    .venv/bin/python bench/redis_outage.py

A socket's events are handled one after another (signaling/setup.py ``async_handlers=False``),
so whatever one emit waits for publishing, every later event of that socket waits too. The
emit is delivered to this process's own sockets before it is published: what is timed here is
the publish, which is all that stands between a handler and the socket's next event.

Three phases, each ``--emits`` emits to a room nobody is in, one after another:

* **up**: Redis running (the baseline);
* **down**: redis-server terminated (connections refused at once, as when it restarts);
* **paused**: redis-server stopped with SIGSTOP (it accepts nothing and answers nothing, as a
  hung server or a network partition does); each emit is cut off after ``--cap`` seconds.

For each: the first emit (the one that meets the outage), the median and the largest. A script
that prints figures, never a test. See bench/README.md.
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
import logging  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402

import socketio  # noqa: E402
from redis import asyncio as aioredis  # noqa: E402

from bench.common import progress, say  # noqa: E402
from bench.procs import RedisServer, load_average  # noqa: E402
from signaling.cluster import RedisQueue  # noqa: E402

CHANNEL = "liaison-bench-outage"


async def timed_emits(sio: socketio.AsyncServer, count: int, cap_s: float) -> list[float]:
    """Seconds each emit took; one cut off at ``cap_s`` counts as ``cap_s``."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        try:
            async with asyncio.timeout(cap_s):
                await sio.emit("bench:ping", {"n": 1}, to="nobody-here")
        except TimeoutError:
            pass
        times.append(time.perf_counter() - started)
    return times


async def published_again(sio: socketio.AsyncServer, url: str) -> None:
    """Emit until a subscriber of the channel receives one: the queue publishes again."""
    client = aioredis.Redis.from_url(url)
    subscription = client.pubsub(ignore_subscribe_messages=True)
    try:
        await subscription.subscribe(CHANNEL)
        async with asyncio.timeout(30):
            while True:
                await sio.emit("bench:ping", {"n": 0}, to="nobody-here")
                if await subscription.get_message(timeout=0.2) is not None:
                    return
    finally:
        await subscription.aclose()  # type: ignore[no-untyped-call]
        await client.aclose()


def row(phase: str, times: Sequence[float], cap_s: float) -> str:
    def ms(value: float) -> str:
        return f">={cap_s * 1000:,.0f}" if value >= cap_s else f"{value * 1000:,.1f}"

    return (
        f"{phase:<8} {len(times):>5} {ms(times[0]):>12} {ms(statistics.median(times)):>12}"
        f" {ms(max(times)):>12} {sum(times):>9.2f}"
    )


async def run(args: argparse.Namespace) -> int:
    # The queue's outage warning is expected here; keep the report readable.
    logging.basicConfig(level=logging.ERROR)
    say(f"load average at start {load_average()}")
    with tempfile.TemporaryDirectory(prefix="liaison-bench-redis-") as workdir:
        redis = RedisServer(Path(workdir))
        await redis.start()
        queue = RedisQueue(redis.url, CHANNEL)
        sio = socketio.AsyncServer(
            async_mode="aiohttp", client_manager=queue, logger=False, engineio_logger=False
        )
        queue.initialize()  # what the server's first connection does: start the listener
        try:
            await asyncio.sleep(0.5)  # the listener subscribes
            say(f"emits one after another; each cut off after {args.cap:g} s")
            say(f"{'phase':<8} {'emits':>5} {'first ms':>12} {'median ms':>12} {'max ms':>12}"
                f" {'total s':>9}")  # fmt: skip
            progress("Redis up")
            say(row("up", await timed_emits(sio, args.emits, args.cap), args.cap))

            progress("Redis stopped")
            await redis.stop()
            say(row("down", await timed_emits(sio, args.emits, args.cap), args.cap))

            progress("Redis started again, then paused")
            await redis.start()
            await published_again(sio, redis.url)
            redis.pause()
            say(row("paused", await timed_emits(sio, args.emits, args.cap), args.cap))
            redis.resume()
        finally:
            await queue.close()
            await redis.stop()
    say(f"load average at end {load_average()}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emits", type=int, default=10, help="emits timed in each phase")
    parser.add_argument("--cap", type=float, default=20.0, help="seconds before an emit is cut")
    args = parser.parse_args(argv)
    if args.emits < 1 or args.cap <= 0:
        parser.error("--emits must be at least 1 and --cap positive")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
