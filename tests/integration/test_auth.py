"""Signing in and out, session expiry, CSRF, throttling and the TOTP second factor."""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
import pyotp
import pytest
from aiohttp.test_utils import TestClient

from server.auth.roles import Role
from server.clock import FakeClock
from server.db.models import User
from server.errors import Conflict
from server.state import SERVICES
from tests.conftest import PASSWORD, AppFactory, SignIn, wrong_totp_code

LOGIN = "/api/v1/auth/login"
SESSION = "/api/v1/auth/session"


async def create_user(client: TestClient, username: str, role: Role = Role.PSYCHIATRIST) -> int:  # type: ignore[type-arg]
    user = await client.app[SERVICES].users.create(username, username.title(), role, PASSWORD)
    return user.id


async def test_it_signs_in_and_sets_a_strict_httponly_cookie(app_client: TestClient) -> None:  # type: ignore[type-arg]
    await create_user(app_client, "dr.rivera")
    response = await app_client.post(LOGIN, json={"username": "Dr.Rivera", "password": PASSWORD})
    assert response.status == 200
    body = await response.json()
    assert body["user"]["username"] == "dr.rivera"
    assert body["user"]["role"] == "psychiatrist"
    assert body["idle_timeout_s"] == 900
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    me = await app_client.get(SESSION)
    assert (await me.json())["user"]["username"] == "dr.rivera"


async def test_the_cookie_is_secure_when_served_over_tls(make_app: AppFactory) -> None:
    client = await make_app(LIAISON_SERVER__PUBLIC_URL="https://liaison.example.org")
    await create_user(client, "dr.rivera")
    response = await client.post(LOGIN, json={"username": "dr.rivera", "password": PASSWORD})
    assert "Secure" in response.headers["Set-Cookie"]


@pytest.mark.sqlite_only("scans the database file")
async def test_the_session_token_is_stored_only_as_a_hash(app_client: TestClient) -> None:  # type: ignore[type-arg]
    await create_user(app_client, "dr.rivera")
    response = await app_client.post(LOGIN, json={"username": "dr.rivera", "password": PASSWORD})
    token = response.cookies["liaison_session"].value
    db_file = Path(app_client.app[SERVICES].settings.database.url.split("///", 1)[1])
    files = [db_file, db_file.with_name(db_file.name + "-wal")]
    raw = b"".join(p.read_bytes() for p in files if p.exists())
    assert token.encode() not in raw
    assert b"dr.rivera" in raw  # the scan does see the database's contents


async def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(
    app_client: TestClient,
) -> None:  # type: ignore[type-arg]
    await create_user(app_client, "dr.rivera")
    wrong = await app_client.post(LOGIN, json={"username": "dr.rivera", "password": "nope" * 4})
    unknown = await app_client.post(LOGIN, json={"username": "dr.nobody", "password": "nope" * 4})
    assert wrong.status == unknown.status == 401
    assert (await wrong.json()) == (await unknown.json())
    assert (await wrong.json())["error"]["code"] == "invalid_credentials"


async def test_logout_revokes_the_session(sign_in: SignIn) -> None:
    alice = await sign_in(Role.PSYCHIATRIST)
    response = await alice.post("/api/v1/auth/logout")
    assert response.status == 204
    after = await alice.get(SESSION)
    assert after.status == 401
    assert (await after.json())["error"]["code"] == "not_signed_in"  # the cookie was cleared


async def test_a_revoked_token_stays_revoked_even_if_replayed(
    app_client: TestClient,
    sign_in: SignIn,  # type: ignore[type-arg]
) -> None:
    alice = await sign_in(Role.PSYCHIATRIST)
    token = next(c.value for c in alice.http.cookie_jar if c.key == "liaison_session")
    await alice.post("/api/v1/auth/logout")
    replay = await app_client.get(SESSION, cookies={"liaison_session": token})
    assert replay.status == 401
    assert (await replay.json())["error"]["code"] == "session_ended"


async def test_a_clinician_session_ends_after_15_idle_minutes(
    sign_in: SignIn, clock: FakeClock
) -> None:
    alice = await sign_in(Role.PSYCHIATRIST)
    clock.advance(14 * 60)
    assert (await alice.get(SESSION)).status == 200  # activity resets the idle timer
    clock.advance(14 * 60)
    assert (await alice.get(SESSION)).status == 200
    clock.advance(15 * 60)
    expired = await alice.get(SESSION)
    assert expired.status == 401
    assert (await expired.json())["error"]["code"] == "session_expired"


