"""Envelope encryption of consult note bodies and addenda.

Each body is sealed under its own random AES-256-GCM data key (DEK) and 96-bit nonce. The DEK
is wrapped by a key-encryption key (KEK) from the :class:`~consult_notes.keyring.KeyRing`. A
:class:`SealedNote` is four columns: ``kek_id``, ``wrapped_dek``, ``nonce``, ``ciphertext``.

Associated data. The body's AAD is a canonical, length-prefixed encoding of the record kind
(``note`` / ``addendum``), note id, patient id, note version and, for an addendum, the id of the
note it amends (:class:`NoteContext`), so a ciphertext copied into another row, or an older
version replayed into the same row, fails to decrypt. The KEK id is bound by the wrapped DEK's
AAD instead of the body's: that way rotation re-wraps the 60-byte DEK and never re-encrypts a
body, and relabelling ``kek_id`` still fails. Ids must be the database's integer ids, the same
at sealing and unsealing.

Why AES-GCM rather than RFC 3394/5649 key wrap for the DEK: GCM takes associated data, so the
wrap is bound to its KEK id and to its purpose (a DEK of this scheme, not some other secret
under the same KEK); its tag is 128 bits against key wrap's 64-bit integrity check; and the
whole module rests on one primitive. The cost is a random nonce per wrap, stored inside
``wrapped_dek`` (nonce || encrypted DEK || tag); NIST SP 800-38D allows 2**32 random-nonce
encryptions per key, i.e. four billion notes and re-wraps per KEK, far beyond our scale (and a
rotation starts a fresh KEK anyway).

Errors. Anything that fails authentication -- a flipped bit in any column, a swapped row, a
wrong or relabelled key id, a wrong context -- raises :class:`NoteIntegrityError` (named so as
not to shadow ``sqlalchemy.exc.IntegrityError``); altered text is never returned. A ``kek_id``
the ring does not hold raises ``keyring.UnknownKeyError``: that is a deployment problem (the
process needs to reload its ring), not tampering::

    Exception
    ├── NoteIntegrityError      authentication failed; the stored note is not what was sealed
    └── keyring.KeyRingError
        └── UnknownKeyError     no such KEK in this ring

Everything here is synchronous and pure (no I/O, no clock). AES-GCM runs at roughly a
gigabyte per second, so a typical note costs microseconds; callers should run ``seal`` /
``unseal`` / ``rewrap`` batches and bodies beyond some hundreds of kilobytes in an executor
(``loop.run_in_executor``) rather than on the event loop.
"""

from __future__ import annotations

import secrets
import struct
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from consult_notes.keyring import KeyRing

DEK_BYTES: Final = 32
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
WRAPPED_DEK_BYTES: Final = NONCE_BYTES + DEK_BYTES + TAG_BYTES

# Domain labels: an AAD built for one purpose can never equal one built for the other, and a
# future scheme ("...v2") cannot be confused with this one.
_BODY_LABEL: Final = "liaison.note-body.v1"
_DEK_LABEL: Final = "liaison.note-dek.v1"


class NoteIntegrityError(Exception):
    """A sealed note failed authentication: tampered, swapped, or under the wrong key."""


class RecordKind(StrEnum):
    """What a sealed body belongs to; part of the AAD."""

    NOTE = "note"
    ADDENDUM = "addendum"


@dataclass(frozen=True, slots=True)
class NoteContext:
    """The row a body belongs to. Sealing and unsealing must be given the same context.

    ``amends`` is the id of the note an addendum amends (``None`` for a note), so an addendum
    moved onto another note of the same patient fails to decrypt too.
    """

    kind: RecordKind
    note_id: int
    patient_id: int
    version: int
    amends: int | None = None

    def __post_init__(self) -> None:
        for name in ("note_id", "patient_id", "version"):
            value = getattr(self, name)
            # bool is an int; True would encode like 1 and is surely a bug.
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative int")
        if (self.kind is RecordKind.ADDENDUM) != (self.amends is not None):
            raise ValueError("an addendum, and only an addendum, has the id of the note it amends")

    def associated_data(self) -> bytes:
        """Canonical AAD for the body: label and fields, each 4-byte length-prefixed."""
        # "" for no parent cannot collide with a decimal id, which is never empty.
        amends = "" if self.amends is None else self.amends
        return _encode(
            _BODY_LABEL, self.kind.value, self.note_id, self.patient_id, self.version, amends
        )


