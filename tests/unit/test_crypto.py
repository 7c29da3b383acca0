"""Envelope encryption of note bodies: round trips, tampering, swapped rows, rotation."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from consult_notes.crypto import (
    NONCE_BYTES,
    TAG_BYTES,
    WRAPPED_DEK_BYTES,
    NoteContext,
    NoteIntegrityError,
    RecordKind,
    SealedNote,
    rewrap,
    seal,
    unseal,
)
from consult_notes.keyring import KeyRing, UnknownKeyError

RING = KeyRing.generate()  # read-only; shared so hypothesis examples stay cheap
CTX = NoteContext(RecordKind.NOTE, note_id=101, patient_id=7, version=3)
BODY = b'{"plan":"sertraline 50 mg","marker":"MARKER-7f3a"}'

ids = st.integers(min_value=0, max_value=2**63)
contexts = st.one_of(
    st.builds(NoteContext, kind=st.just(RecordKind.NOTE), note_id=ids, patient_id=ids, version=ids),
    st.builds(
        NoteContext,
        kind=st.just(RecordKind.ADDENDUM),
        note_id=ids,
        patient_id=ids,
        version=ids,
        amends=ids,
    ),
)


def with_column(sealed: SealedNote, column: str, value: bytes) -> SealedNote:
    return SealedNote(**{**dataclasses.asdict(sealed), column: value})


def flip_bit(data: bytes, index: int, bit: int) -> bytes:
    out = bytearray(data)
    out[index % len(out)] ^= 1 << bit
    return bytes(out)


# --- round trips ---------------------------------------------------------------------------


@given(text=st.text(), context=contexts)
def test_it_round_trips_any_text(text: str, context: NoteContext) -> None:
    body = text.encode("utf-8", "surrogatepass")
    assert unseal(seal(body, context, RING), context, RING) == body


@given(body=st.binary(max_size=4096))
def test_it_round_trips_any_bytes(body: bytes) -> None:
    assert unseal(seal(body, CTX, RING), CTX, RING) == body


def test_it_seals_under_the_current_key_with_fixed_sizes() -> None:
    ring = RING.with_new_key()
    sealed = seal(BODY, CTX, ring)
    assert sealed.kek_id == ring.current_id == "k2"
    assert len(sealed.nonce) == NONCE_BYTES
    assert len(sealed.wrapped_dek) == WRAPPED_DEK_BYTES
    assert len(sealed.ciphertext) == len(BODY) + TAG_BYTES
    assert BODY not in sealed.ciphertext


def test_it_uses_a_fresh_data_key_and_nonce_for_every_seal() -> None:
    first, second = seal(BODY, CTX, RING), seal(BODY, CTX, RING)
    assert first.nonce != second.nonce
    assert first.wrapped_dek != second.wrapped_dek
    assert first.ciphertext != second.ciphertext


def test_its_repr_shows_no_ciphertext_or_key_bytes() -> None:
    sealed = seal(BODY, CTX, RING)
    text = repr(sealed)
    assert "k1" in text
    assert repr(sealed.ciphertext) not in text
    assert repr(sealed.wrapped_dek) not in text
    assert sealed.ciphertext.hex() not in text


# --- tampering -----------------------------------------------------------------------------


@given(
    field=st.sampled_from(["ciphertext", "nonce", "wrapped_dek"]),
    index=st.integers(min_value=0),
    bit=st.integers(min_value=0, max_value=7),
)
def test_it_refuses_any_flipped_bit(field: str, index: int, bit: int) -> None:
    sealed = seal(BODY, CTX, RING)
    tampered = with_column(sealed, field, flip_bit(getattr(sealed, field), index, bit))
    with pytest.raises(NoteIntegrityError):
        unseal(tampered, CTX, RING)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("ciphertext", b""),
        ("ciphertext", b"\x00" * TAG_BYTES),
        ("nonce", b""),
        ("nonce", b"\x00" * (NONCE_BYTES - 1)),
        ("nonce", b"\x00" * (NONCE_BYTES + 1)),
        ("wrapped_dek", b""),
        ("wrapped_dek", b"\x00" * (WRAPPED_DEK_BYTES + 1)),
    ],
)
def test_it_refuses_truncated_or_padded_columns(column: str, value: bytes) -> None:
    sealed = with_column(seal(BODY, CTX, RING), column, value)
    with pytest.raises(NoteIntegrityError):
        unseal(sealed, CTX, RING)


@given(extra=st.binary(min_size=1, max_size=32))
def test_it_refuses_appended_ciphertext(extra: bytes) -> None:
    sealed = seal(BODY, CTX, RING)
    with pytest.raises(NoteIntegrityError):
        unseal(dataclasses.replace(sealed, ciphertext=sealed.ciphertext + extra), CTX, RING)


# --- rows and contexts -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "other",
    [
        dataclasses.replace(CTX, note_id=102),
        dataclasses.replace(CTX, patient_id=8),
        dataclasses.replace(CTX, version=4),
        dataclasses.replace(CTX, version=2),
        dataclasses.replace(CTX, kind=RecordKind.ADDENDUM, amends=100),
    ],
    ids=["note_id", "patient_id", "newer_version", "older_version", "kind"],
)
def test_it_refuses_a_body_read_in_another_context(other: NoteContext) -> None:
    with pytest.raises(NoteIntegrityError, match="note body failed authentication"):
        unseal(seal(BODY, CTX, RING), other, RING)


def test_it_refuses_a_row_copied_onto_another_note() -> None:
    ctx_b = NoteContext(RecordKind.NOTE, note_id=102, patient_id=7, version=3)
    row_a = seal(b"note A", CTX, RING)
    row_b = seal(b"note B", ctx_b, RING)
    # The whole row of A stored under B.
    with pytest.raises(NoteIntegrityError):
        unseal(row_a, ctx_b, RING)
    # Only A's body (nonce and ciphertext) moved, keeping B's wrapped data key.
    mixed = dataclasses.replace(row_b, nonce=row_a.nonce, ciphertext=row_a.ciphertext)
    with pytest.raises(NoteIntegrityError):
        unseal(mixed, ctx_b, RING)
    # Only A's wrapped data key moved.
    mixed = dataclasses.replace(row_b, wrapped_dek=row_a.wrapped_dek)
    with pytest.raises(NoteIntegrityError):
        unseal(mixed, ctx_b, RING)


@given(a=ids, b=ids, c=ids, d=ids)
@example(a=1, b=23, c=12, d=3)  # "1"+"23" and "12"+"3" must differ
def test_its_associated_data_never_confuses_field_boundaries(
    a: int, b: int, c: int, d: int
) -> None:
    first = NoteContext(RecordKind.NOTE, a, b, 1)
    second = NoteContext(RecordKind.NOTE, c, d, 1)
    assert (first.associated_data() == second.associated_data()) == ((a, b) == (c, d))


def test_it_refuses_an_addendum_moved_onto_another_note() -> None:
    addendum = NoteContext(RecordKind.ADDENDUM, note_id=5, patient_id=7, version=1, amends=101)
    sealed = seal(b"correction", addendum, RING)
    assert unseal(sealed, addendum, RING) == b"correction"
    with pytest.raises(NoteIntegrityError):
        unseal(sealed, dataclasses.replace(addendum, amends=102), RING)
    # Same ids as a note row: the kind keeps separate tables apart.
    with pytest.raises(NoteIntegrityError):
        unseal(sealed, NoteContext(RecordKind.NOTE, note_id=5, patient_id=7, version=1), RING)


@pytest.mark.parametrize(("kind", "amends"), [(RecordKind.NOTE, 101), (RecordKind.ADDENDUM, None)])
def test_only_an_addendum_names_the_note_it_amends(kind: RecordKind, amends: int | None) -> None:
    with pytest.raises(ValueError, match="only an addendum"):
        NoteContext(kind, note_id=1, patient_id=2, version=3, amends=amends)


def test_it_refuses_a_body_replayed_from_an_older_version() -> None:
    old = seal(b"draft v1", CTX, RING)
    newer = dataclasses.replace(CTX, version=CTX.version + 1)
    with pytest.raises(NoteIntegrityError):
        unseal(old, newer, RING)


@pytest.mark.parametrize("field", ["note_id", "patient_id", "version"])
@pytest.mark.parametrize("value", [-1, True, "5", 1.0])
def test_it_refuses_a_context_with_a_bad_number(field: str, value: object) -> None:
    fields: dict[str, Any] = {"note_id": 1, "patient_id": 2, "version": 3, field: value}
    with pytest.raises(ValueError, match=f"{field} must be a non-negative int"):
        NoteContext(RecordKind.NOTE, **fields)


# --- key ids ---------------------------------------------------------------------------------


def test_it_refuses_a_relabelled_key_id() -> None:
    ring = RING.with_new_key()
    sealed = seal(BODY, CTX, ring)  # under k2
    with pytest.raises(NoteIntegrityError, match="wrapped data key failed authentication"):
        unseal(dataclasses.replace(sealed, kek_id="k1"), CTX, ring)


def test_it_refuses_a_key_with_the_right_id_but_other_bytes() -> None:
    sealed = seal(BODY, CTX, RING)
    impostor = KeyRing.generate()  # also "k1"
    with pytest.raises(NoteIntegrityError):
        unseal(sealed, CTX, impostor)


def test_it_reports_a_key_id_missing_from_the_ring() -> None:
    sealed = seal(BODY, CTX, RING.with_new_key())
    with pytest.raises(UnknownKeyError) as caught:
        unseal(sealed, CTX, RING)
    assert caught.value.kek_id == "k2"


# --- rotation --------------------------------------------------------------------------------


def test_rewrap_keeps_the_body_readable_without_the_old_key() -> None:
    rotated = RING.with_new_key()
    sealed = seal(BODY, CTX, RING)
    moved = rewrap(sealed, rotated)  # defaults to the current key
    assert moved.kek_id == "k2"
    assert (moved.nonce, moved.ciphertext) == (sealed.nonce, sealed.ciphertext)
    assert moved.wrapped_dek != sealed.wrapped_dek
    only_new = KeyRing({"k2": rotated.key("k2")}, "k2")
    assert unseal(moved, CTX, only_new) == BODY
    with pytest.raises(UnknownKeyError):
        unseal(sealed, CTX, only_new)


def test_rewrap_can_move_a_note_to_any_key_in_the_ring() -> None:
    ring = RING.with_new_key()
    sealed = seal(BODY, CTX, ring)
    back = rewrap(sealed, ring, "k1")
    assert back.kek_id == "k1"
    assert unseal(back, CTX, ring) == BODY


def test_rewrap_leaves_a_note_already_under_the_target_key_alone() -> None:
    sealed = seal(BODY, CTX, RING)
    assert rewrap(sealed, RING, "k1") is sealed


def test_rewrap_refuses_an_unknown_target_key() -> None:
    with pytest.raises(UnknownKeyError):
        rewrap(seal(BODY, CTX, RING), RING, "k9")


def test_rewrap_refuses_a_tampered_wrapped_key() -> None:
    sealed = seal(BODY, CTX, RING)
    tampered = dataclasses.replace(sealed, wrapped_dek=flip_bit(sealed.wrapped_dek, 20, 0))
    with pytest.raises(NoteIntegrityError):
        rewrap(tampered, RING.with_new_key())


def test_rewrap_of_a_tampered_body_is_still_caught_when_read() -> None:
    ring = RING.with_new_key()
    sealed = seal(BODY, CTX, RING)
    tampered = dataclasses.replace(sealed, ciphertext=flip_bit(sealed.ciphertext, 0, 0))
    with pytest.raises(NoteIntegrityError):
        unseal(rewrap(tampered, ring), CTX, ring)


@given(text=st.text(max_size=200), context=contexts)
def test_rewrap_round_trips_through_several_rotations(text: str, context: NoteContext) -> None:
    body = text.encode("utf-8", "surrogatepass")
    ring = RING
    sealed: SealedNote = seal(body, context, ring)
    for _ in range(3):
        ring = ring.with_new_key()
        sealed = rewrap(sealed, ring)
    assert sealed.kek_id == "k4"
    assert unseal(sealed, context, KeyRing({"k4": ring.key("k4")}, "k4")) == body
