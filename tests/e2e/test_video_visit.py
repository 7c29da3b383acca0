"""A video visit in two real browsers: the patient opens the join link on a phone-sized screen,
passes the steps and waits; the clinician, signed in on a desktop, sees them in the waiting room
and admits them; both receive the other's video (Chromium's fake camera) through Liaison's
signaling; chat crosses both ways; the signaling connection drops and comes back without a new
admission; the clinician ends the visit. Also a three-way call with an interpreter, the refusals
a patient can meet at the door, and the device check against the server's echo peer.

Screenshots go to $LIAISON_E2E_SCREENSHOTS when set (to look at them), else the test's tmp dir.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Locator, Page, ViewportSize, expect

from server.clock import FakeClock
from server.db.models import Visit
from server.state import SERVICES
from signaling.setup import RTC
from tests.conftest import PASSWORD
from tests.e2e.conftest import LiveApp, OpenPage
from tests.integration.visit_support import Clinic, Holders

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1366, "height": 900}
MEDIA_TIMEOUT_MS = 30_000
# Two browsers decoding video next to the server on two cores: give each action more time.
PAGE_TIMEOUT_MS = 20_000
REMOTE_VIDEO = ".tile--remote video"

# Frames delivered to a <video>: requestVideoFrameCallback where the browser has it (all of
# today's engines), else the advance of currentTime.
FRAMES_ADVANCE = """
async (selector) => {
  const video = document.querySelector(selector);
  const start = video.currentTime;
  const frames = await new Promise((resolve) => {
    let seen = 0;
    const done = () => resolve(seen);
    if (!("requestVideoFrameCallback" in video)) { setTimeout(done, 1500); return; }
    const tick = () => {
      seen += 1;
      if (seen >= 5) done(); else video.requestVideoFrameCallback(tick);
    };
    video.requestVideoFrameCallback(tick);
    setTimeout(done, 8000);
  });
  return {frames, advanced: video.currentTime - start, width: video.videoWidth,
          height: video.videoHeight};
}
"""

# Sets window.__seenText once the page shows the given text, however briefly: for a state
# that lasts less than the gap between two polls of an assertion.
SEEN_TEXT = """
(text) => {
  window.__seenText = false;
  const observer = new MutationObserver(() => {
    if (document.body.innerText.includes(text)) {
      window.__seenText = true;
      observer.disconnect();
    }
  });
  observer.observe(document.body, { subtree: true, childList: true, characterData: true });
}
"""


async def sign_in_browser(page: Page, app: LiveApp, username: str) -> None:
    await page.goto(str(app.make_url("/login")))
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(r"/home$"))


async def open_as(
    open_page: OpenPage, app: LiveApp, username: str, path: str | None = None
) -> Page:
    """A desktop page of its own, with the calls' page timeout, signed in as ``username`` and
    at ``path`` when given (else on the home page, where signing in lands)."""
    page = await open_page(viewport=DESKTOP)
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    await sign_in_browser(page, app, username)
    if path is not None:
        await page.goto(str(app.make_url(path)))
    return page


async def assert_fits_width(page: Page, width: int) -> None:
    scroll_width = await page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"{page.url} scrolls sideways at {width}px ({scroll_width}px)"


async def remote_video_flows(page: Page) -> dict[str, Any]:
    await page.wait_for_function(
        "(s) => { const v = document.querySelector(s); return v && v.videoWidth > 0; }",
        arg=REMOTE_VIDEO,
        timeout=MEDIA_TIMEOUT_MS,
    )
    figures: dict[str, Any] = await page.evaluate(FRAMES_ADVANCE, REMOTE_VIDEO)
    assert figures["width"] > 0 and figures["height"] > 0, figures
    assert figures["frames"] >= 5 or figures["advanced"] > 0, figures
    return figures


def check(page: Page, title: str) -> Locator:
    """One line of the device check (camera, microphone, connection), by its heading."""
    heading = page.get_by_role("heading", name=title, exact=True)
    return page.locator(".check").filter(has=heading)


async def echo_video_arrives(page: Page) -> None:
    """The camera came back through the network from the server's aiortc echo peer."""
    await page.wait_for_function(
        "() => { const v = document.querySelector('video[aria-label^=\"Your video, back\"]');"
        " return v && v.videoWidth > 0; }",
        timeout=MEDIA_TIMEOUT_MS,
    )


