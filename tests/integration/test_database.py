"""Migrations from empty, the start-up schema check, SQLite settings, and the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import inspect, text

from server.app import create_app
from server.db.engine import create_engine
from server.db.migrate import SchemaOutdated, current_revision, head_revision, upgrade
from server.db.models import Base
from tests.conftest import make_settings

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


def run_cli(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "LIAISON_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "LIAISON_PASSWORDS__TIME_COST": "1",
        "LIAISON_PASSWORDS__MEMORY_COST_KIB": "8",
        "LIAISON_PASSWORDS__PARALLELISM": "1",
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


def test_demo_seeding_is_idempotent(tmp_path: Path) -> None:
    first = run_cli(tmp_path, "demo", "--no-serve")
    assert first.returncode == 0, first.stderr
    assert "dr.rivera" in first.stdout
    second = run_cli(tmp_path, "demo", "--no-serve")
    assert second.returncode == 0, second.stderr