async def test_a_patient_session_has_a_longer_idle_timeout(
    sign_in: SignIn, clock: FakeClock
) -> None:
    patient = await sign_in(Role.PATIENT)
    clock.advance(20 * 60)
    assert (await patient.get(SESSION)).status == 200


async def test_a_session_ends_at_its_absolute_lifetime_despite_activity(
    sign_in: SignIn, clock: FakeClock
) -> None:
    alice = await sign_in(Role.PSYCHIATRIST)
    for _ in range(12 * 6 - 1):  # every 10 minutes for just under 12 hours
        clock.advance(10 * 60)
        assert (await alice.get(SESSION)).status == 200
    clock.advance(10 * 60)
    assert (await alice.get(SESSION)).status == 401


async def test_activity_in_a_live_call_keeps_the_session_alive(
    app_client: TestClient,
    sign_in: SignIn,
    clock: FakeClock,  # type: ignore[type-arg]
) -> None:
    alice = await sign_in(Role.PSYCHIATRIST)
    session_id = (
        await app_client.app[SERVICES].sessions.resolve(
            next(c.value for c in alice.http.cookie_jar if c.key == "liaison_session")
        )
    ).session_id
    for _ in range(6):  # an hour-long call, no HTTP requests, the socket touches the session
        clock.advance(10 * 60)
        assert await app_client.app[SERVICES].sessions.touch(session_id)
    assert (await alice.get(SESSION)).status == 200


async def test_a_state_changing_request_without_the_csrf_token_is_refused(sign_in: SignIn) -> None:
    alice = await sign_in(Role.PSYCHIATRIST)
    response = await alice.http.post(alice.base_url + "/api/v1/auth/logout")
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "csrf_failed"
    wrong = await alice.http.post(
        alice.base_url + "/api/v1/auth/logout", headers={"X-CSRF-Token": "0" * 64}
    )
    assert wrong.status == 403
    assert (await alice.get(SESSION)).status == 200  # still signed in


