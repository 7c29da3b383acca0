"""The life of a consult note, and who may do what with it: pure, no I/O, no clock.

States::

    (new_draft) -> DRAFT --edit (autosave)--> DRAFT --sign--> SIGNED (immutable)
                     \\--(check_delete, then the store deletes it)
    SIGNED note --new_addendum--> addendum DRAFT --sign--> addendum SIGNED

A :class:`Note` is a frozen value; each transition runs its ``check_*`` function first (which
raises and changes nothing), then returns a new ``Note``. The ``check_*`` functions are public
so a service can refuse a request before it decrypts or loads anything.

``version`` counts revisions of the body; it starts at 1 and goes up on each edit that changes
the body. It is the version that ``crypto.NoteContext`` binds into the ciphertext, so signing,
which leaves the body alone, leaves the version alone too (no re-encryption at signing). A store
can also use it for compare-and-swap on autosave.

Rules:

- Creating a note: a clinician (``Role.is_clinician``) on the patient's care team.
- Editing (autosave is repeated editing) or deleting a draft: its author only.
- Signing: its author only, still a clinician; records the signer, the time and the SHA-256 of
  the body. Validating the body against its template (``templates.validate_body(...,
  signing=True)``) is the caller's step before ``sign``.
- A signed note never changes: editing, deleting or re-signing it raises :class:`NoteImmutable`.
- Addenda: any clinician on the care team may add one to a signed note (not to a draft, not to
  another addendum); an addendum to a psychotherapy note only by that note's author. An addendum
  is a ``Note`` with ``amends`` set and the parent's kind, and goes draft -> signed like a note.
- Reading (:func:`can_read`): an author always reads their own notes and addenda. Otherwise a
  psychotherapy note (and its addenda) is readable by nobody else, and a draft by nobody else;
  a signed note is readable by a clinician on the care team or under break-the-glass, and by
  the patient it is about. Admins read no notes.

Who-may rules that depend on the role and the relation to the patient (creating, adding to a
note, reading) are the access policy's (``server.record.policy``): the ``check_*`` functions and
:func:`can_read` ask it, so those rules are written once. The relation is worked out by the
caller (``server.record.access`` with the database) and passed in as a :class:`Relation`. What
stays here is the note's own state machine: the author alone edits and signs a draft, a signed
note never changes, an addendum goes on a signed note.

Errors (``code`` values are client-safe)::

    server.errors.Forbidden
    └── NoteForbidden       not_note_author, not_a_clinician, not_on_care_team, note_private,
                            note_not_readable
    server.errors.Conflict
    └── NoteConflict        note_not_signed, addendum_to_addendum, stale_draft
        └── NoteImmutable   note_signed
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from consult_notes.templates import NoteKind
from server.auth.roles import Role
from server.errors import Conflict, Forbidden
from server.record.policy import (
    Action,
    Decision,
    Relation,
    decide,
    decide_addendum,
    decide_read_note,
)

__all__ = ["Relation"]  # re-exported: the policy's, so there is one


class NoteForbidden(Forbidden):
    """The actor may not do this to this note."""


class NoteConflict(Conflict):
    """The note's state does not allow this."""


class NoteImmutable(NoteConflict):
    """The note is signed; its body can never change."""

    default_code = "note_signed"

    def __init__(self) -> None:
        super().__init__("This note is signed and can no longer be changed; add an addendum.")


class NoteState(StrEnum):
    DRAFT = "draft"
    SIGNED = "signed"


@dataclass(frozen=True, slots=True)
class Signature:
    signer_id: int
    signed_at: datetime
    content_sha256: str  # hex SHA-256 of the body bytes at signing


@dataclass(frozen=True, slots=True)
class Note:
    """A note or addendum. ``body`` is the plaintext, kept out of ``repr`` and so out of logs."""

    note_id: int
    patient_id: int
    author_id: int
    kind: NoteKind
    body: bytes = field(repr=False)
    version: int
    created_at: datetime
    updated_at: datetime
    signature: Signature | None = None
    amends: int | None = None  # for an addendum: the id of the note it amends

    @property
    def state(self) -> NoteState:
        # Derived, so a note can never be "signed" without a signature or the other way round.
        return NoteState.DRAFT if self.signature is None else NoteState.SIGNED

    @property
    def is_addendum(self) -> bool:
        return self.amends is not None


def content_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def content_matches(note: Note) -> bool:
    """Whether a signed note's body still has the hash recorded at signing (False for drafts)."""
    if note.signature is None:
        return False
    return hmac.compare_digest(note.signature.content_sha256, content_sha256(note.body))


# --- creating ------------------------------------------------------------------------------


def check_create(author_role: Role, relation: Relation) -> None:
    _require(decide(author_role, relation, Action.WRITE_NOTE))


