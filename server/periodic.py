"""Periodic work in a server process: one tick every few seconds, for as long as the process
runs (the outbox, the curbside scheduler, the cluster heartbeat).

A tick that fails (the database briefly out of reach, a bug met by one row) must not stop the
ticks after it: the failure is logged with its traceback and the next tick comes on time.
Cancelling the task, on shutdown, stops it whether it is asleep or mid-tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import NoReturn, Protocol, TypeVar

from aiohttp import web


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


class Periodic(Protocol):
    async def run(self) -> object: ...


P = TypeVar("P", bound=Periodic)


def attach_periodic(
    app: web.Application, key: web.AppKey[P], make: Callable[[web.Application], P]
) -> None:
    """While the app runs, run ``make(app).run()``, kept under ``key`` (tests call its tick).
    Attach after the services' context: ``make`` reads them."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        app[key] = periodic = make(app)
        task = asyncio.create_task(periodic.run(), name=type(periodic).__name__)
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(ctx)