async def patient_reaches_waiting_room(page: Page, link: str, shots: Path) -> None:
    await page.goto(link)
    await expect(page.get_by_role("heading", name="Confirm your date of birth")).to_be_visible()
    # The token left the address bar before anything else happened.
    assert urlsplit(page.url).fragment == "" and page.url.endswith("/join"), page.url
    await expect(page.get_by_text("Step 1 of 5: Confirm it's you")).to_be_visible()
    await page.get_by_label("Month").fill("4")
    await page.get_by_label("Day").fill("12")
    await page.get_by_label("Year").fill("1988")
    await page.screenshot(path=shots / "join-1-identity.png", full_page=True)
    await page.get_by_role("button", name="Continue").click()

    await expect(page.get_by_role("heading", name="Consent to a video visit")).to_be_visible()
    await expect(page.get_by_text("Step 2 of 5: Consent")).to_be_visible()
    await page.get_by_label("I have read this and I agree").check()
    await page.screenshot(path=shots / "join-2-consent.png", full_page=True)
    await page.get_by_role("button", name="Agree and continue").click()

    await expect(page.get_by_role("heading", name="Where are you right now?")).to_be_visible()
    await page.get_by_label("State", exact=True).select_option("CA")
    await page.get_by_label("Phone number to call you back").fill("415 555 0134")
    await page.screenshot(path=shots / "join-3-location.png", full_page=True)
    await page.get_by_role("button", name="Continue").click()

    await expect(page.get_by_role("heading", name="Check your camera and sound")).to_be_visible()
    await expect(check(page, "Camera").locator(".badge")).to_have_text("Working")
    await expect(check(page, "Microphone").locator(".badge")).to_have_text("Working")
    # The network check against the server's echo peer: a verdict in words, the figures, and
    # the camera seen coming back through the network.
    connection = check(page, "Connection")
    await expect(connection.locator(".badge")).to_have_text(
        re.compile("Good|Fair|Poor"), timeout=MEDIA_TIMEOUT_MS
    )
    await expect(connection.get_by_text(re.compile(r"Round trip \d+ ms, \d+% of"))).to_be_visible()
    await echo_video_arrives(page)
    await page.screenshot(path=shots / "join-4-device-check.png", full_page=True)
    await assert_fits_width(page, PHONE["width"])
    await page.get_by_role("button", name="Continue to the waiting room").click()

    await expect(page.get_by_role("heading", name="You're in the waiting room")).to_be_visible()
    await expect(page.get_by_text("Your clinician knows you are here")).to_be_visible()
    await expect(page.get_by_text(re.compile(r"Waiting since"))).to_be_visible()
    await assert_fits_width(page, PHONE["width"])
    await page.screenshot(path=shots / "join-5-waiting-room.png", full_page=True)