async def test_a_request_from_another_origin_is_refused(app_client: TestClient) -> None:  # type: ignore[type-arg]
    await create_user(app_client, "dr.rivera")
    response = await app_client.post(
        LOGIN,
        json={"username": "dr.rivera", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "bad_origin"
    same = await app_client.post(
        LOGIN,
        json={"username": "dr.rivera", "password": PASSWORD},
        headers={"Origin": str(app_client.make_url("")).rstrip("/")},
    )
    assert same.status == 200


async def test_repeated_failures_throttle_the_account(
    app_client: TestClient, clock: FakeClock
) -> None:  # type: ignore[type-arg]
    await create_user(app_client, "dr.rivera")
    for _ in range(5):
        bad = await app_client.post(LOGIN, json={"username": "dr.rivera", "password": "x" * 12})
        assert bad.status == 401
    throttled = await app_client.post(LOGIN, json={"username": "dr.rivera", "password": PASSWORD})
    assert throttled.status == 429  # even the right password waits
    body = await throttled.json()
    assert body["error"]["code"] == "login_throttled"
    assert int(throttled.headers["Retry-After"]) == body["error"]["retry_after"] == 900
    clock.advance(901)
    assert (
        await app_client.post(LOGIN, json={"username": "dr.rivera", "password": PASSWORD})
    ).status == 200


async def test_repeated_failures_throttle_the_address_across_accounts(make_app: AppFactory) -> None:
    client = await make_app(LIAISON_SECURITY__LOGIN_FAILURES_PER_ADDRESS="3")
    await create_user(client, "dr.rivera")
    for name in ("a1", "a2", "a3"):
        assert (
            await client.post(LOGIN, json={"username": name, "password": "x" * 12})
        ).status == 401
    throttled = await client.post(LOGIN, json={"username": "dr.rivera", "password": PASSWORD})
    assert throttled.status == 429


async def test_a_successful_login_clears_the_account_failures(app_client: TestClient) -> None:  # type: ignore[type-arg]
    await create_user(app_client, "dr.rivera")
    for _ in range(4):
        await app_client.post(LOGIN, json={"username": "dr.rivera", "password": "x" * 12})
    assert (
        await app_client.post(LOGIN, json={"username": "dr.rivera", "password": PASSWORD})
    ).status == 200
    for _ in range(4):
        assert (
            await app_client.post(LOGIN, json={"username": "dr.rivera", "password": "x" * 12})
        ).status == 401


async def test_disabling_a_user_ends_their_sessions(sign_in: SignIn) -> None:
    admin = await sign_in(Role.ADMIN)
    alice = await sign_in(Role.PSYCHIATRIST)
    response = await admin.post(f"/api/v1/admin/users/{alice.user_id}/disable")
    assert response.status == 200
    assert (await response.json())["disabled"] is True
    assert (await alice.get(SESSION)).status == 401
    again = await alice.http.post(
        alice.base_url + LOGIN, json={"username": alice.username, "password": PASSWORD}
    )
    assert again.status == 403
    assert (await again.json())["error"]["code"] == "account_disabled"


async def test_disabling_a_user_runs_the_disable_hooks(
    app_client: TestClient, sign_in: SignIn
) -> None:  # type: ignore[type-arg]
    admin = await sign_in(Role.ADMIN)
    alice = await sign_in(Role.PSYCHIATRIST)
    seen: list[int] = []

    async def hook(user_id: int) -> None:
        seen.append(user_id)

    app_client.app[SERVICES].users.on_disable.append(hook)
    await admin.post(f"/api/v1/admin/users/{alice.user_id}/disable")
    assert seen == [alice.user_id]


class TestTotp:
    async def enrol(self, alice_http: aiohttp.ClientSession, base: str, csrf: str) -> pyotp.TOTP:
        enrol = await alice_http.post(
            base + "/api/v1/auth/totp/enrol", headers={"X-CSRF-Token": csrf}
        )
        assert enrol.status == 200
        body = await enrol.json()
        assert body["otpauth_uri"].startswith("otpauth://totp/Liaison:")
        assert body["qr_svg"].startswith("<svg")
        return pyotp.TOTP(body["secret"])

    async def test_a_required_second_factor_must_be_enrolled_before_anything_else(
        self, make_app: AppFactory, clock: FakeClock
    ) -> None:
        client = await make_app(LIAISON_SECURITY__TOTP_REQUIRED_ROLES='["psychiatrist"]')
        await create_user(client, "dr.rivera")
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        base = str(client.make_url("")).rstrip("/")
        try:
            login = await http.post(
                base + LOGIN, json={"username": "dr.rivera", "password": PASSWORD}
            )
            body = await login.json()
            assert body["enrolment_required"] is True
            csrf = body["csrf_token"]
            blocked = await http.get(base + "/api/v1/admin/users")
            assert (await blocked.json())["error"]["code"] == "totp_enrolment_required"
            totp = await self.enrol(http, base, csrf)
            wrong = await http.post(
                base + "/api/v1/auth/totp/confirm",
                json={"code": wrong_totp_code(totp.secret, clock())},
                headers={"X-CSRF-Token": csrf},
            )
            assert wrong.status == 401
            confirm = await http.post(
                base + "/api/v1/auth/totp/confirm",
                json={"code": totp.at(clock())},
                headers={"X-CSRF-Token": csrf},
            )
            assert confirm.status == 200
            assert (await confirm.json())["enrolment_required"] is False
        finally:
            await http.close()

        # Next sign-in asks for the code, accepts it once, and refuses its replay.
        no_code = await client.post(LOGIN, json={"username": "dr.rivera", "password": PASSWORD})
        assert no_code.status == 401
        assert (await no_code.json())["error"]["code"] == "totp_required"
        clock.advance(30)
        code = totp.at(clock())
        ok = await client.post(
            LOGIN, json={"username": "dr.rivera", "password": PASSWORD, "totp_code": code}
        )
        assert ok.status == 200
        replay = await client.post(
            LOGIN, json={"username": "dr.rivera", "password": PASSWORD, "totp_code": code}
        )
        assert replay.status == 401
        assert (await replay.json())["error"]["code"] == "invalid_totp"


async def test_an_admin_can_require_a_second_factor_for_a_role(sign_in: SignIn) -> None:
    admin = await sign_in(Role.ADMIN)
    put = await admin.put("/api/v1/admin/roles/pcp", json={"totp_required": True})
    assert put.status == 200
    assert (await put.json()) == {
        "role": "pcp",
        "totp_required": True,
        "required_by_configuration": False,
    }
    pcp = await sign_in(Role.PCP)
    blocked = await pcp.get("/api/v1/admin/users")
    assert (await blocked.json())["error"]["code"] == "totp_enrolment_required"
    me = await pcp.get(SESSION)
    assert (await me.json())["enrolment_required"] is True


async def test_wrong_totp_codes_count_towards_the_throttle(
    make_app: AppFactory, clock: FakeClock
) -> None:
    client = await make_app()
    svc = client.app[SERVICES]
    user_id = await create_user(client, "dr.rivera")
    async with svc.db.begin() as db:
        user = await db.get(User, user_id)
        assert user is not None
        user.totp_secret, user.totp_enabled_at = pyotp.random_base32(), clock()
    for _ in range(5):
        bad = await client.post(
            LOGIN, json={"username": "dr.rivera", "password": PASSWORD, "totp_code": "123456"}
        )
        assert bad.status == 401
    assert (
        await client.post(
            LOGIN, json={"username": "dr.rivera", "password": PASSWORD, "totp_code": "123456"}
        )
    ).status == 429


async def test_no_log_line_contains_a_password_or_session_token(
    app_client: TestClient,
    caplog: pytest.LogCaptureFixture,  # type: ignore[type-arg]
) -> None:
    caplog.set_level(logging.DEBUG)
    await create_user(app_client, "dr.rivera")
    await app_client.post(LOGIN, json={"username": "dr.rivera", "password": "wrong password!!"})
    response = await app_client.post(LOGIN, json={"username": "dr.rivera", "password": PASSWORD})
    token = response.cookies["liaison_session"].value
    csrf = (await response.json())["csrf_token"]
    await app_client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    logged = "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    assert "liaison.auth" in {r.name for r in caplog.records}  # logging did happen
    for secret in (PASSWORD, "wrong password!!", token, csrf):
        assert secret not in logged


async def test_a_role_required_by_configuration_cannot_be_lifted_by_an_admin(
    make_app: AppFactory,
) -> None:
    client = await make_app(LIAISON_SECURITY__TOTP_REQUIRED_ROLES='["pcp"]')
    await create_user(client, "root", Role.ADMIN)
    login = await client.post(LOGIN, json={"username": "root", "password": PASSWORD})
    csrf = (await login.json())["csrf_token"]
    lift = await client.put(
        "/api/v1/admin/roles/pcp", json={"totp_required": False}, headers={"X-CSRF-Token": csrf}
    )
    assert lift.status == 409
    assert (await lift.json())["error"]["code"] == "required_by_configuration"
    roles = await (await client.get("/api/v1/admin/roles")).json()
    assert {"role": "pcp", "totp_required": True, "required_by_configuration": True} in roles[
        "roles"
    ]


async def test_an_admin_cannot_disable_themselves(sign_in: SignIn) -> None:
    admin = await sign_in(Role.ADMIN, "root")
    refused = await admin.post(f"/api/v1/admin/users/{admin.user_id}/disable")
    assert refused.status == 409
    assert (await refused.json())["error"]["code"] == "cannot_disable_self"


async def test_the_last_active_admin_cannot_be_disabled(
    app_client: TestClient,
    sign_in: SignIn,  # type: ignore[type-arg]
) -> None:
    first = await sign_in(Role.ADMIN, "root")
    second = await sign_in(Role.ADMIN, "second")
    assert (await second.post(f"/api/v1/admin/users/{first.user_id}/disable")).status == 200
    users = app_client.app[SERVICES].users
    with pytest.raises(Conflict) as refused:
        await users.set_disabled(second.user_id, True)
    assert refused.value.code == "last_admin"


async def test_the_session_says_whether_a_second_factor_is_set_up(sign_in: SignIn) -> None:
    alice = await sign_in(Role.PSYCHIATRIST)
    assert (await (await alice.get(SESSION)).json())["totp_enrolled"] is False
