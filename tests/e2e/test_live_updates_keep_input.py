"""Live pages never throw away what someone is typing, nor their place on the page. Each test
types or moves the focus, then makes the page update itself through a real server-side event
(another person's action through the API or a socket, or the server dropping the page's socket,
which makes it read everything back), waits until the page has redrawn, and checks that the
text, the choice, the open form and the focus are all still there. A field that the page's own
load fills in is closed until that load has arrived, so nothing typed before it is overwritten
(the test holds the load back in the browser until the user has tried).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Page, Route, expect

from signaling import events as ev
from signaling.probe import ProbeClient
from signaling.setup import RTC
from tests.conftest import SignIn
from tests.e2e.conftest import LiveApp, OpenPage
from tests.e2e.test_clinic_board import answer_text, book_clinic
from tests.e2e.test_video_visit import (
    DESKTOP,
    PAGE_TIMEOUT_MS,
    PHONE,
    SEEN_TEXT,
    open_as,
    patient_reaches_waiting_room,
    sign_in_browser,
)
from tests.integration.curbside_support import Curbside, session_cookie
from tests.integration.visit_support import Clinic, Holders, ok_json, ready_patient

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

# Counts the redraws of the element a selector names (its children replaced): the proof that a
# live update has reached the page and been drawn, before the test looks at what survived it.
WATCH_REDRAWS = """
(selector) => {
  window.__redraws = 0;
  const target = document.querySelector(selector);
  new MutationObserver(() => { window.__redraws += 1; }).observe(target, { childList: true });
}
"""


async def watch_redraws(page: Page, selector: str) -> None:
    await page.locator(selector).first.wait_for(state="attached")
    await page.evaluate(WATCH_REDRAWS, selector)


async def redrawn(page: Page) -> None:
    await page.wait_for_function("() => window.__redraws > 0")


async def drop_sockets(live_app: LiveApp, user_id: int) -> None:
    """The server lets go of every signaling socket of this user; their pages reconnect and
    read back what they may have missed."""
    rtc = live_app.app[RTC]
    for sid in [sid for sid, s in rtc.sockets.items() if s.identity.user_id == user_id]:
        await rtc.disconnect(sid)


@pytest.fixture
async def curbside(clinic: Clinic, sign_in: SignIn) -> AsyncIterator[Curbside]:
    curbside = Curbside(clinic, sign_in)
    yield curbside
    await curbside.close()


# --- curbside ----------------------------------------------------------------------------------


async def test_a_written_answer_being_typed_keeps_its_text_and_focus_through_a_reload(
    live_app: LiveApp, curbside: Curbside, open_page: OpenPage
) -> None:
    doctor_persona = await curbside.psychiatrist("dr.ahmed")
    request = await curbside.ask(mode="written", urgency="routine")
    doctor = await open_as(open_page, live_app, "dr.ahmed", f"/curbside/requests/{request['id']}")
    form = doctor.get_by_role("form", name="Answer in writing")
    await form.get_by_role("button", name="Start answering").click()
    assessment = form.get_by_label("Assessment")
    await assessment.click()
    await doctor.keyboard.type("Partial response")
    await form.get_by_label("Face-to-face psychiatric evaluation advised").select_option("yes")
    await assessment.focus()

    # The server drops the page's socket: it reconnects and reads the request back.
    await watch_redraws(doctor, ".curbside__status")
    await drop_sockets(live_app, doctor_persona.user_id)
    await redrawn(doctor)

    await expect(assessment).to_be_focused()
    await doctor.keyboard.type(" to sertraline.")
    await expect(assessment).to_have_value("Partial response to sertraline.")
    await expect(form.get_by_label("Face-to-face psychiatric evaluation advised")).to_have_value(
        "yes"
    )


async def test_the_pcps_cancel_button_keeps_the_focus_when_the_status_changes(
    live_app: LiveApp, curbside: Curbside, open_page: OpenPage
) -> None:
    dashboard = await curbside.dashboard(await curbside.psychiatrist("dr.ahmed"))
    request = await curbside.ask()
    await dashboard.ring(request["id"])
    pcp = await open_as(open_page, live_app, "dr.chen", f"/curbside/requests/{request['id']}")
    await expect(pcp.get_by_text("Ringing the on-call psychiatrists")).to_be_visible()
    cancel = pcp.get_by_role("button", name="Cancel request")
    await cancel.focus()

    # The only psychiatrist on call declines: the request goes to the written queue, and the
    # PCP's page is told at once (curbside:status).
    await dashboard.send(ev.CURBSIDE_DECLINE, request["id"])
    await expect(
        pcp.get_by_role("heading", name="No psychiatrist could take the call")
    ).to_be_visible()
    await expect(cancel).to_be_focused()


async def test_the_dashboard_keeps_the_focus_on_a_ring_and_on_the_queue_through_updates(
    live_app: LiveApp, curbside: Curbside, open_page: OpenPage
) -> None:
    doctor_persona = await curbside.psychiatrist("dr.ahmed")
    written = await curbside.ask(mode="written", urgency="routine")
    doctor = await open_as(open_page, live_app, "dr.ahmed", "/curbside")
    presence = doctor.get_by_role("region", name="Your presence")
    await expect(presence.locator(".badge")).to_have_text("Available")

    # Two requests ring; the focus goes to the newer one's Accept.
    first = await curbside.ask()
    await expect(doctor.locator(".curbside__alert--ringing")).to_have_count(1)
    second = await curbside.ask()
    await expect(doctor.locator(".curbside__alert--ringing")).to_have_count(2)
    accept = doctor.locator(f'[data-accept="{second["id"]}"]')
    await expect(accept).to_be_focused()

    # The PCP cancels the first: its card says so, and the focus stays on the second's Accept.
    await ok_json(await curbside.clinic.pcp.post(f"/api/v1/curbside/requests/{first['id']}/cancel"))
    await expect(doctor.get_by_text("Dr.Chen cancelled this request.")).to_be_visible()
    await expect(accept).to_be_focused()

    # The written queue is read again after a reconnect; the focus stays on the consult in it.
    queue = doctor.get_by_role("region", name="Written queue")
    link = queue.locator(f'a[href="/curbside/requests/{written["id"]}"]')
    await link.focus()
    await watch_redraws(doctor, "#queue .section__body")
    await drop_sockets(live_app, doctor_persona.user_id)
    await redrawn(doctor)
    await expect(link).to_be_focused()


async def test_the_licensed_states_wait_for_the_saved_ones_before_taking_typing_or_a_save(
    live_app: LiveApp, curbside: Curbside, open_page: OpenPage
) -> None:
    doctor_persona = await curbside.psychiatrist("dr.ahmed", states=("CA",))
    doctor = await open_page(viewport=DESKTOP)
    doctor.set_default_timeout(PAGE_TIMEOUT_MS)
    await sign_in_browser(doctor, live_app, "dr.ahmed")

    # The dashboard's read of the saved states is held back until the doctor has tried to type
    # and to save; every request for the states is noted.
    asked = asyncio.Event()
    release = asyncio.Event()
    methods: list[str] = []

    async def hold(route: Route) -> None:
        methods.append(route.request.method)
        if route.request.method == "GET":
            asked.set()
            await release.wait()
        await route.continue_()

    await doctor.route("**/api/v1/curbside/licenses", hold)
    try:
        await doctor.goto(str(live_app.make_url("/curbside")))
        async with asyncio.timeout(15):
            await asked.wait()
        card = doctor.get_by_role("region", name="Licensed states")
        states = card.get_by_label("States you are licensed in")
        await expect(states).to_be_disabled()
        await expect(states).to_have_attribute("placeholder", "Loading your states…")
        await states.click(force=True)
        await doctor.keyboard.type("NY")
        save = card.get_by_role("button", name="Save states")
        await expect(save).to_be_disabled()
        await save.click(force=True)
        await expect(states).to_have_value("")
    finally:
        release.set()

    # The saved states arrive: the field opens with them, and nothing was saved meanwhile.
    await expect(states).to_be_enabled()
    await expect(states).to_have_value("CA")
    assert methods == ["GET"]
    await states.click()
    await doctor.keyboard.press("End")
    await doctor.keyboard.type(", NY")
    await save.click()
    await expect(card.get_by_role("alert")).to_have_text("Saved: CA, NY.")
    await expect(states).to_have_value("CA, NY")
    saved = await ok_json(await doctor_persona.get("/api/v1/curbside/licenses"))
    assert saved["states"] == ["CA", "NY"]


# --- the clinician's visit page ----------------------------------------------------------------


async def test_someone_arriving_keeps_the_visit_pages_open_confirmation_and_guest_form(
    live_app: LiveApp, clinic: Clinic, open_page: OpenPage
) -> None:
    visit = await clinic.schedule(start_in=timedelta(minutes=5))
    visit_id = visit["visit"]["id"]
    doctor = await open_as(open_page, live_app, "dr.rivera", f"/visit/{visit_id}")
    lobby = doctor.get_by_role("region", name="Waiting room")
    await expect(lobby.get_by_text("Nobody is waiting")).to_be_visible()
    invitations = doctor.get_by_role("region", name="Invitations")
    await invitations.get_by_label("Their name").fill("Ana (Spanish interpreter)")
    await invitations.get_by_role("button", name="New patient link").click()
    issue = invitations.get_by_role("button", name="Issue a new link")
    await expect(issue).to_be_focused()

    # Jordan opens the link and arrives in the waiting room: the lobby updates, and the
    # invitation list is read again (the link is now opened).
    async with Holders(live_app) as holders:
        holder = await ready_patient(clinic, holders, visit["patient_link"]["url"])
        base = str(live_app.make_url("")).rstrip("/")
        patient = ProbeClient(base, {"liaison_visit": holder.session_token}, send_video=False)
        await patient.connect()
        try:
            await patient.join(visit_id)
            await expect(lobby.locator(".lobby__name")).to_have_text(["Jordan A."])
            await expect(invitations.locator(".links__item .badge")).to_have_text("Opened")
        finally:
            await patient.close()

    await expect(issue).to_be_visible()
    await expect(issue).to_be_focused()
    await expect(invitations.get_by_label("Their name")).to_have_value("Ana (Spanish interpreter)")


# --- the clinic board --------------------------------------------------------------------------


async def test_a_board_update_keeps_the_running_late_choice_and_the_focus_on_a_row(
    live_app: LiveApp, clinic: Clinic, open_page: OpenPage
) -> None:
    session, bookings, _link = await book_clinic(clinic)
    doctor = await open_as(open_page, live_app, "dr.rivera", f"/clinics/{session['id']}")
    await expect(doctor.locator(".board__row")).to_have_count(3)
    await expect(doctor.get_by_text("Live", exact=True)).to_be_visible()
    await doctor.get_by_label("Running about").select_option("20")
    maya = doctor.get_by_role("link", name="Open visit Maya Okoro")
    await maya.focus()

    # The care manager cancels Lena's booking: the board hears of it and redraws its rows.
    await watch_redraws(doctor, ".board")
    cancelled = await clinic.care_manager.post(
        f"/api/v1/clinics/bookings/{bookings[2]['id']}/cancel"
    )
    await ok_json(cancelled)
    await redrawn(doctor)

    await expect(maya).to_be_focused()
    await expect(doctor.get_by_label("Running about")).to_have_value("20")


# --- the patient's waiting room ----------------------------------------------------------------


async def test_phq9_answers_survive_a_late_notice_a_reconnect_and_a_return_from_the_call(
    live_app: LiveApp, clinic: Clinic, open_page: OpenPage, tmp_path: Path
) -> None:
    session, bookings, link = await book_clinic(clinic)
    patient = await open_page(viewport=PHONE, has_touch=True, is_mobile=True)
    patient.set_default_timeout(PAGE_TIMEOUT_MS)
    await patient_reaches_waiting_room(patient, link, tmp_path)
    await patient.get_by_text("Mood (PHQ-9)").click()
    items = patient.locator(".questionnaire__form").first.locator("fieldset")
    for index in range(4):
        await items.nth(index).get_by_label(answer_text(2), exact=True).check()
    chosen = items.nth(3).get_by_label(answer_text(2), exact=True)
    await chosen.focus()
    where = await chosen.bounding_box()

    # The psychiatrist says they are running late: the notice shows at the top, and the
    # answers, the focus and what is on screen stay as they were.
    late = f"/api/v1/clinics/sessions/{session['id']}/running-late"
    await ok_json(await clinic.psychiatrist.post(late, json={"minutes": 10}))
    await expect(patient.get_by_text("running about 10 minutes late")).to_be_visible()
    await expect(chosen).to_be_focused()
    after = await chosen.bounding_box()
    assert where is not None and after is not None
    assert abs(after["y"] - where["y"]) < 2, (where, after)

    # The server drops the patient's socket: the page reconnects and waits on.
    # "Reconnecting to Liaison" shows only until the page is back (a random 0.25-3 s): it is
    # recorded as it shows, since polling for it could fall between two checks.
    await patient.evaluate(SEEN_TEXT, "Reconnecting to Liaison")
    rtc = live_app.app[RTC]
    for sid in [sid for sid, s in rtc.sockets.items() if s.identity.link_id is not None]:
        await rtc.disconnect(sid)
    await patient.wait_for_function("() => window.__seenText")
    await expect(patient.get_by_text("Your clinician knows you are here")).to_be_visible()
    await expect(chosen).to_be_focused()

    # Let in, then sent back to the waiting room: the answers chosen are still there.
    base = str(live_app.make_url("")).rstrip("/")
    doctor = ProbeClient(base, session_cookie(clinic.psychiatrist), send_video=False)
    await doctor.connect()
    try:
        await doctor.join(bookings[0]["visit_id"])
        async with asyncio.timeout(15):
            while not doctor.lobby:
                doctor.lobby_changed.clear()
                await doctor.lobby_changed.wait()
        participant = doctor.lobby[0]["participant_id"]
        await doctor.admit(participant)
        await expect(
            patient.get_by_role("heading", name="You're in the waiting room")
        ).to_have_count(0)
        await doctor.request(ev.LOBBY_RETURN, {"participant_id": participant})
        await expect(patient.get_by_text("moved you back to the waiting room")).to_be_visible()
    finally:
        await doctor.close()
    await expect(patient.locator("details.questionnaire").first).to_have_attribute("open", "")
    for index in range(4):
        await expect(items.nth(index).get_by_label(answer_text(2), exact=True)).to_be_checked()
    await expect(items.nth(4).locator("input:checked")).to_have_count(0)
