"""Curbside consults on the `/rtc` namespace: events, presence hooks, notices, the scheduler.

Client events (each validated, rate-limited and acked like every `/rtc` event)::

    curbside:watch   {}            a page that rings (dashboard, consult page): present from now
    curbside:accept  {request_id}  a rung psychiatrist takes the call -> {ok, request_id, visit_id}
    curbside:decline {request_id}  a rung psychiatrist says no
    curbside:cancel  {request_id}  the requesting PCP withdraws the request
    curbside:end     {request_id}  either party hangs up the curbside call

Server events (server/curbside/notices.py): ``curbside:ring``, ``curbside:taken``,
``curbside:stop``, ``curbside:status``, ``curbside:connected``, sent to ``user:<id>`` rooms, so
they reach a user's sockets on whichever server process holds them.

Presence (signaling/curbside_presence.py): a psychiatrist's socket counts once its page says it
can ring them (``curbside:watch``, sent again after every reconnect), or while it is in a call
(busy); a page with no ring handler (the clinic board, a visit) never makes them available.
When their last such socket anywhere goes, they are dropped from the requests ringing them.
The :class:`CurbsideScheduler`, one per process, touches this process's rows (with the room
each socket is in, for busy) and moves on requests whose ring deadline has passed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from server.auth.roles import Role
from server.clock import Clock
from server.curbside.notices import CloseCall, Notice, Outbound
from server.curbside.service import CurbsideService
from server.errors import Forbidden
from server.periodic import every
from signaling import events as ev
from signaling import rooms
from signaling.curbside_presence import PresenceStore
from signaling.identity import Identity
from signaling.namespace import EventSpec, RtcNamespace, SocketState, user_room

log = logging.getLogger("liaison.curbside")


@dataclass(frozen=True, slots=True)
class SocketActor:
    """A signed-in socket's user, as the curbside service sees an actor."""

    user_id: int
    role: Role


def actor_of(identity: Identity) -> SocketActor:
    if identity.user_id is None:
        raise Forbidden("Sign in to take part in curbside consults.", code="not_signed_in")
    return SocketActor(identity.user_id, Role(identity.role))


class CurbsideScheduler:
    """The per-process task: presence heartbeat, and ticking requests whose ring time is up.
    Tests call :meth:`tick` (and :meth:`beat`) directly instead of waiting for it."""

    def __init__(
        self,
        ns: RtcNamespace,
        service: CurbsideService,
        presence: PresenceStore,
        clock: Clock,
        *,
        heartbeat: timedelta,
        interval_s: float,
    ) -> None:
        self._ns = ns
        self._service = service
        self._presence = presence
        self._clock = clock
        self._heartbeat = heartbeat
        self._interval_s = interval_s
        self._last_beat: datetime | None = None

    async def beat(self) -> None:
        """Touch this process's presence rows, with the room each socket is in."""
        sockets = {
            sid: state.visit_id
            for sid, state in list(self._ns.sockets.items())
            if self._presence.knows(sid)
        }
        self._last_beat = self._clock()
        for user_id in await self._presence.touch(sockets):
            await self._service.presence_lost(user_id)

    async def tick(self) -> int:
        """A heartbeat if one is due (by the service clock), then escalate what is due."""
        if self._last_beat is None or self._clock() - self._last_beat >= self._heartbeat:
            await self.beat()
        return await self._service.tick()

    async def run(self) -> None:
        await every(self._interval_s, self.tick, log=log, failed="curbside scheduler failed")


def _closing(
    status: rooms.VisitStatus,
) -> Callable[[rooms.RoomState, datetime], rooms.Transition]:
    return lambda state, now: rooms.close(state, status, now)


CURBSIDE_SCHEDULER = web.AppKey("curbside_scheduler", CurbsideScheduler)


def attach_curbside(
    ns: RtcNamespace, service: CurbsideService, presence: PresenceStore, clock: Clock
) -> CurbsideScheduler:
    """Register the curbside events, hooks and publisher on a namespace."""

    async def watch(
        ns: RtcNamespace, sid: str, state: SocketState, msg: ev.Empty
    ) -> dict[str, Any]:
        who = actor_of(state.identity)
        if who.role is not Role.PSYCHIATRIST:
            raise Forbidden("Only psychiatrists are rung for curbside consults.")
        await presence.watch(sid, who.user_id)
        return ev.ok()

    async def accept(
        ns: RtcNamespace, sid: str, state: SocketState, msg: ev.CurbsideTarget
    ) -> dict[str, Any]:
        visit_id = await service.accept(actor_of(state.identity), msg.request_id)
        return ev.ok(request_id=msg.request_id, visit_id=visit_id)

    async def decline(
        ns: RtcNamespace, sid: str, state: SocketState, msg: ev.CurbsideTarget
    ) -> dict[str, Any]:
        await service.decline(actor_of(state.identity), msg.request_id)
        return ev.ok(request_id=msg.request_id)

    async def cancel(
        ns: RtcNamespace, sid: str, state: SocketState, msg: ev.CurbsideTarget
    ) -> dict[str, Any]:
        await service.cancel(actor_of(state.identity), msg.request_id)
        return ev.ok(request_id=msg.request_id)

    async def end(
        ns: RtcNamespace, sid: str, state: SocketState, msg: ev.CurbsideTarget
    ) -> dict[str, Any]:
        await service.end_call(actor_of(state.identity), msg.request_id)
        return ev.ok(request_id=msg.request_id)

    ns.events.update(
        {
            ev.CURBSIDE_WATCH: EventSpec(ev.Empty, watch),
            ev.CURBSIDE_ACCEPT: EventSpec(ev.CurbsideTarget, accept),
            ev.CURBSIDE_DECLINE: EventSpec(ev.CurbsideTarget, decline),
            ev.CURBSIDE_CANCEL: EventSpec(ev.CurbsideTarget, cancel),
            ev.CURBSIDE_END: EventSpec(ev.CurbsideTarget, end),
        }
    )

    async def connected(sid: str, identity: Identity) -> None:
        if identity.user_id is not None and identity.role == Role.PSYCHIATRIST.value:
            presence.connected(sid, identity.user_id)

    async def disconnected(sid: str, identity: Identity) -> None:
        if identity.user_id is not None and await presence.disconnected(sid):
            await service.presence_lost(identity.user_id)

    async def room_changed(visit_id: int, room: rooms.RoomState) -> None:
        in_call = rooms.Presence.IN_CALL
        await service.room_changed(
            visit_id, {p.participant_id for p in room.participants if p.presence is in_call}
        )

    async def publish(outbound: Sequence[Outbound]) -> None:
        for item in outbound:
            match item:
                case Notice(event=event, user_ids=user_ids, payload=payload):
                    await ns.emit(event, dict(payload), to=[user_room(u) for u in user_ids])
                case CloseCall(visit_id=visit_id, status=status):
                    await ns.apply(visit_id, _closing(rooms.VisitStatus(status.value)))

    ns.connect_hooks.append(connected)
    ns.disconnect_hooks.append(disconnected)
    ns.room_hooks.append(room_changed)
    service.publishers.append(publish)
    settings = ns.settings.curbside
    return CurbsideScheduler(
        ns,
        service,
        presence,
        clock,
        heartbeat=timedelta(seconds=settings.presence_heartbeat_s),
        interval_s=settings.tick_interval_s,
    )
