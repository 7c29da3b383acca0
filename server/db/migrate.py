"""Alembic, driven from code: `liaison migrate` and the start-up schema check."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from server.errors import LiaisonError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class SchemaOutdated(LiaisonError):
    status = 503
    default_code = "schema_outdated"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_current_revision)


def _current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate the database the engine points at up to ``revision``."""
    async with engine.begin() as conn:
        await conn.run_sync(
            _upgrade, str(engine.url.render_as_string(hide_password=False)), revision
        )


def _upgrade(conn: Connection, url: str, revision: str) -> None:
    config = alembic_config(url)
    config.attributes["connection"] = conn
    command.upgrade(config, revision)


async def ensure_current(engine: AsyncEngine) -> None:
    """Refuse to serve on a schema that is not at the newest migration."""
    current, head = await current_revision(engine), head_revision()
    if current != head:
        raise SchemaOutdated(
            f"the database schema is at {current or 'nothing (empty database)'} but this "
            f"version of Liaison needs {head}: run `liaison migrate` first",
        )
