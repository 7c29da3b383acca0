"""What every benchmark that starts a real `liaison serve` needs: its environment, its command
line, a freshly migrated database, signed-in sessions without passwords, figures, and its
printed report.

``liaison_env`` and ``liaison_argv`` are the same as bench/signaling.py's (which can import
them from here); bench/procs.py starts and stops the process.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import func, select

from bench.seed import NO_PASSWORD
from server.auth.roles import Role
from server.db.engine import create_engine
from server.db.migrate import upgrade
from server.db.models import User
from server.settings import Settings
from server.state import Services

# Far above what a bench sends, so the per-socket flood guard never refuses a message.
RATE_LIMIT = 1_000_000


def liaison_env(workdir: Path, port: int, **settings: str) -> dict[str, str]:
    """The server's environment: this machine's, less any LIAISON_* setting, plus the bench's
    (``settings``: more LIAISON_* variables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")}
    env.update(
        {
            "LIAISON_DATABASE__URL": f"sqlite+aiosqlite:///{workdir / 'liaison.db'}",
            "LIAISON_PATHS__VAR_DIR": str(workdir / "var"),
            "LIAISON_SERVER__HOST": "127.0.0.1",
            "LIAISON_SERVER__PORT": str(port),
            "LIAISON_SERVER__PUBLIC_URL": f"http://127.0.0.1:{port}",
            "LIAISON_LOGGING__LEVEL": "WARNING",
            "LIAISON_SIGNALING__EVENTS_PER_SECOND": str(RATE_LIMIT),
            "LIAISON_SIGNALING__EVENT_BURST": str(RATE_LIMIT),
            **settings,
        }
    )
    return env


def liaison_argv() -> list[str]:
    script = Path(sys.executable).with_name("liaison")
    if script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-m", "server.cli", "serve"]


async def migrate_fresh(settings: Settings) -> None:
    engine = create_engine(settings.database)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


async def seed_user(svc: Services, role: Role, display_name: str) -> tuple[User, str]:
    """An account nobody signs in to with a password, and a login session for it (its cookie
    token). The CSRF token for its writes is ``csrf_token_for(token)``."""
    now = svc.clock()
    async with svc.db.begin() as db:
        count = await db.scalar(select(func.count()).select_from(User)) or 0
        user = User(
            username=f"bench-{role.value}-{count:05d}",
            display_name=display_name,
            role=role.value,
            password_hash=NO_PASSWORD,
            created_at=now,
        )
        db.add(user)
        await db.flush()
        token, _ = await svc.sessions.open(db, user, "127.0.0.1", False)
    return user, token


def percentile_ms(values: Sequence[float], share: float) -> float:
    """Nearest rank, in milliseconds, of values in seconds."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)] * 1000


def median_ms(values: Sequence[float]) -> float:
    return statistics.median(values) * 1000 if values else float("nan")


def say(text: str) -> None:
    """A line of the report (stdout)."""
    print(text, flush=True)


def progress(text: str) -> None:
    """Where the run is (stderr), kept apart from the report."""
    print(f"  .. {text}", file=sys.stderr, flush=True)
