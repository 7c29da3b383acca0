"""Persistence of consult notes and addenda through the crypto layer.

A note's body reaches the database only sealed (``crypto.seal``: the columns ``kek_id``,
``wrapped_dek``, ``nonce``, ``ciphertext``), bound to the row's id, patient, version and, for an
addendum, the note it amends. Sealing and unsealing run in a worker thread
(``asyncio.to_thread``) so a large body never holds up the event loop.

The store holds SQL and crypto; it never decides who may do what (``server.record.notes`` asks
the access policy first). Writes are compare-and-swap on the row's ``version`` (autosave from
two tabs, a sign racing a save) and, for rotation, on the wrapped data key itself (a rotation
racing an autosave), so a lost update shows up as ``False`` instead of silently winning.

Keys: a :class:`KeySource` holds the ring as last loaded. ``liaison keys rotate`` (another
process) adds a key to the key file and re-wraps rows under it while servers serve, so:

- reading a row under a key id this process does not hold reloads the ring from its file and
  tries again (``UnknownKeyError`` -> reload -> retry, once);
- sealing a new body first checks, at most every ``reload_interval_s``, whether the key file
  changed, so new notes move to the new key soon after a rotation.

Errors::

    server.errors.LiaisonError
    ├── NoteKeyUnavailable (503, notes_key_unavailable)   a key id no reload could find
    ├── NotesKeyRingMissing (503, notes_key_ring_missing) no key file, yet notes exist
    └── NoteCorrupted      (500, note_integrity_failed)   the sealed row failed authentication
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Row, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from consult_notes.crypto import (
    NoteContext,
    NoteIntegrityError,
    RecordKind,
    SealedNote,
    rewrap,
    seal,
    unseal,
)
from consult_notes.keyring import KeyRing, UnknownKeyError
from consult_notes.lifecycle import Note, NoteState, Signature
from consult_notes.templates import NoteKind
from server.db.models import ConsultNote, FollowUpTask
from server.errors import LiaisonError
from server.settings import NotesSettings

log = logging.getLogger("liaison.notes")

KEYRING_ENV = "LIAISON_NOTES__KEYRING"


class NoteKeyUnavailable(LiaisonError):
    status = 503
    default_code = "notes_key_unavailable"


class NotesKeyRingMissing(LiaisonError):
    status = 503
    default_code = "notes_key_ring_missing"


class NoteCorrupted(LiaisonError):
    status = 500
    default_code = "note_integrity_failed"


# --- the key ring ------------------------------------------------------------------------------


def _file_signature(path: Path) -> tuple[int, int, int]:
    info = os.stat(path)
    return (info.st_ino, info.st_mtime_ns, info.st_size)


def _load_file(path: Path, create: bool) -> tuple[KeyRing, tuple[int, int, int], bool]:
    """The ring, the file's signature, and whether the file was created just now."""
    created = False
    if create and not os.path.lexists(path):
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        ring = KeyRing.load_or_create(path)
        created = True
    else:
        ring = KeyRing.load(path)
    return ring, _file_signature(path), created


async def open_key_source(
    settings: NotesSettings, db: async_sessionmaker[AsyncSession]
) -> KeySource:
    """:meth:`KeySource.open`, refusing to create a new key file over existing notes.

    Notes in the database but no key file means the ring is somewhere else (a wrong path, an
    unmounted volume, a lost backup): a fresh ring would be useless for them, and its ``k1``
    is not their ``k1``. Better not to start than to serve every note as unreadable."""
    if settings.keyring is None and not await asyncio.to_thread(os.path.lexists, settings.key_file):
        async with db() as session:
            found = await session.execute(select(func.count()).select_from(ConsultNote))
            if found.scalar_one():
                raise NotesKeyRingMissing(
                    f"Consult notes exist but their key file {settings.key_file} does not. "
                    "Restore it there (or point notes.key_file or LIAISON_NOTES__KEYRING at "
                    "it) and start again; a new key ring cannot read them."
                )
    return await KeySource.open(settings)


