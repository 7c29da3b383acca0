"""Browser tests: the real app on 127.0.0.1, its built web client, and Debian's Chromium driven
by Playwright (never `playwright install`: it downloads browsers, which this project does not use).

Fixtures:
    web_client_dist   the built client (web_client/dist); fails, saying to run `make web`, if absent
    clock             the server's fake clock, starting at the browsers' "now"
    live_app          the real app (make_app) serving that client; also `app_client`, so that
                      tests/conftest.py's sign_in and the visit builders act on it
    clinic            tests/integration/visit_support.py's clinic, set up on the live app
    browser           a fresh headless Chromium per test
    open_page         a new browser context and page, in a time zone where it is about noon;
                      fails the test on any page error or console error except expected HTTP
                      error statuses (401/403/...) and, from a page put offline on purpose,
                      its failed reconnect attempts
    expect_timeout    (autouse) every expect() waits up to EXPECT_TIMEOUT_MS, not Playwright's 5 s
    shots             where a test's screenshots go: $LIAISON_E2E_SCREENSHOTS when set (to look
                      at them), else the test's tmp dir
    design_shots      test-artifacts/screenshots/ at the repo root (git-ignored): the pages'
                      screenshots that people reviewing the design look at
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Page,
    Route,
    WebSocket,
    async_playwright,
    expect,
)

from server.clock import FakeClock
from tests.integration.visit_support import Clinic, set_up_clinic

if TYPE_CHECKING:
    from tests.conftest import AppFactory, SignIn

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "web_client" / "dist"
DESIGN_SHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
# The flags that work headless, as root, on loopback (see FIELD_NOTES.md); the fake media
# devices are for the video-visit tests.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Chromium logs every HTTP error response as a console error; those are expected (a wrong
# password is a 401). Anything else on the console (a CSP violation, an exception) fails.
EXPECTED_CONSOLE_ERROR = "Failed to load resource: the server responded with a status of"
# --- tests/e2e/test_call_departures.py: a page put offline on purpose (context.set_offline) ---
# logs each reconnect attempt it makes meanwhile; only the emulated offline state says this.
EXPECTED_OFFLINE_ERROR = "net::ERR_INTERNET_DISCONNECTED"
# --- end test_call_departures.py ---

# What an expect() waits for at most. Playwright's default (5 s, whatever the page's default
# timeout) is too short on a loaded 2-core machine for what crosses a socket or WebRTC; an
# expectation met sooner returns at once, so only a failing test waits longer.
EXPECT_TIMEOUT_MS = 15_000

LiveApp = TestClient[web.Request, web.Application]
OpenPage = Callable[..., Awaitable[Page]]


@pytest.fixture(scope="session")
def web_client_dist() -> Path:
    if not (DIST / "index.html").is_file():
        pytest.fail(
            "The web client is not built (web_client/dist/index.html is missing): run `make web` "
            "(or the whole suite with `make test`, which builds it).",
            pytrace=False,
        )
    return DIST


@pytest.fixture
async def live_app(make_app: AppFactory, web_client_dist: Path) -> LiveApp:
    """The real app on 127.0.0.1 (tests/conftest.py's make_app: its public URL is its own
    address, so the Origin header a browser sends with every POST passes the app's check),
    serving the built web client."""
    return await make_app()


@pytest.fixture
def clock() -> FakeClock:
    # The browsers read "now" (today's visits, due dates) from their own clocks: the server's
    # fake clock starts there too, and moves only when a test moves it.
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
async def app_client(live_app: LiveApp) -> LiveApp:
    return live_app


@pytest.fixture
async def clinic(live_app: LiveApp, clock: FakeClock, sign_in: SignIn) -> Clinic:
    return await set_up_clinic(live_app, clock, sign_in)


@pytest.fixture(autouse=True, scope="session")
def expect_timeout() -> None:
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)


class SocketWatch:
    """Counts a page's signaling connections that the server has accepted. socket.io's CONNECT
    answer ("40/rtc,...") is sent only once the server's connect handler has run, which puts the
    socket in its user's room: from then on, events for that user reach the page. A page that
    reads its data before its socket connects, and reads again only on a reconnect, would miss
    an event sent between the two: a test waits for this before causing one."""

    def __init__(self, page: Page) -> None:
        self.accepted = 0
        self.changed = asyncio.Event()
        page.on("websocket", self.on_socket)

    def on_socket(self, socket: WebSocket) -> None:
        socket.on("framereceived", self.on_frame)

    def on_frame(self, payload: str | bytes) -> None:
        if isinstance(payload, str) and payload.startswith("40/rtc,"):
            self.accepted += 1
            self.changed.set()

    async def connected(self, count: int = 1) -> None:
        """Until the server has accepted ``count`` connections of the page in all."""
        async with asyncio.timeout(EXPECT_TIMEOUT_MS / 1000):
            while self.accepted < count:
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("LIAISON_E2E_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def design_shots() -> Path:
    DESIGN_SHOTS.mkdir(parents=True, exist_ok=True)
    return DESIGN_SHOTS


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        # launch() gives every browser a fresh, temporary profile (user-data dir).
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


def midday_zone(now: datetime) -> str:
    """A time zone (no daylight saving) in which ``now`` is about noon, on the same date as in
    UTC: what the pages call today, this month or soon stays so for the whole test, whenever
    the test runs (at 23:58 UTC a visit due in 5 minutes would be tomorrow's)."""
    hours = 12 - now.astimezone(UTC).hour  # -11..12; Etc/GMT's sign is the other way round
    return f"Etc/GMT{-hours:+d}" if hours else "Etc/UTC"


@pytest.fixture
async def open_page(browser: Browser, clock: FakeClock) -> AsyncIterator[OpenPage]:
    """Open a page in a context of its own (its own cookies: one per person in a test), whose
    clock reads about noon (midday_zone)."""
    problems: list[str] = []
    zone = midday_zone(clock.now)

    async def factory(**context_options: Any) -> Page:
        context_options.setdefault("timezone_id", zone)
        context = await browser.new_context(**context_options)
        page = await context.new_page()
        page.set_default_timeout(10_000)

        def on_console(message: ConsoleMessage) -> None:
            if (
                message.type == "error"
                and not message.text.startswith(EXPECTED_CONSOLE_ERROR)
                and not message.text.endswith(EXPECTED_OFFLINE_ERROR)
            ):
                problems.append(f"console error: {message.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        return page

    yield factory
    for context in browser.contexts:
        await context.close()
    assert not problems, "the page reported problems:\n" + "\n".join(problems)


async def fail_with_500(route: Route) -> None:
    """A page.route handler: the server's answer to a request it failed on."""
    await route.fulfill(
        status=500,
        json={"error": {"code": "internal_error", "message": "Liaison had a problem on its side."}},
    )
