"""The `/rtc` socket.io namespace: authenticate, validate, authorise, call the room machine.

Handlers are thin. Each client event is rate-limited per socket, parsed into its pydantic model
(signaling/events.py), and answered with an ack ``{ok: true, ...}`` or
``{ok: false, error: {code, message}}``. Room decisions are made by the pure state machine in
signaling/rooms.py, applied through the room store (which keeps the state in the database, so
any server process may handle any event); the effects it returns become emits here.

What this process keeps in memory is only about its own sockets (who each one is, which visit
it joined, its rate-limit bucket) and when the graces of rooms it changed end, to announce them
on time. None of it decides anything another process needs. A
room records which server process (cluster instance, signaling/cluster.py) holds each
connection, so that if this process dies another removes its sockets from their rooms.

Admitting someone and ending a visit are written to the audit trail once the store has saved
the change (server/visits/room_audit.py), as whoever sent the event that caused it. Sockets
whose login session ended are closed by signaling/session_sweeper.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import socketio
from pydantic import BaseModel, ValidationError

from server.audit import Actor
from server.clock import Clock
from server.errors import Forbidden, LiaisonError, NotFound
from server.settings import Settings
from server.visits.room_audit import Admitted, Ended, RoomAudit, RoomChange
from signaling import events as ev
from signaling import rooms
from signaling.ice import ice_servers
from signaling.identity import Identity
from signaling.limits import FloodGuard, TokenBucket
from signaling.room_store import RoomStore, RosterSource, authorise_join, with_invite

log = logging.getLogger("liaison.signaling")

NAMESPACE = ev.NAMESPACE

Identify = Callable[[dict[str, Any]], Awaitable[Identity]]

# Whose client event is being handled, for the audit trail of the room changes it causes: also
# those made further down the call, e.g. a curbside call's room closed by `curbside:end`.
acting_identity: ContextVar[Identity | None] = ContextVar("acting_identity", default=None)


@dataclass
class SocketState:
    identity: Identity
    guard: FloodGuard
    visit_id: int | None = None
    last_touch: float = field(default_factory=time.monotonic)


Handler = Callable[["RtcNamespace", str, SocketState, Any], Awaitable[dict[str, Any]]]
# Hooks other features register (signaling/curbside_events.py): a socket came or went; a
# visit room changed (its new state is saved). A failing hook is logged, never raised.
SocketHook = Callable[[str, Identity], Awaitable[None]]
RoomHook = Callable[[int, rooms.RoomState], Awaitable[None]]
# Told of every client event once it is acked: its name, the ack and the seconds it took
# (server/metrics.py counts them and times rtc:signal relays).
EventObserver = Callable[[str, dict[str, Any], float], None]


@dataclass(frozen=True)
class EventSpec:
    model: type[BaseModel]
    handler: Handler


class RtcNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    def __init__(
        self,
        settings: Settings,
        identify: Identify,
        store: RoomStore,
        roster: RosterSource,
        clock: Clock,
        room_audit: RoomAudit,
        node_id: str | None = None,
    ) -> None:
        super().__init__(NAMESPACE)
        self.settings = settings
        self.identify = identify
        self.store = store
        self.roster = roster
        self.clock = clock
        self.room_audit = room_audit
        self.sockets: dict[str, SocketState] = {}
        self.events: dict[str, EventSpec] = dict(EVENTS)
        self.connect_hooks: list[SocketHook] = []
        self.disconnect_hooks: list[SocketHook] = []
        self.room_hooks: list[RoomHook] = []
        # The cluster instance holding these sockets (None: rooms do not record it).
        self.node_id = node_id
        # Sockets gone whose room could not be told (the database failed): retried by the
        # cluster heartbeat; were this process to die first, the dead-node sweep covers them.
        self.pending_disconnects: dict[str, int] = {}
        # When the earliest grace of someone away ends, per room this process changed, so that
        # the call hears then that they are gone. Only timeliness rests on it: a room whose
        # process died expires at its next change (expiry is lazy), and browsers keep a timer.
        self.grace_ends: dict[int, datetime] = {}
        self.observe_event: EventObserver = lambda event, ack, seconds: None

    # --- connection life ---------------------------------------------------------------------

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and origin not in self.settings.server.origins:
            raise refuse_connection(
                Forbidden("Connections from other sites are refused.", code="bad_origin")
            )
        try:
            identity = await self.identify(environ)
        except LiaisonError as exc:
            raise refuse_connection(exc) from None
        cfg = self.settings.signaling
        guard = FloodGuard(TokenBucket(cfg.events_per_second, cfg.event_burst), cfg.flood_strikes)
        self.sockets[sid] = SocketState(identity, guard)
        if identity.user_id is not None:
            await self.enter_room(sid, user_room(identity.user_id))
        await _run_hooks(self.connect_hooks, sid, identity)
        log.info("socket connected", extra={"participant": identity.participant_id})

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        state = self.sockets.pop(sid, None)
        if state is None:
            return
        if state.visit_id is not None:
            await self.drop_connection(state.visit_id, sid)
        await _run_hooks(self.disconnect_hooks, sid, state.identity)

    async def drop_connection(self, visit_id: int, sid: str) -> None:
        """Tell the room a socket of this process is gone; on failure, keep it for a retry
        rather than leave a ghost in the call."""
        try:
            await self.apply(visit_id, lambda s, now: rooms.disconnect(s, sid, now))
        except NotFound:
            pass  # the visit is gone
        except Exception:
            log.exception("room disconnect failed; will retry", extra={"visit_id": visit_id})
            self.pending_disconnects[sid] = visit_id
            return
        self.pending_disconnects.pop(sid, None)

    async def upkeep(self) -> None:
        """The cluster heartbeat's care of this process's rooms: retry failed disconnects, then
        end the graces that ran out."""
        await self.retry_disconnects()
        await self.expire_graces()

    async def retry_disconnects(self) -> None:
        for sid, visit_id in list(self.pending_disconnects.items()):
            await self.drop_connection(visit_id, sid)

    async def expire_graces(self) -> None:
        now = self.clock()
        for visit_id, ends in list(self.grace_ends.items()):
            if ends > now:
                continue
            try:
                await self.apply(visit_id, rooms.expire)  # another process may have done it
            except NotFound:
                self.grace_ends.pop(visit_id, None)
            except Exception:
                reraise_if_cancelled()
                log.exception("grace expiry failed; will retry", extra={"visit_id": visit_id})

    async def drop_node(self, visit_id: int, instance: str) -> None:
        """Another server process died: its connections in this room dropped."""
        await self.apply(visit_id, lambda s, now: rooms.disconnect_node(s, instance, now))

    async def close_all(self) -> None:
        """Close every socket of this process (their clients reconnect, to any process)."""
        for sid in list(self.sockets):
            await self.disconnect(sid)
            reraise_if_cancelled()

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event in ("connect", "disconnect"):
            return await super().trigger_event(event, *args)
        started = time.perf_counter()
        ack = await self._handle_event(event, *args)
        self.observe_event(event, ack, time.perf_counter() - started)
        return ack

    async def _handle_event(self, event: str, *args: Any) -> dict[str, Any]:
        sid = args[0]
        data = args[1] if len(args) > 1 else None
        state = self.sockets.get(sid)
        if state is None:
            return ev.refused("not_connected", "Reconnect and try again.")
        if not state.guard.admit(time.monotonic()):
            if state.guard.exhausted:
                log.warning(
                    "flooding socket disconnected",
                    extra={"participant": state.identity.participant_id},
                )
                await self.disconnect(sid)
            return ev.refused("rate_limited", "Too many messages; slow down.")
        spec = self.events.get(event)
        if spec is None:
            return ev.refused("unknown_event", f"Unknown event {event[:40]!r}.")
        try:
            payload = spec.model.model_validate({} if data is None else data)
        except ValidationError as exc:
            first = exc.errors(include_input=False, include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "message"
            return ev.refused("invalid_event", f"{where}: {first['msg']}")
        acting = acting_identity.set(state.identity)
        try:
            return await spec.handler(self, sid, state, payload)
        except LiaisonError as exc:
            return {"ok": False, "error": exc.to_dict()}
        except Exception:
            log.exception("event handler failed", extra={"event": event})
            return ev.refused("internal_error", "Something went wrong on our side.")
        finally:
            acting_identity.reset(acting)

    # --- room plumbing -------------------------------------------------------------------------

    async def apply(
        self, visit_id: int, transition: Callable[[rooms.RoomState, datetime], rooms.Transition]
    ) -> rooms.Transition:
        # The store may run the transition again on a fresher state; the last run is the one
        # it saved (or found changed nothing), and only that one's changes are audited.
        last: list[tuple[rooms.RoomState, rooms.RoomState]] = []

        def observed(state: rooms.RoomState, now: datetime) -> rooms.Transition:
            result = transition(state, now)
            last[:] = [(state, result.state)]
            return result

        result = await self.store.apply(visit_id, observed)
        graces = [away.until for away in rooms.away_peers(result.state)]
        if graces:
            self.grace_ends[visit_id] = min(graces)
        else:
            self.grace_ends.pop(visit_id, None)
        await self.emit_effects(visit_id, result.effects)
        await _run_hooks(self.room_hooks, visit_id, result.state)
        if last and (changes := audited_changes(*last[0])):
            # After the effects: the change is saved and its people must hear of it even if
            # the trail then fails (the handler's ack says so).
            await self.room_audit.record(visit_id, audit_actor(acting_identity.get()), changes)
        return result

    async def emit_effects(self, visit_id: int, effects: list[rooms.Effect]) -> None:
        for effect in effects:
            match effect:
                case rooms.Joined(conn_id=conn, you=you, peers=peers, away=away):
                    await self.emit(
                        ev.ROOM_JOINED,
                        self.joined_payload(visit_id, conn, you, peers, away),
                        to=conn,
                    )
                case rooms.Waiting(conn_id=conn, since=since, returned=returned):
                    await self.emit(
                        ev.ROOM_WAITING,
                        {"visit_id": visit_id, "since": since.isoformat(), "returned": returned},
                        to=conn,
                    )
                case rooms.PeerJoined(to=to, peer=peer):
                    await self.emit(
                        ev.PEER_JOINED, {"visit_id": visit_id, "peer": peer_dict(peer)}, to=list(to)
                    )
                case rooms.PeerLeft(to=to, participant_id=pid, conn_id=conn, reason=reason):
                    await self.emit(
                        ev.PEER_LEFT,
                        {
                            "visit_id": visit_id,
                            "participant_id": pid,
                            "conn_id": conn,
                            "reason": reason.value,
                        },
                        to=list(to),
                    )
                case rooms.LobbyUpdate(to=to, waiting=waiting):
                    await self.emit(
                        ev.LOBBY_UPDATE,
                        {"visit_id": visit_id, "waiting": [lobby_dict(w) for w in waiting]},
                        to=list(to),
                    )
                case rooms.Replaced(conn_id=conn):
                    await self.emit(ev.ROOM_REPLACED, {"visit_id": visit_id}, to=conn)
                    self._forget_room(conn)
                case rooms.Removed(conn_id=conn, reason=reason):
                    await self.emit(
                        ev.ROOM_REMOVED, {"visit_id": visit_id, "reason": reason}, to=conn
                    )
                    self._forget_room(conn)
                case rooms.VisitEnded(to=to, status=status):
                    await self.emit(
                        ev.VISIT_ENDED, {"visit_id": visit_id, "status": status.value}, to=list(to)
                    )
                    for conn in to:
                        self._forget_room(conn)

    def _forget_room(self, conn: str) -> None:
        # Only a socket of this process can be forgotten here; others learn it from their event.
        state = self.sockets.get(conn)
        if state is not None:
            state.visit_id = None

    def joined_payload(
        self,
        visit_id: int,
        conn: str,
        you: rooms.Peer,
        peers: tuple[rooms.Peer, ...],
        away: tuple[rooms.AwayPeer, ...] = (),
    ) -> dict[str, Any]:
        now = self.clock()
        servers = ice_servers(self.settings.ice, you.participant_id.replace(":", "-"), now)
        return {
            "visit_id": visit_id,
            "you": peer_dict(you),
            "peers": [peer_dict(p) for p in peers],
            "away": [away_dict(a, now) for a in away],
            "ice_servers": [s.model_dump(exclude_none=True) for s in servers],
        }

    async def room_of(self, state: SocketState) -> tuple[int, rooms.RoomState]:
        if state.visit_id is None:
            raise NotFound("Join a visit first.", code="not_in_room")
        return state.visit_id, await self.store.load(state.visit_id)


async def _run_hooks(hooks: list[Callable[..., Awaitable[None]]], *args: Any) -> None:
    for hook in hooks:
        try:
            await hook(*args)
        except Exception:
            log.exception("signaling hook failed", extra={"hook": getattr(hook, "__name__", "?")})


def audited_changes(before: rooms.RoomState, after: rooms.RoomState) -> list[RoomChange]:
    """What a saved room change did that the audit trail records: who was admitted, and
    whether the visit ended as completed (a cancellation or a no-show is audited where it is
    decided: over HTTP, or by the curbside consult)."""
    admitted_at = {p.participant_id: p.admitted_at for p in before.participants}
    changes: list[RoomChange] = [
        Admitted(p.participant_id)
        for p in after.participants
        if p.admitted_at is not None and p.admitted_at != admitted_at.get(p.participant_id)
    ]
    if before.status is not rooms.VisitStatus.COMPLETED and (
        after.status is rooms.VisitStatus.COMPLETED
    ):
        changes.append(Ended())
    return changes


def audit_actor(identity: Identity | None) -> Actor:
    """The trail's actor for a socket's identity; none: the server itself (a timer)."""
    if identity is None:
        return Actor.system()
    if identity.user_id is not None:
        return Actor.user(identity.user_id, identity.role)
    if identity.link_id is not None:
        return Actor.link(identity.link_id, identity.role)
    return Actor.anonymous()


def refuse_connection(error: LiaisonError) -> Exception:
    """The client's `connect_error` gets ``{message, data: {code}}``."""
    refusal: Exception = socketio.exceptions.ConnectionRefusedError(
        error.message, {"code": error.code}
    )
    return refusal


