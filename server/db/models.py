"""The ORM models. Schema changes go through Alembic migrations in server/db/migrations."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from consult_notes.templates import NoteKind
from server.clinics.kinds import BookingStatus, ContactKind, OutboxKind
from server.db.types import UTCDateTime
from server.record.entries import (
    AllergySeverity,
    AllergyStatus,
    CodeSystem,
    ConditionStatus,
    MedicationStatus,
    SafetyFlagKind,
)
from server.record.screenings import Instrument, Severity
from server.visits.links import GuestRole, LinkKind
from server.visits.status import VisitStatus
from signaling.curbside import Mode, Status, Tier, Urgency

# Explicit constraint names keep migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    totp_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The last accepted TOTP time step: a code is accepted once, never replayed.
    totp_last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)

    sessions: Mapped[list[LoginSession]] = relationship(back_populates="user")


class LoginSession(Base):
    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # sha256 of the opaque cookie token; the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    idle_timeout_s: Mapped[int] = mapped_column(Integer)
    # True while the user must still enrol a second factor before using anything else.
    enrolment_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    # Indexed: every process's socket sweeper asks each second what was revoked lately.
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    client_address: Mapped[str | None] = mapped_column(String(64), nullable=True)

    user: Mapped[User] = relationship(back_populates="sessions")


class LoginFailure(Base):
    """One failed login, counted per account and per address inside a sliding window."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_kind_key_at", "kind", "key", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "account" | "address"
    key: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class RolePolicy(Base):
    """Per-role rules an admin sets at run time (on top of the configuration's)."""

    __tablename__ = "role_policies"

    role: Mapped[str] = mapped_column(String(32), primary_key=True)
    totp_required: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


def _one_of(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


# --- The patient record (server/record) -------------------------------------------------------


class Patient(Base):
    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The clinic's medical record number.
    mrn: Mapped[str] = mapped_column(String(32), unique=True)
    given_name: Mapped[str] = mapped_column(String(100))
    family_name: Mapped[str] = mapped_column(String(100), index=True)
    date_of_birth: Mapped[date] = mapped_column(Date)
    # A BCP-47 tag ("en", "es-MX"); an interpreter is proposed when it is not the clinic's.
    preferred_language: Mapped[str] = mapped_column(String(35))
    # The US state the patient lives in (two-letter code): licensure and emergencies.
    state: Mapped[str] = mapped_column(String(2))
    phone: Mapped[str] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    # The patient's own account, for patients who have one.
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), unique=True, nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CareTeamMember(Base):
    """A clinician on a patient's care team: who may see and act on the patient's record."""

    __tablename__ = "care_team_members"
    __table_args__ = (UniqueConstraint("patient_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role_on_team: Mapped[str] = mapped_column(String(32))  # server.record.patients.TeamRole
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)
    added_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )


