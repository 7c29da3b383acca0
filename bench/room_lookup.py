"""What the room lookup costs that every relayed ``rtc:signal`` makes, without sockets.

    .venv/bin/python bench/room_lookup.py

``relay_signal`` (signaling/namespace.py) loads the visit's room from the database for every
message, to check that sender and receiver are both in its call. This script seeds rooms with
two clinicians in the call (through ``RoomStore.apply`` and ``rooms.join``, as the server
does), then times, per lookup, wall clock and CPU (this process, all threads):

* ``RoomStore.load``: what the handler does now, one at a time and many at once;
* a ``room_version`` read through the same session factory: the cheapest per-message check
  that the database can answer, as a cache with a version check would make;
* decoding a stored room (``json.loads`` + ``RoomState.from_dict``) and ``can_signal``;
* ``can_signal`` on a room held in memory: a per-process membership cache;
* the session sweeper's once-a-second ``SessionService.still_valid`` over every socket.

It also counts the SQLite connections the engine opened while loads ran at once: the pool
keeps 5, and every connection past them is opened and closed again (a thread and PRAGMAs each).
A script that prints figures, never a test.
"""

from __future__ import annotations

import sys
from pathlib import Path

# As in bench/signaling.py: this folder must not shadow the project's `signaling` package.
_BENCH_DIR = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0] or ".").resolve() == _BENCH_DIR:
    sys.path[0] = str(_BENCH_DIR.parent)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Awaitable, Callable, Sequence  # noqa: E402
from datetime import datetime  # noqa: E402

from sqlalchemy import event, select  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker  # noqa: E402

from bench.procs import load_average  # noqa: E402
from bench.seed import Room, seed_clinicians, seed_rooms  # noqa: E402
from server.db.engine import create_engine  # noqa: E402
from server.db.migrate import upgrade  # noqa: E402
from server.db.models import LoginSession, Visit  # noqa: E402
from server.settings import load_settings  # noqa: E402
from server.state import Services, open_services  # noqa: E402
from signaling import rooms  # noqa: E402
from signaling.room_store import RoomStore  # noqa: E402


def conns(room: Room) -> tuple[str, str]:
    return f"a{room.visit_id}", f"b{room.visit_id}"


async def timed(label: str, calls: int, run: Callable[[], Awaitable[None]]) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    await run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:<44} {wall / calls * 1e6:>9.0f} {cpu / calls * 1e6:>9.0f}", flush=True)


async def run(room_count: int, calls: int, at_once: int, sockets: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="liaison-room-lookup-"))
    env = {
        "LIAISON_DATABASE__URL": f"sqlite+aiosqlite:///{workdir / 'liaison.db'}",
        "LIAISON_PATHS__VAR_DIR": str(workdir / "var"),
        "LIAISON_LOGGING__LEVEL": "WARNING",
    }
    settings = load_settings(environ=env)
    try:
        engine = create_engine(settings.database)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()
        seeded = await seed_rooms(settings, room_count)
        async with open_services(settings) as svc:
            store = RoomStore(svc.db, settings.signaling, svc.clock, svc.visits.roster)
            for room in seeded:
                for conn, token_owner in zip(conns(room), (0, 1), strict=True):
                    roster = await svc.visits.roster(room.visit_id)
                    pid = roster.clinicians[token_owner].participant_id

                    def join(
                        s: rooms.RoomState, now: datetime, c: str = conn, p: str = pid
                    ) -> rooms.Transition:
                        return rooms.join(s, c, p, now)

                    await store.apply(room.visit_id, join)
            opened = [0]
            event.listen(svc.engine.sync_engine, "connect", lambda *_: _bump(opened))
            await report(store, svc.db, seeded, calls, at_once, opened)
            # The session sweeper asks this once a second for every socket of the process.
            await seed_clinicians(svc, max(0, sockets - 2 * len(seeded)))
            session_ids = [s.id for s in await _all_sessions(svc)][:sockets]

            async def sweeps() -> None:
                for _ in range(SWEEPS):
                    assert len(await svc.sessions.still_valid(session_ids)) == len(session_ids)

            await timed(
                f"session sweep over {len(session_ids)} sockets (once/s)",
                SWEEPS,
                sweeps,
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


SWEEPS = 10


async def _all_sessions(svc: Services) -> list[LoginSession]:
    async with svc.db() as db:
        return list((await db.execute(select(LoginSession))).scalars())


def _bump(counter: list[int]) -> None:
    counter[0] += 1


async def report(
    store: RoomStore,
    db: async_sessionmaker[AsyncSession],
    seeded: Sequence[Room],
    calls: int,
    at_once: int,
    opened: list[int],
) -> None:
    print(f"room lookup, per call: {len(seeded)} rooms, load average {load_average()}")
    print(f"{'':<44} {'wall µs':>9} {'cpu µs':>9}")
    ids = [r.visit_id for r in seeded]

    async def sequential_loads() -> None:
        for i in range(calls):
            room = await store.load(ids[i % len(ids)])
            assert rooms.can_signal(room, *conns(seeded[i % len(ids)]))

    await timed("RoomStore.load + can_signal, one at a time", calls, sequential_loads)

    async def concurrent_loads() -> None:
        for start in range(0, calls, at_once):
            await asyncio.gather(
                *(store.load(ids[i % len(ids)]) for i in range(start, start + at_once))
            )

    opened[0] = 0
    await timed(f"RoomStore.load, {at_once} at once", calls, concurrent_loads)
    print(f"  (SQLite connections opened meanwhile: {opened[0]}; the pool keeps 5)")

    async def version_reads() -> None:
        for i in range(calls):
            async with db() as session:
                await session.scalar(
                    select(Visit.room_version).where(Visit.id == ids[i % len(ids)])
                )

    await timed("SELECT room_version (a version check)", calls, version_reads)

    async with db() as session:
        visit = await session.get(Visit, ids[0])
    assert visit is not None and visit.room_state is not None
    raw = visit.room_state
    a, b = conns(seeded[0])

    async def decodes() -> None:
        for _ in range(calls):
            room = rooms.RoomState.from_dict(json.loads(raw))
            assert rooms.can_signal(room, a, b)

    await timed("json.loads + RoomState.from_dict + can_signal", calls, decodes)
    cached = {r.visit_id: await store.load(r.visit_id) for r in seeded}

    async def cached_checks() -> None:
        for i in range(calls):
            room = seeded[i % len(seeded)]
            assert rooms.can_signal(cached[room.visit_id], *conns(room))

    await timed("can_signal on a room held in memory", calls, cached_checks)
    print(f"stored room state: {len(raw)} bytes of JSON")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--at-once", type=int, default=100)
    parser.add_argument("--sockets", type=int, default=2000, help="for the session sweep")
    args = parser.parse_args(argv)
    asyncio.run(run(args.rooms, args.calls, args.at_once, args.sockets))
    return 0


if __name__ == "__main__":
    sys.exit(main())
