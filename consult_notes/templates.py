"""Note templates as data, and the validation of note bodies against them.

A template is an id, a title, a :class:`NoteKind` and ordered sections. A note body is a JSON
object mapping section keys to values (text, or true/false for a yes/no section). One generic
validator serves every template::

    validate_body(template_id, body, signing=False)   # drafts: may be incomplete
    validate_body(template_id, body, signing=True)    # signing: every required section filled

Both refuse unknown sections and values of the wrong type, and return the body with sections in
template order and empty values dropped; ``encode_body`` turns that into the canonical UTF-8
JSON bytes that are encrypted and hashed at signing. Addenda have one fixed shape,
:data:`ADDENDUM_SECTIONS`, checked by ``validate_addendum``.

The note's kind (and with it who may read the note) must come from its template, never from the
client: ``kind = get_template(template_id).kind``. A template may name the roles that may author
it (``authors``; ``check_author`` refuses the others with 403 ``template_not_for_role``).

Errors: ``server.errors.NotFound`` (code ``unknown_template``) and ``ValidationFailed``
(code ``invalid_note_body``, with ``fields`` = ``[{"field", "message"}]`` like the API's own
validation errors; submitted values are never echoed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from server.auth.roles import Role
from server.errors import Forbidden, NotFound, ValidationFailed

MAX_TEXT_LENGTH: Final = 20_000


class NoteKind(StrEnum):
    CONSULT = "consult"  # psychiatric consultation / initial evaluation
    PROGRESS = "progress"  # follow-up / progress note
    CURBSIDE = "curbside"  # curbside recommendation to the referring clinician
    PSYCHOTHERAPY = "psychotherapy"  # private: only its author may read it

    @property
    def private(self) -> bool:
        return self is NoteKind.PSYCHOTHERAPY


class SectionType(StrEnum):
    TEXT = "text"
    YES_NO = "yes_no"


@dataclass(frozen=True, slots=True)
class Section:
    key: str
    label: str
    required: bool
    help: str = ""
    type: SectionType = SectionType.TEXT
    group: str | None = None  # a heading the editor shows above consecutive sections

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "required": self.required,
            "help": self.help,
            "type": self.type.value,
            "group": self.group,
        }


@dataclass(frozen=True, slots=True)
class Template:
    id: str
    title: str
    kind: NoteKind
    sections: tuple[Section, ...]
    # Who may start a note from it; None: any clinician the access policy lets write notes.
    authors: frozenset[Role] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The template as the note editor receives it."""
        return {
            "id": self.id,
            "title": self.title,
            "kind": self.kind.value,
            "private": self.kind.private,
            "sections": [section.as_dict() for section in self.sections],
            "authors": None if self.authors is None else sorted(self.authors),
        }


def _s(
    key: str,
    label: str,
    help: str = "",
    *,
    required: bool = True,
    type: SectionType = SectionType.TEXT,
    group: str | None = None,
) -> Section:
    # Required by default: a section is optional only where the table says so.
    return Section(key, label, required, help, type, group)


_MSE = "Mental status examination"


def _mse(key: str, label: str, help: str) -> Section:
    return _s(f"mse_{key}", label, help, group=_MSE)


_RISK = _s(
    "risk_assessment",
    "Risk assessment",
    "Risk and protective factors; overall risk to self and others; safety plan if any.",
)