def user_room(user_id: int) -> str:
    return f"user:{user_id}"


def peer_dict(peer: rooms.Peer) -> dict[str, Any]:
    return {
        "participant_id": peer.participant_id,
        "kind": peer.kind.value,
        "display_name": peer.display_name,
        "conn_id": peer.conn_id,
    }


def away_dict(peer: rooms.AwayPeer, now: datetime) -> dict[str, Any]:
    # The time left, not only the deadline: the browser's clock need not agree with ours.
    left = max(peer.until - now, timedelta(0))
    return {
        "participant_id": peer.participant_id,
        "kind": peer.kind.value,
        "display_name": peer.display_name,
        "until": peer.until.isoformat(),
        "grace_left_ms": int(left.total_seconds() * 1000),
    }


def lobby_dict(entry: rooms.LobbyEntry) -> dict[str, Any]:
    return {
        "participant_id": entry.participant_id,
        "kind": entry.kind.value,
        "display_name": entry.display_name,
        "since": entry.since.isoformat(),
    }


# --- event handlers ----------------------------------------------------------------------------


async def join_room(
    ns: RtcNamespace, sid: str, state: SocketState, msg: ev.JoinRoom
) -> dict[str, Any]:
    identity = state.identity
    if state.visit_id is not None and state.visit_id != msg.visit_id:
        raise Forbidden("Leave your current visit first.", code="already_in_room")
    roster = await ns.roster(msg.visit_id)
    authorise_join(identity, msg.visit_id, roster)
    ensure_invited = with_invite(identity, roster)
    # The socket's room is known before the join's effects go out: a client that hears it
    # joined offers at once, and its rtc:signal may arrive while this handler still runs.
    previous, state.visit_id = state.visit_id, msg.visit_id
    try:
        result = await ns.apply(
            msg.visit_id,
            lambda s, now: rooms.join(
                ensure_invited(s, now), sid, identity.participant_id, now, node_id=ns.node_id
            ),
        )
    except BaseException:
        state.visit_id = previous
        raise
    me = result.state.by_conn(sid)
    presence = me.presence.value if me is not None else "absent"
    return ev.ok(visit_id=msg.visit_id, presence=presence)


