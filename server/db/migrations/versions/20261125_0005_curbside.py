"""curbside

Curbside consults: on-call shifts (primary or backup), the states psychiatrists are licensed
in, an admin's run-time override of the licence rule, consult requests (routing state as JSON
changed by compare-and-set on ``version``; ``ring_deadline`` indexed for the schedulers), the
written answers, and presence rows for open dashboard sockets, touched by every server process.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 17:40:07.333499
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "curbside_policy",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("require_license_match", sa.Boolean(), nullable=True),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("updated_at", server.db.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_curbside_policy_single_row")),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["users.id"],
            name=op.f("fk_curbside_policy_updated_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_curbside_policy")),
    )
    op.create_table(
        "on_call_shifts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("psychiatrist_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", server.db.types.UTCDateTime(), nullable=False),
        sa.Column("ends_at", server.db.types.UTCDateTime(), nullable=False),
        sa.Column("tier", sa.String(length=8), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created_at", server.db.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint("tier IN ('primary', 'backup')", name=op.f("ck_on_call_shifts_tier")),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_on_call_shifts_ends_after_start")),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_on_call_shifts_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["psychiatrist_id"],
            ["users.id"],
            name=op.f("fk_on_call_shifts_psychiatrist_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_on_call_shifts")),
    )
    with op.batch_alter_table("on_call_shifts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_on_call_shifts_ends_at_starts_at", ["ends_at", "starts_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_on_call_shifts_psychiatrist_id"), ["psychiatrist_id"], unique=False
        )

    op.create_table(
        "presence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(length=32), nullable=False),
        sa.Column("socket_id", sa.String(length=64), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        sa.Column("connected_at", server.db.types.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", server.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_presence_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_presence")),
        sa.UniqueConstraint("node", "socket_id", name=op.f("uq_presence_node")),
    )
    with op.batch_alter_table("presence", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_presence_last_seen_at"), ["last_seen_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_presence_user_id"), ["user_id"], unique=False)

    op.create_table(
        "psychiatrist_licenses",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=2), nullable=False),
        sa.Column("added_at", server.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_psychiatrist_licenses_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "state", name=op.f("pk_psychiatrist_licenses")),
    )
    op.create_table(
        "consult_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pcp_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("urgency", sa.String(length=16), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("patient_state", sa.String(length=2), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("ring_deadline", server.db.types.UTCDateTime(), nullable=True),
        sa.Column("answer_due_at", server.db.types.UTCDateTime(), nullable=False),
        sa.Column("consultant_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("context", sa.Text(), nullable=False),
        sa.Column("consent_recorded_at", server.db.types.UTCDateTime(), nullable=True),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        sa.Column("encounter_id", sa.Integer(), nullable=True),
        sa.Column("note_id", sa.Integer(), nullable=True),
        sa.Column("created_at", server.db.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "mode IN ('call_now', 'written')", name=op.f("ck_consult_requests_mode")
        ),
        sa.CheckConstraint(
            "status IN ('ringing', 'accepted', 'in_call', 'documenting', 'completed', "
            "'queued_written', 'answered', 'acknowledged', 'cancelled')",
            name=op.f("ck_consult_requests_status"),
        ),
        sa.CheckConstraint(
            "urgency IN ('routine', 'urgent', 'emergent')", name=op.f("ck_consult_requests_urgency")
        ),
        sa.ForeignKeyConstraint(
            ["consultant_id"], ["users.id"], name=op.f("fk_consult_requests_consultant_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["encounter_id"],
            ["encounters.id"],
            name=op.f("fk_consult_requests_encounter_id_encounters"),
        ),
        sa.ForeignKeyConstraint(
            ["note_id"],
            ["consult_notes.id"],
            name=op.f("fk_consult_requests_note_id_consult_notes"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_consult_requests_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["pcp_id"], ["users.id"], name=op.f("fk_consult_requests_pcp_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"], ["visits.id"], name=op.f("fk_consult_requests_visit_id_visits")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consult_requests")),
        sa.UniqueConstraint("encounter_id", name=op.f("uq_consult_requests_encounter_id")),
        sa.UniqueConstraint("visit_id", name=op.f("uq_consult_requests_visit_id")),
    )
    with op.batch_alter_table("consult_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consult_requests_consultant_id"), ["consultant_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_consult_requests_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            "ix_consult_requests_patient_id_created_at", ["patient_id", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_consult_requests_pcp_id"), ["pcp_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_consult_requests_ring_deadline"), ["ring_deadline"], unique=False
        )
        batch_op.create_index(
            "ix_consult_requests_status_answer_due_at", ["status", "answer_due_at"], unique=False
        )

    op.create_table(
        "consult_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("assessment", sa.Text(), nullable=False),
        sa.Column("recommendations", sa.Text(), nullable=False),
        sa.Column("medication_suggestions", sa.Text(), nullable=True),
        sa.Column("follow_up", sa.Text(), nullable=False),
        sa.Column("face_to_face_advised", sa.Boolean(), nullable=False),
        sa.Column("answered_at", server.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_consult_answers_author_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["consult_requests.id"],
            name=op.f("fk_consult_answers_request_id_consult_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consult_answers")),
        sa.UniqueConstraint("request_id", name=op.f("uq_consult_answers_request_id")),
    )


def downgrade() -> None:
    op.drop_table("consult_answers")
    with op.batch_alter_table("consult_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_consult_requests_status_answer_due_at")
        batch_op.drop_index(batch_op.f("ix_consult_requests_ring_deadline"))
        batch_op.drop_index(batch_op.f("ix_consult_requests_pcp_id"))
        batch_op.drop_index("ix_consult_requests_patient_id_created_at")
        batch_op.drop_index(batch_op.f("ix_consult_requests_created_at"))
        batch_op.drop_index(batch_op.f("ix_consult_requests_consultant_id"))

    op.drop_table("consult_requests")
    op.drop_table("psychiatrist_licenses")
    with op.batch_alter_table("presence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_presence_user_id"))
        batch_op.drop_index(batch_op.f("ix_presence_last_seen_at"))

    op.drop_table("presence")
    with op.batch_alter_table("on_call_shifts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_on_call_shifts_psychiatrist_id"))
        batch_op.drop_index("ix_on_call_shifts_ends_at_starts_at")

    op.drop_table("on_call_shifts")
    op.drop_table("curbside_policy")
