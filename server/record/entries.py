"""The coded values of the record's entries: problems, medications, allergies, safety flags.

The values are FHIR R4's own codes (lower case, ``on-hold`` as FHIR spells it), so the export
maps them one to one. Pure; imported by the models for their CHECK constraints.
"""

from __future__ import annotations

from enum import StrEnum


class ConditionStatus(StrEnum):
    """FHIR ``Condition.clinicalStatus`` (http://terminology.hl7.org/CodeSystem/condition-clinical)."""

    ACTIVE = "active"
    RECURRENCE = "recurrence"
    RELAPSE = "relapse"
    INACTIVE = "inactive"
    REMISSION = "remission"
    RESOLVED = "resolved"


class CodeSystem(StrEnum):
    """Where a problem's code comes from."""

    ICD10CM = "icd10cm"
    SNOMED = "snomed"

    @property
    def uri(self) -> str:
        return _CODE_SYSTEM_URIS[self]


_CODE_SYSTEM_URIS = {
    CodeSystem.ICD10CM: "http://hl7.org/fhir/sid/icd-10-cm",
    CodeSystem.SNOMED: "http://snomed.info/sct",
}


class MedicationStatus(StrEnum):
    """FHIR R4 ``MedicationStatement.status`` (the subset a clinic records)."""

    ACTIVE = "active"
    ON_HOLD = "on-hold"
    STOPPED = "stopped"
    COMPLETED = "completed"
    ENTERED_IN_ERROR = "entered-in-error"


class AllergyStatus(StrEnum):
    """FHIR ``AllergyIntolerance.clinicalStatus``."""

    ACTIVE = "active"
    INACTIVE = "inactive"
    RESOLVED = "resolved"


class AllergySeverity(StrEnum):
    """FHIR ``AllergyIntolerance.reaction.severity``."""

    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"


class SafetyFlagKind(StrEnum):
    PHQ9_ITEM9 = "phq9_item9"  # thoughts of being better off dead or of self-harm


class EncounterKind(StrEnum):
    VISIT = "visit"
    CURBSIDE = "curbside"
    ECONSULT = "econsult"