PSYCHIATRIC_CONSULT = Template(
    id="psychiatric_consult",
    title="Psychiatric consultation / initial evaluation",
    kind=NoteKind.CONSULT,
    sections=(
        _s("reason_for_referral", "Reason for referral", "The question the referrer asked."),
        _s("history_of_present_illness", "History of present illness"),
        _s(
            "past_psychiatric_history",
            "Past psychiatric history",
            required=False,
            help="Diagnoses, hospitalisations, suicide attempts, past treatments and response.",
        ),
        _s("substance_use", "Substance use", required=False),
        _s("medical_history", "Medical history and current medications", required=False),
        _s("social_history", "Social history", required=False),
        _s("family_history", "Family psychiatric history", required=False),
        _mse("appearance", "Appearance", "Grooming, dress, apparent age, distinguishing features."),
        _mse("behaviour", "Behaviour", "Engagement, eye contact, psychomotor activity."),
        _mse("speech", "Speech", "Rate, volume, tone, fluency."),
        _mse("mood", "Mood", "In the patient's own words."),
        _mse("affect", "Affect", "Range, reactivity, congruence with mood."),
        _mse("thought_process", "Thought process", "Linear, tangential, circumstantial, ..."),
        _mse("thought_content", "Thought content", "Preoccupations, obsessions, delusions."),
        _mse("suicidal_ideation", "Suicidal ideation", "Presence, plan, intent, means, history."),
        _mse("homicidal_ideation", "Homicidal ideation", "Presence, target, plan, intent."),
        _mse("perception", "Perception", "Hallucinations, illusions, dissociation."),
        _mse("cognition", "Cognition", "Orientation, attention, memory; screening scores."),
        _mse("insight", "Insight", "Awareness of illness and need for treatment."),
        _mse("judgement", "Judgement", "Decision-making as shown in recent choices."),
        _RISK,
        _s("assessment", "Assessment and diagnosis", "Formulation and working diagnoses."),
        _s("plan", "Plan and recommendations", "Medications, therapy, labs, follow-up."),
    ),
)

PROGRESS_NOTE = Template(
    id="progress_note",
    title="Follow-up / progress note",
    kind=NoteKind.PROGRESS,
    sections=(
        _s("interval_history", "Interval history", "Changes since the last visit."),
        _s("medications", "Current medications and adherence", required=False),
        _s("side_effects", "Side effects", required=False),
        _s("measures", "Measurement-based care", "PHQ-9 / GAD-7 scores and trend.", required=False),
        _s(
            "mental_status",
            "Mental status examination",
            "Brief MSE, including suicidal and homicidal ideation.",
        ),
        _RISK,
        _s("assessment", "Assessment"),
        _s("plan", "Plan"),
    ),
)

CURBSIDE_RECOMMENDATION = Template(
    id="curbside_recommendation",
    title="Curbside recommendation",
    kind=NoteKind.CURBSIDE,
    sections=(
        _s("question", "Question", "What the referring clinician asked."),
        _s("relevant_history", "Relevant history", required=False),
        _s("recommendation", "Recommendation"),
        _s(
            "medication_suggestions",
            "Medication suggestions",
            required=False,
            help="Drug, starting dose, titration, monitoring, interactions to watch.",
        ),
        _s("follow_up_advice", "Follow-up advice", "When to call back or escalate."),
        _s(
            "face_to_face_advised",
            "Face-to-face evaluation advised",
            type=SectionType.YES_NO,
            help="Whether the patient should be seen by psychiatry directly.",
        ),
    ),
)

PSYCHOTHERAPY_NOTE = Template(
    id="psychotherapy_note",
    title="Psychotherapy note (private)",
    kind=NoteKind.PSYCHOTHERAPY,
    sections=(
        _s("session_notes", "Session notes", "Kept apart from the record; only you can read it."),
        _s("impressions", "Impressions", required=False),
        _s("next_session", "Plan for next session", required=False),
    ),
)

# --- caseload review (collaborative care) ---------------------------------------------------
# The psychiatric consultant's recommendation from a systematic caseload review with the care
# manager. A shared consult note (the care team reads it once signed); only the consultant
# writes it, since it carries prescribing advice. The registry's "last reviewed" date is the
# newest signed note from this template (server/clinics/caseload.py), so its id must not change.

_RECOMMENDATION = "Recommendation"

CASELOAD_REVIEW = Template(
    id="caseload_review",
    title="Caseload review recommendation",
    kind=NoteKind.CONSULT,
    authors=frozenset({Role.PSYCHIATRIST}),
    sections=(
        _s(
            "current_status",
            "Current status and scores",
            "PHQ-9 / GAD-7 baseline to latest, weeks in treatment, adherence, side effects, "
            "what the care manager reports.",
        ),
        _s(
            "recommendation",
            "Summary",
            "The change in treatment, or why the plan stays as it is.",
            group=_RECOMMENDATION,
        ),
        _s(
            "medication",
            "Medication",
            "Drug, dose change, titration, monitoring.",
            required=False,
            group=_RECOMMENDATION,
        ),
        _s(
            "therapy",
            "Psychotherapy and behavioural interventions",
            required=False,
            group=_RECOMMENDATION,
        ),
        _s(
            "other",
            "Other",
            "Referrals, labs, level of care, in-person evaluation.",
            required=False,
            group=_RECOMMENDATION,
        ),
        _s(
            "safety_plan_addressed",
            "Safety plan addressed",
            "For a patient with a safety flag: was the safety plan reviewed and updated?",
            required=False,
            type=SectionType.YES_NO,
        ),
        _s(
            "follow_up",
            "Follow-up",
            "Who does what, and by when; add each as a follow-up task with an owner.",
        ),
    ),
)

