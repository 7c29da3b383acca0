"""Who takes part in a visit, in the terms the signaling server uses.

Participant ids name identities, not connections: ``user:<id>`` for a clinician's account,
``link:<id>`` for whoever holds a join link (the patient, or a guest such as an interpreter).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ParticipantKind(StrEnum):
    CLINICIAN = "clinician"
    PATIENT = "patient"
    GUEST = "guest"


def user_participant(user_id: int) -> str:
    return f"user:{user_id}"


def link_participant(link_id: int) -> str:
    return f"link:{link_id}"


@dataclass(frozen=True)
class VisitParticipantIdentity:
    """A socket's identity for one visit, as the signaling server needs it on connect."""

    visit_id: int
    kind: ParticipantKind
    display_name: str
    participant_id: str
    # Link holders: identity checked (patients), consent and location recorded. Clinicians: True.
    ready_for_room: bool
    link_id: int | None = None
    user_id: int | None = None
