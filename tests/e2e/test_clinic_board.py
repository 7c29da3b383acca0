"""A remote clinic in real browsers: a patient booked into a clinic session waits in the waiting
room and fills in a PHQ-9 (item 9 above 0); the psychiatrist's board, open in another browser,
shows the score, its band and the safety flag first without a reload; "running late" reaches the
waiting patient; Admit takes the psychiatrist into the visit and lets the patient into the call.

Screenshots of the board (desktop, full page) go to test-artifacts/screenshots/ at the repo root,
to be looked at by people reviewing the design.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from server.state import SERVICES
from tests.e2e.conftest import LiveApp, OpenPage
from tests.e2e.test_video_visit import (
    DESKTOP,
    MEDIA_TIMEOUT_MS,
    PAGE_TIMEOUT_MS,
    PHONE,
    patient_reaches_waiting_room,
    sign_in_browser,
)
from tests.integration.visit_support import Clinic, create_patient, ok_json

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

# PHQ-9 answers, item by item: total 14 (moderate), item 9 "Several days".
PHQ9 = [2, 2, 2, 2, 1, 2, 1, 1, 1]


async def book_clinic(clinic: Clinic) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    """A session of three 20-minute slots starting in 5 minutes, with Sam (who will join)
    and two others booked; returns the session, the bookings and Sam's join link."""
    cm = clinic.care_manager
    people = [
        await create_patient(clinic.psychiatrist, given_name=g, family_name=f, email=e)
        for g, f, e in (
            ("Sam", "Lee", "sam@example.org"),
            ("Maya", "Okoro", "maya@example.org"),
            ("Lena", "Fischer", None),  # no address: her invitation cannot be sent
        )
    ]
    for patient in people:
        added = await clinic.psychiatrist.post(
            f"/api/v1/patients/{patient['id']}/care-team",
            json={"user_id": cm.user_id, "role_on_team": "care_manager"},
        )
        await ok_json(added, 201)
    start = clinic.clock.now + timedelta(minutes=5)
    session = await ok_json(
        await cm.post(
            "/api/v1/clinics/sessions",
            json={
                "psychiatrist_id": clinic.psychiatrist.user_id,
                "title": "Thursday medication clinic",
                "starts_at": start.isoformat(),
                "ends_at": (start + timedelta(minutes=60)).isoformat(),
                "slot_minutes": 20,
            },
        ),
        201,
    )
    outbox = clinic.client.app[SERVICES].settings.paths.var_dir / "outbox"
    bookings = []
    link = ""
    for slot, patient in enumerate(people):
        booked = await ok_json(
            await cm.post(
                f"/api/v1/clinics/sessions/{session['id']}/bookings",
                json={"patient_id": patient["id"], "slot_start": session["slots"][slot]},
            ),
            201,
        )
        bookings.append(booked)
        if slot == 0:
            text = sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime)[-1].read_text()
            link = next(w for w in text.split() if "/join#" in w)
    return session, bookings, link


