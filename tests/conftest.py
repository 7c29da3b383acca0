"""Factories shared by every test: settings on a real SQLite file, a migrated database, a real
app on 127.0.0.1, and personas that sign in."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.auth.roles import Role
from server.clock import FakeClock
from server.db.engine import create_engine
from server.db.migrate import upgrade
from server.settings import Settings, load_settings
from server.state import SERVICES

PASSWORD = "correct horse battery staple"


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for one test: its own SQLite file, cheap password hashing, console logs."""
    env = {
        "LIAISON_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'liaison.db'}",
        "LIAISON_PATHS__VAR_DIR": str(tmp_path / "var"),
        "LIAISON_PASSWORDS__TIME_COST": "1",
        "LIAISON_PASSWORDS__MEMORY_COST_KIB": "8",
        "LIAISON_PASSWORDS__PARALLELISM": "1",
        "LIAISON_LOGGING__FORMAT": "console",
    }
    env.update({k: str(v) for k, v in overrides.items()})
    return load_settings(environ=env)


_template_db: Path | None = None


async def migrate(settings: Settings) -> None:
    """Give the test's SQLite file the current schema: a copy of one database migrated once
    per test run (running every migration for every test would dominate the suite's time)."""
    global _template_db
    if _template_db is None:
        template = Path(tempfile.mkdtemp(prefix="liaison-template-")) / "template.db"
        engine = create_engine(
            make_settings(template.parent).database.model_copy(
                update={"url": f"sqlite+aiosqlite:///{template}"}
            )
        )
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()  # closing the last connection checkpoints the WAL
        _template_db = template
    target = Path(settings.database.url.split("///", 1)[1])
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_template_db, target)


async def error_code(response: aiohttp.ClientResponse, status: int) -> str:
    """The error's code, after checking the status and the ``{error: {code, message}}`` shape."""
    assert response.status == status, await response.text()
    body = await response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    code: str = body["error"]["code"]
    return code


def postgres_admin_url() -> str:
    """The test PostgreSQL server that `make test` starts (tools/test-postgres).

    Run outside `make test` without one, PostgreSQL tests are skipped and say how to run them;
    under `make test` and in CI the variable is always set, so nothing is skipped there.
    """
    url = os.environ.get("LIAISON_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI") or os.environ.get("LIAISON_TEST_REQUIRE_POSTGRES"):
            pytest.fail("LIAISON_TEST_POSTGRES_URL is not set: run the suite with `make test`")
        pytest.skip("needs PostgreSQL: run `make test`, or set LIAISON_TEST_POSTGRES_URL")
    return url


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@dataclass
class Persona:
    """A signed-in user with their own cookie jar, who sends the CSRF token on writes."""

    http: aiohttp.ClientSession
    base_url: str
    user_id: int
    username: str
    csrf_token: str

    def _headers(self, kw: dict[str, Any]) -> dict[str, str]:
        return {"X-CSRF-Token": self.csrf_token, **kw.pop("headers", {})}

    async def get(self, path: str, **kw: Any) -> aiohttp.ClientResponse:
        return await self.http.get(self.base_url + path, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> aiohttp.ClientResponse:
        return await self.http.post(
            self.base_url + path, json=json, headers=self._headers(kw), **kw
        )

    async def put(self, path: str, json: Any = None, **kw: Any) -> aiohttp.ClientResponse:
        return await self.http.put(self.base_url + path, json=json, headers=self._headers(kw), **kw)


AppFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
async def make_app(tmp_path: Path, clock: FakeClock) -> AsyncIterator[AppFactory]:
    """Start the real app on 127.0.0.1 over a migrated SQLite file; returns a client."""
    clients: list[TestClient[web.Request, web.Application]] = []

    async def factory(
        settings: Settings | None = None, **overrides: Any
    ) -> TestClient[web.Request, web.Application]:
        # The server's own address is its public URL, so that browsers and socket clients
        # sending an Origin header are same-origin, as behind a real deployment's proxy.
        port = free_port()
        overrides.setdefault("LIAISON_SERVER__PUBLIC_URL", f"http://127.0.0.1:{port}")
        settings = settings or make_settings(tmp_path, **overrides)
        await migrate(settings)
        app = create_app(settings, clock=clock)
        client: TestClient[web.Request, web.Application] = TestClient(
            TestServer(app, host="127.0.0.1", port=port)
        )
        await client.start_server()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.close()


@pytest.fixture
async def app_client(make_app: AppFactory) -> TestClient[web.Request, web.Application]:
    return await make_app()


SignIn = Callable[..., Awaitable[Persona]]


@pytest.fixture
async def sign_in(app_client: TestClient[web.Request, web.Application]) -> AsyncIterator[SignIn]:
    """Create a user of the given role (once) and sign them in with a cookie jar of their own."""
    sessions: list[aiohttp.ClientSession] = []

    async def factory(
        role: Role = Role.PSYCHIATRIST,
        username: str | None = None,
        client: TestClient[web.Request, web.Application] | None = None,
    ) -> Persona:
        base = client or app_client
        username = username or f"{role.value.replace('_', '-')}-1"
        svc = base.app[SERVICES]
        async with svc.db() as db:
            user = await svc.users.by_username(db, username)
        if user is None:
            user = await svc.users.create(username, username.title(), role, PASSWORD)
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        sessions.append(http)
        base_url = str(base.make_url("")).rstrip("/")
        response = await http.post(
            base_url + "/api/v1/auth/login", json={"username": username, "password": PASSWORD}
        )
        assert response.status == 200, await response.text()
        body = await response.json()
        return Persona(http, base_url, user.id, username, body["csrf_token"])

    yield factory
    for http in sessions:
        await http.close()