class Encounter(Base):
    """A clinical contact (a video visit, a curbside consult, an e-consult) as it happened."""

    __tablename__ = "encounters"
    __table_args__ = (CheckConstraint("kind IN ('visit', 'curbside', 'econsult')", name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    visit_id: Mapped[int | None] = mapped_column(
        ForeignKey("visits.id"), unique=True, nullable=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # JSON list of who took part: [{participant_id, kind, display_name, first_in_call_at}].
    participants: Mapped[str] = mapped_column(Text, default="[]")


# --- Video visits (server/visits) -------------------------------------------------------------


class Visit(Base):
    __tablename__ = "visits"
    __table_args__ = (CheckConstraint(_one_of("status", VisitStatus), name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    scheduled_start: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=VisitStatus.SCHEDULED.value)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The live room (signaling/rooms.py RoomState as JSON), written by the signaling store with
    # optimistic concurrency: UPDATE ... WHERE room_version = <the version it read>, and +1.
    room_state: Mapped[str | None] = mapped_column(Text, nullable=True)
    room_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Set (compare-and-set from NULL) by the process that queues the automatic reminder.
    reminder_queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class VisitClinician(Base):
    """A clinician taking part in a visit (any of them may admit and end it)."""

    __tablename__ = "visit_clinicians"

    visit_id: Mapped[int] = mapped_column(
        ForeignKey("visits.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)


class VisitLink(Base):
    """A join link for the patient or a guest. Only the token's sha256 is kept."""

    __tablename__ = "visit_links"
    __table_args__ = (
        CheckConstraint(_one_of("kind", LinkKind), name="kind"),
        CheckConstraint(
            f"(kind = 'patient' AND guest_role IS NULL) OR "
            f"(kind = 'guest' AND {_one_of('guest_role', GuestRole)})",
            name="guest_role",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    guest_role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    display_name: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Set once, by a conditional UPDATE, when the token is exchanged: a link works one time.
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    failed_identity_checks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class VisitJoin(Base):
    """What a link holder recorded before the call: identity check, consent, location."""

    __tablename__ = "visit_joins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    visit_link_id: Mapped[int] = mapped_column(
        ForeignKey("visit_links.id", ondelete="CASCADE"), unique=True
    )
    identity_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    consent_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Where the patient is for this visit (an address, or at least a state) and a number to
    # call back: for emergencies and licensure.
    location_address: Mapped[str | None] = mapped_column(String(500), nullable=True)
    location_state: Mapped[str | None] = mapped_column(String(2), nullable=True)
    callback_phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    location_recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class VisitSession(Base):
    """A link holder's short-lived session after the one-time exchange (cookie token, hashed)."""

    __tablename__ = "visit_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    visit_link_id: Mapped[int] = mapped_column(
        ForeignKey("visit_links.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


# --- The audit trail (server/audit) -----------------------------------------------------------

# 64-bit ids on PostgreSQL (a busy trail outgrows 2**31); SQLite's INTEGER is already 64-bit and
# only "INTEGER PRIMARY KEY" numbers rows by itself.
_BIG_ID = BigInteger().with_variant(Integer(), "sqlite")


class AuditEvent(Base):
    """One link of the append-only, hash-chained audit trail (see server/audit/chain.py).

    Every column but ``id`` is hashed. No foreign keys: deleting a patient or a user must
    neither fail because of its trail nor take the trail with it.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        # A patient's access log, newest first; what one actor did.
        Index("ix_audit_events_patient_id_seq", "patient_id", "seq"),
        Index("ix_audit_events_actor_seq", "actor", "seq"),
    )

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True)
    # The position in the chain: 1, 2, 3... with no gaps, assigned under the head's lock.
    seq: Mapped[int] = mapped_column(BigInteger, unique=True, index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(64))  # "user:12", "link:34", "system"
    actor_role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(48))  # server.audit.Action
    patient_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    target: Mapped[str | None] = mapped_column(String(128), nullable=True)  # "note:5"
    outcome: Mapped[str] = mapped_column(String(8))  # server.audit.Outcome
    client_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Canonical JSON text, stored exactly as hashed; ids and codes only, never PHI.
    detail: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """The chain's last link (one row, id 1). Appends lock it, so every writer, in any process,
    takes its turn, and a deleted tail shows as a head pointing past the last row."""

    __tablename__ = "audit_chain_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


# --- The shared record's clinical content, notes and break-the-glass (server/record) ----------


class Condition(Base):
    """A problem on the patient's problem list (FHIR Condition)."""

    __tablename__ = "conditions"
    __table_args__ = (
        CheckConstraint(_one_of("clinical_status", ConditionStatus), name="clinical_status"),
        CheckConstraint(
            f"(code IS NULL AND code_system IS NULL) OR "
            f"(code IS NOT NULL AND {_one_of('code_system', CodeSystem)})",
            name="code_system",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    code_system: Mapped[str | None] = mapped_column(String(16), nullable=True)
    text: Mapped[str] = mapped_column(String(500))
    clinical_status: Mapped[str] = mapped_column(String(16))
    onset: Mapped[date | None] = mapped_column(Date, nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MedicationStatement(Base):
    """A medication the patient takes or took (FHIR MedicationStatement)."""

    __tablename__ = "medication_statements"
    __table_args__ = (CheckConstraint(_one_of("status", MedicationStatus), name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    dose: Mapped[str | None] = mapped_column(String(100), nullable=True)
    route: Mapped[str | None] = mapped_column(String(50), nullable=True)
    frequency: Mapped[str | None] = mapped_column(String(100), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Allergy(Base):
    """An allergy or intolerance (FHIR AllergyIntolerance)."""

    __tablename__ = "allergies"
    __table_args__ = (
        CheckConstraint(_one_of("clinical_status", AllergyStatus), name="clinical_status"),
        CheckConstraint(
            f"severity IS NULL OR {_one_of('severity', AllergySeverity)}", name="severity"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    substance: Mapped[str] = mapped_column(String(200))
    reaction: Mapped[str | None] = mapped_column(String(500), nullable=True)
    severity: Mapped[str | None] = mapped_column(String(16), nullable=True)
    clinical_status: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Screening(Base):
    """A PHQ-9 or GAD-7 as answered, item by item, with its score (server/record/screenings)."""

    __tablename__ = "screenings"
    __table_args__ = (
        CheckConstraint(_one_of("instrument", Instrument), name="instrument"),
        CheckConstraint(_one_of("severity", Severity), name="severity"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    encounter_id: Mapped[int | None] = mapped_column(ForeignKey("encounters.id"), nullable=True)
    instrument: Mapped[str] = mapped_column(String(8))
    answers: Mapped[str] = mapped_column(String(64))  # JSON list of item answers, 0-3 each
    total: Mapped[int] = mapped_column(Integer)
    severity: Mapped[str] = mapped_column(String(24))
    # Who entered it, in the audit trail's form: "user:12" or "link:34" (a visit-link holder).
    entered_by: Mapped[str] = mapped_column(String(64))
    entered_by_role: Mapped[str] = mapped_column(String(32))
    administered_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SafetyFlag(Base):
    """A screening answer every clinician on the care team must see until one addresses it."""

    __tablename__ = "safety_flags"
    __table_args__ = (
        CheckConstraint(_one_of("kind", SafetyFlagKind), name="kind"),
        Index("ix_safety_flags_patient_id_resolved_at", "patient_id", "resolved_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    screening_id: Mapped[int] = mapped_column(ForeignKey("screenings.id"), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    item_value: Mapped[int] = mapped_column(Integer)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    resolution: Mapped[str | None] = mapped_column(Text, nullable=True)


class ConsultNote(Base):
    """A consult note or an addendum (``amends`` set). The body is only ever stored sealed
    (consult_notes/crypto.py): four columns, bound to this row's id, patient and version."""

    __tablename__ = "consult_notes"
    __table_args__ = (
        CheckConstraint(_one_of("kind", NoteKind), name="kind"),
        # A note comes from a template; an addendum has the fixed addendum shape instead.
        CheckConstraint(
            "(amends IS NULL) = (template_id IS NOT NULL)", name="template_or_addendum"
        ),
        CheckConstraint(
            "(signed_at IS NULL AND signed_by IS NULL AND content_sha256 IS NULL) OR "
            "(signed_at IS NOT NULL AND signed_by IS NOT NULL AND content_sha256 IS NOT NULL)",
            name="signature",
        ),
        Index("ix_consult_notes_patient_id_created_at", "patient_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(16))
    template_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    amends: Mapped[int | None] = mapped_column(
        ForeignKey("consult_notes.id"), index=True, nullable=True
    )
    encounter_id: Mapped[int | None] = mapped_column(ForeignKey("encounters.id"), nullable=True)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    signed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    content_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The sealed body (crypto.SealedNote). kek_id is indexed for `liaison keys rotate`.
    kek_id: Mapped[str] = mapped_column(String(16), index=True)
    wrapped_dek: Mapped[bytes] = mapped_column(LargeBinary)
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)


class BreakGlassGrant(Base):
    """Time-limited read access to a record for a clinician off its care team, with the reason
    they gave, until an admin has reviewed it."""

    __tablename__ = "break_glass_grants"
    __table_args__ = (
        Index("ix_break_glass_grants_patient_user_expires", "patient_id", "user_id", "expires_at"),
        Index("ix_break_glass_grants_reviewed_at", "reviewed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)


# --- Curbside consults (server/curbside, signaling/curbside_store.py) --------------------------


class OnCallShift(Base):
    """A psychiatrist on call, primary or backup, from ``starts_at`` until ``ends_at``."""

    __tablename__ = "on_call_shifts"
    __table_args__ = (
        CheckConstraint(_one_of("tier", Tier), name="tier"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        Index("ix_on_call_shifts_ends_at_starts_at", "ends_at", "starts_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    psychiatrist_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    tier: Mapped[str] = mapped_column(String(8))
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PsychiatristLicense(Base):
    """A state a psychiatrist is licensed in (two-letter code), as they recorded it."""

    __tablename__ = "psychiatrist_licenses"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(String(2), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CurbsidePolicy(Base):
    """An admin's run-time override of curbside settings (one row, id 1). NULL: use the
    configuration's value (``curbside.require_license_match``)."""

    __tablename__ = "curbside_policy"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    require_license_match: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    updated_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConsultRequest(Base):
    """A curbside consult request. Its routing state (signaling/curbside/ CurbsideState) is
    ``state`` as JSON, changed only with a compare-and-set on ``version``; ``status``,
    ``ring_deadline`` and ``consultant_id`` are copies of it kept for queries."""

    __tablename__ = "consult_requests"
    __table_args__ = (
        CheckConstraint(_one_of("urgency", Urgency), name="urgency"),
        CheckConstraint(_one_of("mode", Mode), name="mode"),
        CheckConstraint(_one_of("status", Status), name="status"),
        Index("ix_consult_requests_patient_id_created_at", "patient_id", "created_at"),
        Index("ix_consult_requests_status_answer_due_at", "status", "answer_due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pcp_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    urgency: Mapped[str] = mapped_column(String(16))
    mode: Mapped[str] = mapped_column(String(16))
    question: Mapped[str] = mapped_column(Text)
    # Where the patient is (two-letter code), for the licence rule.
    patient_state: Mapped[str | None] = mapped_column(String(2), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    ring_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    answer_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    consultant_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id"), index=True, nullable=True
    )
    state: Mapped[str] = mapped_column(Text)
    # The record's context when the PCP asked (server/curbside/context.py), as JSON.
    context: Mapped[str] = mapped_column(Text)
    # When the PCP recorded the patient's consent to the consult; NULL: not recorded.
    consent_recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The call (call now, once accepted) and the encounter (the call, or the written answer).
    visit_id: Mapped[int | None] = mapped_column(
        ForeignKey("visits.id"), unique=True, nullable=True
    )
    encounter_id: Mapped[int | None] = mapped_column(
        ForeignKey("encounters.id"), unique=True, nullable=True
    )
    # The signed curbside recommendation note that completed a call.
    note_id: Mapped[int | None] = mapped_column(ForeignKey("consult_notes.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ConsultAnswer(Base):
    """A written consult's structured recommendation."""

    __tablename__ = "consult_answers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("consult_requests.id", ondelete="CASCADE"), unique=True
    )
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    assessment: Mapped[str] = mapped_column(Text)
    recommendations: Mapped[str] = mapped_column(Text)
    medication_suggestions: Mapped[str | None] = mapped_column(Text, nullable=True)
    follow_up: Mapped[str] = mapped_column(Text)
    face_to_face_advised: Mapped[bool] = mapped_column(Boolean)
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Presence(Base):
    """One open signaling socket of a psychiatrist (their dashboard), on one server process.
    Each process touches its rows every few seconds; rows it stopped touching are ignored."""

    __tablename__ = "presence"
    __table_args__ = (UniqueConstraint("node", "socket_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The server process: its cluster instance (cluster_nodes.instance).
    node: Mapped[str] = mapped_column(String(100))
    socket_id: Mapped[str] = mapped_column(String(64))
    # The visit room this socket is in (a call: busy), as of the last touch.
    visit_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    connected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


# --- Remote clinics, the outbox and the collaborative-care registry (server/clinics) -----------


class ClinicSession(Base):
    """A psychiatrist's block of time, cut into slots of ``slot_minutes`` from ``starts_at``."""

    __tablename__ = "clinic_sessions"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("slot_minutes BETWEEN 5 AND 240", name="slot_minutes"),
        Index("ix_clinic_sessions_psychiatrist_id_starts_at", "psychiatrist_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    psychiatrist_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    slot_minutes: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ClinicBooking(Base):
    """A patient in one slot of a clinic session, and the video visit it created. A
    rescheduled booking points at the booking that replaced it."""

    __tablename__ = "clinic_bookings"
    __table_args__ = (
        CheckConstraint(_one_of("status", BookingStatus), name="status"),
        Index("ix_clinic_bookings_session_id_slot_start", "session_id", "slot_start"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("clinic_sessions.id", ondelete="CASCADE"))
    slot_start: Mapped[datetime] = mapped_column(UTCDateTime)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    replaced_by: Mapped[int | None] = mapped_column(ForeignKey("clinic_bookings.id"), nullable=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutboxMessage(Base):
    """A message to a patient (an invitation or reminder with the join link). Once sent, the
    join link is scrubbed from ``body``: only the link's hash is kept anywhere in the database."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        CheckConstraint(_one_of("kind", OutboxKind), name="kind"),
        Index("ix_outbox_messages_sent_at_created_at", "sent_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    to_address: Mapped[str | None] = mapped_column(String(254), nullable=True)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    visit_id: Mapped[int | None] = mapped_column(
        ForeignKey("visits.id", ondelete="SET NULL"), index=True, nullable=True
    )
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # When the latest attempt was claimed (compare-and-set on ``attempts``); retries back off
    # from it.
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # A code, never the server's error text (which may name hosts or addresses).
    error: Mapped[str | None] = mapped_column(String(64), nullable=True)


class CareContact(Base):
    """Care-management time spent on a patient, for the registry and monthly reporting."""

    __tablename__ = "care_contacts"
    __table_args__ = (
        CheckConstraint(_one_of("kind", ContactKind), name="kind"),
        CheckConstraint("minutes BETWEEN 1 AND 600", name="minutes"),
        Index("ix_care_contacts_patient_id_at", "patient_id", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    minutes: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(24))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FollowUpTask(Base):
    """A follow-up from a caseload review (a psychiatrist's recommendation), with an owner and a
    due date; ``source_note_id`` is the note in the shared record it came from, if any."""

    __tablename__ = "follow_up_tasks"
    __table_args__ = (
        Index("ix_follow_up_tasks_patient_id_due", "patient_id", "due"),
        Index("ix_follow_up_tasks_owner_id_done_at", "owner_id", "done_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    title: Mapped[str] = mapped_column(String(300))
    due: Mapped[date] = mapped_column(Date)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source_note_id: Mapped[int | None] = mapped_column(
        ForeignKey("consult_notes.id"), nullable=True
    )
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    done_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)


# --- Server processes of a cluster (signaling/cluster.py) ---------------------------------------


class ClusterNode(Base):
    """One running server process (one life of it): written by its heartbeat every few
    seconds. Another process that finds it silent for the node timeout claims it (compare-and-
    set on ``claims``), treats its sockets as disconnected from their rooms, clears its
    curbside presence, and deletes the row."""

    __tablename__ = "cluster_nodes"

    # "<node id>/<random>": rooms and presence rows name the instance, so a node that was
    # declared dead and came back (new instance) never loses its new sockets to the sweep.
    instance: Mapped[str] = mapped_column(String(100), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(64), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    swept_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    swept_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    claims: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
