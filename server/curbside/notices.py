"""What the people concerned are told after a curbside change is committed.

The routing machine's effects become :class:`Notice` values (an event name, the users whose
sockets get it, a JSON payload); the signaling server's publisher emits each to the users'
``user:<id>`` rooms, which reach their sockets on any server process::

    Ring                    curbside:ring {request, tier, ring_deadline}   the rung psychiatrists
    StopRinging (taken)     curbside:taken {request_id}                    the others rung
    StopRinging (other)     curbside:stop {request_id, reason}             cancelled / escalated
    Taken                   curbside:connected {request_id, visit_id}      the PCP and the winner
    StatusForPcp            curbside:status {request_id, status, detail, psychiatrist}  the PCP

``Escalated`` and ``QueuedWritten`` reach the PCP through the status that comes with them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server.db.models import ConsultRequest as RequestRow
from server.visits.status import VisitStatus
from signaling import curbside as cs
from signaling import events as ev


@dataclass(frozen=True)
class Notice:
    """An event for the signaling sockets of some users."""

    event: str
    user_ids: tuple[int, ...]
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class CloseCall:
    """Close a curbside call's room (everyone in it is told the visit ended)."""

    visit_id: int
    status: VisitStatus


Outbound = Notice | CloseCall
Publisher = Callable[[Sequence[Outbound]], Awaitable[None]]


def named_in(effects: Sequence[cs.Effect]) -> set[int]:
    """Users whose display names the notices for ``effects`` show."""
    return {
        e.psychiatrist_id
        for e in effects
        if isinstance(e, cs.StatusForPcp | cs.Taken) and e.psychiatrist_id is not None
    }


def notices_for(result: cs.Transition, row: RequestRow, names: Mapping[int, str]) -> list[Notice]:
    state = result.state
    rid = state.request.id
    notices: list[Notice] = []
    payload: dict[str, Any]
    for effect in result.effects:
        match effect:
            case cs.Ring(psychiatrist_ids=ids, tier=tier):
                payload = {
                    "request": ring_summary(row, state, names.get(row.pcp_id, "")),
                    "tier": tier.value,
                    "ring_deadline": _iso(state.ring_deadline),
                }
                notices.append(Notice(ev.CURBSIDE_RING, ids, payload))
            case cs.StopRinging(psychiatrist_ids=ids, reason=cs.StopReason.TAKEN):
                notices.append(Notice(ev.CURBSIDE_TAKEN, ids, {"request_id": rid}))
            case cs.StopRinging(psychiatrist_ids=ids, reason=reason):
                payload = {"request_id": rid, "reason": reason.value}
                notices.append(Notice(ev.CURBSIDE_STOP, ids, payload))
            case cs.Taken(psychiatrist_id=psychiatrist, pcp_id=pcp):
                payload = {"request_id": rid, "visit_id": row.visit_id}
                notices.append(Notice(ev.CURBSIDE_CONNECTED, (pcp, psychiatrist), payload))
            case cs.StatusForPcp(pcp_id=pcp, status=status, detail=detail):
                who = effect.psychiatrist_id
                payload = {
                    "request_id": rid,
                    "status": status.value,
                    "detail": detail,
                    "psychiatrist": None
                    if who is None
                    else {"id": who, "display_name": names.get(who, "")},
                }
                notices.append(Notice(ev.CURBSIDE_STATUS, (pcp,), payload))
    return notices


def ring_summary(row: RequestRow, state: cs.CurbsideState, pcp_name: str) -> dict[str, Any]:
    """What a ringing dashboard shows: the question and the record's context, no identity."""
    return {
        "id": row.id,
        "urgency": row.urgency,
        "mode": row.mode,
        "question": row.question,
        "patient_state": row.patient_state,
        "context": json.loads(row.context),
        "pcp": {"id": row.pcp_id, "display_name": pcp_name},
        "asked_at": state.request.created_at.isoformat(),
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
