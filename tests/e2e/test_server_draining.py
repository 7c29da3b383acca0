"""A video call in two real browsers outlives its server process letting its sockets go.

A process shutting down (server/shutdown.py) tells every socket `server:draining` and
disconnects it (signaling/draining.py); here the same drain runs on the live app without the
process exiting, so the pages reconnect to it as they would to another process. Both pages say
they are reconnecting, come back into the call, the patient without being admitted again, and
video goes on flowing both ways on the same peer connections (whichever page rejoins first
keeps its link to the other, still away), with one tile per person and the chat kept. A socket
closed by the server without the notice (a flood, a sweep) comes back the same way.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import Page, expect

from signaling.draining import drain
from signaling.rooms import Kind, Presence
from signaling.setup import RTC, SOCKETIO
from tests.e2e.conftest import LiveApp, OpenPage
from tests.e2e.test_video_visit import (
    FRAMES_ADVANCE,
    PAGE_TIMEOUT_MS,
    PHONE,
    REMOTE_VIDEO,
    open_as,
    patient_reaches_waiting_room,
    remote_video_flows,
)
from tests.integration.visit_support import Clinic

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

# Reconnects are spread over up to 3 s (signaling/draining.py); two browsers decoding video on
# two cores take a while longer to be back in the call.
BACK_TIMEOUT_MS = 20_000
IN_THE_CALL = re.compile(r"^In the call with ")
DRAINING_NOTICE = "Reconnecting to another Liaison server"

# Records what a page shows from now on, so that a state shown only for a moment (offline, the
# draining notice, the waiting room) is seen whatever the polling of the assertions; and the
# remote tracks playing now, the ones a kept peer connection goes on receiving.
WATCH = """
([selector, drainingNotice]) => {
  const remote = document.querySelector(selector).srcObject;
  const seen = { offline: false, draining: false, waitingRoom: false,
                 tracks: remote.getTracks().map((t) => t.id) };
  window.__seen = seen;
  const look = () => {
    const status = document.querySelector(".call__status");
    if (status?.textContent?.startsWith("Reconnecting to Liaison")) seen.offline = true;
    const notices = [...document.querySelectorAll(".call .notice")];
    if (notices.some((n) => n.textContent.includes(drainingNotice))) seen.draining = true;
    if (document.body.textContent.includes("You're in the waiting room")) seen.waitingRoom = true;
  };
  new MutationObserver(look).observe(document.body,
    { subtree: true, childList: true, characterData: true });
}
"""


async def admitted_call(
    live_app: LiveApp, clinic: Clinic, open_page: OpenPage, shots: Path
) -> tuple[Page, Page, int]:
    """A patient (phone) and a clinician (desktop) in a call, video flowing both ways."""
    visit = await clinic.schedule(start_in=timedelta(minutes=5))
    visit_id: int = visit["visit"]["id"]
    patient = await open_page(viewport=PHONE, has_touch=True, is_mobile=True)
    patient.set_default_timeout(PAGE_TIMEOUT_MS)
    await patient_reaches_waiting_room(patient, visit["patient_link"]["url"], shots)
    doctor = await open_as(open_page, live_app, "dr.rivera", f"/visit/{visit_id}")
    lobby = doctor.get_by_role("region", name="Waiting room")
    await lobby.get_by_role("button", name="Admit Jordan A.").click()
    for page in (patient, doctor):
        await remote_video_flows(page)
    await expect(doctor.get_by_text("In the call with Jordan A.")).to_be_visible()
    await patient.get_by_label("Message").fill("Before the move")
    await patient.get_by_role("button", name="Send").click()
    await expect(doctor.get_by_role("log").get_by_text("Before the move")).to_be_visible()
    return patient, doctor, visit_id


async def admission(live_app: LiveApp, visit_id: int) -> datetime | None:
    """When the room records the patient as let in."""
    room = await live_app.app[RTC].store.load(visit_id)
    return next(p.admitted_at for p in room.participants if p.kind is Kind.PATIENT)


async def drain_sockets(app: web.Application) -> None:
    """What a process shutting down does to its sockets, without the process exiting."""
    assert await drain(app[SOCKETIO]) >= 2


async def close_sockets(app: web.Application) -> None:
    """Closed by the server with no word of warning (as a flood guard or a sweep would)."""
    await app[RTC].close_all()


@pytest.mark.parametrize(
    ("let_go", "told"),
    [(drain_sockets, True), (close_sockets, False)],
    ids=["draining", "closed_without_notice"],
)
async def test_a_call_carries_on_when_the_server_lets_its_sockets_go(
    live_app: LiveApp,
    clinic: Clinic,
    open_page: OpenPage,
    shots: Path,
    let_go: Callable[[web.Application], Awaitable[None]],
    told: bool,
) -> None:
    patient, doctor, visit_id = await admitted_call(live_app, clinic, open_page, shots)
    for page in (patient, doctor):
        await page.evaluate(WATCH, [REMOTE_VIDEO, DRAINING_NOTICE])
    rtc = live_app.app[RTC]
    before = set(rtc.sockets)
    admitted_at = await admission(live_app, visit_id)
    assert admitted_at is not None

    await let_go(live_app.app)

    for page in (patient, doctor):
        # First the page must have heard the server let go: until then its status still says
        # "In the call" from before, and the check below would pass on the old connection.
        await page.wait_for_function("() => window.__seen.offline", timeout=BACK_TIMEOUT_MS)
        status = page.locator(".call__status")
        await expect(status).to_have_text(IN_THE_CALL, timeout=BACK_TIMEOUT_MS)
        seen = await page.evaluate("window.__seen")
        assert seen["draining"] is told, seen
        # Said while it held; withdrawn once the connection is back.
        await expect(page.get_by_text(DRAINING_NOTICE)).to_have_count(0)
        # The same person, once: the kept peer connection makes no second tile.
        await expect(page.locator(".tile--remote")).to_have_count(1)
        await remote_video_flows(page)
        # New frames keep coming (a <video> whose connection died keeps its size and its clock).
        figures = await page.evaluate(FRAMES_ADVANCE, REMOTE_VIDEO)
        assert figures["frames"] >= 5, figures
        # Media flows between the browsers, not through the server: the peer connection
        # outlived the signaling connection, rather than being dropped and made again.
        playing = await page.evaluate(
            "(s) => document.querySelector(s).srcObject.getTracks().map((t) => t.id)", REMOTE_VIDEO
        )
        assert playing == seen["tracks"], "the peer connection was made anew"
        # The chat from before the reconnect is still on the page.
        await expect(page.get_by_role("log").get_by_text("Before the move")).to_be_visible()
    assert before.isdisjoint(rtc.sockets), "the old sockets are still connected"

    # The patient went straight back into the call: never shown the waiting room, never in
    # the clinician's lobby, in the call in the room's record, let in only the once.
    assert not await patient.evaluate("window.__seen.waitingRoom")
    lobby = doctor.get_by_role("region", name="Waiting room")
    await expect(lobby.get_by_text("Nobody is waiting")).to_be_visible()
    room = await rtc.store.load(visit_id)
    presences = {p.kind.value: p.presence for p in room.participants if p.conn_id is not None}
    assert presences == {"patient": Presence.IN_CALL, "clinician": Presence.IN_CALL}, presences
    assert (await admission(live_app, visit_id)) == admitted_at, "the patient was admitted again"

    # Signaling works again both ways: chat crosses on the new connections.
    await patient.get_by_label("Message").fill("Still here")
    await patient.get_by_role("button", name="Send").click()
    await expect(doctor.get_by_role("log").get_by_text("Still here")).to_be_visible()
    await doctor.get_by_label("Message").fill("So am I")
    await doctor.get_by_label("Message").press("Enter")
    await expect(patient.get_by_role("log").get_by_text("So am I")).to_be_visible()
    await patient.screenshot(path=shots / "reconnected-patient.png", full_page=True)
    await doctor.screenshot(path=shots / "reconnected-clinician.png", full_page=True)
