"""Someone leaves a three-way call for good while a page is offline: the others' tiles of them go
at once, not when the 120 s grace runs out, and the video between those who stay plays on.

Three real browsers (clinician, patient, interpreter). A page goes offline with Chromium's
network emulation (`context.set_offline`), which cuts its signaling socket but not WebRTC on
loopback, so the server sees that participant away while the media between the others, and to
them, goes on. The server's clock is a fake one that never moves and every wait here is far
below the grace (and the browsers' own grace timer of 120 s): a tile that goes, goes because
the server said so.

- The interpreter's page is offline, shown "Reconnecting…"; the clinician withdraws their link:
  the call hears `peer:left` naming them with no connection (signaling/rooms.py), and both other
  pages drop the tile (web_client/src/rtc/roster.js `departed`).
- The patient's page is offline while the interpreter hangs up: it missed that `peer:left`, so
  it still shows the interpreter until it is back, when `room:joined` lists who is in the call
  and who is away and the interpreter is neither (roster.js `reconcile`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Locator, Page, expect

from tests.e2e.conftest import LiveApp, OpenPage
from tests.e2e.test_video_visit import (
    DESKTOP,
    FRAMES_ADVANCE,
    PAGE_TIMEOUT_MS,
    PHONE,
    REMOTE_VIDEO,
    open_as,
    patient_reaches_waiting_room,
    remote_video_flows,
    two_remote_videos,
)
from tests.integration.visit_support import Clinic

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

INTERPRETER = "Ana (Spanish interpreter)"
PATIENT = "Jordan A."
DOCTOR = "Dr.Rivera"
# Generous for three browsers decoding video on two cores, and far below the 120 s grace: what
# happens within it is the server's word, not a timer running out.
SOON_MS = 20_000


@dataclass(frozen=True)
class ThreeWayCall:
    doctor: Page
    patient: Page
    interpreter: Page


async def three_way_call(
    live_app: LiveApp, clinic: Clinic, open_page: OpenPage, shots: Path
) -> ThreeWayCall:
    """Clinician, patient and an interpreter (a guest link) admitted, video flowing everywhere."""
    visit = await clinic.schedule(start_in=timedelta(minutes=5))
    doctor = await open_as(open_page, live_app, "dr.rivera", f"/visit/{visit['visit']['id']}")
    invitations = doctor.get_by_role("region", name="Invitations")
    await invitations.get_by_role("button", name="Invite an interpreter").click()
    await invitations.get_by_label("Their name").fill(INTERPRETER)
    await invitations.get_by_role("button", name="Create a guest link").click()
    guest_link = await invitations.get_by_label("Join link").input_value()
    assert urlsplit(guest_link).path == "/join"

    patient = await open_page(viewport=PHONE)
    patient.set_default_timeout(PAGE_TIMEOUT_MS)
    await patient_reaches_waiting_room(patient, visit["patient_link"]["url"], shots)
    interpreter = await open_page(viewport=DESKTOP)
    interpreter.set_default_timeout(PAGE_TIMEOUT_MS)
    await interpreter.goto(guest_link)
    await interpreter.get_by_role("checkbox").check()
    await interpreter.get_by_role("button", name="Agree and continue").click()
    await interpreter.get_by_role("button", name="Continue to the waiting room").click()
    await expect(interpreter.get_by_text("Your clinician knows you are here")).to_be_visible()

    lobby = doctor.get_by_role("region", name="Waiting room")
    await expect(lobby.locator(".lobby__name")).to_have_text([PATIENT, INTERPRETER])
    await lobby.get_by_role("button", name=f"Admit {PATIENT}").click()
    await lobby.get_by_role("button", name=f"Admit {INTERPRETER}").click()
    for page in (patient, interpreter, doctor):
        await two_remote_videos(page)
    return ThreeWayCall(doctor, patient, interpreter)


def tile_of(page: Page, name: str) -> Locator:
    return page.locator(".tile--remote").filter(has=page.get_by_label(f"Video of {name}"))


async def tracks_from(page: Page, name: str) -> list[str]:
    """The remote tracks the page plays for someone: the same ids later mean the same peer
    connection carried on, rather than one made anew."""
    tracks: list[str] = (
        await tile_of(page, name)
        .locator("video")
        .evaluate("(v) => v.srcObject.getTracks().map((t) => t.id)")
    )
    return tracks


async def only_video_with(page: Page, name: str, tracks: list[str]) -> None:
    """One remote tile left, theirs, new frames still coming on the same peer connection."""
    await expect(page.locator(".tile--remote")).to_have_count(1, timeout=SOON_MS)
    await expect(tile_of(page, name)).to_have_count(1)
    await remote_video_flows(page)
    figures = await page.evaluate(FRAMES_ADVANCE, REMOTE_VIDEO)
    assert figures["frames"] >= 5, figures
    assert await tracks_from(page, name) == tracks, f"the call with {name} was made anew"


async def test_an_away_interpreter_whose_link_is_withdrawn_leaves_the_others_at_once(
    live_app: LiveApp, clinic: Clinic, open_page: OpenPage, shots: Path
) -> None:
    call = await three_way_call(live_app, clinic, open_page, shots / "withdrawn")
    doctor, patient, interpreter = call.doctor, call.patient, call.interpreter
    playing = {
        doctor: await tracks_from(doctor, PATIENT),
        patient: await tracks_from(patient, DOCTOR),
    }

    await interpreter.context.set_offline(True)
    for page in (doctor, patient):
        await expect(tile_of(page, INTERPRETER)).to_contain_text("Reconnecting…", timeout=SOON_MS)
    await doctor.screenshot(path=shots / "withdrawn-1-away.png", full_page=True)

    invitations = doctor.get_by_role("region", name="Invitations")
    await invitations.get_by_role("button", name=f"Withdraw {INTERPRETER}'s link").click()
    await expect(doctor.get_by_text(f"{INTERPRETER}'s link no longer works.")).to_be_visible()
    for page, other in ((doctor, PATIENT), (patient, DOCTOR)):
        await expect(tile_of(page, INTERPRETER)).to_have_count(0, timeout=SOON_MS)
        await only_video_with(page, other, playing[page])
    await doctor.screenshot(path=shots / "withdrawn-2-gone.png", full_page=True)

    # Back online, the interpreter's page is told its link no longer works.
    await interpreter.context.set_offline(False)
    await expect(interpreter.get_by_text("This link has been withdrawn")).to_be_visible(
        timeout=SOON_MS
    )


async def test_a_page_back_online_drops_at_once_the_tile_of_someone_who_hung_up_meanwhile(
    live_app: LiveApp, clinic: Clinic, open_page: OpenPage, shots: Path
) -> None:
    call = await three_way_call(live_app, clinic, open_page, shots / "hung-up")
    doctor, patient, interpreter = call.doctor, call.patient, call.interpreter
    playing = {
        doctor: await tracks_from(doctor, PATIENT),
        patient: await tracks_from(patient, DOCTOR),
    }

    await patient.context.set_offline(True)
    for page in (doctor, interpreter):
        await expect(tile_of(page, PATIENT)).to_contain_text("Reconnecting…", timeout=SOON_MS)
    await expect(patient.locator(".call__status")).to_contain_text("Reconnecting to Liaison")

    await interpreter.get_by_role("button", name="Leave visit").click()
    await expect(tile_of(doctor, INTERPRETER)).to_have_count(0, timeout=SOON_MS)
    # The patient's page missed that: offline, it still shows the interpreter.
    await expect(tile_of(patient, INTERPRETER)).to_have_count(1)
    await patient.screenshot(path=shots / "hung-up-1-offline.png", full_page=True)

    await patient.context.set_offline(False)
    await expect(patient.locator(".call__status")).to_have_text(
        f"In the call with {DOCTOR}.", timeout=SOON_MS
    )
    await expect(tile_of(patient, INTERPRETER)).to_have_count(0)
    await only_video_with(patient, DOCTOR, playing[patient])
    await expect(tile_of(doctor, PATIENT)).not_to_contain_text("Reconnecting…", timeout=SOON_MS)
    await only_video_with(doctor, PATIENT, playing[doctor])
    await patient.screenshot(path=shots / "hung-up-2-back.png", full_page=True)
