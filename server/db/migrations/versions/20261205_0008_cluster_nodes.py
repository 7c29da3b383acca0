"""cluster nodes

Server processes of one deployment (signaling/cluster.py): each running process has a row in
``cluster_nodes`` that its heartbeat keeps fresh; any process that finds one silent for the node
timeout claims it by compare-and-set on ``claims``, removes that process's sockets from their
rooms and its curbside presence, and deletes the row. ``presence.node`` names such an instance
("<node id>/<random>"), longer than the random id it held before. ``login_sessions.revoked_at``
is indexed: each process's socket sweeper asks every second which sessions were revoked lately.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 06:29:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cluster_nodes",
        sa.Column("instance", sa.String(length=100), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("started_at", server.db.types.UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", server.db.types.UTCDateTime(), nullable=False),
        sa.Column("swept_by", sa.String(length=100), nullable=True),
        sa.Column("swept_at", server.db.types.UTCDateTime(), nullable=True),
        sa.Column("claims", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("instance", name=op.f("pk_cluster_nodes")),
    )
    with op.batch_alter_table("cluster_nodes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cluster_nodes_heartbeat_at"), ["heartbeat_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_cluster_nodes_node_id"), ["node_id"], unique=False)
    with op.batch_alter_table("presence", schema=None) as batch_op:
        batch_op.alter_column(
            "node",
            existing_type=sa.VARCHAR(length=32),
            type_=sa.String(length=100),
            existing_nullable=False,
        )
    with op.batch_alter_table("login_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_login_sessions_revoked_at"), ["revoked_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("login_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_sessions_revoked_at"))
    # Instances longer than the old column would not fit; presence rows are transient anyway.
    op.execute(sa.text("DELETE FROM presence"))
    with op.batch_alter_table("presence", schema=None) as batch_op:
        batch_op.alter_column(
            "node",
            existing_type=sa.String(length=100),
            type_=sa.VARCHAR(length=32),
            existing_nullable=False,
        )
    with op.batch_alter_table("cluster_nodes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cluster_nodes_node_id"))
        batch_op.drop_index(batch_op.f("ix_cluster_nodes_heartbeat_at"))
    op.drop_table("cluster_nodes")
