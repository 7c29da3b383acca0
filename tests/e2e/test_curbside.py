"""A curbside consult in real browsers: Dr. Ahmed and Dr. Baker, on call, have the on-call
dashboard open (which makes them available); Dr. Chen, Jordan's PCP, opens a call-now request
from Jordan's chart; both dashboards ring with a visible alert that takes the focus; Dr. Ahmed
accepts, Dr. Baker is told it was taken, and the call starts for both with no further step
(each page receives the other's video from Chromium's fake camera); Dr. Ahmed writes and signs
the curbside recommendation note beside the call; Dr. Chen hangs up; the consult completes with
the signed note, which Dr. Chen reads on the consult page and finds in Jordan's chart. Then a
written consult: answered from the queue (Dr. Chen's open list of requests marks it at once),
acknowledged, and counted on the admin's page, where the admin also puts Dr. Baker on call.

Full-page desktop screenshots (1366x900) go to test-artifacts/screenshots/ at the repo root
(git-ignored), to look at: the dashboard and the PCP's live status while ringing, the PCP reading
the signed recommendation, the admin's page, and the steps between.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from playwright.async_api import Page, Request, expect

from server.auth.roles import Role
from server.db.models import ConsultRequest
from server.state import SERVICES
from tests.conftest import SignIn
from tests.e2e.conftest import LiveApp, OpenPage, SocketWatch, fail_with_500
from tests.e2e.test_video_visit import (
    DESKTOP,
    PAGE_TIMEOUT_MS,
    open_as,
    remote_video_flows,
    sign_in_browser,
)
from tests.integration.curbside_support import QUESTION, Curbside
from tests.integration.visit_support import Clinic, ok_json

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

RECOMMENDATION = "Augment with aripiprazole 2 mg daily; recheck PHQ-9 in 4 weeks."


async def give_jordan_a_record(clinic: Clinic) -> None:
    """What travels with the request: a problem, a medication, a PHQ-9 and a GAD-7."""
    base = f"/api/v1/patients/{clinic.patient_id}"
    for path, body in (
        ("/problems", {"text": "Major depressive disorder, recurrent, moderate"}),
        ("/medications", {"name": "Sertraline", "dose": "100 mg", "frequency": "daily"}),
        ("/screenings", {"instrument": "phq9", "answers": [2, 2, 2, 2, 2, 2, 2, 2, 0]}),
        ("/screenings", {"instrument": "gad7", "answers": [2, 2, 2, 1, 1, 1, 1]}),
    ):
        await ok_json(await clinic.pcp.post(base + path, json=body), 201)


async def test_pcp_asks_the_on_call_psychiatrist_accepts_they_talk_and_the_note_is_read(
    live_app: LiveApp, clinic: Clinic, sign_in: SignIn, open_page: OpenPage, design_shots: Path
) -> None:
    await give_jordan_a_record(clinic)
    curbside = Curbside(clinic, sign_in)
    await curbside.psychiatrist("dr.ahmed", states=("CA",))
    await curbside.psychiatrist("dr.baker", states=("CA", "NV"))

    # The psychiatrist's dashboard is open before anyone asks.
    doctor = await open_page(viewport=DESKTOP)
    doctor.set_default_timeout(PAGE_TIMEOUT_MS)
    await sign_in_browser(doctor, live_app, "dr.ahmed")
    await doctor.get_by_role("link", name="Open the on-call dashboard").click()
    await expect(doctor.get_by_role("heading", name="On-call dashboard")).to_be_visible()
    presence = doctor.get_by_role("region", name="Your presence")
    await expect(presence.locator(".badge")).to_have_text("Available")
    await expect(doctor.get_by_role("region", name="Your on-call shifts")).to_contain_text(
        "Primary · now"
    )
    await expect(doctor.get_by_label("States you are licensed in")).to_have_value("CA")
    colleague = await open_as(open_page, live_app, "dr.baker", "/curbside")
    await expect(colleague.get_by_role("region", name="Your presence")).to_contain_text("Available")

    # The PCP asks from Jordan's chart: the form opens with Jordan chosen.
    pcp = await open_as(open_page, live_app, "dr.chen", f"/patients/{clinic.patient_id}")
    await pcp.get_by_role("link", name="Ask a psychiatrist").click()
    await expect(pcp.get_by_role("heading", name="Ask a psychiatrist")).to_be_visible()
    await expect(pcp.get_by_label("Patient", exact=True)).to_have_value(str(clinic.patient_id))
    await pcp.get_by_label("Your question").fill(QUESTION)
    await pcp.get_by_label("Urgent").check()
    await pcp.get_by_label("Call now").check()
    await pcp.get_by_label("The patient agrees to this consult").check()
    await pcp.screenshot(path=design_shots / "curbside-1-ask.png", full_page=True)
    await pcp.get_by_role("button", name="Send request").click()
    await expect(pcp).to_have_url(re.compile(r"/curbside/requests/\d+$"))
    request_id = int(pcp.url.rsplit("/", 1)[1])
    await expect(pcp.get_by_text("Ringing the on-call psychiatrists")).to_be_visible()
    await expect(pcp.get_by_role("button", name="Cancel request")).to_be_visible()

    # The dashboard rings: a visible alert with the question, and the focus on Accept.
    alert = doctor.get_by_role("region", name="Curbside request from Dr.Chen")
    await expect(alert).to_be_visible()
    await expect(alert.get_by_text(QUESTION)).to_be_visible()
    accept = alert.get_by_role("button", name="Accept")
    await expect(accept).to_be_focused()
    await doctor.screenshot(
        path=design_shots / "curbside-2-ringing-psychiatrist.png", full_page=True
    )
    await pcp.screenshot(path=design_shots / "curbside-2-ringing-pcp.png", full_page=True)
    await expect(
        colleague.get_by_role("region", name="Curbside request from Dr.Chen")
    ).to_be_visible()
    await accept.click()
    # Dr. Baker was rung too and is told, in words, that someone else took it.
    await expect(colleague.get_by_text("Taken by someone else")).to_be_visible()
    await expect(colleague.get_by_role("button", name="Accept")).to_have_count(0)

    # The call starts for both with no further step.
    await expect(doctor).to_have_url(re.compile(rf"/curbside/requests/{request_id}$"))
    await expect(pcp.get_by_text("In a call with Dr.Ahmed")).to_be_visible(timeout=30_000)
    await remote_video_flows(pcp)
    await remote_video_flows(doctor)

    # Beside the call, the curbside recommendation note on the consult's encounter.
    editor = doctor.get_by_role("region", name="Note editor")
    await expect(editor.get_by_label("Template")).to_have_value("curbside_recommendation")
    await editor.get_by_role("button", name="Start note").click()
    await expect(editor.get_by_text("Draft", exact=True)).to_be_visible()
    await editor.locator('textarea[name="question"]').fill("Partial response to sertraline.")
    await editor.locator('textarea[name="recommendation"]').fill(RECOMMENDATION)
    await editor.locator('textarea[name="follow_up_advice"]').fill("Call back if akathisia.")
    await editor.locator('select[name="face_to_face_advised"]').select_option("no")
    await doctor.screenshot(path=design_shots / "curbside-3-call-and-note.png", full_page=True)
    await editor.get_by_role("button", name="Sign note").click()
    await expect(editor.get_by_text("Signed", exact=True)).to_be_visible()
    await expect(doctor.get_by_text("completed as soon as the call ends")).to_be_visible()

    # The PCP hangs up (curbside:end): the call ends for both; the consult completes.
    await pcp.get_by_role("button", name="Hang up", exact=True).click()
    await pcp.get_by_role("button", name="Hang up for both").click()
    await expect(doctor.get_by_text("The consult is complete")).to_be_visible()
    await expect(doctor.locator(".tile--remote")).to_have_count(0)

    # The PCP reads the signed recommendation on the consult page, and in the chart.
    await expect(pcp.get_by_role("heading", name="Recommendation signed")).to_be_visible()
    recommendation = pcp.get_by_role("region", name="Curbside recommendation")
    await expect(recommendation.get_by_text(RECOMMENDATION)).to_be_visible()
    await pcp.screenshot(
        path=design_shots / "curbside-4-pcp-reads-recommendation.png", full_page=True
    )
    await recommendation.get_by_role("link", name="Open it in the patient's chart").click()
    await expect(pcp).to_have_url(re.compile(rf"/patients/{clinic.patient_id}$"))
    await expect(
        pcp.locator(".chart__note").filter(has_text="Curbside recommendation")
    ).to_contain_text("Signed")

    async with live_app.app[SERVICES].db() as db:
        row = await db.get(ConsultRequest, request_id)
    assert row is not None and row.status == "completed" and row.note_id is not None


async def test_licensed_states_that_failed_to_load_are_loaded_again_on_request(
    live_app: LiveApp, clinic: Clinic, sign_in: SignIn, open_page: OpenPage
) -> None:
    await Curbside(clinic, sign_in).psychiatrist("dr.ahmed", states=("CA", "NV"))
    doctor = await open_page(viewport=DESKTOP)
    doctor.set_default_timeout(PAGE_TIMEOUT_MS)
    await sign_in_browser(doctor, live_app, "dr.ahmed")
    await doctor.route("**/api/v1/curbside/licenses", fail_with_500)
    await doctor.goto(str(live_app.make_url("/curbside")))
    licences = doctor.get_by_role("region", name="Licensed states")
    await expect(licences.get_by_role("alert")).to_contain_text("Your states could not be loaded.")
    # Closed while the saved states are unknown (saving would replace them), with a way out.
    await expect(licences.get_by_label("States you are licensed in")).to_be_disabled()
    await doctor.unroute("**/api/v1/curbside/licenses", fail_with_500)
    await licences.get_by_role("button", name="Try again").click()
    await expect(licences.get_by_label("States you are licensed in")).to_have_value("CA, NV")
    await expect(licences.get_by_label("States you are licensed in")).to_be_focused()
    await expect(licences.get_by_role("alert")).to_be_empty()


def watch_writing_starts(page: Page) -> list[str]:
    """The POSTs with which the page starts its psychiatrist's time on a written answer."""
    starts: list[str] = []

    def on_request(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/writing"):
            starts.append(request.url)

    page.on("request", on_request)
    return starts


async def test_a_written_answer_begun_hours_ago_offers_no_minutes_to_attest(
    live_app: LiveApp, clinic: Clinic, sign_in: SignIn, open_page: OpenPage
) -> None:
    cb = Curbside(clinic, sign_in)
    await cb.psychiatrist("dr.ahmed")
    request_id = (await cb.ask(mode="written", urgency="routine"))["id"]
    doctor = await open_as(open_page, live_app, "dr.ahmed", f"/curbside/requests/{request_id}")
    form = doctor.get_by_role("form", name="Answer in writing")
    await form.get_by_role("button", name="Start answering").click()
    minutes = form.get_by_label("Minutes spent on this consult")
    await expect(minutes).to_have_value("1")

    # Two hours later (a new session: the first one went idle), Dr. Ahmed comes back to it. Their
    # time still counts from the first start, which is too long ago for one sitting: no figure is
    # offered, and the form says when the time started and asks for the minutes really spent.
    clinic.clock.advance(2 * 3600)
    await sign_in_browser(doctor, live_app, "dr.ahmed")
    await doctor.goto(str(live_app.make_url(f"/curbside/requests/{request_id}")))
    await form.get_by_role("button", name="Start answering").click()
    await expect(form.get_by_text(re.compile("more than an hour ago"))).to_be_visible()
    await expect(minutes).to_have_value("")
    await form.get_by_label("Assessment").fill("Partial response; no psychotic features.")
    await form.get_by_label("Recommendations").fill(RECOMMENDATION)
    await form.get_by_label("Follow-up").fill("PHQ-9 in 4 weeks.")
    await form.get_by_role("button", name="Send the answer").click()
    await expect(
        form.get_by_text("Say how many minutes you spent on this consult.")
    ).to_be_visible()
    await expect(minutes).to_be_focused()
    # Text the number field cannot read is called what it is, not "nothing typed"; the limit is
    # the server's for this request (the minutes since it was asked).
    await minutes.press_sequentially("1e")
    await form.get_by_role("button", name="Send the answer").click()
    await expect(
        form.get_by_text("Give the minutes as a whole number from 1 to 120.")
    ).to_be_visible()
    await minutes.fill("25")
    await form.get_by_role("button", name="Send the answer").click()
    await expect(doctor.get_by_role("heading", name="Answered by Dr.Ahmed")).to_be_visible()
    async with live_app.app[SERVICES].db() as db:
        row = await db.get(ConsultRequest, request_id)
    assert row is not None and row.status == "answered"


async def test_a_written_consult_is_answered_from_the_queue_acknowledged_and_counted(
    live_app: LiveApp, clinic: Clinic, sign_in: SignIn, open_page: OpenPage, design_shots: Path
) -> None:
    await Curbside(clinic, sign_in).psychiatrist("dr.ahmed")

    pcp = await open_page(viewport=DESKTOP)
    pcp.set_default_timeout(PAGE_TIMEOUT_MS)
    await sign_in_browser(pcp, live_app, "dr.chen")
    await pcp.get_by_role("link", name="Ask a psychiatrist").click()
    await pcp.get_by_label("Patient", exact=True).select_option(str(clinic.patient_id))
    await pcp.get_by_label("Your question").fill(QUESTION)
    await pcp.get_by_label("Routine").check()
    await pcp.get_by_label("Written answer").check()
    await pcp.get_by_role("button", name="Send request").click()
    await expect(pcp.get_by_role("heading", name="Waiting for a written answer")).to_be_visible()
    # Dr. Chen also has their list of requests open, with the focus on this request's link.
    listing = await open_page(viewport=DESKTOP)
    listing.set_default_timeout(PAGE_TIMEOUT_MS)
    await sign_in_browser(listing, live_app, "dr.chen")
    listing_socket = SocketWatch(listing)
    await listing.goto(str(live_app.make_url("/curbside")))
    row = listing.get_by_role("region", name="Your requests").locator(".curbside__item")
    await expect(row).to_contain_text("Written queue")
    # The list hears of the answer through its socket (it reads the list again only on a
    # reconnect): connected before Dr. Ahmed answers.
    await listing_socket.connected()
    await row.get_by_role("link").focus()
    await listing.evaluate("window.notReloaded = true")

    doctor = await open_as(open_page, live_app, "dr.ahmed", "/curbside")
    queue = doctor.get_by_role("region", name="Written queue")
    await expect(queue.get_by_text(QUESTION)).to_be_visible()
    await expect(queue.get_by_text(re.compile(r"^due in"))).to_be_visible()
    writing = watch_writing_starts(doctor)
    await queue.get_by_role("link", name=re.compile("Routine · Written answer")).click()
    form = doctor.get_by_role("form", name="Answer in writing")
    # Opening the request starts no time: Dr. Ahmed's starts when they start answering.
    await expect(form.get_by_role("button", name="Start answering")).to_be_visible()
    await expect(form.get_by_label("Assessment")).to_be_hidden()
    assert writing == []
    await form.get_by_role("button", name="Start answering").click()
    await expect(form.get_by_label("Assessment")).to_be_focused()
    # Required sections are refused empty, and the refusal says which.
    await form.get_by_role("button", name="Send the answer").click()
    await expect(form.get_by_text("Write the assessment.")).to_be_visible()
    await form.get_by_label("Assessment").fill("Partial response; no psychotic features.")
    await form.get_by_label("Recommendations").fill(RECOMMENDATION)
    await form.get_by_label("Follow-up").fill("PHQ-9 in 4 weeks.")
    # Starting to answer started Dr. Ahmed's time (the clock stands still here): 1 minute offered.
    await expect(form.get_by_label("Minutes spent on this consult")).to_have_value("1")
    assert len(writing) == 1
    await form.get_by_role("button", name="Send the answer").click()
    await expect(doctor.get_by_role("heading", name="Answered by Dr.Ahmed")).to_be_visible()

    # The list changes in place: the row asks for attention, the heading counts it, the focus
    # stays on the link, and the page was not reloaded.
    await expect(row).to_contain_text("Answered — please acknowledge")
    await expect(row.get_by_role("link")).to_have_text("Routine · Written answer · Dr.Ahmed")
    await expect(row.get_by_role("link")).to_be_focused()
    await expect(listing.locator("#requests-heading")).to_have_text(
        "Your requests 1 answer to acknowledge"
    )
    assert await listing.evaluate("window.notReloaded") is True
    await listing.screenshot(path=design_shots / "curbside-5-answer-waiting.png", full_page=True)
    # Dr. Chen's home page and header count the answer to read, and link to the list.
    home = await open_page(viewport=DESKTOP)
    home.set_default_timeout(PAGE_TIMEOUT_MS)
    await sign_in_browser(home, live_app, "dr.chen")
    home_socket = SocketWatch(home)
    await home.goto(str(live_app.make_url("/home")))
    to_read = home.get_by_role("link", name="1 answer to read", exact=True)
    await expect(to_read).to_have_attribute("href", "/curbside")
    nav = home.get_by_role("navigation", name="Main")
    await expect(nav.get_by_role("link", name="Curbside 1 answer to read")).to_be_visible()
    await home.screenshot(path=design_shots / "curbside-5-home-answers-to-read.png")
    # Kept live through its socket (read again only on a reconnect): connected before the
    # acknowledgement below.
    await home_socket.connected()

    # The PCP's page hears of it at once, shows the answer, and takes the acknowledgement.
    await expect(pcp.get_by_role("heading", name="Answered by Dr.Ahmed")).to_be_visible()
    answer = pcp.get_by_role("region", name="Written answer")
    await expect(answer.get_by_text(RECOMMENDATION)).to_be_visible()
    await pcp.get_by_role("button", name="Acknowledge the answer").click()
    await expect(pcp.get_by_role("heading", name="Answer acknowledged")).to_be_visible()
    # The other page hears of the acknowledgement too, and the count goes.
    await expect(row).to_contain_text("Acknowledged")
    await expect(listing.locator("#requests-heading")).to_have_text("Your requests")
    await expect(to_read).to_be_hidden()  # the home page too, live
    await pcp.screenshot(path=design_shots / "curbside-5-written-acknowledged.png", full_page=True)
    await pcp.get_by_role("link", name="All my requests").click()
    mine = pcp.get_by_role("region", name="Your requests")
    await expect(mine.locator(".curbside__item")).to_have_count(1)
    await expect(mine.locator(".curbside__item")).to_contain_text("Acknowledged")
    await expect(pcp.get_by_role("region", name="On call now")).to_contain_text("Dr.Ahmed")

    # The administrator sees it counted, and turns the licence rule off.
    admin = await open_as(open_page, live_app, "admin", "/admin")
    await admin.get_by_role(
        "link", name="Curbside consults: on-call rota, metrics and licence rule"
    ).click()
    figures = admin.get_by_role("region", name="Figures")
    await expect(figures.locator(".curbside__figure").first).to_contain_text("Requests1")
    await expect(figures.get_by_role("table")).to_contain_text("Written answer, routine")
    await expect(figures.get_by_role("table")).to_contain_text("1.0 (attested; form open 0 min)")
    # A failed download is said on the page (not a browser download error, nor an error body
    # saved as a .csv); the next try saves the file under the server's name.
    await admin.route("**/api/v1/admin/curbside/report.csv*", fail_with_500)
    await figures.get_by_role("button", name="Download CSV").click()
    await expect(figures.get_by_role("alert")).to_contain_text(
        "The CSV could not be downloaded. Liaison had a problem on its side."
    )
    await admin.unroute("**/api/v1/admin/curbside/report.csv*", fail_with_500)
    async with admin.expect_download() as downloading:
        await figures.get_by_role("button", name="Download CSV").click()
    csv_file = await downloading.value
    assert re.fullmatch(r"curbside-consults-\d{8}-\d{8}\.csv", csv_file.suggested_filename)
    text = await asyncio.to_thread(Path(await csv_file.path()).read_text)
    assert ",written,routine,acknowledged," in text
    await expect(figures.get_by_role("alert")).to_be_empty()
    rule = admin.get_by_label("Ring only psychiatrists licensed in the state")
    await expect(rule).to_be_checked()
    await rule.uncheck()
    await expect(admin.get_by_text("Set here: off")).to_be_visible()
    await admin.screenshot(path=design_shots / "curbside-6-admin.png", full_page=True)
    policy = await clinic.admin.get("/api/v1/admin/curbside/policy")
    assert (await policy.json())["require_license_match"] is False

    # The administrator puts Dr. Baker on the backup tier, from the rota on the same page.
    baker = await sign_in(Role.PSYCHIATRIST, "dr.baker")
    await admin.reload()
    rota = admin.get_by_role("region", name="On-call rota")
    await expect(rota.locator(".curbside__shift")).to_have_count(1)
    await expect(rota.locator(".curbside__shift")).to_contain_text("Dr.Ahmed")
    await rota.get_by_role("button", name="Add shift").click()
    await expect(rota.get_by_text("Choose the psychiatrist on call.")).to_be_visible()
    await rota.get_by_label("Psychiatrist").select_option(label="Dr.Baker")
    await rota.get_by_label("Tier").select_option("backup")
    await rota.get_by_role("button", name="Add shift").click()
    added = rota.locator(".curbside__shift", has_text="Dr.Baker")
    await expect(added).to_contain_text("Backup · now")
    await admin.screenshot(path=design_shots / "curbside-7-admin-rota.png", full_page=True)
    shifts = (await ok_json(await baker.get("/api/v1/curbside/shifts")))["shifts"]
    theirs = [(s["tier"], s["created_by"]) for s in shifts if s["psychiatrist_id"] == baker.user_id]
    assert theirs == [("backup", clinic.admin.user_id)]
    # Dr. Baker's dashboard lists the shift as theirs.
    dashboard = await open_as(open_page, live_app, "dr.baker", "/curbside")
    await expect(dashboard.get_by_role("region", name="Your on-call shifts")).to_contain_text(
        "Backup · now"
    )

    # And takes it off again.
    await added.get_by_role("button", name=re.compile(r"^Remove Dr\.Baker's shift")).click()
    await expect(added).to_have_count(0)
    await expect(rota.locator(".curbside__shift")).to_have_count(1)
    shifts = (await ok_json(await baker.get("/api/v1/curbside/shifts")))["shifts"]
    assert baker.user_id not in {s["psychiatrist_id"] for s in shifts}
