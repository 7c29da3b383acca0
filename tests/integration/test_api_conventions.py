"""Every error status the API promises, the error body shape, health checks and OpenAPI."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.auth.roles import Role
from server.state import SERVICES
from tests.conftest import AppFactory, SignIn, error_code, make_settings, migrate

Client = TestClient  # type: ignore[type-arg]


async def test_400_for_a_body_that_is_not_json(app_client: Client) -> None:
    response = await app_client.post(
        "/api/v1/auth/login", data=b"{username:", headers={"Content-Type": "application/json"}
    )
    assert await error_code(response, 400) == "malformed_json"


async def test_401_without_a_session(app_client: Client) -> None:
    assert await error_code(await app_client.get("/api/v1/auth/session"), 401) == "not_signed_in"


async def test_403_for_a_role_that_may_not(sign_in: SignIn) -> None:
    pcp = await sign_in(Role.PCP)
    assert await error_code(await pcp.get("/api/v1/admin/users"), 403) == "role_forbidden"


async def test_404_for_an_unknown_api_path(app_client: Client) -> None:
    assert await error_code(await app_client.get("/api/v1/nothing-here"), 404) == "not_found"


async def test_404_for_an_unknown_user(sign_in: SignIn) -> None:
    admin = await sign_in(Role.ADMIN)
    assert (
        await error_code(await admin.post("/api/v1/admin/users/999/disable"), 404)
        == "user_not_found"
    )


async def test_405_for_a_wrong_method(app_client: Client) -> None:
    assert (
        await error_code(await app_client.delete("/api/v1/auth/session"), 405)
        == "method_not_allowed"
    )


async def test_409_for_a_taken_username(sign_in: SignIn) -> None:
    admin = await sign_in(Role.ADMIN)
    new = {"username": "dr.new", "display_name": "Dr New", "role": "pcp", "password": "p" * 14}
    assert (await admin.post("/api/v1/admin/users", json=new)).status == 201
    assert (
        await error_code(await admin.post("/api/v1/admin/users", json=new), 409) == "username_taken"
    )


async def test_413_for_a_declared_oversized_body_before_reading_it(app_client: Client) -> None:
    response = await app_client.post(
        "/api/v1/auth/login",
        data=io.BytesIO(b"x" * (1024 * 1024 + 1)),
        headers={"Content-Type": "application/json"},
    )
    assert await error_code(response, 413) == "payload_too_large"


async def test_413_for_an_oversized_chunked_body(app_client: Client) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b"x" * 65536

    response = await app_client.post(
        "/api/v1/auth/login", data=chunks(), headers={"Content-Type": "application/json"}
    )
    assert await error_code(response, 413) == "payload_too_large"


async def test_415_for_a_body_that_is_not_declared_json(app_client: Client) -> None:
    response = await app_client.post("/api/v1/auth/login", data={"username": "a", "password": "b"})
    assert await error_code(response, 415) == "unsupported_media_type"


async def test_422_names_the_invalid_fields_without_echoing_values(sign_in: SignIn) -> None:
    admin = await sign_in(Role.ADMIN)
    response = await admin.post(
        "/api/v1/admin/users",
        json={"username": "x", "display_name": "", "role": "surgeon", "password": "secret-value-1"},
    )
    assert await error_code(response, 422) == "validation_failed"
    body = await response.json()
    fields = {f["field"] for f in body["error"]["fields"]}
    assert fields == {"username", "display_name", "role"}
    assert "secret-value-1" not in await response.text()


async def test_422_for_a_weak_password(sign_in: SignIn) -> None:
    admin = await sign_in(Role.ADMIN)
    new = {"username": "dr.new", "display_name": "Dr New", "role": "pcp", "password": "short"}
    assert (
        await error_code(await admin.post("/api/v1/admin/users", json=new), 422) == "weak_password"
    )


async def test_429_carries_retry_after(make_app: AppFactory) -> None:
    client = await make_app(LIAISON_SECURITY__LOGIN_FAILURES_PER_ACCOUNT="1")
    await client.post("/api/v1/auth/login", json={"username": "ghost", "password": "x"})
    response = await client.post("/api/v1/auth/login", json={"username": "ghost", "password": "x"})
    assert await error_code(response, 429) == "login_throttled"
    assert int(response.headers["Retry-After"]) > 0


async def test_every_response_carries_a_request_id_and_security_headers(app_client: Client) -> None:
    response = await app_client.get("/api/v1/auth/session")
    assert len(response.headers["X-Request-Id"]) >= 8
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


async def test_a_well_formed_incoming_request_id_is_kept(app_client: Client) -> None:
    response = await app_client.get("/healthz", headers={"X-Request-Id": "lb-1234"})
    assert response.headers["X-Request-Id"] == "lb-1234"
    forged = await app_client.get("/healthz", headers={"X-Request-Id": "a\u2028b"})
    assert forged.headers["X-Request-Id"] != "a\u2028b"


async def test_healthz_and_readyz(app_client: Client) -> None:
    assert (await (await app_client.get("/healthz")).json()) == {"status": "ok"}
    ready = await app_client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["database"] == "ok"


@pytest.mark.sqlite_only("breaks the database file")
async def test_readyz_reports_an_unreachable_database(app_client: Client, tmp_path: Path) -> None:
    db_file = tmp_path / "liaison.db"
    await app_client.app[SERVICES].engine.dispose()
    db_file.unlink()
    db_file.mkdir()  # a directory where the database file was: SQLite cannot open it
    ready = await app_client.get("/readyz")
    assert ready.status == 503
    assert (await ready.json())["database"] == "unreachable"


async def test_openapi_is_generated_from_the_endpoints(app_client: Client) -> None:
    doc = await (await app_client.get("/api/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    login = doc["paths"]["/api/v1/auth/login"]["post"]
    assert login["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/LoginRequest"
    )
    assert {"200", "401", "422", "429"} <= set(login["responses"])
    assert "security" not in login
    users = doc["paths"]["/api/v1/admin/users"]
    assert users["get"]["security"] == [{"session": []}]
    assert "LoginRequest" in doc["components"]["schemas"]
    assert "password" in doc["components"]["schemas"]["LoginRequest"]["properties"]


async def test_app_pages_explain_when_the_client_is_not_built(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    await migrate(settings)
    client: Client = TestClient(TestServer(create_app(settings, web_client_dir=tmp_path / "none")))
    await client.start_server()
    try:
        page = await client.get("/login")
        assert page.status == 503
        assert "make web" in await page.text()
    finally:
        await client.close()
