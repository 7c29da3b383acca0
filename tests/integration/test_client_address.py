"""The client's address behind a reverse proxy (server/forwarded.py), on the real server: the
test client connects from 127.0.0.1, which plays nginx when ``server.trusted_proxies`` lists it,
and sends the X-Forwarded-For nginx would."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from sqlalchemy import select

from server.audit.events import Action
from server.auth.roles import Role
from server.clock import FakeClock
from server.db.models import AuditEvent
from server.state import SERVICES
from signaling import events as ev
from signaling.probe import ProbeClient
from tests.conftest import PASSWORD, AppFactory, Persona, SignIn
from tests.integration.curbside_support import Curbside, Dashboard, session_cookie
from tests.integration.visit_support import Client, create_patient, ok_json, set_up_clinic

pytestmark = pytest.mark.timeout(120)

LOGIN = "/api/v1/auth/login"
NGINX = '["127.0.0.1/32"]'
ALICE, BOB = "203.0.113.7", "198.51.100.9"


@pytest.fixture
async def app_client(make_app: AppFactory) -> Client:
    """The app behind its proxy; ``sign_in`` personas (no header) are seen at 127.0.0.1."""
    return await make_app(LIAISON_SERVER__TRUSTED_PROXIES=NGINX)


@pytest.fixture
async def browsers() -> AsyncIterator[list[aiohttp.ClientSession]]:
    opened: list[aiohttp.ClientSession] = []
    yield opened
    for http in opened:
        await http.close()


class Browsers:
    """Each browser reaches the app through the proxy, which forwards the browser's address."""

    def __init__(self, client: Client, opened: list[aiohttp.ClientSession]) -> None:
        self.client = client
        self.base = str(client.make_url("")).rstrip("/")
        self.opened = opened

    def at(self, address: str) -> aiohttp.ClientSession:
        http = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), headers={"X-Forwarded-For": address}
        )
        self.opened.append(http)
        return http

    async def login(self, http: aiohttp.ClientSession, username: str, password: str) -> int:
        response = await http.post(
            self.base + LOGIN, json={"username": username, "password": password}
        )
        return response.status

    async def sign_in(self, address: str, role: Role, username: str) -> Persona:
        user = await self.client.app[SERVICES].users.create(username, username, role, PASSWORD)
        http = self.at(address)
        response = await http.post(
            self.base + LOGIN, json={"username": username, "password": PASSWORD}
        )
        body = await ok_json(response)
        return Persona(http, self.base, user.id, username, body["csrf_token"])


async def audit_trail(client: Client) -> list[AuditEvent]:
    """The trail without the accounts the tests create outside any request (no address)."""
    async with client.app[SERVICES].db() as db:
        query = select(AuditEvent).where(AuditEvent.action != Action.USER_CREATE)
        return list((await db.scalars(query.order_by(AuditEvent.seq))).all())


# --- Sign-in throttling --------------------------------------------------------------------------


async def test_clients_behind_one_proxy_are_throttled_each_on_their_own(
    make_app: AppFactory, browsers: list[aiohttp.ClientSession]
) -> None:
    client = await make_app(
        LIAISON_SERVER__TRUSTED_PROXIES=NGINX, LIAISON_SECURITY__LOGIN_FAILURES_PER_ADDRESS="3"
    )
    await client.app[SERVICES].users.create("dr.rivera", "Dr Rivera", Role.PSYCHIATRIST, PASSWORD)
    via = Browsers(client, browsers)
    alice, bob = via.at(ALICE), via.at(BOB)
    for name in ("a1", "a2", "a3"):
        assert await via.login(alice, name, "x" * 12) == 401
    assert await via.login(alice, "dr.rivera", PASSWORD) == 429
    # Bob shares the proxy's address with Alice, not her failures.
    assert await via.login(bob, "dr.rivera", PASSWORD) == 200
    failed = [e for e in await audit_trail(client) if e.action == Action.LOGIN_FAILED]
    assert {e.client_address for e in failed} == {ALICE}


async def test_a_forwarded_address_from_an_untrusted_peer_is_ignored(
    make_app: AppFactory, browsers: list[aiohttp.ClientSession]
) -> None:
    client = await make_app(
        LIAISON_SERVER__TRUSTED_PROXIES='["10.0.0.0/8"]',
        LIAISON_SECURITY__LOGIN_FAILURES_PER_ADDRESS="3",
    )
    await client.app[SERVICES].users.create("dr.rivera", "Dr Rivera", Role.PSYCHIATRIST, PASSWORD)
    via = Browsers(client, browsers)
    # One client that is no proxy, claiming a new address on every attempt.
    for n, name in enumerate(("a1", "a2", "a3")):
        assert await via.login(via.at(f"203.0.113.{n + 1}"), name, "x" * 12) == 401
    assert await via.login(via.at("198.51.100.77"), "dr.rivera", PASSWORD) == 429
    assert {e.client_address for e in await audit_trail(client)} == {"127.0.0.1"}


