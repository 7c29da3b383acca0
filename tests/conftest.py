"""Factories shared by every test: settings on a real database (a SQLite file, or with
LIAISON_TEST_DATABASE=postgresql a PostgreSQL database of the test's own), a migrated database,
one database on each back end for several processes to share (shared_database_url), a real app
on 127.0.0.1, and personas that sign in."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pyotp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import settings as hypothesis_settings
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from server.app import create_app
from server.auth.roles import Role
from server.auth.totp import VALID_WINDOW
from server.clock import FakeClock
from server.db.engine import create_engine
from server.db.migrate import upgrade
from server.settings import DatabaseSettings, Settings, load_settings
from server.state import SERVICES

PASSWORD = "correct horse battery staple"
T = TypeVar("T")

# Property tests have no per-example deadline: hypothesis's default (200 ms) fails an example that
# a loaded 2-core CI machine merely runs slowly, and calls it flaky when the rerun is quick. A
# test that hangs is still stopped by pytest's per-test timeout.
hypothesis_settings.register_profile("liaison", deadline=None)
hypothesis_settings.load_profile("liaison")


# The back end every test runs on: SQLite files by default; `LIAISON_TEST_DATABASE=postgresql`
# (make test-all's second pass) gives each test a database of its own on the private PostgreSQL
# server instead (tools/run-tests starts it).
TEST_DATABASE = os.environ.get("LIAISON_TEST_DATABASE", "sqlite")
if TEST_DATABASE not in ("sqlite", "postgresql"):
    raise pytest.UsageError(
        f"LIAISON_TEST_DATABASE is {TEST_DATABASE!r}: it must be sqlite or postgresql"
    )


def sqlite_url(tmp_path: Path, name: str = "liaison.db") -> str:
    """A SQLite file of the test's own, for tests that are about SQLite whatever the back end."""
    return f"sqlite+aiosqlite:///{tmp_path / name}"


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for one test: its own (empty) database, cheap password hashing, console logs.

    The database is a SQLite file under ``tmp_path``, or with LIAISON_TEST_DATABASE=postgresql
    a PostgreSQL database named after ``tmp_path`` (so the same ``tmp_path`` gives the same
    database within a test), dropped after the test. ``migrate()`` gives it the schema.
    """
    return _make_settings(tmp_path, create_database=True, **overrides)


def _make_settings(tmp_path: Path, *, create_database: bool, **overrides: Any) -> Settings:
    env = {
        "LIAISON_DATABASE__URL": sqlite_url(tmp_path),
        "LIAISON_PATHS__VAR_DIR": str(tmp_path / "var"),
        "LIAISON_PASSWORDS__TIME_COST": "1",
        "LIAISON_PASSWORDS__MEMORY_COST_KIB": "8",
        "LIAISON_PASSWORDS__PARALLELISM": "1",
        "LIAISON_LOGGING__FORMAT": "console",
    }
    if TEST_DATABASE == "postgresql" and "LIAISON_DATABASE__URL" not in overrides:
        databases = _postgres_databases()
        name = databases.name_for(tmp_path)
        if create_database and name not in databases.created:
            databases.create(name)
        env["LIAISON_DATABASE__URL"] = databases.url_for(name)
    env.update({k: str(v) for k, v in overrides.items()})
    return load_settings(environ=env)


_template_db: Path | None = None


async def migrate(settings: Settings) -> None:
    """Give the test's database the current schema, replacing whatever it held: a copy of one
    database migrated once per test run (running every migration for every test would dominate
    the suite's time). A PostgreSQL database other than the tests' own is migrated in place."""
    await migrate_url(settings.database.url)


async def migrate_url(database_url: str) -> None:
    """``migrate`` for a database named by its URL."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        if _postgres is not None and _postgres.owns(url.database or ""):
            await _postgres.create_migrated(url.database or "")
            return
        engine = create_engine(DatabaseSettings(url=database_url))
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()
        return
    global _template_db
    if _template_db is None:
        template = Path(tempfile.mkdtemp(prefix="liaison-template-")) / "template.db"
        engine = create_engine(DatabaseSettings(url=f"sqlite+aiosqlite:///{template}"))
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()  # closing the last connection checkpoints the WAL
        _template_db = template
    target = Path(database_url.split("///", 1)[1])
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_template_db, target)


