"""Prometheus metrics at ``/metrics``, in the text exposition format.

Every app owns its :class:`Metrics` and the ``CollectorRegistry`` inside it, never
prometheus_client's global registry: a registry describes one server, and tests build many
apps in one process. What is exposed::

    liaison_http_request_duration_seconds{route,method,status_class}  histogram  this process
    liaison_http_errors_total{code}                                   counter    this process
    liaison_socket_connections                                        gauge      this process
    liaison_socket_events_total{event,outcome}                        counter    this process
    liaison_signal_relay_seconds                                      histogram  this process
    liaison_curbside_time_to_answer_seconds{urgency}                  histogram  this process
    liaison_cluster_rooms_occupied                                    gauge      the database
    liaison_cluster_waiting_participants{kind}                        gauge      the database

Per-process series add up across processes (``sum``). The ``cluster_`` gauges are counted in
the shared database when scraped, so every process reports the same value (``max``).

Labels stay bounded and free of PHI: a route is its template (``/api/v1/patients/{patient_id}``),
never the raw path; a method or socket event the server does not know is ``other``; codes and
outcomes are the fixed ``{error: {code}}`` codes written in the source.

Only addresses in ``metrics.allowed_networks`` may scrape; anyone else gets the 404 of an
unknown path. Both the connection's address and the client's (server/forwarded.py, which differ
only behind a trusted proxy) must be allowed: a forwarded header can take access away (from a
client outside that reaches /metrics through an allowed proxy) but never grant it. The proxy
should still keep /metrics to itself (config/nginx.example.conf).
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections import Counter as Tally
from collections.abc import AsyncIterator, Container, Iterable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import Visit
from server.forwarded import Network, client_address, in_networks, parse_address, parse_networks
from server.http import Handler
from server.state import SERVICES, SETTINGS
from server.visits.status import OPEN_VALUES
from signaling import curbside as cs
from signaling import events as ev
from signaling import rooms
from signaling.setup import RTC

log = logging.getLogger("liaison.metrics")

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# A WebSocket request lasts as long as its socket: the socket metrics describe it instead.
UNTIMED_ROUTES = frozenset({"/socket.io/"})
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
# Who counts as in a room (a closed room, OPEN_VALUES aside, has disconnected everyone).
_PRESENT = (rooms.Presence.WAITING, rooms.Presence.IN_CALL)
_WAITING_KINDS = (rooms.Kind.PATIENT, rooms.Kind.GUEST)

# A relay is a database read at most and one emit: well under a millisecond to tens of ms.
RELAY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# From the PCP's request to a psychiatrist's accept: seconds to the ring timeout and beyond.
ANSWER_BUCKETS = (5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 1800.0)


class Metrics:
    def __init__(self, allowed_networks: Iterable[Network]) -> None:
        self.allowed_networks = tuple(allowed_networks)
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_latency = Histogram(
            "liaison_http_request_duration_seconds",
            "HTTP requests served by this process, by route template, method and status class.",
            ["route", "method", "status_class"],
            registry=r,
        )
        self.http_errors = Counter(
            "liaison_http_errors",
            "HTTP error responses of this process, by their {error: {code}}.",
            ["code"],
            registry=r,
        )
        self.sockets = Gauge(
            "liaison_socket_connections", "Signaling sockets connected to this process.", registry=r
        )
        self.socket_events = Counter(
            "liaison_socket_events",
            "Signaling events handled by this process, by event and outcome (ok or error code).",
            ["event", "outcome"],
            registry=r,
        )
        self.signal_relay = Histogram(
            "liaison_signal_relay_seconds",
            "rtc:signal relays by this process, from receipt to the emit done.",
            buckets=RELAY_BUCKETS,
            registry=r,
        )
        self.curbside_answer = Histogram(
            "liaison_curbside_time_to_answer_seconds",
            "Curbside calls accepted through this process: seconds from request to accept.",
            ["urgency"],
            buckets=ANSWER_BUCKETS,
            registry=r,
        )
        self.rooms_occupied = Gauge(
            "liaison_cluster_rooms_occupied",
            "Visit rooms with someone waiting or in the call, cluster-wide (from the database: "
            "every process reports the same value).",
            registry=r,
        )
        self.waiting = Gauge(
            "liaison_cluster_waiting_participants",
            "People in visit waiting rooms, by kind, cluster-wide (from the database: every "
            "process reports the same value).",
            ["kind"],
            registry=r,
        )
        # The event names the namespace handles; any other name is counted as "other".
        self.known_events: Container[str] = frozenset()

    def allows(self, address: str | None) -> bool:
        """Whether a client address may scrape."""
        ip = parse_address(address) if address else None
        return ip is not None and in_networks(ip, self.allowed_networks)

    def observe_http(
        self, request: web.Request, response: web.StreamResponse, seconds: float
    ) -> None:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        if route in UNTIMED_ROUTES:
            return
        method = request.method if request.method in METHODS else "other"
        status_class = f"{response.status // 100}xx"
        self.http_latency.labels(route, method, status_class).observe(seconds)
        code = _error_code(response)
        if code is not None:
            self.http_errors.labels(code).inc()

    def observe_event(self, event: str, ack: dict[str, Any], seconds: float) -> None:
        """The namespace's event observer (signaling/namespace.py)."""
        name = event if event in self.known_events else "other"
        if ack.get("ok"):
            outcome = "ok"
        else:
            error = ack.get("error")
            outcome = _bounded(error.get("code") if isinstance(error, dict) else None)
        self.socket_events.labels(name, outcome).inc()
        if event == ev.RTC_SIGNAL and outcome == "ok":
            self.signal_relay.observe(seconds)

    def observe_accept(self, state: cs.CurbsideState) -> None:
        """The curbside service's accepted hook (server/curbside/service.py)."""
        if state.accepted_at is None:
            return
        waited = (state.accepted_at - state.request.created_at).total_seconds()
        self.curbside_answer.labels(state.request.urgency.value).observe(max(waited, 0.0))

    async def refresh_cluster(self, db: async_sessionmaker[AsyncSession]) -> None:
        """Count the rooms in the database; NaN (unknown) if it does not answer."""
        try:
            occupied, waiting = await count_rooms(db)
        except (SQLAlchemyError, OSError):
            log.exception("metrics: could not count rooms")
            self.rooms_occupied.set(math.nan)
            for kind in _WAITING_KINDS:
                self.waiting.labels(kind.value).set(math.nan)
            return
        self.rooms_occupied.set(occupied)
        for kind in _WAITING_KINDS:
            self.waiting.labels(kind.value).set(waiting[kind])

    def render(self) -> bytes:
        return generate_latest(self.registry)


