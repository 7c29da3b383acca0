"""FHIR R4 export of one patient's record: a Bundle of type ``collection``. Pure: the caller
loads the rows (and decrypts the notes) and checks who may export; this module only maps.

Contents: Patient; Encounter; Condition; MedicationStatement; AllergyIntolerance; for each
PHQ-9 / GAD-7 a QuestionnaireResponse (items by LOINC question code, answers by LOINC answer
code) and an Observation of the total score (derived from it, with the severity band as its
interpretation); a DocumentReference per signed note and addendum (an addendum ``appends`` its
note), the body rendered as Markdown in a base64 attachment. Psychotherapy notes and drafts are
refused here as well as by the caller: :func:`build_bundle` raises if it is handed one.

Identity: every resource's ``fullUrl`` is a ``urn:uuid:`` derived from the server's public URL,
the resource type and the row id (uuid5), so an export is stable across runs, references
resolve inside the bundle, and no database id is presented as a resolvable URL.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

from consult_notes.store import NoteMeta
from consult_notes.templates import ADDENDUM_SECTIONS, NoteKind, Section, get_template
from server.db.models import (
    Allergy,
    Condition,
    Encounter,
    MedicationStatement,
    Patient,
    Screening,
)
from server.record.entries import CodeSystem
from server.record.screenings import ANSWERS, DEFINITIONS, Instrument

LOINC: Final = "http://loinc.org"
# LOINC document types for each kind of note that may be exported.
DOCUMENT_TYPES: Final[Mapping[NoteKind, tuple[str, str]]] = {
    NoteKind.CONSULT: ("11488-4", "Consult note"),
    NoteKind.PROGRESS: ("11506-3", "Progress note"),
    NoteKind.CURBSIDE: ("11488-4", "Consult note"),
}
_ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_CONDITION_CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_ALLERGY_CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
_OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
_BCP47: Final = "urn:ietf:bcp:47"


class NotExportable(ValueError):
    """A psychotherapy note or a draft was handed to the export."""


@dataclass(frozen=True, slots=True)
class ExportedNote:
    meta: NoteMeta
    body: Mapping[str, Any]  # decoded, validated sections
    author_name: str


@dataclass(frozen=True, slots=True)
class PatientExport:
    patient: Patient
    encounters: Sequence[Encounter]
    conditions: Sequence[Condition]
    medications: Sequence[MedicationStatement]
    allergies: Sequence[Allergy]
    screenings: Sequence[Screening]
    notes: Sequence[ExportedNote]


class _Ids:
    """Deterministic ``urn:uuid:`` identities for one server."""

    def __init__(self, base_url: str) -> None:
        self._namespace = uuid.uuid5(uuid.NAMESPACE_URL, base_url)

    def uuid(self, resource_type: str, row_id: int) -> str:
        return str(uuid.uuid5(self._namespace, f"{resource_type}/{row_id}"))

    def ref(self, resource_type: str, row_id: int) -> dict[str, str]:
        return {"reference": f"urn:uuid:{self.uuid(resource_type, row_id)}"}


def _instant(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _day(day: date) -> str:
    return day.isoformat()


def _coded(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, str] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def build_bundle(data: PatientExport, *, base_url: str, generated_at: datetime) -> dict[str, Any]:
    """The export as a FHIR R4 Bundle (JSON-ready dict)."""
    ids = _Ids(base_url)
    patient_ref = ids.ref("Patient", data.patient.id)
    entries: list[tuple[str, int, dict[str, Any]]] = [
        ("Patient", data.patient.id, _patient(data.patient, base_url))
    ]
    entries += [("Encounter", e.id, _encounter(e, patient_ref)) for e in data.encounters]
    entries += [("Condition", c.id, _condition(c, patient_ref)) for c in data.conditions]
    entries += [
        ("MedicationStatement", m.id, _medication(m, patient_ref)) for m in data.medications
    ]
    entries += [("AllergyIntolerance", a.id, _allergy(a, patient_ref)) for a in data.allergies]
    for s in data.screenings:
        entries.append(("QuestionnaireResponse", s.id, _questionnaire_response(s, ids)))
        entries.append(("Observation", s.id, _score_observation(s, ids)))
    for note in data.notes:
        if note.meta.kind.private or note.meta.signed_at is None:
            raise NotExportable(f"note {note.meta.id} may not leave in an export")
        entries.append(("DocumentReference", note.meta.id, _document(note, ids)))
    return {
        "resourceType": "Bundle",
        "id": ids.uuid("Bundle", data.patient.id),
        "type": "collection",
        "timestamp": _instant(generated_at),
        "entry": [
            {
                "fullUrl": f"urn:uuid:{ids.uuid(kind, row_id)}",
                "resource": {"resourceType": kind, "id": ids.uuid(kind, row_id), **resource},
            }
            for kind, row_id, resource in entries
        ],
    }


def _patient(p: Patient, base_url: str) -> dict[str, Any]:
    telecom = [{"system": "phone", "value": p.phone}]
    if p.email:
        telecom.append({"system": "email", "value": p.email})
    return {
        "identifier": [
            {
                "use": "usual",
                "type": _coded("http://terminology.hl7.org/CodeSystem/v2-0203", "MR"),
                "system": f"{base_url}/mrn",
                "value": p.mrn,
            }
        ],
        "name": [{"family": p.family_name, "given": [p.given_name]}],
        "birthDate": _day(p.date_of_birth),
        "telecom": telecom,
        "address": [{"state": p.state, "country": "US"}],
        "communication": [
            {
                "language": _coded(_BCP47, p.preferred_language),
                "preferred": True,
            }
        ],
    }


def _encounter(e: Encounter, patient_ref: dict[str, str]) -> dict[str, Any]:
    period = {"start": _instant(e.started_at)}
    if e.ended_at is not None:
        period["end"] = _instant(e.ended_at)
    return {
        "status": "finished" if e.ended_at is not None else "in-progress",
        "class": {"system": _ACT_CODE, "code": "VR", "display": "virtual"},
        "type": [{"text": e.kind}],
        "subject": patient_ref,
        "period": period,
    }


def _condition(c: Condition, patient_ref: dict[str, str]) -> dict[str, Any]:
    code: dict[str, Any] = {"text": c.text}
    if c.code is not None and c.code_system is not None:
        code["coding"] = [{"system": CodeSystem(c.code_system).uri, "code": c.code}]
    resource: dict[str, Any] = {
        "clinicalStatus": _coded(_CONDITION_CLINICAL, c.clinical_status),
        "code": code,
        "subject": patient_ref,
        "recordedDate": _instant(c.recorded_at),
    }
    if c.onset is not None:
        resource["onsetDateTime"] = _day(c.onset)
    return resource


def _medication(m: MedicationStatement, patient_ref: dict[str, str]) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "status": m.status,
        "medicationCodeableConcept": {"text": m.name},
        "subject": patient_ref,
        "dateAsserted": _instant(m.recorded_at),
    }
    text = " ".join(part for part in (m.dose, m.route, m.frequency) if part)
    if text:
        dosage: dict[str, Any] = {"text": text}
        if m.route:
            dosage["route"] = {"text": m.route}
        resource["dosage"] = [dosage]
    return resource


def _allergy(a: Allergy, patient_ref: dict[str, str]) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "clinicalStatus": _coded(_ALLERGY_CLINICAL, a.clinical_status),
        "code": {"text": a.substance},
        "patient": patient_ref,
        "recordedDate": _instant(a.recorded_at),
    }
    if a.reaction:
        reaction: dict[str, Any] = {"manifestation": [{"text": a.reaction}]}
        if a.severity:
            reaction["severity"] = a.severity
        resource["reaction"] = [reaction]
    return resource


def _questionnaire_response(s: Screening, ids: _Ids) -> dict[str, Any]:
    definition = DEFINITIONS[Instrument(s.instrument)]
    answers: list[int] = json.loads(s.answers)
    resource: dict[str, Any] = {
        "status": "completed",
        "questionnaire": f"{LOINC}/q/{definition.panel_loinc}",
        "subject": ids.ref("Patient", s.patient_id),
        "authored": _instant(s.administered_at),
        "item": [
            {
                "linkId": item.loinc,
                "text": item.text,
                "answer": [
                    {
                        "valueCoding": {
                            "system": LOINC,
                            "code": ANSWERS[value].loinc,
                            "display": ANSWERS[value].text,
                        }
                    }
                ],
            }
            for item, value in zip(definition.items, answers, strict=True)
        ],
    }
    if s.encounter_id is not None:
        resource["encounter"] = ids.ref("Encounter", s.encounter_id)
    return resource


def _score_observation(s: Screening, ids: _Ids) -> dict[str, Any]:
    definition = DEFINITIONS[Instrument(s.instrument)]
    resource: dict[str, Any] = {
        "status": "final",
        "category": [_coded(_OBSERVATION_CATEGORY, "survey", "Survey")],
        "code": _coded(LOINC, definition.total_loinc, definition.total_text),
        "subject": ids.ref("Patient", s.patient_id),
        "effectiveDateTime": _instant(s.administered_at),
        "valueInteger": s.total,
        "interpretation": [{"text": s.severity.replace("_", " ")}],
        "derivedFrom": [ids.ref("QuestionnaireResponse", s.id)],
    }
    if s.encounter_id is not None:
        resource["encounter"] = ids.ref("Encounter", s.encounter_id)
    return resource


def render_markdown(sections: Sequence[Section], body: Mapping[str, Any]) -> str:
    """A note's sections as Markdown, in template order, under their labels."""
    parts: list[str] = []
    group: str | None = None
    for section in sections:
        if section.key not in body:
            continue
        if section.group and section.group != group:
            parts.append(f"## {section.group}")
        group = section.group
        value = body[section.key]
        text = ("Yes" if value else "No") if isinstance(value, bool) else str(value)
        parts.append(f"{'###' if section.group else '##'} {section.label}\n\n{text}")
    return "\n\n".join(parts) + "\n"