class _PostgresDatabases:
    """Fresh PostgreSQL databases for tests on the private test server.

    Each migrated database is a copy of one template migrated once per run: CREATE DATABASE ...
    TEMPLATE copies files, far faster than running the migrations. Every database a test created
    is dropped after it. Names carry this process's id, so concurrent runs sharing the server
    never collide, and databases left behind by a killed run are dropped by the next one.

    The admin connection lives on an event loop of its own, in a thread: ``make_settings`` is
    synchronous and is called both inside and outside the tests' event loops.
    """

    def __init__(self, admin_url: str) -> None:
        self._admin = make_url(admin_url)
        self._prefix = f"lt_{os.getpid()}_"
        self._template = self._prefix + "template"
        self._template_ready = False
        self.created: list[str] = []  # by the running test
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._lock = asyncio.Lock()
        self._engine = create_async_engine(self._admin, isolation_level="AUTOCOMMIT")
        self._run(self._drop_left_behind())

    def name_for(self, tmp_path: Path) -> str:
        return self._prefix + hashlib.sha256(str(tmp_path).encode()).hexdigest()[:24]

    def url_for(self, name: str) -> str:
        return self._admin.set(database=name).render_as_string(hide_password=False)

    def owns(self, name: str) -> bool:
        return name.startswith(self._prefix) and name != self._template

    def create(self, name: str) -> None:
        """An empty database (like a new SQLite file)."""
        self._run(self._create(name, "template0"))
        self.created.append(name)

    async def create_migrated(self, name: str) -> None:
        future = asyncio.run_coroutine_threadsafe(self._create_migrated(name), self._loop)
        await asyncio.wrap_future(future)
        if name not in self.created:
            self.created.append(name)

    def drop_created(self) -> None:
        names, self.created = self.created, []
        for name in names:
            self._run(self._drop(name))

    def close(self) -> None:
        self.drop_created()
        self._run(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    async def _admin_sql(self, *statements: str) -> None:
        async with self._lock, self._engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))

    async def _drop_left_behind(self) -> None:
        async with self._engine.connect() as conn:
            found = await conn.execute(
                text(r"SELECT datname FROM pg_database WHERE datname LIKE 'lt\_%'")
            )
            names = list(found.scalars())
        for name in names:
            pid = name.split("_")[1]
            if pid.isdigit() and not _process_alive(int(pid)):
                await self._drop(name)

    async def _create(self, name: str, template: str) -> None:
        await self._admin_sql(
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
            # FILE_COPY: for a small database, copying its files beats WAL-logging every page.
            f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY',
        )

    async def _create_migrated(self, name: str) -> None:
        if not self._template_ready:
            await self._create(self._template, "template0")
            engine = create_engine(DatabaseSettings(url=self.url_for(self._template)))
            try:
                await upgrade(engine)
            finally:
                await engine.dispose()  # a template must have no connections when copied
            self._template_ready = True
        await self._create(name, self._template)

    async def _drop(self, name: str) -> None:
        await self._admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def _close(self) -> None:
        await self._drop(self._template)
        await self._engine.dispose()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_postgres: _PostgresDatabases | None = None


def _postgres_databases() -> _PostgresDatabases:
    global _postgres
    if _postgres is None:
        url = os.environ.get("LIAISON_TEST_POSTGRES_URL")
        if not url:
            pytest.fail(
                "LIAISON_TEST_DATABASE=postgresql needs the test PostgreSQL server: run "
                "`LIAISON_TEST_DATABASE=postgresql tools/run-tests ...` (or `make test-all`)"
            )
        _postgres = _PostgresDatabases(url)
    return _postgres


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sqlite_only(reason): runs on SQLite only, as tests about SQLite itself (its file, its "
        "WAL) and shared_database_url's [sqlite] case do; skipped when the suite runs on "
        "PostgreSQL (LIAISON_TEST_DATABASE=postgresql)",
    )


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _postgres is not None:
        _postgres.close()


@pytest.fixture(autouse=True)
def _test_database(request: pytest.FixtureRequest) -> Iterator[None]:
    """Skips SQLite-only tests on PostgreSQL; drops the PostgreSQL databases a test created,
    after its other fixtures (its apps and their engines) are gone."""
    if TEST_DATABASE == "postgresql":
        marker = request.node.get_closest_marker("sqlite_only")
        if marker is not None:
            reason = marker.args[0] if marker.args else "about SQLite itself"
            pytest.skip(f"SQLite only ({reason}): runs in the SQLite pass")
    yield
    # Also in the SQLite pass, which makes PostgreSQL databases for postgres_database_url.
    if _postgres is not None:
        _postgres.drop_created()


@pytest.fixture
async def postgres_database_url(tmp_path: Path) -> str:
    """A fresh, migrated PostgreSQL database of the test's own on the test server, whatever
    LIAISON_TEST_DATABASE says, for several engines, processes or apps to share; dropped after
    the test. Not the database ``make_settings(tmp_path)`` gives in the PostgreSQL pass."""
    return await _shared_postgres_database(tmp_path)


