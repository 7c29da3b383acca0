"""Moving this process's sockets elsewhere when it shuts down (server/shutdown.py).

Every socket connected here is told ``server:draining`` and then disconnected; its client
reconnects after a short random delay, through the load balancer, to another process and
joins its room again, where the room's reconnect grace keeps an admitted patient admitted.
Media flows between the peers, not through this process, so a call carries on meanwhile.

Both go to this process's own sockets only (``ignore_queue``): sent through Redis, the event
could reach a client after its disconnect.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import socketio
from aiohttp import web

from server.shutdown import budget
from server.state import SETTINGS
from signaling import events as ev

log = logging.getLogger("liaison.signaling")

# Clients spread their reconnects over this window, so that a node's sockets do not all land
# on the others in the same instant.
RECONNECT_WITHIN_MS = 3000
# Disconnects run the room's disconnect transition (a database write) each.
CONCURRENT_DISCONNECTS = 20


def attach_draining(app: web.Application, sio: socketio.AsyncServer) -> None:
    async def drain_on_shutdown(app: web.Application) -> None:
        timeout_s = budget(app[SETTINGS].cluster.shutdown_grace_s).sockets_s
        try:
            async with asyncio.timeout(timeout_s):
                moved = await drain(sio)
        except TimeoutError:
            log.warning("sockets not all drained in time", extra={"timeout_s": timeout_s})
        else:
            log.info("sockets drained", extra={"sockets": moved})

    app.on_shutdown.append(drain_on_shutdown)


async def drain(sio: socketio.AsyncServer) -> int:
    """Tell every socket of this process to reconnect elsewhere, then disconnect it."""
    local: list[tuple[str, str]] = [
        (namespace, sid)
        for namespace in list(sio.namespace_handlers)
        for sid, _ in list(sio.manager.get_participants(namespace, None))
    ]
    notice: dict[str, Any] = {"reconnect_within_ms": RECONNECT_WITHIN_MS}
    for namespace, sid in local:
        await sio.emit(ev.SERVER_DRAINING, notice, to=sid, namespace=namespace, ignore_queue=True)
    gate = asyncio.Semaphore(CONCURRENT_DISCONNECTS)

    async def disconnect(namespace: str, sid: str) -> None:
        async with gate:
            # Queued after the notice on the same connection, so it arrives first.
            await sio.disconnect(sid, namespace=namespace, ignore_queue=True)

    results = await asyncio.gather(
        *(disconnect(namespace, sid) for namespace, sid in local), return_exceptions=True
    )
    for failure in [r for r in results if isinstance(r, Exception)][:1]:
        log.error("disconnect while draining failed", exc_info=failure)
    for eio_sid, environ in list(sio.environ.items()):
        await sio.eio.disconnect(eio_sid)  # returns once its close packet is written
        _close_websocket(environ)
    return len(local)


def _close_websocket(environ: dict[str, Any]) -> None:
    """Close the connection under a websocket from this end: a client may leave its end open
    (python-socketio's client leaves that to its HTTP session), and its handler would hold
    the shutdown until aiohttp cancels it. Data already written goes out first."""
    request = environ.get("aiohttp.request")
    if (
        isinstance(request, web.BaseRequest)
        and request.headers.get("Upgrade", "").lower() == "websocket"
        and request.transport is not None
    ):
        request.transport.close()