def _document(note: ExportedNote, ids: _Ids) -> dict[str, Any]:
    meta = note.meta
    assert meta.signed_at is not None
    sections: tuple[Section, ...]
    if meta.template_id is None:
        sections, title = ADDENDUM_SECTIONS, "Addendum"
    else:
        template = get_template(meta.template_id)
        sections, title = template.sections, template.title
    code, display = DOCUMENT_TYPES[meta.kind]
    markdown = render_markdown(sections, note.body).encode("utf-8")
    resource: dict[str, Any] = {
        "status": "current",
        "docStatus": "final",
        "type": _coded(LOINC, code, display),
        "subject": ids.ref("Patient", meta.patient_id),
        "date": _instant(meta.signed_at),
        "author": [{"display": note.author_name}],
        "description": title,
        "content": [
            {
                "attachment": {
                    "contentType": "text/markdown; charset=utf-8",
                    "language": "en",
                    "data": base64.b64encode(markdown).decode("ascii"),
                    "title": title,
                    "creation": _instant(meta.created_at),
                }
            }
        ],
    }
    if meta.amends is not None:
        resource["relatesTo"] = [
            {"code": "appends", "target": ids.ref("DocumentReference", meta.amends)}
        ]
    if meta.encounter_id is not None:
        resource["context"] = {"encounter": [ids.ref("Encounter", meta.encounter_id)]}
    return resource
