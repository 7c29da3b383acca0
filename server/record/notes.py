"""Consult notes: drafts from a template, autosave, signing, addenda, reading and listing.

The service asks the access policy (directly, and through ``consult_notes.lifecycle``, which
asks ``server.record.policy`` too) and writes the audit trail; ``consult_notes.store.NoteStore``
holds the SQL and the encryption. Signing validates the body against its template, records the
SHA-256 of the exact bytes that are encrypted, and makes the note immutable; later changes are
addenda, which go draft -> signed themselves through the same endpoints.

What a reader may not know exists answers 404 ``note_not_found``, never 403: a psychotherapy
note to anyone but its author, and someone else's draft. Otherwise a refusal is the policy's or
the lifecycle's 403 code. Every refusal is audited (after its transaction has rolled back).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from consult_notes import lifecycle
from consult_notes.store import NoteMeta, NoteStore
from consult_notes.templates import (
    TEMPLATES,
    Template,
    check_author,
    decode_body,
    encode_body,
    get_template,
    validate_addendum,
    validate_body,
)
from server.audit import Action as AuditAction
from server.auth.roles import Role
from server.db.models import Encounter, User
from server.errors import Forbidden, NotFound, ValidationFailed
from server.record.access import Access, Actor
from server.record.chart import patient_of_user
from server.record.guard import Audited, RecordGuard, actor_of, refusal
from server.record.policy import Action, Decision, decide_read_note


def _not_found() -> NotFound:
    return NotFound("No such note.", code="note_not_found")


@dataclass(frozen=True, slots=True)
class NoteView:
    """A note as its reader sees it: metadata, decoded body, and the addenda they may read."""

    meta: NoteMeta
    author_name: str
    body: dict[str, Any]
    addenda: list[NoteView]

    @property
    def title(self) -> str:
        return title_of(self.meta)


@dataclass(frozen=True, slots=True)
class NoteLine:
    """A note in a list: no body."""

    meta: NoteMeta
    author_name: str
    addenda: int

    @property
    def title(self) -> str:
        return title_of(self.meta)


def title_of(meta: NoteMeta) -> str:
    return "Addendum" if meta.template_id is None else get_template(meta.template_id).title


def may_author(template: Template, role: Role) -> bool:
    """Whether ``role`` may start a note from ``template`` (for the picker; ``create`` enforces
    it through the same ``check_author``)."""
    try:
        check_author(template, role)
    except Forbidden:
        return False
    return True


def _validate(template_id: str | None, body: object, *, signing: bool) -> dict[str, Any]:
    if template_id is None:
        return validate_addendum(body, signing=signing)
    return validate_body(template_id, body, signing=signing)


def _readable(meta: NoteMeta, who: Actor, access: Access) -> Decision:
    return decide_read_note(
        who.role,
        access.relation,
        is_author=meta.author_id == who.user_id,
        private=meta.kind.private,
        signed=meta.signed_at is not None,
    )


def _hidden(meta: NoteMeta, who: Actor) -> bool:
    """Whether the note's very existence is kept from ``who``: someone else's psychotherapy
    note or draft."""
    return meta.author_id != who.user_id and (meta.kind.private or meta.signed_at is None)


def _stale() -> lifecycle.NoteConflict:
    return lifecycle.NoteConflict(
        "This draft was changed elsewhere; reload it before saving.", code="stale_draft"
    )


async def _names(db: AsyncSession, user_ids: set[int]) -> dict[int, str]:
    rows = await db.execute(select(User.id, User.display_name).where(User.id.in_(user_ids)))
    return {uid: name for uid, name in rows.all()}


@dataclass
class _Attempt:
    """What an operation on one note is about, for auditing its refusal."""

    action: AuditAction
    target: str
    patient_id: int | None = None


class NoteService:
    def __init__(self, guard: RecordGuard, store: NoteStore) -> None:
        self._guard = guard
        self._store = store

    @property
    def store(self) -> NoteStore:
        return self._store

    @staticmethod
    def templates() -> list[Template]:
        return list(TEMPLATES.values())

    # --- writing ---------------------------------------------------------------------------------

    async def create(
        self,
        who: Actor,
        patient_id: int,
        template_id: str,
        body: object,
        *,
        encounter_id: int | None = None,
    ) -> NoteView:
        """A new draft from a template (the kind, and with it who may read, comes from it)."""
        template = get_template(template_id)
        data = encode_body(validate_body(template_id, body, signing=False))
        attempt = _Attempt(AuditAction.NOTE_WRITE, f"patient:{patient_id}", patient_id)
        async with self._attempt(who, attempt) as db:
            access = await self._guard.check(db, who, patient_id, Action.WRITE_NOTE)
            lifecycle.check_create(who.role, access.relation)
            check_author(template, who.role)  # e.g. a caseload review: the psychiatrist's
            if encounter_id is not None:
                encounter = await db.get(Encounter, encounter_id)
                if encounter is None or encounter.patient_id != patient_id:
                    raise ValidationFailed(
                        "No such encounter for this patient.", code="encounter_not_found"
                    )
            meta = await self._store.create(
                db,
                patient_id=patient_id,
                author_id=who.user_id,
                kind=template.kind,
                template_id=template.id,
                amends=None,
                encounter_id=encounter_id,
                body=data,
                now=self._guard.clock(),
            )
            await self._audit_in(
                db, who, meta, AuditAction.NOTE_WRITE, {"change": "create", "kind": template.kind}
            )
            return await self._view(db, meta, data)

    async def save_draft(
        self, who: Actor, note_id: int, body: object, *, base_version: int
    ) -> NoteView:
        """Autosave: replace a draft's body if it is still at ``base_version``."""
        attempt = _Attempt(AuditAction.NOTE_WRITE, f"note:{note_id}")
        async with self._attempt(who, attempt) as db:
            meta = await self._load(db, who, note_id, attempt)
            await self._require(db, who, meta, Action.WRITE_NOTE)
            # Author and draft first: nothing is decrypted for a refused request.
            lifecycle.check_edit(meta.as_note(b""), who.user_id)
            # The row as it is now (a save may have committed since): the edit checks its version.
            meta, stored = await self._store.body(db, meta)
            current = meta.as_note(stored)
            data = encode_body(_validate(meta.template_id, body, signing=False))
            now = self._guard.clock()
            edited = lifecycle.edit(current, who.user_id, data, now, base_version=base_version)
            if edited is not current:
                if not await self._store.replace_draft(db, meta, edited):
                    raise _stale()
                detail = {"change": "edit", "version": edited.version}
                await self._audit_in(db, who, meta, AuditAction.NOTE_WRITE, detail)
                meta = await self._reload(db, note_id)
            return await self._view(db, meta, edited.body)

    async def sign(self, who: Actor, note_id: int, *, version: int | None = None) -> NoteView:
        """Sign a draft (or a draft addendum): every required section filled; immutable after.
        ``version``, if given, must be the version the signer saw."""
        attempt = _Attempt(AuditAction.NOTE_SIGN, f"note:{note_id}")
        async with self._attempt(who, attempt) as db:
            meta = await self._load(db, who, note_id, attempt)
            await self._require(db, who, meta, Action.SIGN_NOTE)
            lifecycle.check_sign(meta.as_note(b""), who.user_id, who.role)
            meta, stored = await self._store.body(db, meta)  # as it is now: its version is checked
            note = meta.as_note(stored)
            if version is not None and version != meta.version:
                raise _stale()
            _validate(meta.template_id, decode_body(note.body), signing=True)
            signed = lifecycle.sign(note, who.user_id, who.role, self._guard.clock())
            if not await self._store.mark_signed(db, meta, signed):
                raise _stale()
            assert signed.signature is not None
            detail = {"sha256": signed.signature.content_sha256}
            await self._audit_in(db, who, meta, AuditAction.NOTE_SIGN, detail)
            return await self._view(db, await self._reload(db, note_id), signed.body)

    async def add_addendum(self, who: Actor, note_id: int, body: object) -> NoteView:
        """A draft addendum to a signed note; edit and sign it like a note."""
        data = encode_body(validate_addendum(body, signing=False))
        attempt = _Attempt(AuditAction.NOTE_ADDENDUM, f"note:{note_id}")
        async with self._attempt(who, attempt) as db:
            parent = await self._load(db, who, note_id, attempt)
            access = await self._guard.check(db, who, parent.patient_id, Action.ADD_ADDENDUM)
            # The policy with the note's facts (private: its author only), then its state.
            lifecycle.check_addendum(parent.as_note(b""), who.user_id, who.role, access.relation)
            meta = await self._store.create(
                db,
                patient_id=parent.patient_id,
                author_id=who.user_id,
                kind=parent.kind,
                template_id=None,
                amends=parent.id,
                encounter_id=None,
                body=data,
                now=self._guard.clock(),
            )
            await self._audit_in(db, who, meta, AuditAction.NOTE_ADDENDUM, {"amends": parent.id})
            return await self._view(db, meta, data)

    async def delete_draft(self, who: Actor, note_id: int) -> None:
        attempt = _Attempt(AuditAction.NOTE_WRITE, f"note:{note_id}")
        async with self._attempt(who, attempt) as db:
            meta = await self._load(db, who, note_id, attempt)
            await self._require(db, who, meta, Action.WRITE_NOTE)
            lifecycle.check_delete(meta.as_note(b""), who.user_id)
            if not await self._store.delete_draft(db, meta):
                raise _stale()
            await self._audit_in(db, who, meta, AuditAction.NOTE_WRITE, {"change": "delete"})

    # --- reading ---------------------------------------------------------------------------------

    async def read(self, who: Actor, note_id: int, *, patient_id: int | None = None) -> NoteView:
        """One note with the addenda its reader may see. ``patient_id``, when given, must be the
        note's patient (a patient's own view reads their own notes only)."""
        attempt = _Attempt(AuditAction.NOTE_READ, f"note:{note_id}")
        async with self._attempt(who, attempt, write=False) as db:
            meta = await self._load(db, who, note_id, attempt)
            if patient_id is not None and meta.patient_id != patient_id:
                raise _not_found()
            access = await self._guard.check(db, who, meta.patient_id, Action.READ_NOTE)
            decision = _readable(meta, who, access)
            if not decision.allowed:
                raise refusal(decision)
            addenda = [
                a
                for a in await self._store.addenda(db, meta.id)
                if _readable(a, who, access).allowed
            ]
            # Rows as they are now: a draft saved meanwhile is shown at its new version.
            [(meta, body), *addenda_bodies] = await self._store.bodies(db, [meta, *addenda])
            names = await _names(db, {m.author_id for m in (meta, *addenda)})
        await self._guard.record(
            actor_of(who),
            meta.patient_id,
            Audited(AuditAction.NOTE_READ, attempt.target, {"addenda": len(addenda)}),
            decision,
        )
        views = [
            NoteView(m, names.get(m.author_id, ""), decode_body(b), []) for m, b in addenda_bodies
        ]
        return NoteView(meta, names.get(meta.author_id, ""), decode_body(body), views)

    async def list_for_patient(self, who: Actor, patient_id: int) -> list[NoteLine]:
        """The notes ``who`` may read (no bodies), newest first: signed shared notes, and their
        own drafts and psychotherapy notes."""

        async def work(db: AsyncSession, access: Access) -> list[NoteLine]:
            metas = await self._store.for_patient(db, patient_id)
            readable = [m for m in metas if _readable(m, who, access).allowed]
            notes = [m for m in readable if not m.is_addendum]
            counts: dict[int, int] = {}
            for m in readable:
                if m.amends is not None:
                    counts[m.amends] = counts.get(m.amends, 0) + 1
            names = await _names(db, {m.author_id for m in notes})
            return [
                NoteLine(m, names.get(m.author_id, ""), counts.get(m.id, 0))
                for m in reversed(notes)
            ]

        return await self._guard.read(
            who,
            patient_id,
            Action.READ_NOTE,
            Audited(AuditAction.RECORD_READ, detail={"section": "notes"}),
            work,
        )

    async def my_notes(self, who: Actor) -> list[NoteLine]:
        async with self._guard.db() as db:
            patient = await patient_of_user(db, who.user_id)
        return await self.list_for_patient(who, patient.id)

    async def my_note(self, who: Actor, note_id: int) -> NoteView:
        async with self._guard.db() as db:
            patient = await patient_of_user(db, who.user_id)
        return await self.read(who, note_id, patient_id=patient.id)

    async def exportable(
        self, db: AsyncSession, patient_id: int
    ) -> list[tuple[NoteMeta, dict[str, Any]]]:
        """Every signed note and addendum that may leave in an export: never a psychotherapy
        note, never a draft. For the FHIR export, which has checked export_fhir already."""
        metas = [
            m
            for m in await self._store.for_patient(db, patient_id)
            if m.signed_at is not None and not m.kind.private
        ]
        return [(m, decode_body(b)) for m, b in await self._store.bodies(db, metas)]

    # --- helpers ---------------------------------------------------------------------------------

    @asynccontextmanager
    async def _attempt(
        self, who: Actor, attempt: _Attempt, *, write: bool = True
    ) -> AsyncIterator[AsyncSession]:
        """A transaction (or a read session) for one operation on a note; a refusal raised
        inside rolls it back, is audited, and propagates."""
        try:
            if write:
                async with self._guard.db.begin() as db:
                    yield db
            else:
                async with self._guard.db() as db:
                    yield db
        except Forbidden as refused:
            if attempt.patient_id is not None:
                await self._guard.record_refusal(
                    actor_of(who),
                    attempt.patient_id,
                    Audited(attempt.action, attempt.target),
                    refused,
                )
            raise

    async def _load(
        self, db: AsyncSession, who: Actor, note_id: int, attempt: _Attempt
    ) -> NoteMeta:
        meta = await self._store.meta(db, note_id)
        if meta is None or _hidden(meta, who):
            raise _not_found()
        attempt.patient_id = meta.patient_id
        return meta

    async def _reload(self, db: AsyncSession, note_id: int) -> NoteMeta:
        meta = await self._store.meta(db, note_id)
        assert meta is not None
        return meta

    async def _require(self, db: AsyncSession, who: Actor, meta: NoteMeta, action: Action) -> None:
        access = await self._guard.check(db, who, meta.patient_id, action)
        if not access.decision.allowed:
            raise refusal(access.decision)

    async def _audit_in(
        self,
        db: AsyncSession,
        who: Actor,
        meta: NoteMeta,
        action: AuditAction,
        detail: Mapping[str, Any],
    ) -> None:
        await self._guard.record_in(
            db, actor_of(who), meta.patient_id, [Audited(action, f"note:{meta.id}", detail)]
        )

    async def _view(self, db: AsyncSession, meta: NoteMeta, body: bytes) -> NoteView:
        """The view of a note just written, by its author, with the body they sent."""
        names = await _names(db, {meta.author_id})
        return NoteView(meta, names.get(meta.author_id, ""), decode_body(body), [])