async def test_patient_joins_waits_is_admitted_and_both_see_each_other(
    live_app: LiveApp, clinic: Clinic, open_page: OpenPage, shots: Path
) -> None:
    visit = await clinic.schedule(start_in=timedelta(minutes=5))
    visit_id = visit["visit"]["id"]
    patient = await open_page(viewport=PHONE, has_touch=True, is_mobile=True)
    patient.set_default_timeout(PAGE_TIMEOUT_MS)
    await patient_reaches_waiting_room(patient, visit["patient_link"]["url"], shots)

    doctor = await open_page(viewport=DESKTOP)
    doctor.set_default_timeout(PAGE_TIMEOUT_MS)
    await sign_in_browser(doctor, live_app, "dr.rivera")
    today = doctor.get_by_role("region", name="Today's visits")
    await expect(today.get_by_text("Jordan Alvarez", exact=True)).to_be_visible()
    await doctor.screenshot(path=shots / "clinician-1-home.png", full_page=True)
    await today.get_by_role("link", name="Open visit").click()
    await expect(doctor).to_have_url(re.compile(rf"/visit/{visit_id}$"))
    await expect(doctor.get_by_role("heading", level=1)).to_have_text("Jordan Alvarez")
    lobby = doctor.get_by_role("region", name="Waiting room")
    await expect(lobby.locator(".lobby__name")).to_have_text(["Jordan A."])
    await expect(lobby.get_by_text(re.compile(r"Patient · waiting since"))).to_be_visible()
    # Jordan prefers Spanish: the invitation list proposes an interpreter.
    invitations = doctor.get_by_role("region", name="Invitations")
    await expect(invitations.get_by_text("Jordan prefers Spanish")).to_be_visible()
    await doctor.screenshot(path=shots / "clinician-2-visit-lobby.png", full_page=True)

    admitted_at = time.perf_counter()
    await lobby.get_by_role("button", name="Admit Jordan A.").click()
    await expect(patient.get_by_label("Video of Dr.Rivera")).to_be_attached(
        timeout=MEDIA_TIMEOUT_MS
    )
    patient_video = await remote_video_flows(patient)
    patient_seen = time.perf_counter() - admitted_at
    doctor_video = await remote_video_flows(doctor)
    doctor_seen = time.perf_counter() - admitted_at
    print(  # the figure this test measures (shown with -s)
        f"\nremote video after admit: patient {patient_seen:.2f} s "
        f"({patient_video['width']}x{patient_video['height']}), clinician {doctor_seen:.2f} s "
        f"({doctor_video['width']}x{doctor_video['height']})"
    )
    await expect(doctor.get_by_text("In the call with Jordan A.")).to_be_visible()
    await expect(lobby.get_by_text("Nobody is waiting")).to_be_visible()

    # Chat crosses both ways, as text (markup stays text).
    await patient.get_by_label("Message").fill("Can you hear me?")
    await patient.get_by_role("button", name="Send").click()
    doctor_log = doctor.get_by_role("log")
    await expect(doctor_log.get_by_text("Can you hear me?")).to_be_visible()
    await expect(doctor_log.get_by_text("Jordan A.")).to_be_visible()
    reply = "Yes, clearly. <img src=x onerror=alert(1)>"
    await doctor.get_by_label("Message").fill(reply)
    await doctor.get_by_label("Message").press("Enter")
    patient_log = patient.get_by_role("log")
    await expect(patient_log.get_by_text(reply)).to_be_visible()
    assert await patient_log.locator("img").count() == 0
    await patient.wait_for_timeout(300)  # let the video settle for the screenshot
    await patient.screenshot(path=shots / "call-patient-phone.png", full_page=True)
    await doctor.screenshot(path=shots / "call-clinician.png", full_page=True)
    await assert_fits_width(patient, PHONE["width"])

    # The patient's signaling connection drops: the page reconnects and is back in the call
    # without being admitted again; the media never stopped.
    rtc = live_app.app[RTC]
    patient_socket = next(
        sid for sid, state in rtc.sockets.items() if state.identity.link_id is not None
    )
    # The clinician's "Reconnecting…" lasts only until the patient's page is back (a random
    # 0.25-3 s): recorded as it shows, since polling for it could fall between two checks.
    await doctor.evaluate(SEEN_TEXT, "Reconnecting…")
    await rtc.disconnect(patient_socket)
    await doctor.wait_for_function("() => window.__seenText")
    await expect(doctor.get_by_text("In the call with Jordan A.")).to_be_visible(timeout=15_000)
    await expect(patient.get_by_role("heading", name="You're in the waiting room")).to_have_count(0)
    await patient.get_by_label("Message").fill("Back again")
    await patient.get_by_role("button", name="Send").click()
    await expect(doctor_log.get_by_text("Back again")).to_be_visible()
    await remote_video_flows(doctor)

    # Mute and camera off are toggles that say their state.
    mute = patient.get_by_role("button", name="Mute")
    await mute.click()
    await expect(mute).to_have_attribute("aria-pressed", "true")
    await mute.click()
    await expect(mute).to_have_attribute("aria-pressed", "false")

    # The clinician ends the visit for everyone.
    await doctor.get_by_role("button", name="End visit", exact=True).click()
    await doctor.get_by_role("button", name="End visit for everyone").click()
    await expect(patient.get_by_role("heading", name="Your visit has ended")).to_be_visible()
    await expect(doctor.get_by_role("heading", name="The visit has ended")).to_be_visible()
    await patient.screenshot(path=shots / "join-6-ended.png", full_page=True)
    # The camera is released: no live tracks left on the patient's page.
    live = await patient.evaluate(
        "() => [...document.querySelectorAll('video')].filter((v) => v.srcObject &&"
        " v.srcObject.getTracks().some((t) => t.readyState === 'live')).length"
    )
    assert live == 0

    async with live_app.app[SERVICES].db() as db:
        row = await db.get(Visit, visit_id)
    assert row is not None and row.status == "completed"