async def leave_room(
    ns: RtcNamespace, sid: str, state: SocketState, msg: ev.Empty
) -> dict[str, Any]:
    visit_id, _ = await ns.room_of(state)
    await ns.apply(visit_id, lambda s, now: rooms.leave(s, sid, now))
    state.visit_id = None
    return ev.ok()


async def admit(
    ns: RtcNamespace, sid: str, state: SocketState, msg: ev.LobbyTarget
) -> dict[str, Any]:
    visit_id, _ = await ns.room_of(state)
    by = state.identity.participant_id
    await ns.apply(visit_id, lambda s, now: rooms.admit(s, by, msg.participant_id, now))
    return ev.ok()


async def deny(ns: RtcNamespace, sid: str, state: SocketState, msg: ev.LobbyDeny) -> dict[str, Any]:
    visit_id, _ = await ns.room_of(state)
    by, reason = state.identity.participant_id, rooms.DenyReason(msg.reason)
    await ns.apply(visit_id, lambda s, now: rooms.deny(s, by, msg.participant_id, reason, now))
    return ev.ok()


async def return_to_lobby(
    ns: RtcNamespace, sid: str, state: SocketState, msg: ev.LobbyTarget
) -> dict[str, Any]:
    visit_id, _ = await ns.room_of(state)
    by = state.identity.participant_id
    await ns.apply(visit_id, lambda s, now: rooms.return_to_lobby(s, by, msg.participant_id, now))
    return ev.ok()