def new_draft(
    *,
    note_id: int,
    patient_id: int,
    author_id: int,
    author_role: Role,
    relation: Relation,
    kind: NoteKind,
    body: bytes,
    now: datetime,
) -> Note:
    """A new draft note; ``kind`` must come from the template (``templates.get_template``)."""
    check_create(author_role, relation)
    _require_aware(now)
    return Note(note_id, patient_id, author_id, kind, body, 1, now, now)


# --- drafts ----------------------------------------------------------------------------------


def check_edit(note: Note, actor_id: int) -> None:
    """Only the author edits a draft, and only while it is a draft."""
    if actor_id != note.author_id:
        raise NoteForbidden("Only the author can change a draft note.", code="not_note_author")
    if note.signature is not None:
        raise NoteImmutable()


check_delete = check_edit  # deleting a draft is allowed exactly when editing it is


def edit(
    note: Note, actor_id: int, body: bytes, now: datetime, *, base_version: int | None = None
) -> Note:
    """Replace a draft's body. ``base_version``, if given, is the version the editor started
    from: a save based on an older version (a second tab) raises ``stale_draft``."""
    check_edit(note, actor_id)
    if base_version is not None and base_version != note.version:
        raise NoteConflict(
            "This draft was changed elsewhere; reload it before saving.", code="stale_draft"
        )
    _require_aware(now)
    if body == note.body:
        return note  # an autosave with nothing new: no new version, nothing to re-encrypt
    return replace(note, body=body, version=note.version + 1, updated_at=now)


# --- signing ---------------------------------------------------------------------------------


def check_sign(note: Note, actor_id: int, actor_role: Role) -> None:
    if actor_id != note.author_id:
        raise NoteForbidden("Only the author can sign a note.", code="not_note_author")
    _require_clinician(actor_role)
    if note.signature is not None:
        raise NoteImmutable()


def sign(note: Note, actor_id: int, actor_role: Role, now: datetime) -> Note:
    """Sign a draft: it becomes immutable, with its content hash, signer and time recorded."""
    check_sign(note, actor_id, actor_role)
    _require_aware(now)
    signature = Signature(actor_id, now, content_sha256(note.body))
    return replace(note, signature=signature, updated_at=now)


# --- addenda ---------------------------------------------------------------------------------


def check_addendum(parent: Note, actor_id: int, actor_role: Role, relation: Relation) -> None:
    _require(
        decide_addendum(
            actor_role,
            relation,
            is_author_of_note=actor_id == parent.author_id,
            private=parent.kind.private,
        )
    )
    if parent.signature is None:
        raise NoteConflict(
            "A draft is edited, not amended; sign it before adding an addendum.",
            code="note_not_signed",
        )
    if parent.is_addendum:
        raise NoteConflict(
            "Add the addendum to the note itself, not to another addendum.",
            code="addendum_to_addendum",
        )


def new_addendum(
    parent: Note,
    *,
    addendum_id: int,
    actor_id: int,
    actor_role: Role,
    relation: Relation,
    body: bytes,
    now: datetime,
) -> Note:
    """A draft addendum to the signed note ``parent``; sign it with :func:`sign`."""
    check_addendum(parent, actor_id, actor_role, relation)
    _require_aware(now)
    return Note(
        addendum_id,
        parent.patient_id,
        actor_id,
        parent.kind,  # an addendum is as private as the note it amends
        body,
        1,
        now,
        now,
        amends=parent.note_id,
    )


# --- reading ---------------------------------------------------------------------------------


def can_read(
    kind: NoteKind,
    state: NoteState,
    author_id: int,
    *,
    reader_id: int,
    reader_role: Role,
    relation: Relation,
) -> bool:
    """Whether a user may read a note or addendum, from its metadata alone (no decryption).

    For an addendum pass the addendum's own state and author; its kind is the parent's.
    """
    return decide_read_note(
        reader_role,
        relation,
        is_author=reader_id == author_id,
        private=kind.private,
        signed=state is NoteState.SIGNED,
    ).allowed


def check_read(
    kind: NoteKind,
    state: NoteState,
    author_id: int,
    *,
    reader_id: int,
    reader_role: Role,
    relation: Relation,
) -> None:
    """:func:`can_read`, raising ``note_not_readable``. A service may prefer to answer 404 for
    a psychotherapy note, whose very existence is private."""
    if not can_read(
        kind, state, author_id, reader_id=reader_id, reader_role=reader_role, relation=relation
    ):
        raise NoteForbidden("You may not read this note.", code="note_not_readable")


# --- helpers ---------------------------------------------------------------------------------


def _require_clinician(role: Role) -> None:
    if not role.is_clinician:
        raise NoteForbidden("Only clinicians can write or sign notes.", code="not_a_clinician")


def _require(decision: Decision) -> None:
    if not decision.allowed:
        raise NoteForbidden(decision.message, code=decision.code)


def _require_aware(now: datetime) -> None:
    # Times are stored as UTC; a naive datetime here is a programming error, caught early.
    if now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
