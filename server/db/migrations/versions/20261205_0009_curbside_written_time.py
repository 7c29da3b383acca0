"""curbside written time

The routing state of a curbside request (``consult_requests.state``, signaling/curbside/)
gains the consultant's time on a written answer: ``writing_started`` (each psychiatrist's first
opening of the answer form) and ``attested_minutes`` (what the author attested), in state format
2. Stored format-1 states are rewritten with neither (their time was never measured), so every
process reads one shape. No column changes: reports read the state.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 10:00:00
"""

import json
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

requests = sa.table(
    "consult_requests", sa.column("id", sa.Integer()), sa.column("state", sa.Text())
)
ADDED = ("writing_started", "attested_minutes")


def upgrade() -> None:
    def to_2(state: dict[str, Any]) -> dict[str, Any]:
        return state | {"format": 2, "writing_started": [], "attested_minutes": None}

    _rewrite(1, to_2)


def downgrade() -> None:
    # The written time is lost: format 1 has nowhere to keep it.
    def to_1(state: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in state.items() if k not in ADDED} | {"format": 1}

    _rewrite(2, to_1)


def _rewrite(old: int, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(requests.c.id, requests.c.state)).all()
    for request_id, text in rows:
        state = json.loads(text)
        if state.get("format") != old:  # already rewritten (or never of the old shape)
            continue
        bind.execute(
            requests.update()
            .where(requests.c.id == request_id)
            .values(state=json.dumps(change(state), separators=(",", ":")))
        )
