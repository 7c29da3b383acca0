"""/metrics on the real server: scraped before and after real traffic (HTTP requests, sockets
joining a visit room, a relayed signal, a curbside accept) and parsed with prometheus_client's
own parser; and who may scrape at all."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import socketio
from prometheus_client.parser import text_string_to_metric_families

from server.clock import FakeClock
from server.forwarded import parse_networks
from server.metrics import Metrics
from signaling import events as ev
from tests.conftest import AppFactory, SignIn, error_code
from tests.integration.curbside_support import Curbside, session_cookie
from tests.integration.visit_support import (
    Client,
    Clinic,
    Holders,
    ok_json,
    ready_patient,
    set_up_clinic,
)

pytestmark = pytest.mark.timeout(90)

Labels = tuple[tuple[str, str], ...]


class Scrape:
    """One parsed scrape: sample values by name and labels."""

    def __init__(self, text: str) -> None:
        self.samples: dict[tuple[str, Labels], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value

    def __call__(self, name: str, **labels: str) -> float:
        return self.samples.get((name, tuple(sorted(labels.items()))), 0.0)

    def label_values(self, name: str, label: str) -> set[str]:
        return {
            dict(lbls)[label] for (n, lbls) in self.samples if n == name and label in dict(lbls)
        }


async def scrape(client: Client) -> Scrape:
    response = await client.get("/metrics")
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return Scrape(await response.text())


class Sockets:
    """Plain socket.io clients on /rtc (no media), closed at the end."""

    def __init__(self, client: Client) -> None:
        self.base = str(client.make_url("")).rstrip("/")
        self.open: list[socketio.AsyncClient] = []

    async def connect(self, cookies: dict[str, str]) -> socketio.AsyncClient:
        sio = socketio.AsyncClient(reconnection=False)
        self.open.append(sio)
        await sio.connect(
            self.base,
            headers={
                "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
                "Origin": self.base,
            },
            namespaces=[ev.NAMESPACE],
            transports=["websocket"],
            socketio_path="/socket.io",
            wait_timeout=10,
        )
        return sio

    async def close(self) -> None:
        for sio in self.open:
            await sio.disconnect()


async def call(sio: socketio.AsyncClient, event: str, data: dict[str, Any]) -> dict[str, Any]:
    ack: dict[str, Any] = await sio.call(event, data, namespace=ev.NAMESPACE, timeout=10)
    return ack


@pytest.fixture
async def clinic(app_client: Client, clock: FakeClock, sign_in: SignIn) -> Clinic:
    return await set_up_clinic(app_client, clock, sign_in)


@pytest.fixture
async def sockets(app_client: Client) -> AsyncIterator[Sockets]:
    opened = Sockets(app_client)
    try:
        yield opened
    finally:
        await opened.close()


async def test_http_requests_are_timed_by_route_template_and_errors_counted_by_code(
    clinic: Clinic,
) -> None:
    before = await scrape(clinic.client)
    route = "/api/v1/patients/{patient_id}"
    path = f"/api/v1/patients/{clinic.patient_id}"
    await ok_json(await clinic.psychiatrist.get(path))
    refused = await clinic.care_manager.get(path)  # not on Jordan's care team
    code = await error_code(refused, 403)
    assert await error_code(await clinic.psychiatrist.get("/api/v1/no-such-thing"), 404) == (
        "not_found"
    )

    after = await scrape(clinic.client)
    count = "liaison_http_request_duration_seconds_count"
    assert after(count, route=route, method="GET", status_class="2xx") == (
        before(count, route=route, method="GET", status_class="2xx") + 1
    )
    assert after(count, route=route, method="GET", status_class="4xx") == (
        before(count, route=route, method="GET", status_class="4xx") + 1
    )
    assert after(count, route="unmatched", method="GET", status_class="4xx") >= 1
    assert after("liaison_http_errors_total", code=code) == (
        before("liaison_http_errors_total", code=code) + 1
    )
    assert after("liaison_http_errors_total", code="not_found") >= 1
    # Templates only: no request's own path (with its ids) becomes a label.
    routes = after.label_values(count, "route")
    assert path not in routes and "/api/v1/no-such-thing" not in routes
    assert all(r == "unmatched" or r.startswith("/") for r in routes)


async def test_sockets_rooms_waiting_patients_and_relayed_signals_are_counted(
    clinic: Clinic, sockets: Sockets
) -> None:
    visit = await clinic.schedule(start_in=timedelta(minutes=5))
    visit_id = visit["visit"]["id"]
    before = await scrape(clinic.client)
    assert before("liaison_socket_connections") == 0
    assert before("liaison_cluster_rooms_occupied") == 0
    assert before("liaison_cluster_waiting_participants", kind="patient") == 0

    async with Holders(clinic.client) as holders:
        holder = await ready_patient(clinic, holders, visit["patient_link"]["url"])
        patient = await sockets.connect({"liaison_visit": holder.session_token})
        waiting = await call(patient, ev.ROOM_JOIN, {"visit_id": visit_id})
        assert waiting["ok"] and waiting["presence"] == "waiting"
        clinician = await sockets.connect(session_cookie(clinic.psychiatrist))
        assert (await call(clinician, ev.ROOM_JOIN, {"visit_id": visit_id}))["ok"]

        in_lobby = await scrape(clinic.client)
        assert in_lobby("liaison_socket_connections") == 2
        assert in_lobby("liaison_cluster_rooms_occupied") == 1
        assert in_lobby("liaison_cluster_waiting_participants", kind="patient") == 1
        assert in_lobby("liaison_cluster_waiting_participants", kind="guest") == 0
        joins = in_lobby("liaison_socket_events_total", event=ev.ROOM_JOIN, outcome="ok")
        assert joins == before("liaison_socket_events_total", event=ev.ROOM_JOIN, outcome="ok") + 2

        patient_id = f"link:{visit['patient_link']['link']['id']}"
        admitted = await call(clinician, ev.LOBBY_ADMIT, {"participant_id": patient_id})
        assert admitted["ok"], admitted
        offer = {
            "to": clinician.get_sid(ev.NAMESPACE),
            "description": {"type": "offer", "sdp": "v=0"},
        }
        assert (await call(patient, ev.RTC_SIGNAL, offer))["ok"]
        stray = await call(patient, ev.RTC_SIGNAL, offer | {"to": "no-such-socket"})
        assert stray["error"]["code"] == "not_in_call"
        unknown = await call(patient, "rtc:nonsense-1234", {})
        assert unknown["error"]["code"] == "unknown_event"

        after = await scrape(clinic.client)

    assert after("liaison_cluster_waiting_participants", kind="patient") == 0
    assert after("liaison_cluster_rooms_occupied") == 1
    relays = "liaison_signal_relay_seconds_count"
    assert after(relays) == before(relays) + 1  # the refused one relayed nothing
    assert after("liaison_signal_relay_seconds_sum") > 0
    events = "liaison_socket_events_total"
    assert after(events, event=ev.RTC_SIGNAL, outcome="ok") == 1
    assert after(events, event=ev.RTC_SIGNAL, outcome="not_in_call") == 1
    # A name the client made up is not a label of its own.
    assert after(events, event="other", outcome="unknown_event") == 1
    assert "rtc:nonsense-1234" not in after.label_values(events, "event")
    # socket.io's own requests (a WebSocket lasting the whole visit, a long poll) are not
    # HTTP latencies: the socket metrics describe them.
    handshake = await clinic.client.get("/socket.io/?EIO=4&transport=polling")
    assert handshake.status == 200
    # Close that engine.io session (a "1" close packet), or the app's shutdown waits for it.
    sid = json.loads((await handshake.text())[1:])["sid"]
    closed = await clinic.client.post(f"/socket.io/?EIO=4&transport=polling&sid={sid}", data="1")
    assert closed.status == 200
    routes = (await scrape(clinic.client)).label_values(
        "liaison_http_request_duration_seconds_count", "route"
    )
    assert "/socket.io/" not in routes and "/api/v1/join/verify" in routes


async def test_curbside_time_to_answer_is_the_wait_from_request_to_accept(
    clinic: Clinic, sign_in: SignIn
) -> None:
    cb = Curbside(clinic, sign_in)
    try:
        on_call = await cb.dashboard(await cb.psychiatrist("dr.ahmed"))
        rid = (await cb.ask(urgency="urgent"))["id"]
        await on_call.ring(rid)
        before = await scrape(clinic.client)
        clinic.clock.advance(42)
        assert (await on_call.send(ev.CURBSIDE_ACCEPT, rid))["ok"]
        after = await scrape(clinic.client)
    finally:
        await cb.close()
    name = "liaison_curbside_time_to_answer_seconds"
    assert after(f"{name}_count", urgency="urgent") == before(f"{name}_count", urgency="urgent") + 1
    assert after(f"{name}_sum", urgency="urgent") == before(f"{name}_sum", urgency="urgent") + 42
    assert after(f"{name}_bucket", urgency="urgent", le="30.0") == before(
        f"{name}_bucket", urgency="urgent", le="30.0"
    )
    assert (
        after(f"{name}_bucket", urgency="urgent", le="45.0")
        == before(f"{name}_bucket", urgency="urgent", le="45.0") + 1
    )


async def test_an_address_outside_the_allowed_networks_gets_not_found(
    make_app: AppFactory,
) -> None:
    client = await make_app(LIAISON_METRICS__ALLOWED_NETWORKS='["10.0.0.0/8", "fd00::/8"]')
    refused = await client.get("/metrics")
    unknown = await client.get("/no-such-page")
    assert refused.status == unknown.status == 404
    assert "liaison_" not in await refused.text()
    assert "/metrics" not in (await (await client.get("/api/openapi.json")).json())["paths"]


async def test_metrics_can_be_turned_off(make_app: AppFactory) -> None:
    client = await make_app(LIAISON_METRICS__ENABLED="false")
    assert (await client.get("/metrics")).status == 404
    assert (await client.get("/healthz")).status == 200


def test_the_address_check_follows_the_networks() -> None:
    metrics = Metrics(parse_networks(["127.0.0.0/8", "10.20.0.0/16", "fd00::/8"]))
    assert metrics.allows("127.0.0.1")
    assert metrics.allows("10.20.3.4")
    assert metrics.allows("::ffff:10.20.3.4")  # IPv4 on a dual-stack listener
    assert metrics.allows("fd00::17")
    assert not metrics.allows("10.21.0.1")
    assert not metrics.allows("::1")
    assert not metrics.allows("192.0.2.1")
    assert not metrics.allows(None)
    assert not metrics.allows("not an address")