async def test_three_way_call_with_an_interpreter_who_is_sent_back_and_readmitted(
    live_app: LiveApp, clinic: Clinic, open_page: OpenPage, shots: Path
) -> None:
    """A mesh of three: the guest, admitted last, offers to both others; neither of them is
    the one who scheduled. Sending the guest back closes their connections; admitting them
    again reconnects everyone without a reload."""
    visit = await clinic.schedule(start_in=timedelta(minutes=5))
    doctor = await open_as(open_page, live_app, "dr.rivera", f"/visit/{visit['visit']['id']}")
    invitations = doctor.get_by_role("region", name="Invitations")
    await invitations.get_by_role("button", name="Invite an interpreter").click()
    await expect(invitations.get_by_label("Their name")).to_have_value("Spanish interpreter")
    await invitations.get_by_label("Their name").fill("Ana (Spanish interpreter)")
    await invitations.get_by_role("button", name="Create a guest link").click()
    guest_link = await invitations.get_by_label("Join link").input_value()
    assert urlsplit(guest_link).path == "/join" and urlsplit(guest_link).fragment
    await expect(invitations.get_by_text("Jordan prefers Spanish")).to_be_hidden()

    patient = await open_page(viewport=PHONE)
    patient.set_default_timeout(PAGE_TIMEOUT_MS)
    await patient_reaches_waiting_room(patient, visit["patient_link"]["url"], shots / "mesh")
    guest = await open_page(viewport=DESKTOP)
    guest.set_default_timeout(PAGE_TIMEOUT_MS)
    await guest.goto(guest_link)
    # A guest has no date of birth or location to give: consent, devices, waiting room.
    await expect(guest.get_by_text("Step 1 of 3: Consent")).to_be_visible()
    await guest.get_by_role("checkbox").check()
    await guest.get_by_role("button", name="Agree and continue").click()
    await guest.get_by_role("button", name="Continue to the waiting room").click()
    await expect(guest.get_by_text("Your clinician knows you are here")).to_be_visible()

    lobby = doctor.get_by_role("region", name="Waiting room")
    await expect(lobby.locator(".lobby__name")).to_have_text(
        ["Jordan A.", "Ana (Spanish interpreter)"]
    )
    await lobby.get_by_role("button", name="Admit Jordan A.").click()
    await lobby.get_by_role("button", name="Admit Ana (Spanish interpreter)").click()
    for page in (patient, guest, doctor):
        await two_remote_videos(page)
    await doctor.screenshot(path=shots / "mesh-clinician.png", full_page=True)

    await doctor.get_by_role(
        "button", name="Send to waiting room (Ana (Spanish interpreter))"
    ).click()
    await expect(guest.get_by_text("moved you back to the waiting room")).to_be_visible()
    await expect(patient.locator(REMOTE_VIDEO)).to_have_count(1)
    await lobby.get_by_role("button", name="Admit Ana (Spanish interpreter)").click()
    for page in (guest, patient, doctor):
        await two_remote_videos(page)


