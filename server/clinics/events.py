"""Hooks that let the live side (signaling) hear of clinic changes made over HTTP, as
server/visits/events.py does for visits. Registered by server/clinics/live.py; a failing hook is
logged and undoes nothing."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("liaison.clinics")

# (session_id, psychiatrist_id): the session's board changed; its psychiatrist should refetch.
BoardChangedHook = Callable[[int, int], Awaitable[None]]
# (connection ids, payload): a notice to patients in a waiting room.
NoticeHook = Callable[[tuple[str, ...], dict[str, Any]], Awaitable[None]]


@dataclass
class ClinicEvents:
    board_changed: list[BoardChangedHook] = field(default_factory=list)
    notice: list[NoticeHook] = field(default_factory=list)

    async def changed(self, session_id: int, psychiatrist_id: int) -> None:
        for hook in self.board_changed:
            try:
                await hook(session_id, psychiatrist_id)
            except Exception:
                log.exception("clinic board hook failed")

    async def notify(self, connections: tuple[str, ...], payload: dict[str, Any]) -> None:
        for hook in self.notice:
            try:
                await hook(connections, payload)
            except Exception:
                log.exception("clinic notice hook failed")
