"""The web shell in a real browser: signing in and out, errors, second-factor set-up, the role
home pages and the admin's sign-in rules, against the real app on 127.0.0.1."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pyotp
import pytest
from playwright.async_api import Page, ViewportSize, expect

from server.auth.roles import Role
from server.clock import FakeClock
from server.state import SERVICES
from tests.conftest import wrong_totp_code

if TYPE_CHECKING:
    from tests.e2e.conftest import LiveApp, OpenPage

pytestmark = pytest.mark.e2e

PASSWORD = "a long enough test password"
PHONE: ViewportSize = {"width": 375, "height": 740}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}


async def create_user(app: LiveApp, role: Role, username: str, display_name: str) -> None:
    await app.app[SERVICES].users.create(username, display_name, role, PASSWORD)


async def sign_in(page: Page, app: LiveApp, username: str) -> None:
    await page.goto(str(app.make_url("/login")))
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_label("Password", exact=True).press("Enter")


async def sign_out(page: Page) -> None:
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(re.compile(r"/login$"))


async def assert_fits_width(page: Page, width: int) -> None:
    scroll_width = await page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"{page.url} scrolls sideways at {width}px ({scroll_width}px)"


async def test_psychiatrist_signs_in_and_sees_their_home_page(
    live_app: LiveApp, open_page: OpenPage, tmp_path: Path
) -> None:
    await create_user(live_app, Role.PSYCHIATRIST, "dr.rivera", "Dr. Sofia Rivera")
    page = await open_page(viewport=DESKTOP)
    await page.goto(str(live_app.make_url("/login")))
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await expect(page.get_by_label("Username")).to_be_focused()
    await page.screenshot(path=tmp_path / "login.png", full_page=True)

    await sign_in(page, live_app, "dr.rivera")

    await expect(page).to_have_url(re.compile(r"/home$"))
    heading = page.get_by_role("heading", level=1)
    await expect(heading).to_have_text("Welcome, Dr. Sofia Rivera")
    await expect(heading).to_be_focused()
    await expect(page).to_have_title("Home · Liaison")
    banner = page.get_by_role("banner")
    await expect(banner.get_by_text("Dr. Sofia Rivera")).to_be_visible()
    await expect(banner.get_by_text("Psychiatrist")).to_be_visible()
    for section in ("Today's visits", "Curbside requests"):
        await expect(page.get_by_role("region", name=section)).to_be_visible()
    # Administration is for admins only.
    await expect(page.get_by_role("link", name="Administration")).to_have_count(0)
    await page.screenshot(path=tmp_path / "home.png", full_page=True)

    await page.set_viewport_size(PHONE)
    await assert_fits_width(page, PHONE["width"])
    await page.screenshot(path=tmp_path / "home-phone.png", full_page=True)


async def test_wrong_password_shows_what_went_wrong(
    live_app: LiveApp, open_page: OpenPage, tmp_path: Path
) -> None:
    await create_user(live_app, Role.PSYCHIATRIST, "dr.rivera", "Dr. Sofia Rivera")
    page = await open_page(viewport=PHONE)
    await page.goto(str(live_app.make_url("/login")))
    await page.get_by_label("Username").fill("dr.rivera")
    await page.get_by_label("Password", exact=True).fill("not the password")
    await page.get_by_role("button", name="Sign in").click()

    await expect(page.get_by_role("alert")).to_contain_text(
        "That username and password don't match an account."
    )
    await expect(page).to_have_url(re.compile(r"/login$"))
    password = page.get_by_label("Password", exact=True)
    await expect(password).to_have_value("")
    await expect(password).to_be_focused()
    await assert_fits_width(page, PHONE["width"])
    await page.screenshot(path=tmp_path / "login-error-phone.png", full_page=True)


async def test_empty_fields_are_named_before_anything_is_sent(
    live_app: LiveApp, open_page: OpenPage
) -> None:
    page = await open_page()
    await page.goto(str(live_app.make_url("/login")))
    await page.get_by_label("Username").press("Enter")

    username = page.get_by_label("Username")
    await expect(username).to_have_attribute("aria-invalid", "true")
    await expect(username).to_have_accessible_description("Enter your username.")
    await expect(username).to_be_focused()


async def test_required_second_factor_is_set_up_then_asked_for_at_sign_in(
    live_app: LiveApp, open_page: OpenPage, clock: FakeClock, tmp_path: Path
) -> None:
    await create_user(live_app, Role.ADMIN, "admin", "Avery Admin")
    await create_user(live_app, Role.PSYCHIATRIST, "dr.rivera", "Dr. Sofia Rivera")
    page = await open_page(viewport=DESKTOP)

    # The admin requires a second factor for psychiatrists.
    await sign_in(page, live_app, "admin")
    await page.get_by_role("link", name="Administration").click()
    await expect(page).to_have_url(re.compile(r"/admin$"))
    await expect(page.get_by_role("cell", name="dr.rivera")).to_be_visible()
    await page.get_by_role("checkbox", name="Psychiatrists").check()
    await expect(page.get_by_text("Psychiatrists must now use a second factor.")).to_be_visible()
    await page.screenshot(path=tmp_path / "admin.png", full_page=True)
    await page.set_viewport_size(PHONE)
    await assert_fits_width(page, PHONE["width"])
    await page.screenshot(path=tmp_path / "admin-phone.png", full_page=True)
    await page.set_viewport_size(DESKTOP)
    await sign_out(page)

    # The psychiatrist is shown the set-up and finishes it with a code from the shown key.
    await sign_in(page, live_app, "dr.rivera")
    await expect(page).to_have_url(re.compile(r"/settings/security$"))
    await expect(page.get_by_role("heading", name="Set up your second factor")).to_be_visible()
    await expect(page.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
    await expect(page.get_by_role("link", name="Home")).to_have_count(0)
    await page.screenshot(path=tmp_path / "enrolment.png", full_page=True)
    secret = (await page.locator(".totp-secret").inner_text()).replace(" ", "")
    totp = pyotp.TOTP(secret)
    code = page.get_by_label("6-digit code from the app")
    await code.fill(totp.at(clock()))
    await code.press("Enter")

    await expect(page).to_have_url(re.compile(r"/home$"))
    await expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Dr. Sofia Rivera")
    await expect(page.get_by_text("Your authenticator app is set up.")).to_be_visible()

    # Next time, sign-in asks for the code; a wrong one is refused, the current one accepted.
    await sign_out(page)
    clock.advance(30)
    await sign_in(page, live_app, "dr.rivera")
    code = page.get_by_label("6-digit code")
    await expect(code).to_be_focused()
    await code.fill(wrong_totp_code(totp.secret, clock()))
    await code.press("Enter")
    await expect(code).to_have_accessible_description(re.compile("That code didn't work"))
    await page.screenshot(path=tmp_path / "login-code.png", full_page=True)
    await code.fill(totp.at(clock()))
    await code.press("Enter")
    await expect(page).to_have_url(re.compile(r"/home$"))


async def test_sign_out_returns_to_sign_in_and_home_is_closed(
    live_app: LiveApp, open_page: OpenPage
) -> None:
    await create_user(live_app, Role.PCP, "dr.chen", "Dr. Mei Chen")
    page = await open_page()
    await sign_in(page, live_app, "dr.chen")
    await expect(page.get_by_role("region", name="Ask a psychiatrist")).to_be_visible()

    await sign_out(page)
    await expect(page.get_by_text("You have signed out.")).to_be_visible()

    # A fresh load of /home finds no session and goes to sign-in; so does the back button.
    await page.goto(str(live_app.make_url("/home")))
    await expect(page).to_have_url(re.compile(r"/login$"))
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.go_back()
    await expect(page).to_have_url(re.compile(r"/login$"))
    await page.goto(str(live_app.make_url("/")))
    await expect(page).to_have_url(re.compile(r"/login$"))


async def test_expired_session_returns_to_sign_in_then_back_to_the_page(
    live_app: LiveApp, open_page: OpenPage, clock: FakeClock, tmp_path: Path
) -> None:
    await create_user(live_app, Role.ADMIN, "admin", "Avery Admin")
    page = await open_page()
    await sign_in(page, live_app, "admin")
    await expect(page).to_have_url(re.compile(r"/home$"))

    settings = live_app.app[SERVICES].settings
    clock.advance(settings.sessions.idle_timeout_clinician_s + 1)
    await page.get_by_role("link", name="Administration").click()

    await expect(page).to_have_url(re.compile(r"/login$"))
    await expect(page.get_by_text("Your session expired")).to_be_visible()
    await page.screenshot(path=tmp_path / "login-expired.png")
    await page.get_by_label("Username").fill("admin")
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(r"/admin$"))


@pytest.mark.parametrize(
    ("role", "sections"),
    [
        (Role.PATIENT, ["Your visits"]),
        (Role.THERAPIST, ["Today's sessions"]),
        (Role.CARE_MANAGER, ["Caseload"]),
    ],
)
async def test_each_role_has_its_home_page(
    live_app: LiveApp, open_page: OpenPage, role: Role, sections: list[str], tmp_path: Path
) -> None:
    await create_user(live_app, role, "someone", "Sam Someone")
    page = await open_page(viewport=PHONE)
    await sign_in(page, live_app, "someone")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Sam Someone")
    for section in sections:
        await expect(page.get_by_role("region", name=section)).to_be_visible()
    await assert_fits_width(page, PHONE["width"])
    await page.screenshot(path=tmp_path / f"home-{role.value}-phone.png", full_page=True)


async def test_admin_creates_an_account_then_disables_it(
    live_app: LiveApp, open_page: OpenPage
) -> None:
    await create_user(live_app, Role.ADMIN, "admin", "Avery Admin")
    page = await open_page(viewport=DESKTOP)
    await sign_in(page, live_app, "admin")
    await page.get_by_role("link", name="Administration").click()

    # An empty form names what is missing, and sends nothing.
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_label("Full name")).to_be_focused()
    await expect(page.get_by_label("Role")).to_have_accessible_description(
        re.compile("Choose a role.")
    )

    await page.get_by_label("Full name").fill("Tran Nguyen, LCSW")
    await page.get_by_label("Username").fill("t.nguyen")
    await page.get_by_label("Role").select_option(label="Therapist")
    await page.get_by_label("Temporary password").fill(PASSWORD)
    await page.get_by_label("Temporary password").press("Enter")
    await expect(page.get_by_text("Account created for Tran Nguyen, LCSW")).to_be_visible()
    row = page.get_by_role("row", name=re.compile("t.nguyen"))
    await expect(row.get_by_text("Active")).to_be_visible()

    await row.get_by_role("button", name="Disable (Tran Nguyen, LCSW)").click()
    await expect(row.get_by_text("Disabled")).to_be_visible()

    # The disabled account can no longer sign in, and is told why.
    other = await open_page()
    await sign_in(other, live_app, "t.nguyen")
    await expect(other.get_by_role("alert")).to_contain_text("This account has been turned off.")