async def _shared_postgres_database(tmp_path: Path) -> str:
    postgres_admin_url()  # skips with a hint, or fails in CI, when there is no server
    databases = _postgres_databases()
    name = databases.name_for(tmp_path / "shared")
    await databases.create_migrated(name)
    return databases.url_for(name)


@pytest.fixture(
    params=[
        # A SQLite file in either pass, so in the PostgreSQL pass this case would only repeat
        # the SQLite pass's run of it: skipped there, by the sqlite_only marker.
        pytest.param(
            "sqlite", marks=pytest.mark.sqlite_only("the [sqlite] case of a two-back-end test")
        ),
        "postgresql",
    ]
)
async def shared_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One migrated database that several engines, processes or apps open at once, on each back
    end in turn: ``[sqlite]`` a SQLite file (in the SQLite pass only), ``[postgresql]`` a
    PostgreSQL database as ``postgres_database_url`` (in both passes: ``make test`` alone covers
    several processes on PostgreSQL). Never the test's own database, which ``make_app`` and
    ``migrate`` replace."""
    if request.param == "postgresql":
        return await _shared_postgres_database(tmp_path)
    url = sqlite_url(tmp_path, "shared.db")
    await migrate_url(url)
    return url


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


def redis_url() -> str:
    """The test Redis server that `make test` starts (tools/test-redis), handled like
    PostgreSQL: skipped with a hint outside `make test`, required in CI."""
    url = os.environ.get("LIAISON_TEST_REDIS_URL")
    if not url:
        if os.environ.get("CI") or os.environ.get("LIAISON_TEST_REQUIRE_REDIS"):
            pytest.fail("LIAISON_TEST_REDIS_URL is not set: run the suite with `make test`")
        pytest.skip("needs Redis: run `make test`, or set LIAISON_TEST_REDIS_URL")
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
    """Start the real app on 127.0.0.1 over a migrated database; returns a client."""
    clients: list[TestClient[web.Request, web.Application]] = []

    async def factory(
        settings: Settings | None = None, **overrides: Any
    ) -> TestClient[web.Request, web.Application]:
        # The server's own address is its public URL, so that browsers and socket clients
        # sending an Origin header are same-origin, as behind a real deployment's proxy.
        port = free_port()
        overrides.setdefault("LIAISON_SERVER__PUBLIC_URL", f"http://127.0.0.1:{port}")
        # migrate() creates the test's database, so make no empty one first.
        settings = settings or _make_settings(tmp_path, create_database=False, **overrides)
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


async def sign_in_at(base_url: str, username: str, user_id: int) -> Persona:
    """A persona signed in on the server at ``base_url``, with a cookie jar of its own (the
    caller closes ``persona.http``)."""
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    response = await http.post(
        base_url + "/api/v1/auth/login", json={"username": username, "password": PASSWORD}
    )
    assert response.status == 200, await response.text()
    return Persona(http, base_url, user_id, username, (await response.json())["csrf_token"])


async def sign_in_on(
    client: TestClient[web.Request, web.Application],
    role: Role = Role.PSYCHIATRIST,
    username: str | None = None,
) -> Persona:
    """Create a user of the given role (once) and sign them in on ``client``'s app (the caller
    closes ``persona.http``)."""
    username = username or f"{role.value.replace('_', '-')}-1"
    svc = client.app[SERVICES]
    async with svc.db() as db:
        user = await svc.users.by_username(db, username)
    if user is None:
        user = await svc.users.create(username, username.title(), role, PASSWORD)
    return await sign_in_at(str(client.make_url("")).rstrip("/"), username, user.id)


@pytest.fixture
async def sign_in(app_client: TestClient[web.Request, web.Application]) -> AsyncIterator[SignIn]:
    """Create a user of the given role (once) and sign them in with a cookie jar of their own."""
    sessions: list[aiohttp.ClientSession] = []

    async def factory(
        role: Role = Role.PSYCHIATRIST,
        username: str | None = None,
        client: TestClient[web.Request, web.Application] | None = None,
    ) -> Persona:
        persona = await sign_in_on(client or app_client, role, username)
        sessions.append(persona.http)
        return persona

    yield factory
    for http in sessions:
        await http.close()


def wrong_totp_code(secret: str, at: datetime) -> str:
    """A six-digit code that ``secret`` does not accept at ``at`` (any step the server would
    try): a fixed "000000" is right about once in 300,000 runs."""
    accepted = {
        pyotp.TOTP(secret).at(at + timedelta(seconds=30 * step))
        for step in range(-VALID_WINDOW, VALID_WINDOW + 1)
    }
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in accepted)
