"""The checks a link holder passes before the waiting room, in order.

    patient:  identity (date of birth) -> consent -> location
    guest:    consent

The device check and the waiting room follow in the browser; they need nothing from the server
but the visit session. A consent given to an older text version counts as not given.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from server.errors import Conflict
from server.visits.links import LinkKind


class JoinStep(StrEnum):
    IDENTITY = "identity"
    CONSENT = "consent"
    LOCATION = "location"


STEPS: dict[LinkKind, tuple[JoinStep, ...]] = {
    LinkKind.PATIENT: (JoinStep.IDENTITY, JoinStep.CONSENT, JoinStep.LOCATION),
    LinkKind.GUEST: (JoinStep.CONSENT,),
}

_FIRST = {
    JoinStep.IDENTITY: "Confirm your date of birth first.",
    JoinStep.CONSENT: "Read and accept the consent first.",
    JoinStep.LOCATION: "Tell us where you are first.",
}


@dataclass(frozen=True)
class JoinProgress:
    identity_verified: bool = False
    consent_version: str | None = None
    location_recorded: bool = False


def completed(kind: LinkKind, progress: JoinProgress, consent_version: str) -> tuple[JoinStep, ...]:
    done = {
        JoinStep.IDENTITY: progress.identity_verified,
        JoinStep.CONSENT: progress.consent_version == consent_version,
        JoinStep.LOCATION: progress.location_recorded,
    }
    return tuple(step for step in STEPS[kind] if done[step])


def remaining(kind: LinkKind, progress: JoinProgress, consent_version: str) -> tuple[JoinStep, ...]:
    done = completed(kind, progress, consent_version)
    return tuple(step for step in STEPS[kind] if step not in done)


def require_turn(
    kind: LinkKind, progress: JoinProgress, step: JoinStep, consent_version: str
) -> None:
    """Refuse a step this kind of link does not take, or one whose earlier steps are not done.

    A step already done may be taken again (a corrected location, a re-read consent).
    """
    order = STEPS[kind]
    if step not in order:
        raise Conflict("This link does not need that step.", code="step_not_needed")
    done = completed(kind, progress, consent_version)
    for earlier in order[: order.index(step)]:
        if earlier not in done:
            raise Conflict(_FIRST[earlier], code="step_out_of_order", extra={"next_step": earlier})