async def two_remote_videos(page: Page) -> None:
    await page.wait_for_function(
        "(s) => { const vs = [...document.querySelectorAll(s)];"
        " return vs.length === 2 && vs.every((v) => v.videoWidth > 0); }",
        arg=REMOTE_VIDEO,
        timeout=MEDIA_TIMEOUT_MS * 2,
    )


async def test_a_used_or_expired_link_and_a_wrong_birth_date_say_what_to_do_next(
    live_app: LiveApp, clinic: Clinic, clock: FakeClock, open_page: OpenPage, shots: Path
) -> None:
    # Used: the link was opened once already (somewhere else).
    used = await clinic.schedule(start_in=timedelta(minutes=5))
    async with Holders(live_app) as holders:
        await holders().join(used["patient_link"]["url"])
    page = await open_page(viewport=PHONE)
    await page.goto(used["patient_link"]["url"])
    await expect(page.get_by_role("heading", name="We can't open your visit")).to_be_visible()
    await expect(page.get_by_text("works only once")).to_be_visible()
    await expect(page.get_by_text("contact the clinic for a new link")).to_be_visible()
    assert urlsplit(page.url).fragment == ""
    await page.screenshot(path=shots / "refused-link-used.png", full_page=True)

    # A wrong date of birth says how many tries are left.
    fresh = await clinic.schedule(start_in=timedelta(minutes=15))
    page = await open_page(viewport=PHONE)
    await page.goto(fresh["patient_link"]["url"])
    await page.get_by_label("Month").fill("1")
    await page.get_by_label("Day").fill("2")
    await page.get_by_label("Year").fill("1990")
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_text("doesn't match our records")).to_be_visible()
    await expect(page.get_by_text("4 more tries")).to_be_visible()
    await expect(page.get_by_label("Month")).to_have_attribute("aria-invalid", "true")
    await page.screenshot(path=shots / "refused-wrong-birth-date.png", full_page=True)

    # Expired: the visit and the link's grace period are over.
    expired = await clinic.schedule(start_in=timedelta(minutes=20))
    clock.advance(timedelta(hours=3).total_seconds())
    page = await open_page(viewport=PHONE)
    await page.goto(expired["patient_link"]["url"])
    await expect(page.get_by_role("heading", name="We can't open your visit")).to_be_visible()
    await expect(page.get_by_text("This link has expired. Contact the clinic")).to_be_visible()
    await page.screenshot(path=shots / "refused-link-expired.png", full_page=True)


async def test_a_clinician_checks_camera_and_connection_against_the_echo_peer(
    live_app: LiveApp, clinic: Clinic, open_page: OpenPage, shots: Path
) -> None:
    page = await open_page(viewport=DESKTOP)
    await sign_in_browser(page, live_app, "dr.rivera")
    await page.get_by_role("link", name="Check your camera and connection").click()
    await expect(check(page, "Camera").locator(".badge")).to_have_text("Working")
    connection = check(page, "Connection")
    await expect(connection.locator(".badge")).to_have_text(
        re.compile("Good|Fair|Poor"), timeout=MEDIA_TIMEOUT_MS
    )
    await expect(connection.get_by_text(re.compile(r"Round trip \d+ ms"))).to_be_visible()
    await echo_video_arrives(page)
    print(f"\ndevice check: {await connection.locator('.check__detail').inner_text()}")
    await page.screenshot(path=shots / "device-check-clinician.png", full_page=True)
