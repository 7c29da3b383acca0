"""The caseload-review recommendation template: its sections, who may author it, and how its
body validates for a draft and for signing."""

from __future__ import annotations

import pytest

from consult_notes.templates import (
    CASELOAD_REVIEW,
    TEMPLATES,
    NoteKind,
    SectionType,
    check_author,
    get_template,
    validate_body,
)
from server.auth.roles import Role
from server.errors import Forbidden, ValidationFailed


def test_it_is_listed_under_its_stable_id_as_a_shared_consult_note() -> None:
    # The registry's "last reviewed" is found by this id in the notes' metadata.
    assert get_template("caseload_review") is CASELOAD_REVIEW
    assert TEMPLATES["caseload_review"].title == "Caseload review recommendation"
    assert CASELOAD_REVIEW.kind is NoteKind.CONSULT
    assert not CASELOAD_REVIEW.kind.private  # care managers read it once signed
    assert CASELOAD_REVIEW.as_dict()["authors"] == ["psychiatrist"]


def test_its_sections_follow_the_review_conversation() -> None:
    sections = {s.key: s for s in CASELOAD_REVIEW.sections}
    assert list(sections) == [
        "current_status",
        "recommendation",
        "medication",
        "therapy",
        "other",
        "safety_plan_addressed",
        "follow_up",
    ]
    assert {k for k, s in sections.items() if s.required} == {
        "current_status",
        "recommendation",
        "follow_up",
    }
    grouped = [k for k, s in sections.items() if s.group == "Recommendation"]
    assert grouped == ["recommendation", "medication", "therapy", "other"]
    assert sections["safety_plan_addressed"].type is SectionType.YES_NO


def test_only_a_psychiatrist_may_author_it() -> None:
    check_author(CASELOAD_REVIEW, Role.PSYCHIATRIST)
    for role in (Role.CARE_MANAGER, Role.PCP, Role.THERAPIST):
        with pytest.raises(Forbidden) as caught:
            check_author(CASELOAD_REVIEW, role)
        assert caught.value.code == "template_not_for_role"
        assert "psychiatrists" in caught.value.message


@pytest.mark.parametrize("template_id", [t for t in TEMPLATES if t != "caseload_review"])
def test_the_other_templates_are_open_to_every_clinician(template_id: str) -> None:
    template = get_template(template_id)
    assert template.authors is None
    for role in (Role.CARE_MANAGER, Role.PCP, Role.THERAPIST, Role.PSYCHIATRIST):
        check_author(template, role)


def test_signing_needs_status_recommendation_and_follow_up_only() -> None:
    body = {
        "current_status": "PHQ-9 20 to 13 (-35%) at week 12; taking sertraline 50 mg daily.",
        "recommendation": "Increase sertraline.",
        "follow_up": "Care manager calls in 2 weeks; PHQ-9 in 4 weeks.",
    }
    assert validate_body("caseload_review", body, signing=True) == body
    with pytest.raises(ValidationFailed) as caught:
        validate_body("caseload_review", {"medication": "sertraline 100 mg"}, signing=True)
    missing = {e["field"] for e in caught.value.extra["fields"]}
    assert missing == {"current_status", "recommendation", "follow_up"}


def test_the_safety_plan_answer_is_yes_or_no() -> None:
    clean = validate_body("caseload_review", {"safety_plan_addressed": False}, signing=False)
    assert clean == {"safety_plan_addressed": False}
    with pytest.raises(ValidationFailed):
        validate_body("caseload_review", {"safety_plan_addressed": "yes"}, signing=False)
