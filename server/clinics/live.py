"""The clinics' live side: board refresh events and waiting-room notices over `/rtc`.

``clinic:board {session_id}`` goes to the session psychiatrist's ``user:<id>`` room whenever a
booked visit's room changes (the namespace's room hook), a booking changes or a waiting-room
screening arrives: the board refetches. ``visit:notice {visit_id, kind, text}`` goes to the
connections of patients waiting in a session's visits ("running about N minutes late").
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from server.state import SERVICES
from signaling import rooms
from signaling.namespace import user_room
from signaling.setup import RTC

CLINIC_BOARD = "clinic:board"
VISIT_NOTICE = "visit:notice"


def attach_clinic_live(app: web.Application) -> None:
    """Call after attach_signaling: this context starts after the namespace exists."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        svc = app[SERVICES]
        namespace = app[RTC]

        async def board_changed(session_id: int, psychiatrist_id: int) -> None:
            await namespace.emit(
                CLINIC_BOARD, {"session_id": session_id}, room=user_room(psychiatrist_id)
            )

        async def notice(connections: tuple[str, ...], payload: dict[str, Any]) -> None:
            await namespace.emit(VISIT_NOTICE, payload, to=list(connections))

        async def room_changed(visit_id: int, _state: rooms.RoomState) -> None:
            await svc.clinics.visit_changed(visit_id)

        svc.clinics.events.board_changed.append(board_changed)
        svc.clinics.events.notice.append(notice)
        namespace.room_hooks.append(room_changed)
        yield

    app.cleanup_ctx.append(ctx)
