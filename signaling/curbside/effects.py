"""What the handler must do once the store has committed a transition's new state.

A transition returns these rather than doing them, so it stays pure and a transition that lost
a compare-and-set race (and is run again) never tells anyone anything twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from signaling.curbside.inputs import ConsultRequest, Tier
from signaling.curbside.state import Status


class StopReason(StrEnum):
    TAKEN = "taken"
    CANCELLED = "cancelled"
    ESCALATED = "escalated"


@dataclass(frozen=True, slots=True)
class Ring:
    request: ConsultRequest
    psychiatrist_ids: tuple[int, ...]
    tier: Tier


@dataclass(frozen=True, slots=True)
class StopRinging:
    """Tell these dashboards to drop the request (for the winner after a cancel, too)."""

    request_id: int
    psychiatrist_ids: tuple[int, ...]
    reason: StopReason


@dataclass(frozen=True, slots=True)
class Taken:
    """Put the winner and the PCP in a fresh room."""

    request_id: int
    psychiatrist_id: int
    pcp_id: int


@dataclass(frozen=True, slots=True)
class Escalated:
    request_id: int
    tier: Tier


@dataclass(frozen=True, slots=True)
class QueuedWritten:
    request_id: int
    due_at: datetime


@dataclass(frozen=True, slots=True)
class StatusForPcp:
    """Sent on every status change; ``detail`` is plain language without names or PHI."""

    request_id: int
    pcp_id: int
    status: Status
    detail: str
    psychiatrist_id: int | None = None


Effect = Ring | StopRinging | Taken | Escalated | QueuedWritten | StatusForPcp
