"""The periodic-task loop (server/periodic.py) that the outbox, the curbside scheduler and the
cluster heartbeat run on."""

from __future__ import annotations

import asyncio
import logging

import pytest

from server.periodic import every

log = logging.getLogger("liaison.test.periodic")


async def test_a_failing_tick_is_logged_and_the_next_one_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0
    third = asyncio.Event()

    async def tick() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database unreachable")
        if calls == 3:
            third.set()

    with caplog.at_level(logging.ERROR, logger=log.name):
        task = asyncio.create_task(every(0, tick, log=log, failed="test task failed"))
        async with asyncio.timeout(10):
            await third.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    failures = [r for r in caplog.records if r.name == log.name]
    assert [r.getMessage() for r in failures] == ["test task failed"]
    assert failures[0].exc_info is not None and "unreachable" in str(failures[0].exc_info[1])


async def test_cancelling_stops_it_mid_tick() -> None:
    started = asyncio.Event()
    finished = False

    async def tick() -> None:
        nonlocal finished
        started.set()
        await asyncio.Event().wait()  # a tick that would never end on its own
        finished = True

    task = asyncio.create_task(every(0, tick, log=log, failed="test task failed"))
    async with asyncio.timeout(10):
        await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not finished
