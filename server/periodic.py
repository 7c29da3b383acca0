"""Periodic work in a server process: one tick every few seconds, for as long as the process
runs (the outbox, the curbside scheduler, the cluster heartbeat).

A tick that fails (the database briefly out of reach, a bug met by one row) must not stop the
ticks after it: the failure is logged with its traceback and the next tick comes on time.
Cancelling the task, on shutdown, stops it whether it is asleep or mid-tick.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import NoReturn


async def every(
    interval_s: float, tick: Callable[[], Awaitable[object]], *, log: logging.Logger, failed: str
) -> NoReturn:
    """Sleep ``interval_s``, then ``await tick()``, until cancelled; ``failed`` is the message
    logged (on ``log``) when a tick raises."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await tick()
        except Exception:
            log.exception(failed)