async def test_a_waiting_patients_phq9_and_safety_flag_reach_the_board_and_admit_starts_the_visit(
    live_app: LiveApp, clinic: Clinic, open_page: OpenPage, design_shots: Path
) -> None:
    session, bookings, link = await book_clinic(clinic)

    doctor = await open_page(viewport=DESKTOP)
    doctor.set_default_timeout(PAGE_TIMEOUT_MS)
    await sign_in_browser(doctor, live_app, "dr.rivera")
    await doctor.get_by_role("link", name="Clinic sessions").click()
    await expect(doctor).to_have_url(re.compile(r"/clinics$"))
    await doctor.get_by_role("link", name="Open board of Thursday medication clinic").click()
    await expect(doctor).to_have_url(re.compile(rf"/clinics/{session['id']}$"))
    await expect(doctor.get_by_role("heading", level=1)).to_have_text("Thursday medication clinic")
    rows = doctor.locator(".board__row")
    await expect(rows).to_have_count(3)
    await expect(doctor.get_by_text("Live", exact=True)).to_be_visible()
    sam = rows.filter(has_text="Sam Lee")
    await expect(sam.locator(".badge")).to_have_text("Not arrived")

    # The patient arrives: the board changes by itself.
    patient = await open_page(viewport=PHONE, has_touch=True, is_mobile=True)
    patient.set_default_timeout(PAGE_TIMEOUT_MS)
    await patient_reaches_waiting_room(patient, link, design_shots / "clinic-join")
    await expect(sam.locator(".badge")).to_have_text("Waiting")
    await expect(sam.get_by_text(re.compile(r"since .*\("))).to_be_visible()
    await expect(sam.get_by_text("No questionnaire yet")).to_be_visible()

    # The PHQ-9 in the waiting room: every item, standard answers, a note at item 9.
    await patient.get_by_text("Mood (PHQ-9)").click()
    form = patient.locator(".questionnaire__form").first
    items = form.locator("fieldset")
    await expect(items).to_have_count(9)
    await expect(items.nth(8)).to_contain_text("better off dead")
    await expect(items.nth(8).get_by_text(re.compile("call or text 988"))).to_be_visible()
    # Sending with a question unanswered says which one.
    for index in range(8):
        await items.nth(index).get_by_label(answer_text(PHQ9[index]), exact=True).check()
    await form.get_by_role("button", name="Send my PHQ-9 answers").click()
    await expect(form.get_by_text("(question 9)")).to_be_visible()
    await items.nth(8).get_by_label(answer_text(PHQ9[8]), exact=True).check()
    await patient.screenshot(path=design_shots / "clinic-waiting-room-phq9.png", full_page=True)
    await form.get_by_role("button", name="Send my PHQ-9 answers").click()
    await expect(patient.get_by_text("Mood (PHQ-9): sent. Thank you.")).to_be_visible()
    await expect(patient.get_by_text("Thank you for telling us about thoughts")).to_be_visible()

    # The board, without a reload: the score with its band, and the safety flag first.
    await expect(rows.first).to_contain_text("Sam Lee")
    await expect(sam.locator(".score")).to_contain_text("PHQ-9")
    await expect(sam.locator(".score__total")).to_have_text("14/27")
    await expect(sam.locator(".score__band")).to_have_text("Moderate")
    await expect(sam.locator(".flag--safety")).to_be_visible()
    await expect(sam).to_contain_text("PHQ-9 item 9: “Several days”")
    await expect(
        doctor.get_by_role("alert").filter(has_text="1 patient has a safety flag")
    ).to_be_visible()

    # Running late reaches the waiting room.
    await doctor.get_by_label("Running about").select_option("10")
    await doctor.get_by_role("button", name="Tell waiting patients").click()
    await expect(doctor.get_by_text("Told 1 waiting person")).to_be_visible()
    await expect(patient.get_by_text("running about 10 minutes late")).to_be_visible()
    await doctor.screenshot(path=design_shots / "clinic-board.png", full_page=True)
    await patient.screenshot(path=design_shots / "clinic-waiting-room-notice.png", full_page=True)

    # Admit: the psychiatrist lands in the visit and the patient is let into the call.
    await sam.get_by_role("link", name="Admit Sam Lee").click()
    await expect(doctor).to_have_url(re.compile(rf"/visit/{bookings[0]['visit_id']}$"))
    await expect(patient.get_by_label("Video of Dr.Rivera")).to_be_attached(
        timeout=MEDIA_TIMEOUT_MS
    )
    await expect(patient.get_by_role("heading", name="You're in the waiting room")).to_have_count(0)
    await expect(doctor.get_by_text("In the call with Sam L.")).to_be_visible(
        timeout=MEDIA_TIMEOUT_MS
    )

    # Back on the board, Sam is in the visit.
    await doctor.goto(str(live_app.make_url(f"/clinics/{session['id']}")))
    await expect(sam.locator(".badge")).to_have_text("In the visit")


def answer_text(value: int) -> str:
    return ["Not at all", "Several days", "More than half the days", "Nearly every day"][value]


