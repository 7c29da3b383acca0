"""Wiring the signaling server into the aiohttp app (one AsyncServer per app, never global)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import socketio
from aiohttp import web
from sqlalchemy.engine import make_url

from server.errors import Forbidden, Unauthenticated
from server.state import SERVICES
from server.visits.events import VisitEvents
from server.visits.participants import ParticipantKind
from server.visits.room_audit import RoomAudit
from server.visits.status import VisitStatus
from signaling import rooms
from signaling.cluster import Member, NodeHooks, NodeRegistry, RedisQueue, node_name
from signaling.curbside_events import CURBSIDE_SCHEDULER, attach_curbside
from signaling.draining import attach_draining
from signaling.identity import Identity, cookies_from_environ
from signaling.namespace import RtcNamespace, user_room
from signaling.room_store import RoomStore
from signaling.session_sweeper import session_sweeper
from signaling.session_watch import SessionWatch

SOCKETIO = web.AppKey("socketio", socketio.AsyncServer)
RTC = web.AppKey("rtc_namespace", RtcNamespace)
CLUSTER = web.AppKey("cluster_member", Member)


def attach_signaling(app: web.Application) -> None:
    from server.state import SETTINGS

    settings = app[SETTINGS]
    redis_url = settings.cluster.redis_url.get_secret_value()
    # Several processes: emits to a room or a user go through Redis to every process, so a
    # socket on another node hears them. One process keeps them in memory.
    manager: socketio.AsyncManager = (
        RedisQueue(redis_url, redis_channel(settings.database.url))
        if redis_url
        else socketio.AsyncManager()
    )
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=manager,
        cors_allowed_origins=sorted(settings.server.origins),
        max_http_buffer_size=settings.signaling.max_message_bytes,
        # Each socket's events are handled one after another, in the order sent: an ICE
        # candidate must never overtake the description it belongs to. Sockets still run
        # concurrently with each other.
        async_handlers=False,
        logger=False,
        engineio_logger=False,
    )
    sio.attach(app, socketio_path="/socket.io")
    app[SOCKETIO] = sio
    attach_draining(app, sio)  # on shutdown, its sockets are sent to other processes

    async def signaling_ctx(app: web.Application) -> AsyncIterator[None]:
        svc = app[SERVICES]

        async def identify(environ: dict[str, Any]) -> Identity:
            cookies = cookies_from_environ(environ)
            session_token = cookies.get(settings.sessions.cookie_name)
            if session_token:
                who = await svc.sessions.resolve(session_token)
                if who.enrolment_pending:
                    raise Unauthenticated(
                        "Set up your second factor first.", code="totp_enrolment_required"
                    )
                return Identity(
                    participant_id=f"user:{who.user_id}",
                    display_name=who.display_name,
                    role=who.role.value,
                    user_id=who.user_id,
                    session_id=who.session_id,
                )
            visit_token = cookies.get(settings.visits.cookie_name)
            if visit_token:
                holder = await svc.visit_join.resolve_visit_session(visit_token)
                if not holder.ready_for_room:
                    raise Forbidden(
                        "Finish the steps before the waiting room.", code="steps_incomplete"
                    )
                return Identity(
                    participant_id=holder.participant_id,
                    display_name=holder.display_name,
                    role=holder.kind.value,
                    link_id=holder.link_id,
                    visit_id=holder.visit_id,
                )
            raise Unauthenticated("Please sign in.", code="not_signed_in")

        # Another process may change a room at any moment, so in a cluster the per-process
        # cache of rooms would answer "who is in the call" from stale state.
        store = RoomStore(
            svc.db,
            settings.signaling,
            svc.clock,
            svc.visits.roster,
            cache_rooms=not redis_url,
        )
        registry = NodeRegistry(
            svc.db,
            svc.clock,
            node_name(settings.cluster),
            timedelta(seconds=settings.cluster.node_timeout_s),
        )
        namespace = RtcNamespace(
            settings,
            identify,
            store,
            svc.visits.roster,
            svc.clock,
            RoomAudit(svc.db, svc.audit),
            node_id=registry.instance,
        )
        sio.register_namespace(namespace)
        app[RTC] = namespace
        presence = svc.curbside.oncall.presence
        presence.node = registry.instance  # its rows name this process, for the sweep

        def renamed(instance: str) -> None:
            namespace.node_id = presence.node = instance

        member = Member(
            registry,
            NodeHooks(
                drop_room=namespace.drop_node,
                presence_lost=svc.curbside.presence_lost,
                fenced=namespace.close_all,
                renamed=renamed,
                upkeep=namespace.upkeep,
            ),
            settings.cluster.heartbeat_s,
        )
        app[CLUSTER] = member
        # Before any socket: rooms and presence left by an earlier life of this node id.
        await member.start()

        async def close_user_sockets(user_id: int) -> None:
            for sid, _ in list(namespace.sockets.items()):
                if namespace.sockets[sid].identity.user_id == user_id:
                    await namespace.disconnect(sid)
            # Sockets on other processes are closed by their own sweeper within a second.
            await sio.emit(
                "session:ended",
                {"reason": "account_disabled"},
                room=user_room(user_id),
                namespace="/rtc",
            )

        svc.users.on_disable.append(close_user_sockets)
        _follow_visit_changes(svc.visit_events, namespace)
        curbside = attach_curbside(namespace, svc.curbside, svc.curbside.oncall.presence, svc.clock)
        app[CURBSIDE_SCHEDULER] = curbside
        tasks = [
            asyncio.create_task(
                session_sweeper(namespace, SessionWatch(svc.db), svc.sessions.touch_many),
                name="session-sweeper",
            ),
            asyncio.create_task(curbside.run(), name="curbside-scheduler"),
            asyncio.create_task(member.run(), name="cluster-heartbeat"),
        ]
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await namespace.close_all()
        await namespace.retry_disconnects()
        if not namespace.pending_disconnects:
            # Every seat was given up; otherwise the row stays, and another node sweeps it.
            await member.stop()
        if isinstance(manager, RedisQueue):
            await manager.close()

    app.cleanup_ctx.append(signaling_ctx)


def _follow_visit_changes(visit_events: VisitEvents, namespace: RtcNamespace) -> None:
    """Changes made over HTTP (a link issued or revoked, a visit cancelled) reach the room."""

    async def link_issued(
        visit_id: int, participant_id: str, kind: ParticipantKind, display_name: str
    ) -> None:
        def invite(state: rooms.RoomState, now: datetime) -> rooms.Transition:
            if state.participant(participant_id) is not None:
                return rooms.Transition(state, [])  # the room was created with it already
            return rooms.invite(state, participant_id, rooms.Kind(kind.value), display_name, now)

        await namespace.apply(visit_id, invite)

    async def link_revoked(visit_id: int, participant_id: str) -> None:
        def revoke(state: rooms.RoomState, now: datetime) -> rooms.Transition:
            if state.participant(participant_id) is None:
                return rooms.Transition(state, [])
            return rooms.revoke(state, participant_id, now)

        await namespace.apply(visit_id, revoke)

    async def visit_closed(visit_id: int, status: VisitStatus) -> None:
        # The store closes the room to match the visit's durable status and says so to all.
        await namespace.apply(visit_id, rooms.expire)

    visit_events.link_issued.append(link_issued)
    visit_events.link_revoked.append(link_revoked)
    visit_events.visit_closed.append(visit_closed)


def redis_channel(database_url: str) -> str:
    """The processes sharing one database are one deployment and share one channel; two
    deployments (or test runs) sharing a Redis never hear each other's messages. Named by the
    database's name, not its host, which nodes may reach by different addresses."""
    database = make_url(database_url).database or ""
    return "liaison-" + hashlib.sha256(database.encode()).hexdigest()[:16]
