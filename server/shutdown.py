"""Serving until a signal, then shutting down gracefully within ``cluster.shutdown_grace_s``.

On SIGTERM (or SIGINT), in this order::

    draining: /readyz answers 503, so a load balancer stops sending new work
    -> the listening socket is closed: new connections go to other processes
    -> on_shutdown: every socket is told `server:draining` and disconnected, so its client
       reconnects elsewhere and rejoins its room (signaling/draining.py)
    -> in-flight HTTP requests finish (aiohttp cancels those still running after their share
       of the grace)
    -> cleanup: background tasks stopped, the database closed -> exit 0

The whole sequence is bounded by the grace: a shutdown still unfinished at the deadline is
cut off and reported, so that an orchestrator's own kill timer never has to fire.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from typing import Any

from aiohttp import web

log = logging.getLogger("liaison.shutdown")


class Draining:
    """Whether this process has begun shutting down (read by /readyz)."""

    def __init__(self) -> None:
        self.active = False

    def begin(self) -> None:
        self.active = True


DRAINING = web.AppKey("draining", Draining)


@dataclass(frozen=True)
class Budget:
    """How a shutdown grace is shared out."""

    sockets_s: float  # telling sockets to move and disconnecting them
    requests_s: float  # in-flight requests finishing, before aiohttp cancels them


def budget(grace_s: float) -> Budget:
    # Sockets take milliseconds each; the rest, less a reserve for closing the database and
    # stopping tasks, goes to requests.
    sockets_s = min(5.0, grace_s / 4)
    reserve_s = min(3.0, grace_s / 8)
    return Budget(sockets_s, max(0.0, grace_s - sockets_s - reserve_s))


def attach_shutdown(app: web.Application) -> None:
    app[DRAINING] = Draining()

    async def begin_draining(app: web.Application) -> None:
        # Already begun on a signal; this covers any other runner's shutdown (tests, embedding).
        app[DRAINING].begin()

    app.on_shutdown.append(begin_draining)


async def serve_until_signalled(
    app: web.Application, host: str, port: int, grace_s: float, **server_kwargs: Any
) -> bool:
    """Serve ``app`` until SIGTERM or SIGINT, then shut down within ``grace_s``.

    Returns whether the shutdown finished in time (False: cut off at the deadline, with
    cleanup left undone).
    """
    runner = web.AppRunner(
        app, handle_signals=False, shutdown_timeout=budget(grace_s).requests_s, **server_kwargs
    )
    await runner.setup()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        # Kept during the shutdown too: a second signal does not cut it short.
        loop.add_signal_handler(signum, stop.set)
    try:
        try:
            await web.TCPSite(runner, host, port).start()
            await stop.wait()
        except BaseException:
            await runner.cleanup()
            raise
        app[DRAINING].begin()
        log.info("shutting down", extra={"grace_s": grace_s})
        try:
            async with asyncio.timeout(grace_s):
                await runner.cleanup()
        except TimeoutError:
            log.warning("shutdown cut off at the grace", extra={"grace_s": grace_s})
            return False
        log.info("shut down")
        return True
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