TEMPLATES: Final[Mapping[str, Template]] = MappingProxyType(
    {
        t.id: t
        for t in (
            PSYCHIATRIC_CONSULT,
            PROGRESS_NOTE,
            CURBSIDE_RECOMMENDATION,
            PSYCHOTHERAPY_NOTE,
            CASELOAD_REVIEW,
        )
    }
)

ADDENDUM_SECTIONS: Final = (_s("text", "Addendum", "What is added or corrected, and why."),)


def get_template(template_id: str) -> Template:
    try:
        return TEMPLATES[template_id]
    except KeyError:
        raise NotFound("no such note template", code="unknown_template") from None


def check_author(template: Template, role: Role) -> None:
    """Refuse a role the template is not for (the access policy has said yes already)."""
    if template.authors is not None and role not in template.authors:
        raise Forbidden(
            f"Only {' or '.join(sorted(r.replace('_', ' ') + 's' for r in template.authors))} "
            f"can write a {template.title.lower()}.",
            code="template_not_for_role",
        )


def validate_body(template_id: str, body: object, *, signing: bool) -> dict[str, Any]:
    """Check ``body`` against a template; see the module docstring."""
    return validate_sections(get_template(template_id).sections, body, signing=signing)


def validate_addendum(body: object, *, signing: bool) -> dict[str, Any]:
    return validate_sections(ADDENDUM_SECTIONS, body, signing=signing)


def validate_sections(
    sections: tuple[Section, ...], body: object, *, signing: bool
) -> dict[str, Any]:
    """The generic validator behind ``validate_body`` and ``validate_addendum``."""
    if not isinstance(body, Mapping):
        raise ValidationFailed(
            "the note body must be an object of sections",
            code="invalid_note_body",
            extra={"fields": [{"field": "body", "message": "must be an object"}]},
        )
    known = {section.key for section in sections}
    errors = [{"field": str(key), "message": "unknown section"} for key in body if key not in known]
    clean: dict[str, Any] = {}
    for section in sections:
        value = body.get(section.key)
        problem = _check_value(section, value)
        if problem:
            errors.append({"field": section.key, "message": problem})
        elif not _is_empty(value):
            clean[section.key] = value
        elif signing and section.required:
            errors.append({"field": section.key, "message": "required to sign the note"})
    if errors:
        raise ValidationFailed(
            "some sections of the note are missing or invalid",
            code="invalid_note_body",
            extra={"fields": errors},
        )
    return clean


def _check_value(section: Section, value: object) -> str | None:
    if value is None:
        return None
    if section.type is SectionType.YES_NO:
        return None if isinstance(value, bool) else "must be true or false"
    if not isinstance(value, str):
        return "must be text"
    if len(value) > MAX_TEXT_LENGTH:
        return f"must be at most {MAX_TEXT_LENGTH} characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which JSON's \uD800 escape can carry
        return "must be valid Unicode text"
    return None


def _is_empty(value: object) -> bool:
    # Whitespace-only text is empty: it must not satisfy a required section.
    return value is None or (isinstance(value, str) and not value.strip())


def encode_body(body: Mapping[str, Any]) -> bytes:
    """Canonical bytes of a validated body: what is encrypted and what the content hash covers.

    Keys are sorted and separators fixed, so equal bodies always give equal bytes (and hashes).
    """
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def decode_body(data: bytes) -> dict[str, Any]:
    """The inverse of :func:`encode_body` for bytes this system wrote (after decryption)."""
    decoded: dict[str, Any] = json.loads(data)
    return decoded
