"""Hooks that tell the live side (the signaling server) about changes made over HTTP.

The signaling setup registers them, as it does ``UserService.on_disable``. Each runs after the
change is committed; one that fails is logged and undoes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from server.visits.participants import ParticipantKind
from server.visits.status import VisitStatus

log = logging.getLogger("liaison.visits")

# (visit_id, participant_id, kind, display_name): a link was issued, e.g. an interpreter invited.
LinkIssuedHook = Callable[[int, str, ParticipantKind, str], Awaitable[None]]
# (visit_id, participant_id): a link was revoked, replaced or locked; put its holder out.
LinkRevokedHook = Callable[[int, str], Awaitable[None]]
# (visit_id, status): cancelled or marked a no-show; tell whoever is connected.
VisitClosedHook = Callable[[int, VisitStatus], Awaitable[None]]


@dataclass
class VisitEvents:
    link_issued: list[LinkIssuedHook] = field(default_factory=list)
    link_revoked: list[LinkRevokedHook] = field(default_factory=list)
    visit_closed: list[VisitClosedHook] = field(default_factory=list)

    async def issued(
        self, visit_id: int, participant_id: str, kind: ParticipantKind, display_name: str
    ) -> None:
        await _run(self.link_issued, visit_id, participant_id, kind, display_name)

    async def revoked(self, visit_id: int, participant_ids: list[str]) -> None:
        for participant_id in participant_ids:
            await _run(self.link_revoked, visit_id, participant_id)

    async def closed(self, visit_id: int, status: VisitStatus) -> None:
        await _run(self.visit_closed, visit_id, status)


async def _run(hooks: list[Callable[..., Awaitable[None]]], *args: Any) -> None:
    for hook in hooks:
        try:
            await hook(*args)
        except Exception:
            log.exception("visit hook failed", extra={"hook": getattr(hook, "__name__", "?")})