async def test_addresses_in_one_ipv6_64_share_one_budget(
    make_app: AppFactory, browsers: list[aiohttp.ClientSession]
) -> None:
    client = await make_app(
        LIAISON_SERVER__TRUSTED_PROXIES=NGINX, LIAISON_SECURITY__LOGIN_FAILURES_PER_ADDRESS="3"
    )
    await client.app[SERVICES].users.create("dr.rivera", "Dr Rivera", Role.PSYCHIATRIST, PASSWORD)
    via = Browsers(client, browsers)
    # One client rotating through its /64, a new address and a new account on every attempt.
    rotated = ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:aaaa::3"]
    for address, name in zip(rotated, ("a1", "a2", "a3"), strict=True):
        assert await via.login(via.at(address), name, "x" * 12) == 401
    assert await via.login(via.at("2001:db8:1:2:ffff::9"), "dr.rivera", PASSWORD) == 429
    # The next /64 is another client, with its own budget.
    assert await via.login(via.at("2001:db8:1:3::1"), "dr.rivera", PASSWORD) == 200
    # The trail still tells the addresses apart.
    failed = [e for e in await audit_trail(client) if e.action == Action.LOGIN_FAILED]
    assert [e.client_address for e in failed] == [*rotated, "2001:db8:1:2:ffff::9"]


# --- The audit trail -----------------------------------------------------------------------------


async def test_every_event_of_a_request_records_the_forwarded_client(
    app_client: Client, browsers: list[aiohttp.ClientSession]
) -> None:
    via = Browsers(app_client, browsers)
    rivera = await via.sign_in(ALICE, Role.PSYCHIATRIST, "dr.rivera")
    patient = await create_patient(rivera)  # written in the request's own transaction
    await ok_json(await rivera.get(f"/api/v1/patients/{patient['id']}"))  # through the flusher
    assert (await rivera.post("/api/v1/auth/logout")).status == 204
    trail = [(e.action, e.client_address) for e in await audit_trail(app_client)]
    assert trail == [
        (Action.LOGIN, ALICE),
        (Action.RECORD_WRITE, ALICE),
        (Action.RECORD_READ, ALICE),
        (Action.LOGOUT, ALICE),
    ]


async def test_socket_events_are_audited_at_the_socket_clients_address(
    app_client: Client, clock: FakeClock, sign_in: SignIn
) -> None:
    clinic = await set_up_clinic(app_client, clock, sign_in)
    cb = Curbside(clinic, sign_in)
    try:
        ahmed = await cb.psychiatrist("dr.ahmed")
        probe = ProbeClient(cb.base, session_cookie(ahmed))
        on_call = Dashboard(ahmed, probe)
        cb.dashboards.append(on_call)
        cookie = "; ".join(f"{k}={v}" for k, v in probe.cookies.items())
        await probe.sio.connect(
            cb.base,
            headers={"Cookie": cookie, "Origin": cb.base, "X-Forwarded-For": BOB},
            namespaces=[ev.NAMESPACE],
            transports=["websocket"],
            socketio_path="/socket.io",
            wait_timeout=10,
        )
        assert (await on_call.watch())["ok"]  # the on-call dashboard: rung from now on
        rid = (await cb.ask())["id"]
        await on_call.ring(rid)
        assert (await on_call.send(ev.CURBSIDE_ACCEPT, rid))["ok"]
    finally:
        await cb.close()
    accepted = [e for e in await audit_trail(app_client) if e.action == Action.CURBSIDE_ACCEPT]
    assert [e.client_address for e in accepted] == [BOB]
    asked = [e for e in await audit_trail(app_client) if e.actor == f"user:{clinic.pcp.user_id}"]
    assert asked and {e.client_address for e in asked} == {"127.0.0.1"}


# --- /metrics ------------------------------------------------------------------------------------


async def test_a_forwarded_address_never_opens_metrics(make_app: AppFactory) -> None:
    allowed = '["10.0.9.0/24"]'
    behind_proxy = await make_app(
        LIAISON_SERVER__TRUSTED_PROXIES=NGINX, LIAISON_METRICS__ALLOWED_NETWORKS=allowed
    )
    # The proxy is trusted but not allowed: what it forwards cannot make it so.
    forged = await behind_proxy.get("/metrics", headers={"X-Forwarded-For": "10.0.9.5"})
    assert forged.status == 404
    untrusted = await make_app(LIAISON_METRICS__ALLOWED_NETWORKS=allowed)
    forged = await untrusted.get("/metrics", headers={"X-Forwarded-For": "10.0.9.5"})
    assert forged.status == 404


async def test_a_client_outside_is_refused_metrics_through_an_allowed_proxy(
    app_client: Client,
) -> None:
    # nginx on the same host: its address is in the default allowed networks (127.0.0.0/8).
    assert (await app_client.get("/metrics")).status == 200
    relayed = await app_client.get("/metrics", headers={"X-Forwarded-For": ALICE})
    assert relayed.status == 404
    inside = await app_client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.5"})
    assert inside.status == 200
