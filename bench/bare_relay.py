"""The baseline for bench/signaling.py: the least a WebSocket relay can do in aiohttp.

Clients connect to ``/ws?id=<name>`` and send JSON ``{"to": <name>, "payload": ...}``; the
relay forwards ``{"from": <sender>, "payload": ...}`` to the named client. No auth, no
database, no validation, no acks. ``/stats`` reports connected clients and messages relayed.

    python bench/bare_relay.py --port 8765
"""

from __future__ import annotations

import argparse
import json

from aiohttp import WSMsgType, web

CLIENTS = web.AppKey("clients", dict[str, web.WebSocketResponse])
RELAYED = web.AppKey("relayed", list[int])


async def relay(request: web.Request) -> web.WebSocketResponse:
    clients = request.app[CLIENTS]
    relayed = request.app[RELAYED]
    name = request.query.get("id", "")
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    if not name or name in clients:
        await ws.close(message=b"id missing or taken")
        return ws
    clients[name] = ws
    try:
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            target = clients.get(data["to"])
            if target is not None:
                await target.send_str(json.dumps({"from": name, "payload": data["payload"]}))
                relayed[0] += 1
    finally:
        clients.pop(name, None)
    return ws


async def stats(request: web.Request) -> web.Response:
    return web.json_response(
        {"clients": len(request.app[CLIENTS]), "relayed": request.app[RELAYED][0]}
    )


def create_app() -> web.Application:
    app = web.Application()
    app[CLIENTS] = {}
    app[RELAYED] = [0]
    app.router.add_get("/ws", relay)
    app.router.add_get("/stats", stats)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    web.run_app(create_app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
