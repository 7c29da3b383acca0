"""Migrations from empty, the start-up schema check, SQLite settings, and the command line."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import inspect, text

from server.app import create_app
from server.db.engine import create_engine
from server.db.migrate import SchemaOutdated, current_revision, head_revision, upgrade
from server.db.models import Base
from server.demo import DEMO_PASSWORD
from server.settings import load_settings
from tests.conftest import free_port, make_settings

PROJECT = Path(__file__).resolve().parents[2]


async def test_migrations_build_the_whole_schema_from_empty(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    engine = create_engine(settings.database)
    try:
        assert await current_revision(engine) is None
        await upgrade(engine)
        assert await current_revision(engine) == head_revision()
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert set(Base.metadata.tables) <= tables
        await upgrade(engine)  # running again is a no-op
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


async def test_the_models_and_the_migrations_agree(tmp_path: Path) -> None:
    """Autogenerate against a migrated database finds nothing left to migrate."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    settings = make_settings(tmp_path)
    engine = create_engine(settings.database)
    try:
        await upgrade(engine)
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
            )
        assert diff == []
    finally:
        await engine.dispose()


@pytest.mark.sqlite_only("the SQLite pragmas")
async def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    engine = create_engine(make_settings(tmp_path).database)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
    finally:
        await engine.dispose()


async def test_the_server_refuses_to_start_on_an_outdated_schema(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    server = TestServer(create_app(settings))
    with pytest.raises(SchemaOutdated, match="liaison migrate"):
        await server.start_server()
    await server.close()


CLI_ENV = {
    "LIAISON_PASSWORDS__TIME_COST": "1",
    "LIAISON_PASSWORDS__MEMORY_COST_KIB": "8",
    "LIAISON_PASSWORDS__PARALLELISM": "1",
}


def run_cli(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {
        **CLI_ENV,
        "PATH": "/usr/bin:/bin",
        "LIAISON_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        # Not the checkout's own var/ (key ring, outbox).
        "LIAISON_PATHS__VAR_DIR": str(tmp_path / "var"),
    }
    return subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "server.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT,
        timeout=60,
    )


def test_cli_serve_explains_an_outdated_schema(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "serve", "--port", "0")
    assert result.returncode == 1
    assert "run `liaison migrate` first" in result.stderr


def test_cli_reports_bad_configuration_by_name(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "migrate"],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "LIAISON_SERVER__PORT": "eighty"},
    )
    assert result.returncode == 2
    assert "LIAISON_SERVER__PORT" in result.stderr


def test_cli_migrates_then_creates_the_first_admin(tmp_path: Path) -> None:
    assert run_cli(tmp_path, "migrate").returncode == 0
    created = run_cli(
        tmp_path,
        "users",
        "add",
        "root.admin",
        "--role",
        "admin",
        "--password-stdin",
        stdin="a long admin passphrase\n",
    )
    assert created.returncode == 0, created.stderr
    assert "root.admin (admin" in created.stdout
    again = run_cli(
        tmp_path,
        "users",
        "add",
        "root.admin",
        "--role",
        "admin",
        "--password-stdin",
        stdin="a long admin passphrase\n",
    )
    assert again.returncode == 1
    assert "taken" in again.stderr
    weak = run_cli(
        tmp_path, "users", "add", "b", "--role", "admin", "--password-stdin", stdin="x\n"
    )
    assert weak.returncode == 1


async def test_demo_seeds_every_workflow_once(tmp_path: Path) -> None:
    """`liaison demo` twice, then the seeded data through the API, as each demo account sees
    it: nothing twice, and something to try in every workflow."""
    first = await asyncio.to_thread(run_cli, tmp_path, "demo", "--no-serve")
    assert first.returncode == 0, first.stderr
    assert "dr.rivera" in first.stdout and "/registry" in first.stdout
    second = await asyncio.to_thread(run_cli, tmp_path, "demo", "--no-serve")
    assert second.returncode == 0, second.stderr

    port = free_port()
    settings = load_settings(
        environ={
            **CLI_ENV,
            "LIAISON_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
            "LIAISON_PATHS__VAR_DIR": str(tmp_path / "var"),
            "LIAISON_SERVER__PUBLIC_URL": f"http://127.0.0.1:{port}",
        }
    )
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1", port=port)) as app:

        async def as_user(username: str) -> ClientSession:
            http = ClientSession(cookie_jar=CookieJar(unsafe=True))
            sessions.append(http)
            login = {"username": username, "password": DEMO_PASSWORD}
            signed_in = await http.post(app.make_url("/api/v1/auth/login"), json=login)
            assert signed_in.status == 200, await signed_in.text()
            return http

        async def get(http: ClientSession, path: str) -> Any:
            response = await http.get(app.make_url("/api/v1" + path))
            assert response.status == 200, await response.text()
            return await response.json()

        sessions: list[ClientSession] = []
        try:
            chen, rivera, patel = [await as_user(u) for u in ("dr.chen", "dr.rivera", "cm.patel")]

            # On call now: a primary and a backup, with their licensed states.
            on_call = (await get(chen, "/curbside/on-call"))["on_call"]
            assert {(p["display_name"], p["tier"]) for p in on_call} == {
                ("Dr. Sofia Rivera", "primary"),
                ("Dr. James Okafor", "backup"),
            }
            assert all("CA" in p["licensed_states"] for p in on_call)
            assert len((await get(chen, "/curbside/shifts"))["shifts"]) == 2

            # The PCP's patients, each with problems, medications and a score history.
            patients = (await get(chen, "/patients"))["patients"]
            assert len(patients) == 4
            for patient in patients:
                chart = await get(chen, f"/patients/{patient['id']}/record")
                assert chart["problems"] and chart["medications"]
                assert {s["instrument"] for s in chart["screenings"]} == {"phq9", "gad7"}

            # The PCP's written questions: one answered, one waiting in the queue.
            asked = (await get(chen, "/curbside/requests"))["requests"]
            assert sorted(r["status"] for r in asked) == ["answered", "queued_written"]
            answered = next(r for r in asked if r["status"] == "answered")
            assert answered["answer"]["recommendations"]
            queue = (await get(rivera, "/curbside/queue"))["requests"]
            assert [r["status"] for r in queue] == ["queued_written"]

            # The registry raises each flag once, and one patient is on track.
            caseload = (await get(patel, "/registry"))["patients"]
            flags = {p["family_name"]: p["flags"] for p in caseload}
            assert flags == {
                "Haddad": ["safety"],
                "Alvarez": ["not_improving"],
                "Bell": ["overdue_contact"],
                "Park": [],
            }
            # Alvarez was reviewed (the caseload review's demo), with a follow-up from it.
            reviewed = {p["family_name"]: p["last_reviewed"] for p in caseload}
            assert reviewed["Alvarez"] and not reviewed["Haddad"]
            alvarez = next(p["patient_id"] for p in caseload if p["family_name"] == "Alvarez")
            tasks = (await get(patel, f"/registry/{alvarez}/tasks"))["tasks"]
            assert len(tasks) == 1 and tasks[0]["source_note_id"]

            # Today's clinic session, with booked patients whose invitations were sent.
            listed = (await get(patel, "/clinics/sessions"))["sessions"]
            assert len(listed) == 1
            clinic = await get(patel, f"/clinics/sessions/{listed[0]['id']}")
            assert len(clinic["bookings"]) == 3
            assert all(b["invitation"]["delivery"] == "sent" for b in clinic["bookings"])
            assert len(list((tmp_path / "var" / "outbox").iterdir())) == 3
        finally:
            for http in sessions:
                await http.close()
