"""What the routing machine is given: the request, the on-call roster, the routing policy.

These are the caller's snapshot: the service reads them from the record and the presence store
and passes them in, so the machine itself never looks anything up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Final


class Urgency(StrEnum):
    ROUTINE = "routine"
    URGENT = "urgent"
    EMERGENT = "emergent"


class Mode(StrEnum):
    CALL_NOW = "call_now"
    WRITTEN = "written"


class Tier(StrEnum):
    PRIMARY = "primary"
    BACKUP = "backup"


class Presence(StrEnum):
    AVAILABLE = "available"
    BUSY = "busy"
    OFFLINE = "offline"


DEFAULT_ANSWER_TARGETS: Final[Mapping[Urgency, timedelta]] = MappingProxyType(
    {
        Urgency.EMERGENT: timedelta(hours=1),
        Urgency.URGENT: timedelta(hours=4),
        Urgency.ROUTINE: timedelta(hours=72),
    }
)


@dataclass(frozen=True, slots=True)
class ConsultRequest:
    """What routing needs to know about a request. The question and clinical context stay in
    the record; nothing here is PHI beyond the patient's id and state of residence."""

    id: int
    pcp_id: int
    patient_id: int
    urgency: Urgency
    mode: Mode
    created_at: datetime
    patient_state: str | None = None  # two-letter code, e.g. "CA"

    def __post_init__(self) -> None:
        aware(self.created_at)
        code = self.patient_state
        valid = isinstance(code, str) and len(code) == 2 and code.isascii() and code.isalpha()
        if code is not None and not valid:
            raise ValueError(f"patient_state must be a two-letter code, not {code!r}")


@dataclass(frozen=True, slots=True)
class OnCall:
    """One psychiatrist on call right now, as the caller's roster snapshot sees them."""

    psychiatrist_id: int
    tier: Tier
    presence: Presence
    licensed_states: frozenset[str] = frozenset()

    def licensed_in(self, state_code: str) -> bool:
        return state_code.upper() in {code.upper() for code in self.licensed_states}


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    ring_timeout: timedelta = timedelta(seconds=60)
    require_license_match: bool = True
    answer_targets: Mapping[Urgency, timedelta] = field(
        default_factory=lambda: DEFAULT_ANSWER_TARGETS
    )

    def __post_init__(self) -> None:
        if self.ring_timeout <= timedelta(0):
            raise ValueError("ring_timeout must be positive")
        for urgency in Urgency:
            if self.answer_targets.get(urgency, timedelta(0)) <= timedelta(0):
                raise ValueError(f"answer_targets needs a positive target for {urgency}")


def aware(moment: datetime) -> datetime:
    """``moment`` in UTC; ``ValueError`` if it is naive. Every time the machine takes in passes
    through here, so no naive time can end up in a stored state."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("curbside times must be timezone-aware (UTC)")
    return moment.astimezone(UTC)
