"""Note templates as data, and body validation for drafts and for signing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consult_notes.templates import (
    ADDENDUM_SECTIONS,
    CURBSIDE_RECOMMENDATION,
    MAX_TEXT_LENGTH,
    PSYCHIATRIC_CONSULT,
    PSYCHOTHERAPY_NOTE,
    TEMPLATES,
    NoteKind,
    SectionType,
    Template,
    decode_body,
    encode_body,
    get_template,
    validate_addendum,
    validate_body,
)
from server.errors import NotFound, ValidationFailed


def complete_body(template: Template) -> dict[str, Any]:
    return {
        s.key: (True if s.type is SectionType.YES_NO else f"{s.label} text")
        for s in template.sections
    }


def field_errors(exc: ValidationFailed) -> dict[str, str]:
    return {error["field"]: error["message"] for error in exc.extra["fields"]}


# --- the templates -----------------------------------------------------------------------------


@pytest.mark.parametrize("template", TEMPLATES.values(), ids=list(TEMPLATES))
def test_every_template_is_well_formed(template: Template) -> None:
    keys = [s.key for s in template.sections]
    assert len(keys) == len(set(keys))
    assert any(s.required for s in template.sections)
    assert all(s.key.isidentifier() and s.label for s in template.sections)
    assert TEMPLATES[template.id] is template
    json.dumps(template.as_dict())  # the editor receives it as JSON


def test_every_kind_has_a_template() -> None:
    # The caseload review is a second consult template (tests/unit/test_caseload_review*.py).
    assert {t.kind for t in TEMPLATES.values()} == set(NoteKind)


def test_the_consult_has_a_full_mental_status_examination_in_order() -> None:
    mse = [s.key for s in PSYCHIATRIC_CONSULT.sections if s.group == "Mental status examination"]
    assert mse == [
        "mse_appearance",
        "mse_behaviour",
        "mse_speech",
        "mse_mood",
        "mse_affect",
        "mse_thought_process",
        "mse_thought_content",
        "mse_suicidal_ideation",
        "mse_homicidal_ideation",
        "mse_perception",
        "mse_cognition",
        "mse_insight",
        "mse_judgement",
    ]
    required = {s.key for s in PSYCHIATRIC_CONSULT.sections if s.required}
    assert set(mse) <= required
    assert {"risk_assessment", "assessment", "plan"} <= required


def test_the_curbside_recommendation_asks_whether_to_see_the_patient() -> None:
    sections = {s.key: s for s in CURBSIDE_RECOMMENDATION.sections}
    assert list(sections) == [
        "question",
        "relevant_history",
        "recommendation",
        "medication_suggestions",
        "follow_up_advice",
        "face_to_face_advised",
    ]
    assert sections["face_to_face_advised"].type is SectionType.YES_NO
    assert sections["face_to_face_advised"].required


def test_only_the_psychotherapy_note_is_private() -> None:
    private = [t.id for t in TEMPLATES.values() if t.as_dict()["private"]]
    assert private == [PSYCHOTHERAPY_NOTE.id]
    assert PSYCHOTHERAPY_NOTE.kind.private


def test_an_unknown_template_is_not_found() -> None:
    with pytest.raises(NotFound) as caught:
        validate_body("nonexistent", {}, signing=False)
    assert caught.value.code == "unknown_template"
    assert get_template("progress_note").kind is NoteKind.PROGRESS


# --- drafts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("template_id", list(TEMPLATES))
def test_a_draft_may_be_empty_or_incomplete(template_id: str) -> None:
    assert validate_body(template_id, {}, signing=False) == {}
    first = get_template(template_id).sections[0].key
    assert validate_body(template_id, {first: "started"}, signing=False) == {first: "started"}


def test_it_drops_empty_values_and_keeps_template_order() -> None:
    body = {"plan": "titrate", "assessment": "  ", "interval_history": None, "measures": "PHQ 9"}
    clean = validate_body("progress_note", body, signing=False)
    assert list(clean.items()) == [("measures", "PHQ 9"), ("plan", "titrate")]


def test_a_no_answer_counts_as_an_answer() -> None:
    clean = validate_body("curbside_recommendation", {"face_to_face_advised": False}, signing=False)
    assert clean == {"face_to_face_advised": False}


@pytest.mark.parametrize("signing", [False, True])
def test_it_refuses_unknown_sections(signing: bool) -> None:
    body = complete_body(PSYCHOTHERAPY_NOTE) | {"diagnosis": "x", "mse_mood": "y"}
    with pytest.raises(ValidationFailed) as caught:
        validate_body(PSYCHOTHERAPY_NOTE.id, body, signing=signing)
    assert caught.value.code == "invalid_note_body"
    assert field_errors(caught.value) == {
        "diagnosis": "unknown section",
        "mse_mood": "unknown section",
    }


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("question", 42, "must be text"),
        ("question", ["a"], "must be text"),
        ("question", True, "must be text"),
        ("question", "x" * (MAX_TEXT_LENGTH + 1), f"at most {MAX_TEXT_LENGTH}"),
        ("question", "lone \ud800 surrogate", "valid Unicode"),
        ("face_to_face_advised", "yes", "true or false"),
        ("face_to_face_advised", 1, "true or false"),
    ],
)
def test_it_refuses_values_of_the_wrong_type(key: str, value: object, message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_body("curbside_recommendation", {key: value}, signing=False)
    assert message in field_errors(caught.value)[key]


def test_it_accepts_text_at_the_length_limit() -> None:
    body = {"question": "x" * MAX_TEXT_LENGTH}
    assert validate_body("curbside_recommendation", body, signing=False) == body


@pytest.mark.parametrize("body", [None, [], "text", 3])
def test_it_refuses_a_body_that_is_not_an_object(body: object) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_body("progress_note", body, signing=False)
    assert field_errors(caught.value) == {"body": "must be an object"}


def test_errors_never_echo_the_submitted_text() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_body("progress_note", {"plan": 7, "secret": "MARKER-c0ffee"}, signing=True)
    assert "MARKER-c0ffee" not in json.dumps(caught.value.to_dict())


# --- signing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("template", TEMPLATES.values(), ids=list(TEMPLATES))
def test_signing_needs_every_required_section(template: Template) -> None:
    assert validate_body(template.id, complete_body(template), signing=True)
    with pytest.raises(ValidationFailed) as caught:
        validate_body(template.id, {}, signing=True)
    missing = field_errors(caught.value)
    assert set(missing) == {s.key for s in template.sections if s.required}
    assert set(missing.values()) == {"required to sign the note"}


def test_signing_allows_optional_sections_to_be_empty() -> None:
    body = {
        s.key: complete_body(PSYCHIATRIC_CONSULT)[s.key]
        for s in PSYCHIATRIC_CONSULT.sections
        if s.required
    }
    assert validate_body(PSYCHIATRIC_CONSULT.id, body, signing=True) == body


def test_whitespace_does_not_fill_a_required_section() -> None:
    body = complete_body(PSYCHIATRIC_CONSULT) | {"mse_suicidal_ideation": " \n\t"}
    with pytest.raises(ValidationFailed) as caught:
        validate_body(PSYCHIATRIC_CONSULT.id, body, signing=True)
    assert field_errors(caught.value) == {"mse_suicidal_ideation": "required to sign the note"}


def test_addenda_have_one_required_text_section() -> None:
    assert [s.key for s in ADDENDUM_SECTIONS] == ["text"]
    assert validate_addendum({}, signing=False) == {}
    assert validate_addendum({"text": "dose corrected"}, signing=True) == {"text": "dose corrected"}
    with pytest.raises(ValidationFailed):
        validate_addendum({"text": ""}, signing=True)


# --- encoding ----------------------------------------------------------------------------------


def test_encoding_is_canonical() -> None:
    one = encode_body({"plan": "b", "assessment": "a"})
    two = encode_body({"assessment": "a", "plan": "b"})
    assert one == two == b'{"assessment":"a","plan":"b"}'


@given(
    body=st.dictionaries(
        st.text(max_size=20), st.one_of(st.text(max_size=200), st.booleans()), max_size=10
    )
)
def test_encoding_round_trips(body: dict[str, Any]) -> None:
    assert decode_body(encode_body(body)) == body
