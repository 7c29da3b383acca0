"""Consult notes: templates, drafts with autosave, signing, addenda, reading.

Handlers parse, call ``server.record.notes.NoteService`` and serialise. A note the reader may
not know exists (someone else's psychotherapy note or draft) answers 404 ``note_not_found``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from consult_notes.lifecycle import NoteState
from consult_notes.templates import NoteKind
from server.api.params import path_id
from server.api.routing import Api
from server.auth.roles import CLINICIAN_ROLES, Role
from server.record.notes import NoteLine, NoteView, may_author
from server.state import principal, services

api = Api()
CLINICAL = frozenset({*(r.value for r in CLINICIAN_ROLES), Role.ADMIN.value})
CLINICIANS = frozenset(r.value for r in CLINICIAN_ROLES)


class SectionOut(BaseModel):
    key: str
    label: str
    required: bool
    help: str
    type: str
    group: str | None


class TemplateOut(BaseModel):
    id: str
    title: str
    kind: NoteKind
    private: bool
    sections: list[SectionOut]
    authors: list[Role] | None = Field(
        description="The roles that may start a note from it; null: any clinician."
    )
    can_author: bool = Field(
        description="Whether you may start a note from it (the chart's picker offers only these)."
    )


class TemplateListOut(BaseModel):
    templates: list[TemplateOut]


class CreateNoteIn(BaseModel):
    template_id: str = Field(max_length=64)
    body: dict[str, Any] = Field(default_factory=dict, description="Section key -> value.")
    encounter_id: int | None = Field(default=None, ge=1)


class SaveDraftIn(BaseModel):
    body: dict[str, Any]
    base_version: int = Field(ge=1, description="The version the editor started from.")


class SignIn(BaseModel):
    version: int | None = Field(default=None, ge=1, description="The version you read.")


class AddendumIn(BaseModel):
    body: dict[str, Any] = Field(description='{"text": "what is added or corrected, and why"}')


class NoteSummaryOut(BaseModel):
    id: int
    patient_id: int
    kind: NoteKind
    private: bool
    template_id: str | None
    title: str
    state: NoteState
    version: int
    author_id: int
    author_name: str
    encounter_id: int | None
    amends: int | None
    created_at: datetime
    updated_at: datetime
    signed_at: datetime | None
    signed_by: int | None
    content_sha256: str | None


class NoteLineOut(NoteSummaryOut):
    addenda: int


class NoteOut(NoteSummaryOut):
    body: dict[str, Any]
    addenda: list[NoteOut]


class NoteListOut(BaseModel):
    notes: list[NoteLineOut]


def _summary(line: NoteLine | NoteView) -> dict[str, Any]:
    m = line.meta
    return {
        "id": m.id,
        "patient_id": m.patient_id,
        "kind": m.kind,
        "private": m.kind.private,
        "template_id": m.template_id,
        "title": line.title,
        "state": m.state,
        "version": m.version,
        "author_id": m.author_id,
        "author_name": line.author_name,
        "encounter_id": m.encounter_id,
        "amends": m.amends,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
        "signed_at": m.signed_at,
        "signed_by": m.signed_by,
        "content_sha256": m.content_sha256,
    }


def note_out(view: NoteView) -> NoteOut:
    return NoteOut(**_summary(view), body=view.body, addenda=[note_out(a) for a in view.addenda])


def note_list_out(lines: list[NoteLine]) -> NoteListOut:
    return NoteListOut(notes=[NoteLineOut(**_summary(n), addenda=n.addenda) for n in lines])


def _patient_id(request: web.Request) -> int:
    return path_id(request, "patient_id", code="patient_not_found", message="No such patient.")


def _note_id(request: web.Request) -> int:
    return path_id(request, "note_id", code="note_not_found", message="No such note.")


@api.route(
    "GET",
    "/note-templates",
    summary="The note templates and their sections",
    tag="notes",
    response=TemplateListOut,
    roles=CLINICIANS,
)
async def list_templates(request: web.Request) -> TemplateListOut:
    role = principal(request).role
    return TemplateListOut(
        templates=[
            TemplateOut.model_validate({**t.as_dict(), "can_author": may_author(t, role)})
            for t in services(request).notes.templates()
        ]
    )


@api.route(
    "GET",
    "/patients/{patient_id}/notes",
    summary="A patient's notes you may read (no bodies), newest first",
    tag="notes",
    response=NoteListOut,
    roles=CLINICAL,
    errors=(404,),
)
async def list_notes(request: web.Request) -> NoteListOut:
    patient_id = path_id(
        request, "patient_id", code="patient_not_found", message="No such patient."
    )
    lines = await services(request).notes.list_for_patient(principal(request), patient_id)
    return note_list_out(lines)


@api.route(
    "POST",
    "/patients/{patient_id}/notes",
    summary="Start a note from a template (a draft, optionally linked to an encounter)",
    tag="notes",
    body=CreateNoteIn,
    response=NoteOut,
    status=201,
    roles=CLINICIANS,
    errors=(404,),
)
async def create_note(request: web.Request, body: CreateNoteIn) -> NoteOut:
    patient_id = path_id(
        request, "patient_id", code="patient_not_found", message="No such patient."
    )
    view = await services(request).notes.create(
        principal(request),
        patient_id,
        body.template_id,
        body.body,
        encounter_id=body.encounter_id,
    )
    return note_out(view)


@api.route(
    "GET",
    "/notes/{note_id}",
    summary="A note and the addenda you may read",
    tag="notes",
    response=NoteOut,
    roles=CLINICAL,
    errors=(404,),
)
async def get_note(request: web.Request) -> NoteOut:
    return note_out(await services(request).notes.read(principal(request), _note_id(request)))


@api.route(
    "PUT",
    "/notes/{note_id}",
    summary="Autosave a draft; 409 stale_draft if it changed since base_version",
    tag="notes",
    body=SaveDraftIn,
    response=NoteOut,
    roles=CLINICIANS,
    errors=(404, 409),
)
async def save_draft(request: web.Request, body: SaveDraftIn) -> NoteOut:
    view = await services(request).notes.save_draft(
        principal(request), _note_id(request), body.body, base_version=body.base_version
    )
    return note_out(view)


@api.route(
    "DELETE",
    "/notes/{note_id}",
    summary="Discard a draft",
    tag="notes",
    roles=CLINICIANS,
    errors=(404, 409),
)
async def delete_draft(request: web.Request) -> None:
    await services(request).notes.delete_draft(principal(request), _note_id(request))


@api.route(
    "POST",
    "/notes/{note_id}/sign",
    summary="Sign a draft: every required section filled; immutable afterwards",
    tag="notes",
    body=SignIn,
    response=NoteOut,
    roles=CLINICIANS,
    errors=(404, 409),
)
async def sign_note(request: web.Request, body: SignIn) -> NoteOut:
    view = await services(request).notes.sign(
        principal(request), _note_id(request), version=body.version
    )
    return note_out(view)


@api.route(
    "POST",
    "/notes/{note_id}/addenda",
    summary="Add an addendum (a draft) to a signed note",
    tag="notes",
    body=AddendumIn,
    response=NoteOut,
    status=201,
    roles=CLINICIANS,
    errors=(404, 409),
)
async def add_addendum(request: web.Request, body: AddendumIn) -> NoteOut:
    view = await services(request).notes.add_addendum(
        principal(request), _note_id(request), body.body
    )
    return note_out(view)
