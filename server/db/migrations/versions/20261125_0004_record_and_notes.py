"""record and notes

The shared record's clinical content (conditions, medication statements, allergies, PHQ-9 /
GAD-7 screenings and the safety flags they raise), consult notes and addenda stored only
sealed (kek_id, wrapped_dek, nonce, ciphertext: consult_notes/crypto.py), and break-the-glass
grants with their review.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 17:14:31.600542
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "allergies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("substance", sa.String(length=200), nullable=False),
        sa.Column("reaction", sa.String(length=500), nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=True),
        sa.Column("clinical_status", sa.String(length=16), nullable=False),
        sa.Column("recorded_at", server.db.types.UTCDateTime(), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=False),
        sa.Column("updated_at", server.db.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "clinical_status IN ('active', 'inactive', 'resolved')",
            name=op.f("ck_allergies_clinical_status"),
        ),
        sa.CheckConstraint(
            "severity IS NULL OR severity IN ('mild', 'moderate', 'severe')",
            name=op.f("ck_allergies_severity"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_allergies_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["users.id"], name=op.f("fk_allergies_recorded_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_allergies")),
    )
    with op.batch_alter_table("allergies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_allergies_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "break_glass_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("granted_at", server.db.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", server.db.types.UTCDateTime(), nullable=False),
        sa.Column("reviewed_at", server.db.types.UTCDateTime(), nullable=True),
        sa.Column("reviewed_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_break_glass_grants_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["reviewed_by"], ["users.id"], name=op.f("fk_break_glass_grants_reviewed_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_break_glass_grants_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_break_glass_grants")),
    )
    with op.batch_alter_table("break_glass_grants", schema=None) as batch_op:
        batch_op.create_index(
            "ix_break_glass_grants_patient_user_expires",
            ["patient_id", "user_id", "expires_at"],
            unique=False,
        )
        batch_op.create_index("ix_break_glass_grants_reviewed_at", ["reviewed_at"], unique=False)

    op.create_table(
        "conditions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=True),
        sa.Column("code_system", sa.String(length=16), nullable=True),
        sa.Column("text", sa.String(length=500), nullable=False),
        sa.Column("clinical_status", sa.String(length=16), nullable=False),
        sa.Column("onset", sa.Date(), nullable=True),
        sa.Column("recorded_at", server.db.types.UTCDateTime(), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=False),
        sa.Column("updated_at", server.db.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "(code IS NULL AND code_system IS NULL) OR "
            "(code IS NOT NULL AND code_system IN ('icd10cm', 'snomed'))",
            name=op.f("ck_conditions_code_system"),
        ),
        sa.CheckConstraint(
            "clinical_status IN "
            "('active', 'recurrence', 'relapse', 'inactive', 'remission', 'resolved')",
            name=op.f("ck_conditions_clinical_status"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_conditions_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["users.id"], name=op.f("fk_conditions_recorded_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conditions")),
    )
    with op.batch_alter_table("conditions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_conditions_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "medication_statements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("dose", sa.String(length=100), nullable=True),
        sa.Column("route", sa.String(length=50), nullable=True),
        sa.Column("frequency", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("recorded_at", server.db.types.UTCDateTime(), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=False),
        sa.Column("updated_at", server.db.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'on-hold', 'stopped', 'completed', 'entered-in-error')",
            name=op.f("ck_medication_statements_status"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_medication_statements_patient_id_patients"),
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["users.id"], name=op.f("fk_medication_statements_recorded_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_medication_statements")),
    )
    with op.batch_alter_table("medication_statements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_medication_statements_patient_id"), ["patient_id"], unique=False
        )

    op.create_table(
        "consult_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("template_id", sa.String(length=64), nullable=True),
        sa.Column("amends", sa.Integer(), nullable=True),
        sa.Column("encounter_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", server.db.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", server.db.types.UTCDateTime(), nullable=False),
        sa.Column("signed_at", server.db.types.UTCDateTime(), nullable=True),
        sa.Column("signed_by", sa.Integer(), nullable=True),
        sa.Column("content_sha256", sa.String(length=64), nullable=True),
        sa.Column("kek_id", sa.String(length=16), nullable=False),
        sa.Column("wrapped_dek", sa.LargeBinary(), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('consult', 'progress', 'curbside', 'psychotherapy')",
            name=op.f("ck_consult_notes_kind"),
        ),
        sa.CheckConstraint(
            "(amends IS NULL) = (template_id IS NOT NULL)",
            name=op.f("ck_consult_notes_template_or_addendum"),
        ),
        sa.CheckConstraint(
            "(signed_at IS NULL AND signed_by IS NULL AND content_sha256 IS NULL) OR "
            "(signed_at IS NOT NULL AND signed_by IS NOT NULL AND content_sha256 IS NOT NULL)",
            name=op.f("ck_consult_notes_signature"),
        ),
        sa.ForeignKeyConstraint(
            ["amends"], ["consult_notes.id"], name=op.f("fk_consult_notes_amends_consult_notes")
        ),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_consult_notes_author_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["encounter_id"],
            ["encounters.id"],
            name=op.f("fk_consult_notes_encounter_id_encounters"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_consult_notes_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["signed_by"], ["users.id"], name=op.f("fk_consult_notes_signed_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consult_notes")),
    )
    with op.batch_alter_table("consult_notes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consult_notes_amends"), ["amends"], unique=False)
        batch_op.create_index(batch_op.f("ix_consult_notes_kek_id"), ["kek_id"], unique=False)
        batch_op.create_index(
            "ix_consult_notes_patient_id_created_at", ["patient_id", "created_at"], unique=False
        )

    op.create_table(
        "screenings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("encounter_id", sa.Integer(), nullable=True),
        sa.Column("instrument", sa.String(length=8), nullable=False),
        sa.Column("answers", sa.String(length=64), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("severity", sa.String(length=24), nullable=False),
        sa.Column("entered_by", sa.String(length=64), nullable=False),
        sa.Column("entered_by_role", sa.String(length=32), nullable=False),
        sa.Column("administered_at", server.db.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint("instrument IN ('phq9', 'gad7')", name=op.f("ck_screenings_instrument")),
        sa.CheckConstraint(
            "severity IN ('minimal', 'mild', 'moderate', 'moderately_severe', 'severe')",
            name=op.f("ck_screenings_severity"),
        ),
        sa.ForeignKeyConstraint(
            ["encounter_id"], ["encounters.id"], name=op.f("fk_screenings_encounter_id_encounters")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_screenings_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screenings")),
    )
    with op.batch_alter_table("screenings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_screenings_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "safety_flags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("screening_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("item_value", sa.Integer(), nullable=False),
        sa.Column("raised_at", server.db.types.UTCDateTime(), nullable=False),
        sa.Column("resolved_at", server.db.types.UTCDateTime(), nullable=True),
        sa.Column("resolved_by", sa.Integer(), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.CheckConstraint("kind IN ('phq9_item9')", name=op.f("ck_safety_flags_kind")),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_safety_flags_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by"], ["users.id"], name=op.f("fk_safety_flags_resolved_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["screening_id"],
            ["screenings.id"],
            name=op.f("fk_safety_flags_screening_id_screenings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_safety_flags")),
        sa.UniqueConstraint("screening_id", name=op.f("uq_safety_flags_screening_id")),
    )
    with op.batch_alter_table("safety_flags", schema=None) as batch_op:
        batch_op.create_index(
            "ix_safety_flags_patient_id_resolved_at", ["patient_id", "resolved_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("safety_flags", schema=None) as batch_op:
        batch_op.drop_index("ix_safety_flags_patient_id_resolved_at")

    op.drop_table("safety_flags")
    with op.batch_alter_table("screenings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_screenings_patient_id"))

    op.drop_table("screenings")
    with op.batch_alter_table("consult_notes", schema=None) as batch_op:
        batch_op.drop_index("ix_consult_notes_patient_id_created_at")
        batch_op.drop_index(batch_op.f("ix_consult_notes_kek_id"))
        batch_op.drop_index(batch_op.f("ix_consult_notes_amends"))

    op.drop_table("consult_notes")
    with op.batch_alter_table("medication_statements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_medication_statements_patient_id"))

    op.drop_table("medication_statements")
    with op.batch_alter_table("conditions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conditions_patient_id"))

    op.drop_table("conditions")
    with op.batch_alter_table("break_glass_grants", schema=None) as batch_op:
        batch_op.drop_index("ix_break_glass_grants_reviewed_at")
        batch_op.drop_index("ix_break_glass_grants_patient_user_expires")

    op.drop_table("break_glass_grants")
    with op.batch_alter_table("allergies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_allergies_patient_id"))

    op.drop_table("allergies")
