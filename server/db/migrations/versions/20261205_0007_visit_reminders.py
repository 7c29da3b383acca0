"""visit reminders

Automatic reminders before a visit: ``visits.reminder_queued_at`` is set, by compare-and-set
from NULL, by whichever server process queues the visit's reminder, so each visit gets one
reminder however many processes run the reminder task. ``outbox_messages.last_attempt_at`` is
when the latest delivery attempt was claimed: retries back off from it (server/outbox.py).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reminder_queued_at", server.db.types.UTCDateTime(), nullable=True)
        )
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_attempt_at", server.db.types.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_column("last_attempt_at")
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_column("reminder_queued_at")
