"""clinics

Remote clinics and the collaborative-care registry: clinic sessions (a psychiatrist's block of
slots) and their bookings (each with its video visit), the outbox of invitations and reminders,
care-management contacts (minutes per patient) and follow-up tasks from caseload reviews.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 17:59:07.704685
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clinic_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("psychiatrist_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("starts_at", server.db.types.UTCDateTime(), nullable=False),
        sa.Column("ends_at", server.db.types.UTCDateTime(), nullable=False),
        sa.Column("slot_minutes", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created_at", server.db.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_clinic_sessions_ends_after_start")),
        sa.CheckConstraint(
            "slot_minutes BETWEEN 5 AND 240", name=op.f("ck_clinic_sessions_slot_minutes")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_clinic_sessions_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["psychiatrist_id"], ["users.id"], name=op.f("fk_clinic_sessions_psychiatrist_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clinic_sessions")),
    )
    with op.batch_alter_table("clinic_sessions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_clinic_sessions_psychiatrist_id_starts_at",
            ["psychiatrist_id", "starts_at"],
            unique=False,
        )

    op.create_table(
        "care_contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("at", server.db.types.UTCDateTime(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("created_at", server.db.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('phone', 'video', 'in_person', 'message', 'caseload_review')",
            name=op.f("ck_care_contacts_kind"),
        ),
        sa.CheckConstraint("minutes BETWEEN 1 AND 600", name=op.f("ck_care_contacts_minutes")),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_care_contacts_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_care_contacts_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_contacts")),
    )
    with op.batch_alter_table("care_contacts", schema=None) as batch_op:
        batch_op.create_index("ix_care_contacts_patient_id_at", ["patient_id", "at"], unique=False)

    op.create_table(
        "clinic_bookings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("slot_start", server.db.types.UTCDateTime(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("replaced_by", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created_at", server.db.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", server.db.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('booked', 'cancelled', 'rescheduled')",
            name=op.f("ck_clinic_bookings_status"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_clinic_bookings_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_clinic_bookings_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["replaced_by"],
            ["clinic_bookings.id"],
            name=op.f("fk_clinic_bookings_replaced_by_clinic_bookings"),
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["clinic_sessions.id"],
            name=op.f("fk_clinic_bookings_session_id_clinic_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"], ["visits.id"], name=op.f("fk_clinic_bookings_visit_id_visits")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clinic_bookings")),
        sa.UniqueConstraint("visit_id", name=op.f("uq_clinic_bookings_visit_id")),
    )
    with op.batch_alter_table("clinic_bookings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_clinic_bookings_patient_id"), ["patient_id"], unique=False
        )
        batch_op.create_index(
            "ix_clinic_bookings_session_id_slot_start", ["session_id", "slot_start"], unique=False
        )

    op.create_table(
        "outbox_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("to_address", sa.String(length=254), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", server.db.types.UTCDateTime(), nullable=False),
        sa.Column("sent_at", server.db.types.UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "kind IN ('invitation', 'reminder')", name=op.f("ck_outbox_messages_kind")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_outbox_messages_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["visits.id"],
            name=op.f("fk_outbox_messages_visit_id_visits"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_messages")),
    )
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_messages_sent_at_created_at", ["sent_at", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_outbox_messages_visit_id"), ["visit_id"], unique=False)

    op.create_table(
        "follow_up_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("due", sa.Date(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created_at", server.db.types.UTCDateTime(), nullable=False),
        sa.Column("source_note_id", sa.Integer(), nullable=True),
        sa.Column("done_at", server.db.types.UTCDateTime(), nullable=True),
        sa.Column("done_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_follow_up_tasks_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["done_by"], ["users.id"], name=op.f("fk_follow_up_tasks_done_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_follow_up_tasks_owner_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_follow_up_tasks_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["source_note_id"],
            ["consult_notes.id"],
            name=op.f("fk_follow_up_tasks_source_note_id_consult_notes"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follow_up_tasks")),
    )
    with op.batch_alter_table("follow_up_tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_follow_up_tasks_owner_id_done_at", ["owner_id", "done_at"], unique=False
        )
        batch_op.create_index(
            "ix_follow_up_tasks_patient_id_due", ["patient_id", "due"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("follow_up_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_follow_up_tasks_patient_id_due")
        batch_op.drop_index("ix_follow_up_tasks_owner_id_done_at")

    op.drop_table("follow_up_tasks")
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_messages_visit_id"))
        batch_op.drop_index("ix_outbox_messages_sent_at_created_at")

    op.drop_table("outbox_messages")
    with op.batch_alter_table("clinic_bookings", schema=None) as batch_op:
        batch_op.drop_index("ix_clinic_bookings_session_id_slot_start")
        batch_op.drop_index(batch_op.f("ix_clinic_bookings_patient_id"))

    op.drop_table("clinic_bookings")
    with op.batch_alter_table("care_contacts", schema=None) as batch_op:
        batch_op.drop_index("ix_care_contacts_patient_id_at")

    op.drop_table("care_contacts")
    with op.batch_alter_table("clinic_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_clinic_sessions_psychiatrist_id_starts_at")

    op.drop_table("clinic_sessions")