class KeySource:
    """The notes' key ring as this process last loaded it, and where to reload it from.

    A ring from the environment (``path`` None) never changes while the process runs.
    """

    def __init__(
        self,
        ring: KeyRing,
        *,
        path: Path | None = None,
        reload_interval_s: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
        signature: tuple[int, int, int] | None = None,
    ) -> None:
        self._ring = ring
        self._path = path
        self._interval = reload_interval_s
        self._monotonic = monotonic
        self._signature = signature
        self._checked_at = monotonic()
        self._lock = asyncio.Lock()
        self.reloads = 0
        self.created = False  # open() created the key file

    @classmethod
    async def open(cls, settings: NotesSettings) -> KeySource:
        """From ``LIAISON_NOTES__KEYRING`` if set, else the key file (created if missing)."""
        if settings.keyring is not None:
            ring = KeyRing.from_env_value(settings.keyring.get_secret_value(), name=KEYRING_ENV)
            return cls(ring, reload_interval_s=settings.reload_interval_s)
        ring, signature, created = await asyncio.to_thread(_load_file, settings.key_file, True)
        source = cls(
            ring,
            path=settings.key_file,
            reload_interval_s=settings.reload_interval_s,
            signature=signature,
        )
        source.created = created
        if created:
            log.warning("notes key file created", extra={"path": str(settings.key_file)})
        return source

    @property
    def ring(self) -> KeyRing:
        return self._ring

    @property
    def path(self) -> Path | None:
        return self._path

    async def reload(self) -> KeyRing:
        """Read the key file again (a ring from the environment stays as it is)."""
        if self._path is None:
            return self._ring
        async with self._lock:
            ring, signature, _created = await asyncio.to_thread(_load_file, self._path, False)
            if ring.ids != self._ring.ids or ring.current_id != self._ring.current_id:
                log.info(
                    "notes key ring reloaded",
                    extra={"current": ring.current_id, "keys": len(ring.ids)},
                )
            self._ring, self._signature = ring, signature
            self._checked_at = self._monotonic()
            self.reloads += 1
            return ring

    async def for_sealing(self) -> KeyRing:
        """The ring to seal new bodies with: reloaded first if the key file changed since it
        was last read (looked at no more often than every ``reload_interval_s``)."""
        if self._path is None or self._monotonic() - self._checked_at < self._interval:
            return self._ring
        self._checked_at = self._monotonic()
        try:
            signature = await asyncio.to_thread(_file_signature, self._path)
        except OSError:
            log.warning("notes key file unreadable; keeping the loaded ring")
            return self._ring
        if signature != self._signature:
            return await self.reload()
        return self._ring


# --- rows ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoteMeta:
    """A note's row without its sealed body."""

    id: int
    patient_id: int
    author_id: int
    kind: NoteKind
    template_id: str | None
    amends: int | None
    encounter_id: int | None
    version: int
    created_at: datetime
    updated_at: datetime
    signed_at: datetime | None
    signed_by: int | None
    content_sha256: str | None

    @property
    def state(self) -> NoteState:
        return NoteState.DRAFT if self.signed_at is None else NoteState.SIGNED

    @property
    def is_addendum(self) -> bool:
        return self.amends is not None

    def context(self, version: int | None = None) -> NoteContext:
        return NoteContext(
            RecordKind.ADDENDUM if self.is_addendum else RecordKind.NOTE,
            self.id,
            self.patient_id,
            self.version if version is None else version,
            self.amends,
        )

    def as_note(self, body: bytes) -> Note:
        """The lifecycle's value for this row, with its decrypted body."""
        signature = None
        if self.signed_at is not None:
            assert self.signed_by is not None and self.content_sha256 is not None
            signature = Signature(self.signed_by, self.signed_at, self.content_sha256)
        return Note(
            self.id,
            self.patient_id,
            self.author_id,
            self.kind,
            body,
            self.version,
            self.created_at,
            self.updated_at,
            signature,
            self.amends,
        )


_META = (
    ConsultNote.id,
    ConsultNote.patient_id,
    ConsultNote.author_id,
    ConsultNote.kind,
    ConsultNote.template_id,
    ConsultNote.amends,
    ConsultNote.encounter_id,
    ConsultNote.version,
    ConsultNote.created_at,
    ConsultNote.updated_at,
    ConsultNote.signed_at,
    ConsultNote.signed_by,
    ConsultNote.content_sha256,
)
_SEALED = (ConsultNote.kek_id, ConsultNote.wrapped_dek, ConsultNote.nonce, ConsultNote.ciphertext)


def _meta(row: Row[*tuple[Any, ...]]) -> NoteMeta:
    return NoteMeta(
        id=row.id,
        patient_id=row.patient_id,
        author_id=row.author_id,
        kind=NoteKind(row.kind),
        template_id=row.template_id,
        amends=row.amends,
        encounter_id=row.encounter_id,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        signed_at=row.signed_at,
        signed_by=row.signed_by,
        content_sha256=row.content_sha256,
    )


def _sealed_values(sealed: SealedNote) -> dict[str, object]:
    return {
        "kek_id": sealed.kek_id,
        "wrapped_dek": sealed.wrapped_dek,
        "nonce": sealed.nonce,
        "ciphertext": sealed.ciphertext,
    }


