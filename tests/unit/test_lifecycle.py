"""Note lifecycle and who may do what, as a matrix over personas.

Personas: the authoring psychiatrist, a PCP, a therapist and a care manager on the care team,
a clinician reading under break-the-glass, a clinician off the team, the patient, another
patient, and an admin.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import pytest

from consult_notes.lifecycle import (
    Note,
    NoteConflict,
    NoteForbidden,
    NoteImmutable,
    NoteState,
    Relation,
    Signature,
    can_read,
    check_delete,
    check_read,
    content_matches,
    content_sha256,
    edit,
    new_addendum,
    new_draft,
    sign,
)
from consult_notes.templates import NoteKind
from server.auth.roles import Role
from server.errors import Conflict, Forbidden

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
T2 = T0 + timedelta(minutes=30)
AUTHOR = 1  # user ids
PCP = 2
PATIENT = 9  # the patient's user id
PATIENT_ID = 50  # the patient record


class Persona(NamedTuple):
    user_id: int
    role: Role
    relation: Relation


PERSONAS = {
    "author": Persona(AUTHOR, Role.PSYCHIATRIST, Relation.CARE_TEAM),
    "author_off_team": Persona(AUTHOR, Role.PSYCHIATRIST, Relation.NONE),
    "team_pcp": Persona(PCP, Role.PCP, Relation.CARE_TEAM),
    "team_therapist": Persona(3, Role.THERAPIST, Relation.CARE_TEAM),
    "team_care_manager": Persona(4, Role.CARE_MANAGER, Relation.CARE_TEAM),
    "break_glass": Persona(5, Role.PSYCHIATRIST, Relation.BREAK_GLASS),
    "off_team": Persona(6, Role.PSYCHIATRIST, Relation.NONE),
    "patient": Persona(PATIENT, Role.PATIENT, Relation.SELF),
    "other_patient": Persona(10, Role.PATIENT, Relation.NONE),
    "patient_claiming_team": Persona(PATIENT, Role.PATIENT, Relation.CARE_TEAM),
    "clinician_claiming_self": Persona(PCP, Role.PCP, Relation.SELF),
    "admin": Persona(7, Role.ADMIN, Relation.NONE),
    "admin_on_team": Persona(7, Role.ADMIN, Relation.CARE_TEAM),
}
AUTHORS = {"author", "author_off_team"}
# Who reads a signed, non-private note besides its author.
SIGNED_SHARED_READERS = {
    "team_pcp",
    "team_therapist",
    "team_care_manager",
    "break_glass",
    "patient",
}
SHARED_KINDS = [NoteKind.CONSULT, NoteKind.PROGRESS, NoteKind.CURBSIDE]


def draft(kind: NoteKind = NoteKind.CONSULT, body: bytes = b'{"plan":"v1"}') -> Note:
    return new_draft(
        note_id=100,
        patient_id=PATIENT_ID,
        author_id=AUTHOR,
        author_role=Role.PSYCHIATRIST,
        relation=Relation.CARE_TEAM,
        kind=kind,
        body=body,
        now=T0,
    )


def signed(kind: NoteKind = NoteKind.CONSULT) -> Note:
    return sign(draft(kind), AUTHOR, Role.PSYCHIATRIST, T1)


def addendum_by(persona: Persona, parent: Note) -> Note:
    return new_addendum(
        parent,
        addendum_id=200,
        actor_id=persona.user_id,
        actor_role=persona.role,
        relation=persona.relation,
        body=b'{"text":"correction"}',
        now=T2,
    )


# --- creating --------------------------------------------------------------------------------


def test_a_new_draft_starts_at_version_one() -> None:
    note = draft()
    assert note.state is NoteState.DRAFT
    assert (note.version, note.created_at, note.updated_at) == (1, T0, T0)
    assert note.signature is None
    assert not note.is_addendum


@pytest.mark.parametrize(
    ("persona", "code"),
    [
        ("author", None),
        ("team_pcp", None),
        ("team_therapist", None),
        ("team_care_manager", None),
        ("break_glass", "not_on_care_team"),
        ("off_team", "not_on_care_team"),
        ("author_off_team", "not_on_care_team"),
        ("patient", "not_a_clinician"),
        ("patient_claiming_team", "not_a_clinician"),
        ("admin_on_team", "not_a_clinician"),
    ],
)
def test_it_requires_a_clinician_on_the_care_team_to_create(persona: str, code: str | None) -> None:
    who = PERSONAS[persona]

    def create() -> Note:
        return new_draft(
            note_id=100,
            patient_id=PATIENT_ID,
            author_id=who.user_id,
            author_role=who.role,
            relation=who.relation,
            kind=NoteKind.PROGRESS,
            body=b"{}",
            now=T0,
        )

    if code is None:
        assert create().author_id == who.user_id
    else:
        with pytest.raises(NoteForbidden) as caught:
            create()
        assert caught.value.code == code


def test_it_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sign(draft(), AUTHOR, Role.PSYCHIATRIST, datetime(2026, 1, 5, 9, 0))


# --- drafts ----------------------------------------------------------------------------------


def test_autosave_bumps_the_version_and_time() -> None:
    note = edit(draft(), AUTHOR, b'{"plan":"v2"}', T1)
    note = edit(note, AUTHOR, b'{"plan":"v3"}', T2, base_version=2)
    assert (note.body, note.version, note.updated_at, note.created_at) == (
        b'{"plan":"v3"}',
        3,
        T2,
        T0,
    )


def test_autosave_of_an_unchanged_body_changes_nothing() -> None:
    note = draft()
    assert edit(note, AUTHOR, note.body, T1) is note


def test_a_save_based_on_an_old_version_is_refused() -> None:
    note = edit(draft(), AUTHOR, b'{"plan":"from tab 1"}', T1)
    with pytest.raises(NoteConflict) as caught:
        edit(note, AUTHOR, b'{"plan":"from tab 2"}', T2, base_version=1)
    assert caught.value.code == "stale_draft"
    assert caught.value.status == 409


@pytest.mark.parametrize("persona", sorted(set(PERSONAS) - AUTHORS))
def test_only_the_author_edits_or_deletes_a_draft(persona: str) -> None:
    who = PERSONAS[persona]
    note = draft()
    with pytest.raises(NoteForbidden) as caught:
        edit(note, who.user_id, b"{}", T1)
    assert (caught.value.code, caught.value.status) == ("not_note_author", 403)
    with pytest.raises(NoteForbidden):
        check_delete(note, who.user_id)


def test_the_author_may_delete_a_draft() -> None:
    check_delete(draft(), AUTHOR)


# --- signing ---------------------------------------------------------------------------------


def test_signing_records_signer_time_and_content_hash() -> None:
    note = sign(draft(), AUTHOR, Role.PSYCHIATRIST, T1)
    assert note.state is NoteState.SIGNED
    assert note.signature == Signature(AUTHOR, T1, content_sha256(b'{"plan":"v1"}'))
    assert note.version == 1  # the body did not change, so the ciphertext stays valid
    assert note.updated_at == T1
    assert content_matches(note)


def test_content_matches_catches_a_changed_body_and_is_false_for_drafts() -> None:
    note = signed()
    assert not content_matches(dataclasses.replace(note, body=b'{"plan":"v2"}'))
    assert not content_matches(draft())


@pytest.mark.parametrize("persona", sorted(set(PERSONAS) - AUTHORS))
def test_only_the_author_signs(persona: str) -> None:
    who = PERSONAS[persona]
    with pytest.raises(NoteForbidden) as caught:
        sign(draft(), who.user_id, who.role, T1)
    assert caught.value.code == "not_note_author"


def test_an_author_who_is_no_longer_a_clinician_cannot_sign() -> None:
    with pytest.raises(NoteForbidden) as caught:
        sign(draft(), AUTHOR, Role.ADMIN, T1)
    assert caught.value.code == "not_a_clinician"


@pytest.mark.parametrize("kind", list(NoteKind))
def test_a_signed_note_can_never_change(kind: NoteKind) -> None:
    note = signed(kind)
    for attempt in (
        lambda: edit(note, AUTHOR, b'{"plan":"changed"}', T2),
        lambda: edit(note, AUTHOR, note.body, T2),
        lambda: check_delete(note, AUTHOR),
        lambda: sign(note, AUTHOR, Role.PSYCHIATRIST, T2),
    ):
        with pytest.raises(NoteImmutable) as caught:
            attempt()
        assert (caught.value.code, caught.value.status) == ("note_signed", 409)
        assert isinstance(caught.value, Conflict)


def test_a_non_author_changing_a_signed_note_is_forbidden_first() -> None:
    # Authorisation is checked before state, so a stranger learns nothing about the state.
    with pytest.raises(NoteForbidden):
        edit(signed(), PCP, b"{}", T2)


# --- addenda ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "code"),
    [
        ("author", None),
        ("team_pcp", None),
        ("team_therapist", None),
        ("team_care_manager", None),
        ("author_off_team", "not_on_care_team"),
        ("break_glass", "not_on_care_team"),
        ("off_team", "not_on_care_team"),
        ("patient", "not_a_clinician"),
        ("other_patient", "not_a_clinician"),
        ("patient_claiming_team", "not_a_clinician"),
        ("admin", "not_a_clinician"),
        ("admin_on_team", "not_a_clinician"),
    ],
)
@pytest.mark.parametrize("kind", SHARED_KINDS)
def test_clinicians_on_the_care_team_may_add_an_addendum(
    persona: str, code: str | None, kind: NoteKind
) -> None:
    who, parent = PERSONAS[persona], signed(kind)
    if code is None:
        addendum = addendum_by(who, parent)
        assert addendum.author_id == who.user_id
    else:
        with pytest.raises(NoteForbidden) as caught:
            addendum_by(who, parent)
        assert caught.value.code == code


@pytest.mark.parametrize(
    ("persona", "code"),
    [
        ("author", None),
        ("author_off_team", "not_on_care_team"),
        ("team_pcp", "note_private"),
        ("team_therapist", "note_private"),
        ("break_glass", "note_private"),
        ("patient", "not_a_clinician"),
    ],
)
def test_only_its_author_may_add_to_a_psychotherapy_note(persona: str, code: str | None) -> None:
    who, parent = PERSONAS[persona], signed(NoteKind.PSYCHOTHERAPY)
    if code is None:
        assert addendum_by(who, parent).kind is NoteKind.PSYCHOTHERAPY
    else:
        with pytest.raises(NoteForbidden) as caught:
            addendum_by(who, parent)
        assert caught.value.code == code


def test_an_addendum_is_a_draft_linked_to_its_note() -> None:
    parent = signed(NoteKind.CURBSIDE)
    addendum = addendum_by(PERSONAS["team_pcp"], parent)
    assert addendum.is_addendum
    assert addendum.amends == parent.note_id
    assert (addendum.note_id, addendum.patient_id, addendum.kind) == (
        200,
        PATIENT_ID,
        NoteKind.CURBSIDE,
    )
    assert (addendum.state, addendum.version, addendum.created_at) == (NoteState.DRAFT, 1, T2)


def test_an_addendum_goes_draft_to_signed_under_its_own_author() -> None:
    addendum = addendum_by(PERSONAS["team_pcp"], signed())
    with pytest.raises(NoteForbidden):
        edit(addendum, AUTHOR, b'{"text":"not yours"}', T2)  # the note's author is not its author
    addendum = edit(addendum, PCP, b'{"text":"correction, v2"}', T2)
    addendum = sign(addendum, PCP, Role.PCP, T2)
    assert addendum.signature is not None
    assert addendum.signature.signer_id == PCP
    with pytest.raises(NoteImmutable):
        edit(addendum, PCP, b'{"text":"again"}', T2)


def test_a_draft_cannot_be_amended() -> None:
    with pytest.raises(NoteConflict) as caught:
        addendum_by(PERSONAS["team_pcp"], draft())
    assert caught.value.code == "note_not_signed"


def test_an_addendum_cannot_be_amended() -> None:
    addendum = addendum_by(PERSONAS["team_pcp"], signed())
    addendum = sign(addendum, PCP, Role.PCP, T2)
    with pytest.raises(NoteConflict) as caught:
        addendum_by(PERSONAS["author"], addendum)
    assert caught.value.code == "addendum_to_addendum"


# --- reading ---------------------------------------------------------------------------------

READ_CASES = [
    (kind, state, persona, expected)
    for persona in PERSONAS
    for kind in NoteKind
    for state in NoteState
    for expected in [
        persona in AUTHORS
        or (not kind.private and state is NoteState.SIGNED and persona in SIGNED_SHARED_READERS)
    ]
]


@pytest.mark.parametrize(("kind", "state", "persona", "expected"), READ_CASES)
def test_who_may_read_a_note(
    kind: NoteKind, state: NoteState, persona: str, expected: bool
) -> None:
    who = PERSONAS[persona]
    args = (kind, state, AUTHOR)
    allowed = can_read(*args, reader_id=who.user_id, reader_role=who.role, relation=who.relation)
    assert allowed is expected
    if expected:
        check_read(*args, reader_id=who.user_id, reader_role=who.role, relation=who.relation)
    else:
        with pytest.raises(NoteForbidden) as caught:
            check_read(*args, reader_id=who.user_id, reader_role=who.role, relation=who.relation)
        assert (caught.value.code, caught.value.status) == ("note_not_readable", 403)
        assert isinstance(caught.value, Forbidden)


def test_the_read_matrix_has_the_expected_shape() -> None:
    # Guards the table above against silently losing rows.
    assert len(READ_CASES) == len(PERSONAS) * len(NoteKind) * len(NoteState)
    readable_psychotherapy = {
        p for k, _s, p, ok in READ_CASES if k is NoteKind.PSYCHOTHERAPY and ok
    }
    assert readable_psychotherapy == AUTHORS


def test_an_addendum_by_a_team_member_is_readable_by_its_author_while_a_draft() -> None:
    addendum = addendum_by(PERSONAS["team_pcp"], signed())
    meta = (addendum.kind, addendum.state, addendum.author_id)
    assert can_read(*meta, reader_id=PCP, reader_role=Role.PCP, relation=Relation.CARE_TEAM)
    assert not can_read(
        *meta, reader_id=AUTHOR, reader_role=Role.PSYCHIATRIST, relation=Relation.CARE_TEAM
    )
    assert not can_read(*meta, reader_id=PATIENT, reader_role=Role.PATIENT, relation=Relation.SELF)


def test_the_body_stays_out_of_repr() -> None:
    note = draft(body=b'{"plan":"MARKER-91c2"}')
    assert "MARKER-91c2" not in repr(note)
    assert "MARKER-91c2" not in repr(sign(note, AUTHOR, Role.PSYCHIATRIST, T1))
