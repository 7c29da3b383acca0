"""The FHIR R4 export, validated with fhir.resources (its R4B models: the package ships R5,
R4B and STU3; the resources exported here are the same in R4 and R4B)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from consult_notes.fhir import ExportedNote, NotExportable, PatientExport, build_bundle
from consult_notes.store import NoteMeta
from consult_notes.templates import NoteKind
from server.db.models import (
    Allergy,
    Condition,
    Encounter,
    MedicationStatement,
    Patient,
    Screening,
)

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
BASE = "https://liaison.example.org"


def note(
    note_id: int,
    kind: NoteKind = NoteKind.CONSULT,
    *,
    signed: bool = True,
    template_id: str | None = "progress_note",
    amends: int | None = None,
) -> NoteMeta:
    return NoteMeta(
        id=note_id,
        patient_id=1,
        author_id=7,
        kind=kind,
        template_id=template_id,
        amends=amends,
        encounter_id=3 if amends is None else None,
        version=2,
        created_at=T0,
        updated_at=T0,
        signed_at=T0 + timedelta(minutes=5) if signed else None,
        signed_by=7 if signed else None,
        content_sha256="0" * 64 if signed else None,
    )


PROGRESS_BODY = {
    "interval_history": "Sleeping better since the dose change.",
    "mental_status": "Calm, linear; denies SI/HI.",
    "risk_assessment": "Low.",
    "assessment": "Improving.",
    "plan": "Continue sertraline 100 mg.",
}


def export(notes: list[ExportedNote] | None = None) -> PatientExport:
    patient = Patient(
        id=1,
        mrn="LIA-0000001",
        given_name="Jordan",
        family_name="Alvarez",
        date_of_birth=date(1988, 4, 12),
        preferred_language="es",
        state="CA",
        phone="+1 415 555 0134",
        email="jordan@example.org",
        created_at=T0,
    )
    screenings = [
        Screening(
            id=10,
            patient_id=1,
            encounter_id=3,
            instrument="phq9",
            answers=json.dumps([1, 2, 1, 1, 0, 2, 1, 1, 1]),
            total=10,
            severity="moderate",
            entered_by="user:7",
            entered_by_role="psychiatrist",
            administered_at=T0,
        ),
        Screening(
            id=11,
            patient_id=1,
            encounter_id=None,
            instrument="gad7",
            answers=json.dumps([3, 3, 3, 3, 3, 0, 0]),
            total=15,
            severity="severe",
            entered_by="link:4",
            entered_by_role="patient",
            administered_at=T0,
        ),
    ]
    return PatientExport(
        patient=patient,
        encounters=[
            Encounter(id=3, patient_id=1, kind="visit", started_at=T0, ended_at=T0 + timedelta(1))
        ],
        conditions=[
            Condition(
                id=4,
                patient_id=1,
                code="F33.1",
                code_system="icd10cm",
                text="Major depressive disorder, recurrent, moderate",
                clinical_status="active",
                onset=date(2024, 1, 1),
                recorded_at=T0,
                recorded_by=7,
                updated_at=T0,
            )
        ],
        medications=[
            MedicationStatement(
                id=5,
                patient_id=1,
                name="sertraline",
                dose="100 mg",
                route="oral",
                frequency="once daily",
                status="active",
                recorded_at=T0,
                recorded_by=7,
                updated_at=T0,
            )
        ],
        allergies=[
            Allergy(
                id=6,
                patient_id=1,
                substance="penicillin",
                reaction="hives",
                severity="moderate",
                clinical_status="active",
                recorded_at=T0,
                recorded_by=7,
                updated_at=T0,
            )
        ],
        screenings=screenings,
        notes=notes
        if notes is not None
        else [
            ExportedNote(note(20, NoteKind.PROGRESS), PROGRESS_BODY, "Dr Rivera"),
            ExportedNote(
                note(21, NoteKind.PROGRESS, template_id=None, amends=20),
                {"text": "Correction: 150 mg."},
                "Dr Chen",
            ),
        ],
    )


def bundle() -> dict[str, Any]:
    return build_bundle(export(), base_url=BASE, generated_at=T0)


def resources(of: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in of["entry"] if e["resource"]["resourceType"] == kind]


def test_the_bundle_validates_as_fhir() -> None:
    data = bundle()
    parsed = Bundle.model_validate(data)
    assert parsed.type == "collection"
    kinds = sorted(e["resource"]["resourceType"] for e in data["entry"])
    assert kinds == sorted(
        [
            "Patient",
            "Encounter",
            "Condition",
            "MedicationStatement",
            "AllergyIntolerance",
            "QuestionnaireResponse",
            "QuestionnaireResponse",
            "Observation",
            "Observation",
            "DocumentReference",
            "DocumentReference",
        ]
    )


def test_references_resolve_inside_the_bundle_and_ids_are_stable() -> None:
    data = bundle()
    full_urls = {e["fullUrl"] for e in data["entry"]}
    text = json.dumps(data)
    for reference in [
        *(r["subject"]["reference"] for r in resources(data, "Observation")),
        *(r["derivedFrom"][0]["reference"] for r in resources(data, "Observation")),
        resources(data, "AllergyIntolerance")[0]["patient"]["reference"],
    ]:
        assert reference in full_urls
    assert build_bundle(export(), base_url=BASE, generated_at=T0) == data
    assert "LIA-0000001" in text  # the MRN, as an identifier


def test_screenings_carry_their_loinc_codes() -> None:
    data = bundle()
    totals = {
        r["code"]["coding"][0]["code"]: r["valueInteger"] for r in resources(data, "Observation")
    }
    assert totals == {"44261-6": 10, "70274-6": 15}
    responses = resources(data, "QuestionnaireResponse")
    assert {r["questionnaire"] for r in responses} == {
        "http://loinc.org/q/44249-1",
        "http://loinc.org/q/69737-5",
    }
    phq9 = next(r for r in responses if r["questionnaire"].endswith("44249-1"))
    assert [i["linkId"] for i in phq9["item"]][-1] == "44260-8"
    assert phq9["item"][1]["answer"][0]["valueCoding"]["code"] == "LA6570-1"  # 2


def test_notes_are_markdown_attachments_and_an_addendum_appends() -> None:
    documents = resources(bundle(), "DocumentReference")
    note_doc, addendum_doc = documents
    markdown = base64.b64decode(note_doc["content"][0]["attachment"]["data"]).decode()
    assert "## Plan\n\nContinue sertraline 100 mg." in markdown
    assert note_doc["content"][0]["attachment"]["contentType"].startswith("text/markdown")
    assert note_doc["type"]["coding"][0]["code"] == "11506-3"
    assert addendum_doc["relatesTo"][0]["code"] == "appends"
    assert addendum_doc["relatesTo"][0]["target"]["reference"].endswith(note_doc["id"])


@pytest.mark.parametrize(
    "meta",
    [
        note(30, NoteKind.PSYCHOTHERAPY, template_id="psychotherapy_note"),
        note(31, NoteKind.CONSULT, signed=False),
    ],
    ids=["psychotherapy", "draft"],
)
def test_it_refuses_to_export_a_psychotherapy_note_or_a_draft(meta: NoteMeta) -> None:
    with pytest.raises(NotExportable):
        build_bundle(
            export([ExportedNote(meta, {"session_notes": "x"}, "T")]),
            base_url=BASE,
            generated_at=T0,
        )
