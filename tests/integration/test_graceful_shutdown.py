"""SIGTERM to a real `liaison serve`: its sockets are told to reconnect elsewhere, new
connections are refused, a request already in flight still completes, and the process exits
0 within `cluster.shutdown_grace_s`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from server.auth.roles import Role
from server.shutdown import DRAINING, budget
from server.state import open_services
from signaling import events as ev
from signaling.draining import RECONNECT_WITHIN_MS
from signaling.probe import ProbeClient
from tests.conftest import PASSWORD, AppFactory, make_settings, migrate
from tests.integration.serve_support import ServeProcess, signed_in_cookie

pytestmark = pytest.mark.timeout(90)

USERNAME = "dr.rivera"


@asynccontextmanager
async def serving(tmp_path: Path, grace_s: float) -> AsyncIterator[ServeProcess]:
    """A `liaison serve` over a fresh database with one psychiatrist, USERNAME."""
    settings = make_settings(tmp_path)
    await migrate(settings)
    async with open_services(settings) as svc:
        await svc.users.create(USERNAME, "Dr. Rivera", Role.PSYCHIATRIST, PASSWORD)
    grace = {"LIAISON_CLUSTER__SHUTDOWN_GRACE_S": str(grace_s)}
    process = ServeProcess(settings, tmp_path / "serve.log", grace)
    await process.start()
    try:
        yield process
    finally:
        await process.stop()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServeProcess]:
    async with serving(tmp_path, grace_s=20) as process:
        yield process


class RawLogin:
    """A sign-in over a connection of its own, written byte by byte as a browser would."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def send(cls, port: int, *, hold_body: bool = False) -> RawLogin:
        """Write the whole request; or, with ``hold_body``, only its head with `Expect:
        100-continue`, returning once the server has begun handling it (aiohttp answers
        `100 Continue` from inside the request's handling)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = json.dumps({"username": USERNAME, "password": PASSWORD}).encode()
        head = (
            "POST /api/v1/auth/login HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            + ("Expect: 100-continue\r\n" if hold_body else "")
            + "Connection: close\r\n\r\n"
        ).encode()
        writer.write(head if hold_body else head + body)
        # Once drained, the bytes are in the server's receive buffer (loopback): it reads
        # them before it can act on a signal sent after this.
        await writer.drain()
        if hold_body:
            interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
            assert interim.startswith(b"HTTP/1.1 100"), interim
        return cls(reader, writer)

    async def response(self) -> bytes:
        try:
            return await asyncio.wait_for(self.reader.read(), 30)
        finally:
            self.writer.close()


@asynccontextmanager
async def writes_held(database_url: str) -> AsyncIterator[None]:
    """Hold the database's write lock (sign-ins wait for it) until the block ends."""
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[1]
        async with aiosqlite.connect(path, isolation_level=None) as db:
            await db.execute("BEGIN IMMEDIATE")
            yield
            await db.execute("ROLLBACK")
        return
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("LOCK TABLE login_sessions IN EXCLUSIVE MODE"))
            yield
            await conn.rollback()
    finally:
        await engine.dispose()


async def test_sigterm_moves_sockets_finishes_requests_and_exits(server: ServeProcess) -> None:
    cookie = await signed_in_cookie(server.base_url, USERNAME, "liaison_session")
    probe = ProbeClient(server.base_url, {"liaison_session": cookie}, send_video=False)
    notices: list[dict[str, Any]] = []
    draining = asyncio.Event()

    async def on_draining(data: dict[str, Any]) -> None:
        notices.append(data)
        draining.set()

    probe.sio.on(ev.SERVER_DRAINING, on_draining, namespace=ev.NAMESPACE)
    disconnected = asyncio.Event()
    probe.sio.on("disconnect", disconnected.set, namespace=ev.NAMESPACE)
    await probe.connect()
    try:
        async with writes_held(server.settings.database.url):
            # In flight: it cannot finish while the test holds the database's write lock.
            login = await RawLogin.send(server.port)
            server.terminate()
            async with asyncio.timeout(20):
                await draining.wait()
                await disconnected.wait()
            assert notices == [{"reconnect_within_ms": RECONNECT_WITHIN_MS}]
            # The listening socket closed before the sockets were told to move.
            with pytest.raises(OSError):
                await asyncio.open_connection("127.0.0.1", server.port)
        response = await login.response()
        assert response.startswith(b"HTTP/1.1 200"), response[:300]
        assert b"liaison_session=" in response
        assert await server.exit_code() == 0, server.log_tail()
    finally:
        await probe.close()
    assert "sockets drained sockets=1" in server.log_tail()


async def test_a_request_that_never_finishes_does_not_hold_the_shutdown(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path, grace_s=4) as server:
        stuck = await RawLogin.send(server.port, hold_body=True)  # its body never comes
        server.terminate()
        # aiohttp cancels it when the requests' share of the 4 s grace runs out; without that
        # the process would wait for it for ever (or, by aiohttp's default, a minute).
        assert await server.exit_code(timeout_s=30) == 0, server.log_tail()
        assert not (await stuck.response()).startswith(b"HTTP/1.1 200")


async def test_readyz_answers_503_once_draining_and_healthz_still_200(
    make_app: AppFactory,
) -> None:
    client = await make_app()
    assert (await client.get("/readyz")).status == 200
    client.app[DRAINING].begin()
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert (await ready.json())["status"] == "draining"
    assert (await client.get("/healthz")).status == 200


def test_the_grace_is_shared_out_and_never_exceeded() -> None:
    for grace in (0.0, 1.0, 4.0, 20.0, 600.0):
        share = budget(grace)
        assert share.sockets_s >= 0 and share.requests_s >= 0
        assert share.sockets_s + share.requests_s <= grace
    assert budget(20.0).requests_s >= 10  # most of it goes to requests