@dataclass(frozen=True, slots=True)
class SealedNote:
    """An encrypted body as a store keeps it. ``repr`` shows only sizes."""

    kek_id: str
    wrapped_dek: bytes  # nonce || AES-GCM(KEK, DEK) || tag
    nonce: bytes  # the body's nonce
    ciphertext: bytes  # AES-GCM(DEK, body) || tag

    def __repr__(self) -> str:
        return f"SealedNote(kek_id={self.kek_id!r}, ciphertext=<{len(self.ciphertext)} bytes>)"


def seal(body: bytes, context: NoteContext, keyring: KeyRing) -> SealedNote:
    """Encrypt ``body`` for the row ``context`` under a fresh DEK wrapped by the current KEK."""
    dek = AESGCM.generate_key(bit_length=DEK_BYTES * 8)
    nonce = secrets.token_bytes(NONCE_BYTES)
    ciphertext = AESGCM(dek).encrypt(nonce, body, context.associated_data())
    kek_id = keyring.current_id
    return SealedNote(kek_id, _wrap(dek, kek_id, keyring), nonce, ciphertext)


def unseal(sealed: SealedNote, context: NoteContext, keyring: KeyRing) -> bytes:
    """Decrypt and authenticate; raises :class:`NoteIntegrityError` on any mismatch."""
    if len(sealed.nonce) != NONCE_BYTES:
        raise NoteIntegrityError("sealed note has a malformed nonce")
    dek = _unwrap(sealed, keyring)
    try:
        return AESGCM(dek).decrypt(sealed.nonce, sealed.ciphertext, context.associated_data())
    except InvalidTag:
        raise NoteIntegrityError("note body failed authentication") from None


def rewrap(sealed: SealedNote, keyring: KeyRing, new_kek_id: str | None = None) -> SealedNote:
    """Re-wrap the DEK under ``new_kek_id`` (default: the ring's current key).

    The nonce and body ciphertext are returned unchanged, so rotation costs the same for
    any body size and needs no note context. Only the wrapped DEK is authenticated here; a
    tampered body is still caught when it is read. A note already under ``new_kek_id`` is
    returned as it is, so an interrupted rotation can simply be run again.
    """
    target = keyring.current_id if new_kek_id is None else new_kek_id
    if sealed.kek_id == target:
        return sealed
    keyring.key(target)  # fail on an unknown target before any work
    dek = _unwrap(sealed, keyring)
    return replace(sealed, kek_id=target, wrapped_dek=_wrap(dek, target, keyring))


def _wrap(dek: bytes, kek_id: str, keyring: KeyRing) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(keyring.key(kek_id)).encrypt(nonce, dek, _encode(_DEK_LABEL, kek_id))


def _unwrap(sealed: SealedNote, keyring: KeyRing) -> bytes:
    kek = keyring.key(sealed.kek_id)
    wrapped = sealed.wrapped_dek
    if len(wrapped) != WRAPPED_DEK_BYTES:
        raise NoteIntegrityError("sealed note has a malformed wrapped data key")
    nonce, encrypted = wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:]
    try:
        return AESGCM(kek).decrypt(nonce, encrypted, _encode(_DEK_LABEL, sealed.kek_id))
    except InvalidTag:
        raise NoteIntegrityError(
            f"wrapped data key failed authentication under key {sealed.kek_id!r}"
        ) from None


def _encode(*fields: str | int) -> bytes:
    """Length-prefixed encoding: unambiguous, so no two field lists share an encoding."""
    out = bytearray()
    for field in fields:
        # Ints are written in decimal; str(int) has exactly one form (no "+1" or "01").
        data = (str(field) if isinstance(field, int) else field).encode("utf-8")
        out += struct.pack(">I", len(data)) + data
    return bytes(out)