def _unseal_all(items: Sequence[tuple[SealedNote, NoteContext]], ring: KeyRing) -> list[bytes]:
    return [unseal(sealed, context, ring) for sealed, context in items]


# --- the store -----------------------------------------------------------------------------------


class NoteStore:
    def __init__(self, keys: KeySource) -> None:
        self._keys = keys

    @property
    def keys(self) -> KeySource:
        return self._keys

    async def create(
        self,
        db: AsyncSession,
        *,
        patient_id: int,
        author_id: int,
        kind: NoteKind,
        template_id: str | None,
        amends: int | None,
        encounter_id: int | None,
        body: bytes,
        now: datetime,
    ) -> NoteMeta:
        """Insert a draft (version 1). The row needs its id before its body can be sealed
        (the id is bound into the ciphertext), so it is flushed with empty sealed columns
        first and filled in before the transaction commits: nobody else ever sees it empty."""
        row = ConsultNote(
            patient_id=patient_id,
            author_id=author_id,
            kind=kind.value,
            template_id=template_id,
            amends=amends,
            encounter_id=encounter_id,
            version=1,
            created_at=now,
            updated_at=now,
            kek_id="",
            wrapped_dek=b"",
            nonce=b"",
            ciphertext=b"",
        )
        db.add(row)
        await db.flush()
        meta = NoteMeta(
            id=row.id,
            patient_id=patient_id,
            author_id=author_id,
            kind=kind,
            template_id=template_id,
            amends=amends,
            encounter_id=encounter_id,
            version=1,
            created_at=now,
            updated_at=now,
            signed_at=None,
            signed_by=None,
            content_sha256=None,
        )
        sealed = await self._seal(body, meta.context())
        for name, value in _sealed_values(sealed).items():
            setattr(row, name, value)
        await db.flush()
        return meta

    async def meta(self, db: AsyncSession, note_id: int) -> NoteMeta | None:
        row = (await db.execute(select(*_META).where(ConsultNote.id == note_id))).first()
        return None if row is None else _meta(row)

    async def for_patient(self, db: AsyncSession, patient_id: int) -> list[NoteMeta]:
        """Every note and addendum of a patient, oldest first (no bodies)."""
        rows = await db.execute(
            select(*_META)
            .where(ConsultNote.patient_id == patient_id)
            .order_by(ConsultNote.created_at, ConsultNote.id)
        )
        return [_meta(row) for row in rows]

    async def addenda(self, db: AsyncSession, note_id: int) -> list[NoteMeta]:
        rows = await db.execute(
            select(*_META).where(ConsultNote.amends == note_id).order_by(ConsultNote.id)
        )
        return [_meta(row) for row in rows]

    async def bodies(
        self, db: AsyncSession, metas: Sequence[NoteMeta]
    ) -> list[tuple[NoteMeta, bytes]]:
        """These rows as they are now, each with its decrypted body, in order (one worker-thread
        call for all). The metadata is read again with the sealed columns, in one statement: a
        draft saved between reading ``metas`` and this call has a new version, which its body
        is bound to, and unsealing it against the old one would look like tampering."""
        if not metas:
            return []
        rows = await db.execute(
            select(*_META, *_SEALED).where(ConsultNote.id.in_([m.id for m in metas]))
        )
        current = {
            row.id: (_meta(row), SealedNote(row.kek_id, row.wrapped_dek, row.nonce, row.ciphertext))
            for row in rows
        }
        pairs = [current[m.id] for m in metas]
        plain = await self._unseal([(sealed, meta.context()) for meta, sealed in pairs])
        return [(meta, body) for (meta, _), body in zip(pairs, plain, strict=True)]

    async def body(self, db: AsyncSession, meta: NoteMeta) -> tuple[NoteMeta, bytes]:
        """One row as it is now and its body (see :meth:`bodies`)."""
        return (await self.bodies(db, [meta]))[0]

    async def replace_draft(self, db: AsyncSession, meta: NoteMeta, note: Note) -> bool:
        """Store the new body and version of an edited draft, if the row is still the draft
        at ``meta.version`` that was read (else False: stale, or signed meanwhile)."""
        sealed = await self._seal(note.body, meta.context(note.version))
        result = await db.execute(
            update(ConsultNote)
            .where(
                ConsultNote.id == meta.id,
                ConsultNote.version == meta.version,
                ConsultNote.signed_at.is_(None),
            )
            .values(version=note.version, updated_at=note.updated_at, **_sealed_values(sealed))
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def mark_signed(self, db: AsyncSession, meta: NoteMeta, note: Note) -> bool:
        """Record a signature, if the row is still the unsigned draft at ``meta.version``."""
        assert note.signature is not None
        result = await db.execute(
            update(ConsultNote)
            .where(
                ConsultNote.id == meta.id,
                ConsultNote.version == meta.version,
                ConsultNote.signed_at.is_(None),
            )
            .values(
                signed_at=note.signature.signed_at,
                signed_by=note.signature.signer_id,
                content_sha256=note.signature.content_sha256,
                updated_at=note.updated_at,
            )
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def delete_draft(self, db: AsyncSession, meta: NoteMeta) -> bool:
        """Delete the draft if it is still at ``meta.version``; False if it changed. Follow-up
        tasks made before a task's source had to be signed may point at it: they lose the link
        and stay. A False return must roll the transaction back (the service raises), which
        restores those links too."""
        await db.execute(
            update(FollowUpTask)
            .where(FollowUpTask.source_note_id == meta.id)
            .values(source_note_id=None)
            .execution_options(synchronize_session=False)
        )
        result = await db.execute(
            delete(ConsultNote).where(
                ConsultNote.id == meta.id,
                ConsultNote.version == meta.version,
                ConsultNote.signed_at.is_(None),
            )
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    # --- rotation --------------------------------------------------------------------------

    async def count_not_under(self, db: AsyncSession, kek_id: str) -> int:
        found = await db.execute(
            select(func.count()).select_from(ConsultNote).where(ConsultNote.kek_id != kek_id)
        )
        return int(found.scalar_one())

    async def rewrap_batch(
        self, db: AsyncSession, ring: KeyRing, *, after_id: int, limit: int
    ) -> tuple[int, int, int | None]:
        """Re-wrap the data keys of up to ``limit`` rows with id > ``after_id`` not yet under
        the ring's current key. Returns (rewrapped, skipped, last id seen or None when there
        were none). A row whose wrapped key changed since it was read (an autosave re-sealed
        it) is skipped, never overwritten."""
        target = ring.current_id
        # Write first, read after: on SQLite this takes the write lock before the rows are
        # read, so a server writing meanwhile waits for this short batch instead of this batch
        # failing to upgrade its read snapshot. (A no-op on PostgreSQL, which has row locks.)
        await db.execute(
            update(ConsultNote).where(ConsultNote.id == -1).values(kek_id=ConsultNote.kek_id)
        )
        rows = (
            await db.execute(
                select(ConsultNote.id, ConsultNote.kek_id, ConsultNote.wrapped_dek)
                .where(ConsultNote.id > after_id, ConsultNote.kek_id != target)
                .order_by(ConsultNote.id)
                .limit(limit)
            )
        ).all()
        if not rows:
            return 0, 0, None
        # Only the wrapped key is needed: rewrap never touches the nonce or the ciphertext.
        sealed = [SealedNote(kek_id, wrapped, b"", b"") for _id, kek_id, wrapped in rows]
        rewrapped = await asyncio.to_thread(_rewrap_all, sealed, ring)
        done = skipped = 0
        for (note_id, _kek, old_wrapped), new in zip(rows, rewrapped, strict=True):
            result = await db.execute(
                update(ConsultNote)
                .where(ConsultNote.id == note_id, ConsultNote.wrapped_dek == old_wrapped)
                .values(kek_id=new.kek_id, wrapped_dek=new.wrapped_dek)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                done += 1
            else:
                skipped += 1
        return done, skipped, int(rows[-1][0])

    # --- crypto, off the event loop ---------------------------------------------------------

    async def _seal(self, body: bytes, context: NoteContext) -> SealedNote:
        ring = await self._keys.for_sealing()
        return await asyncio.to_thread(seal, body, context, ring)

    async def _unseal(self, items: Sequence[tuple[SealedNote, NoteContext]]) -> list[bytes]:
        try:
            try:
                return await asyncio.to_thread(_unseal_all, items, self._keys.ring)
            except UnknownKeyError:
                # Rotated by another process: the key is in the file by now.
                ring = await self._keys.reload()
                return await asyncio.to_thread(_unseal_all, items, ring)
        except UnknownKeyError as exc:
            log.error("note sealed under a key no reload found", extra={"kek_id": exc.kek_id})
            raise NoteKeyUnavailable(
                "This note cannot be decrypted right now. An administrator must restore its key.",
                detail=f"unknown key id {exc.kek_id}",
            ) from None
        except NoteIntegrityError:
            ids = [context.note_id for _sealed, context in items]
            log.error("note failed its integrity check", extra={"note_ids": ids})
            raise NoteCorrupted(
                "This note failed its integrity check and cannot be shown.",
                detail=f"note ids {ids}",
            ) from None


def _rewrap_all(sealed: Sequence[SealedNote], ring: KeyRing) -> list[SealedNote]:
    return [rewrap(item, ring) for item in sealed]
