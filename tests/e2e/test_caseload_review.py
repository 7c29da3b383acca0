"""The systematic caseload review in a real browser: the psychiatrist starts it from the
registry, meets the safety-flagged patient first, writes and signs the recommendation on the
caseload-review template, adds a follow-up tied to it, and moves on; the registry then shows the
task with the note it came from, and when the patient was last reviewed.

Screenshot (desktop, full page): test-artifacts/screenshots/caseload-review.png.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.e2e.conftest import LiveApp, OpenPage, fail_with_500
from tests.e2e.test_video_visit import DESKTOP, assert_fits_width, sign_in_browser
from tests.integration.test_registry_api import enrol, history, log_contact, phq
from tests.integration.visit_support import Clinic

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


async def test_the_psychiatrist_reviews_the_flagged_patients_safety_first(
    live_app: LiveApp, clinic: Clinic, open_page: OpenPage, design_shots: Path
) -> None:
    lagging = await enrol(clinic, given_name="Ana", family_name="Lag", mrn="V1")
    quiet = await enrol(clinic, given_name="Eli", family_name="Quiet", mrn="V2")
    unsafe = await enrol(clinic, given_name="Di", family_name="Safe", mrn="V3")
    well = await enrol(clinic, given_name="Ben", family_name="Well", mrn="V4")
    await history(
        clinic, lagging, ("phq9", phq(20), 84), ("gad7", [2] * 7, 84), ("phq9", phq(15), 2)
    )
    await history(clinic, quiet, ("phq9", phq(9), 40))
    await history(clinic, unsafe, ("phq9", phq(12), 21), ("phq9", phq(14, item9=2), 2))
    await history(clinic, well, ("phq9", phq(18), 30), ("phq9", phq(6), 2))
    await log_contact(clinic, quiet, 15, days_ago=40)
    for pid in (lagging, unsafe, well):
        await log_contact(clinic, pid, 20)

    page = await open_page(viewport=DESKTOP)
    await sign_in_browser(page, live_app, "dr.rivera")
    await page.goto(str(live_app.make_url("/registry")))
    await page.get_by_role("link", name="Start caseload review").click()
    await expect(page).to_have_url(re.compile(r"/registry/review\?patient=\d+$"))

    # Safety first; the patient without a flag is not in the review at all.
    bar = page.get_by_role("navigation", name="Review progress")
    await expect(bar.get_by_text("Patient 1 of 3")).to_be_visible()
    await expect(bar.locator(".review-step")).to_have_text(
        [re.compile("Di Safe"), re.compile("Ana Lag"), re.compile("Eli Quiet")]
    )
    patient = page.locator(".review-patient")
    await expect(patient.locator(".review-patient__name")).to_have_text("Di Safe")
    await expect(patient.locator(".flag--safety")).to_be_visible()
    await expect(patient.get_by_text("12 → 14")).to_be_visible()
    await expect(patient.get_by_role("img", name=re.compile("scores of Di Safe"))).to_be_visible()
    await expect(patient.locator(".stat").filter(has_text="Last reviewed")).to_contain_text("never")

    # The recommendation: the editor opens on the caseload-review template.
    editor = page.get_by_role("region", name="Note editor")
    await expect(editor.get_by_label("Template")).to_have_value("caseload_review")
    await editor.get_by_role("button", name="Start note").click()
    await editor.get_by_label("Current status and scores").fill(
        "PHQ-9 12 to 14 in 3 weeks; item 9 answered 'more than half the days'."
    )
    await editor.get_by_label("Summary").fill("Add a safety plan visit; start sertraline.")
    await editor.get_by_label("Medication").fill("Sertraline 25 mg daily for 1 week, then 50 mg.")
    await editor.get_by_label("Safety plan addressed").select_option("yes")
    await editor.get_by_label("Follow-up").fill("Care manager calls within 48 hours.")
    await editor.get_by_role("button", name="Sign note").click()
    await expect(editor.locator(".badge--ok")).to_have_text("Signed")
    await expect(bar.locator(".review-step--reviewed")).to_have_count(1)
    await expect(patient.locator(".stat").filter(has_text="Last reviewed")).not_to_contain_text(
        "never"
    )

    # A follow-up tied to the signed recommendation, owned by the care manager.
    tasks = page.get_by_role("region", name="Follow-up tasks")
    await tasks.get_by_text("Add a follow-up").click()
    await expect(tasks.get_by_label(re.compile("From the caseload review"))).to_be_checked()
    await tasks.get_by_label("Follow-up", exact=True).fill("Call Di about the safety plan")
    await tasks.get_by_label("Owner").select_option(str(clinic.care_manager.user_id))
    await tasks.get_by_role("button", name="Add follow-up").click()
    task = tasks.locator(".tasks__item").filter(has_text="Call Di about the safety plan")
    await expect(task.get_by_role("link", name=re.compile("Caseload review"))).to_be_visible()
    await assert_fits_width(page, DESKTOP["width"])
    await page.evaluate("window.scrollTo(0, 0)")  # the progress bar sticks to the top
    await page.screenshot(path=design_shots / "caseload-review.png", full_page=True)

    # On to the next patient, by keyboard: the position says who, and the focus goes to their
    # name (not to the page's body, as a rebuilt bar or a disabled button would leave it).
    await bar.get_by_role("button", name="Next patient").focus()
    await page.keyboard.press("Enter")
    await expect(bar.locator(".review-bar__position")).to_have_text("Patient 2 of 3: Ana Lag")
    await expect(patient.locator(".review-patient__name")).to_have_text("Ana Lag")
    await expect(patient.locator(".review-patient__name")).to_be_focused()
    # Previous to the first patient disables Previous: the focus still lands on the name.
    await bar.get_by_role("button", name="Previous").focus()
    await page.keyboard.press("Enter")
    await expect(bar.get_by_role("button", name="Previous")).to_be_disabled()
    await expect(patient.locator(".review-patient__name")).to_have_text("Di Safe")
    await expect(patient.locator(".review-patient__name")).to_be_focused()
    await bar.locator(".review-step").nth(1).focus()
    await page.keyboard.press("Enter")
    await expect(patient.locator(".review-patient__name")).to_be_focused()
    await expect(bar.get_by_text("Patient 2 of 3")).to_be_visible()
    await expect(patient.get_by_text("Not improving", exact=True)).to_be_visible()
    await expect(
        page.get_by_role("region", name="Note editor").get_by_label("Template")
    ).to_have_value("caseload_review")
    await expect(page).to_have_url(re.compile(rf"/registry/review\?patient={lagging}$"))

    # The registry's patient view shows the task with the note it came from.
    await page.goto(str(live_app.make_url(f"/registry/{unsafe}")))
    task = page.locator(".tasks__item").filter(has_text="Call Di about the safety plan")
    link = task.get_by_role("link", name=re.compile("Caseload review recommendation"))
    await expect(link).to_have_attribute("href", re.compile(rf"^/patients/{unsafe}\?note=\d+$"))
    # "From: ..." opens that very note on the chart, its heading focused.
    await link.click()
    await expect(page).to_have_url(re.compile(rf"/patients/{unsafe}\?note=\d+$"))
    opened = page.get_by_role("region", name="Note editor")
    heading = opened.get_by_role("heading", name="Caseload review recommendation")
    await expect(heading).to_be_focused()
    await expect(opened).to_contain_text("Sertraline 25 mg daily")
    await expect(page.locator(".chart__note[aria-current=true]")).to_have_count(1)
    # A note the reader can't see (or that does not exist) is said plainly.
    await page.goto(str(live_app.make_url(f"/patients/{unsafe}?note=999999")))
    await expect(page.get_by_role("alert").filter(has_text="can't be shown")).to_be_visible()
    await expect(
        page.get_by_role("region", name="Note editor").get_by_label("Template")
    ).to_be_visible()
    await page.goto(str(live_app.make_url("/registry")))
    row = page.locator("table.registry tbody tr").filter(has_text="Di Safe")
    await expect(row.locator("td").nth(8)).not_to_have_text("never")
    other = page.locator("table.registry tbody tr").filter(has_text="Ana Lag")
    await expect(other.locator("td").nth(8)).to_have_text("never")

    # The care manager walks the same queue: the signed recommendation to read, no editor. The
    # first time, the note itself fails to load: they are told, and can check again.
    cm = await open_page(viewport=DESKTOP)
    await sign_in_browser(cm, live_app, "cm.patel")
    await cm.route("**/api/v1/notes/*", fail_with_500)
    await cm.goto(str(live_app.make_url("/registry/review")))
    await expect(cm.locator(".review-patient__name")).to_have_text("Di Safe")
    recommendation = cm.locator(".review-note")
    await expect(recommendation.get_by_role("alert")).to_contain_text(
        "The recommendation could not be loaded. Liaison had a problem on its side."
    )
    await cm.unroute("**/api/v1/notes/*", fail_with_500)
    await recommendation.get_by_role("button", name="Check again").click()
    await expect(recommendation).to_contain_text("Caseload review recommendation")
    await expect(recommendation).to_contain_text("Sertraline 25 mg daily")
    await expect(cm.get_by_role("region", name="Note editor")).to_have_count(0)
    # Signed before the page was opened, it counts as reviewed, once however often checked.
    await recommendation.get_by_role("button", name="Check again").click()
    await expect(recommendation).to_contain_text("Sertraline 25 mg daily")
    cm_bar = cm.get_by_role("navigation", name="Review progress")
    await expect(cm_bar.locator(".review-step--reviewed")).to_have_text(re.compile("Di Safe"))
    await cm.get_by_role("button", name="Next patient").click()
    await expect(cm.locator(".review-note")).to_contain_text("has not signed")
    await cm.get_by_role("button", name="Next patient").click()
    await cm.get_by_role("button", name="Finish review").focus()
    await cm.keyboard.press("Enter")
    done = cm.get_by_role("region", name="Review finished")
    await expect(done.get_by_role("heading", name="Review finished")).to_be_focused()
    signed_group = done.locator(".stack-small").filter(has_text="Recommendation signed (1)")
    await expect(signed_group).to_contain_text("Di Safe")
    await expect(done).to_contain_text("Seen, no recommendation signed (2)")
    await expect(cm_bar.locator(".review-bar__position")).to_have_text("Review finished")