async def test_a_care_manager_sees_the_bookings_moves_and_cancels_one(
    live_app: LiveApp, clinic: Clinic, open_page: OpenPage, design_shots: Path
) -> None:
    session, _bookings, _link = await book_clinic(clinic)
    page = await open_page(viewport=DESKTOP)
    await sign_in_browser(page, live_app, "cm.patel")
    await page.get_by_role("link", name="Clinic sessions").click()
    sessions = page.get_by_role("region", name="Upcoming sessions")
    await expect(sessions.get_by_text("Dr.Rivera")).to_be_visible()
    await sessions.get_by_role("link", name="Bookings for Thursday medication clinic").click()
    await expect(page).to_have_url(re.compile(rf"/clinics\?session={session['id']}$"))
    bookings = page.get_by_role("region", name=re.compile("Bookings · Thursday"))
    rows = bookings.locator("tbody tr")
    await expect(rows).to_have_count(3)
    await expect(rows.filter(has_text="Lena Fischer")).to_contain_text("no email address")
    await expect(rows.filter(has_text="Sam Lee")).to_contain_text("Invitation sent")

    await bookings.get_by_role("button", name="Cancel (Maya Okoro)").click()
    await bookings.get_by_role("button", name="Cancel the booking").click()
    await expect(bookings.get_by_text("Maya Okoro's booking at")).to_be_visible()
    await expect(rows.filter(has_text="Free")).to_have_count(1)

    await bookings.get_by_role("button", name="Move (Lena Fischer)").click()
    await bookings.get_by_role("button", name="Move booking").click()
    await expect(bookings.get_by_text("Lena Fischer moved to")).to_be_visible()
    await expect(rows.nth(1)).to_contain_text("Lena Fischer")
    await page.screenshot(path=design_shots / "clinic-bookings.png", full_page=True)

    # A minute past Sam's slot (the first) and he has not arrived: the care manager marks him a
    # no-show from the board, after a confirmation; the psychiatrist's live board follows.
    clinic.clock.advance(6 * 60)
    doctor = await open_page(viewport=DESKTOP)
    await sign_in_browser(doctor, live_app, "dr.rivera")
    await doctor.goto(str(live_app.make_url(f"/clinics/{session['id']}")))
    await expect(doctor.get_by_text("Live", exact=True)).to_be_visible()
    doctor_sam = doctor.locator(".board__row").filter(has_text="Sam Lee")
    await expect(doctor_sam.locator(".badge")).to_have_text("Not arrived")

    await page.goto(str(live_app.make_url(f"/clinics/{session['id']}")))
    board = page.locator(".board__row")
    await expect(board).to_have_count(2)
    # Lena's slot has not started: nothing to mark yet.
    await expect(page.get_by_role("button", name=re.compile("^Mark no-show"))).to_have_count(1)
    await page.get_by_role("button", name="Mark no-show Sam Lee").click()
    await expect(page.get_by_text("Mark Sam Lee as a no-show for")).to_be_visible()
    await page.get_by_role("button", name="Keep waiting").click()
    await expect(page.get_by_text("Mark Sam Lee as a no-show for")).to_have_count(0)
    await page.get_by_role("button", name="Mark no-show Sam Lee").click()
    await page.screenshot(path=design_shots / "clinic-board-no-show.png", full_page=True)
    await page.get_by_role("button", name="Mark as no-show").click()
    await expect(page.get_by_text("Sam Lee is marked as a no-show")).to_be_visible()
    await expect(board.filter(has_text="Sam Lee").locator(".badge")).to_have_text("No-show")
    # Marked by a person, who is named (an automatic marking says it was not checked in).
    await expect(board.filter(has_text="Sam Lee").locator(".board__since")).to_have_text(
        "marked by Cm.Patel"
    )
    await expect(page.get_by_role("button", name=re.compile("^Mark no-show"))).to_have_count(0)
    await expect(doctor_sam.locator(".badge")).to_have_text("No-show")