async def end_visit(
    ns: RtcNamespace, sid: str, state: SocketState, msg: ev.Empty
) -> dict[str, Any]:
    visit_id, _ = await ns.room_of(state)
    by = state.identity.participant_id
    await ns.apply(visit_id, lambda s, now: rooms.end(s, by, now))
    return ev.ok()


async def relay_signal(
    ns: RtcNamespace, sid: str, state: SocketState, msg: ev.Signal
) -> dict[str, Any]:
    visit_id, room = await ns.room_of(state)
    # Relayed only between two connections that are both in this room's call right now.
    if not rooms.can_signal(room, sid, msg.to):
        raise Forbidden("That participant is not in your call.", code="not_in_call")
    payload: dict[str, Any] = {"from": sid, "visit_id": visit_id}
    if msg.description is not None:
        payload["description"] = msg.description.model_dump()
    if msg.candidate is not None:
        payload["candidate"] = msg.candidate.model_dump()
    # A connection of this process gets it from here whether or not it is also published (a
    # sid lives on one process), so in a cluster it skips Redis and every node's decoding.
    local = ns.server.manager.is_connected(msg.to, NAMESPACE)
    await ns.emit(ev.RTC_SIGNAL, payload, to=msg.to, ignore_queue=local)
    return ev.ok()


