"""The roles a user can hold. Access decisions live in the policy module, not here."""

from enum import StrEnum


class Role(StrEnum):
    PATIENT = "patient"
    PCP = "pcp"
    PSYCHIATRIST = "psychiatrist"
    THERAPIST = "therapist"
    CARE_MANAGER = "care_manager"
    ADMIN = "admin"

    @property
    def is_clinician(self) -> bool:
        return self in CLINICIAN_ROLES


CLINICIAN_ROLES = frozenset({Role.PCP, Role.PSYCHIATRIST, Role.THERAPIST, Role.CARE_MANAGER})