METRICS = web.AppKey("metrics", Metrics)


async def count_rooms(db: async_sessionmaker[AsyncSession]) -> tuple[int, Tally[rooms.Kind]]:
    """Rooms with anyone connected, and the waiting room's people by kind.

    One query over the rooms of open visits (those ever joined have a stored state); the
    presences live in the room's JSON, so they are counted here rather than in SQL.
    """
    async with db() as session:
        stored = (
            await session.scalars(
                select(Visit.room_state).where(
                    Visit.status.in_(OPEN_VALUES), Visit.room_state.is_not(None)
                )
            )
        ).all()
    occupied = 0
    waiting: Tally[rooms.Kind] = Tally()
    for raw in filter(None, stored):
        state = rooms.RoomState.from_dict(json.loads(raw))
        if any(p.presence in _PRESENT for p in state.participants):
            occupied += 1
        waiting.update(entry.kind for entry in rooms.lobby(state))
    return occupied, waiting


def attach_metrics(app: web.Application) -> None:
    """Serve /metrics and hook the signaling namespace and the curbside service.

    Call after ``attach_signaling``: the hooks need the namespace its startup creates.
    """
    settings = app[SETTINGS].metrics
    if not settings.enabled:
        return
    metrics = Metrics(parse_networks(settings.allowed_networks))
    app[METRICS] = metrics
    app.router.add_get("/metrics", scrape)

    async def hooks_ctx(app: web.Application) -> AsyncIterator[None]:
        namespace = app[RTC]
        curbside = app[SERVICES].curbside
        metrics.known_events = namespace.events  # a live view: features add theirs later
        namespace.observe_event = metrics.observe_event
        metrics.sockets.set_function(lambda: len(namespace.sockets))
        curbside.accepted_hooks.append(metrics.observe_accept)
        yield
        curbside.accepted_hooks.remove(metrics.observe_accept)

    app.cleanup_ctx.append(hooks_ctx)


async def scrape(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    if not (metrics.allows(request.remote) and metrics.allows(client_address(request))):
        raise web.HTTPNotFound()
    await metrics.refresh_cluster(request.app[SERVICES].db)
    return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})


@web.middleware
async def http_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Time every request; the outermost middleware, so errors arrive as the client sees them."""
    metrics = request.app.get(METRICS)
    if metrics is None:
        return await handler(request)
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        # Not turned into JSON (pages, redirects): raised on to aiohttp.
        metrics.observe_http(request, exc, time.perf_counter() - started)
        raise
    metrics.observe_http(request, response, time.perf_counter() - started)
    return response


def _error_code(response: web.StreamResponse) -> str | None:
    """The ``{error: {code}}`` of a JSON error response, as server/http.py wrote it."""
    if response.status < 400 or not isinstance(response, web.Response):
        return None
    if response.content_type != "application/json" or not isinstance(response.body, bytes):
        return None
    try:
        error = json.loads(response.body).get("error")
    except (ValueError, AttributeError):
        return None
    return _bounded(error.get("code") if isinstance(error, dict) else None)


def _bounded(code: Any) -> str:
    return code if isinstance(code, str) and _CODE.match(code) else "other"