async def chat(
    ns: RtcNamespace, sid: str, state: SocketState, msg: ev.ChatMessage
) -> dict[str, Any]:
    visit_id, room = await ns.room_of(state)
    members = rooms.in_call_connections(room)
    if sid not in members:
        raise Forbidden("Chat is open once you are in the call.", code="not_in_call")
    message = {
        "visit_id": visit_id,
        "from": state.identity.participant_id,
        "name": state.identity.display_name,
        "text": msg.text,
        "at": ns.clock().isoformat(),
    }
    await ns.emit(ev.CHAT_MESSAGE, message, to=[c for c in members if c != sid])
    return ev.ok(at=message["at"])


EVENTS: dict[str, EventSpec] = {
    ev.ROOM_JOIN: EventSpec(ev.JoinRoom, join_room),
    ev.ROOM_LEAVE: EventSpec(ev.Empty, leave_room),
    ev.LOBBY_ADMIT: EventSpec(ev.LobbyTarget, admit),
    ev.LOBBY_DENY: EventSpec(ev.LobbyDeny, deny),
    ev.LOBBY_RETURN: EventSpec(ev.LobbyTarget, return_to_lobby),
    ev.VISIT_END: EventSpec(ev.Empty, end_visit),
    ev.RTC_SIGNAL: EventSpec(ev.Signal, relay_signal),
    ev.CHAT_MESSAGE: EventSpec(ev.ChatMessage, chat),
}


def reraise_if_cancelled() -> None:
    # python-socketio swallows a cancellation that arrives while a disconnect handler runs
    # (and a driver may turn one mid-query into its own error): a task told to stop must
    # still stop, or shutting down waits for it forever.
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
