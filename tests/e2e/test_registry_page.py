"""The collaborative-care registry in a real browser, on crafted score histories: the care
manager's caseload shows the flags (safety first), sorts and filters; one patient's page charts
the scores over time, logs a contact's minutes and adds and completes a follow-up task.

Screenshots (desktop, full page) go to test-artifacts/screenshots/ at the repo root.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.e2e.conftest import LiveApp, OpenPage
from tests.e2e.test_video_visit import DESKTOP, sign_in_browser
from tests.integration.test_registry_api import enrol, history, log_contact, phq
from tests.integration.visit_support import Clinic

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

GAD = [2, 2, 2, 1, 1, 1, 1]  # GAD-7 total 10


async def test_the_caseload_flags_sorts_filters_and_charts_a_patient(
    live_app: LiveApp, clinic: Clinic, open_page: OpenPage, design_shots: Path
) -> None:
    lagging = await enrol(clinic, given_name="Ana", family_name="Lag", mrn="R1")
    better = await enrol(clinic, given_name="Ben", family_name="Half", mrn="R2")
    unsafe = await enrol(clinic, given_name="Di", family_name="Safe", mrn="R4")
    quiet = await enrol(clinic, given_name="Eli", family_name="Quiet", mrn="R5")
    await history(
        clinic,
        lagging,
        ("phq9", phq(20), 84),
        ("gad7", GAD, 84),
        ("phq9", phq(17), 56),
        ("phq9", phq(15), 28),
        ("gad7", [1, 1, 1, 1, 1, 1, 1], 28),
        ("phq9", phq(13), 1),
    )  # 35 % better after 12 weeks: not improving
    await history(
        clinic,
        better,
        ("phq9", phq(18), 77),
        ("gad7", GAD, 77),
        ("phq9", phq(8), 3),
        ("gad7", [1, 1, 1, 1, 0, 0, 0], 3),
    )  # GAD-7 10 -> 4: 60 % better
    await history(clinic, unsafe, ("phq9", phq(12), 21), ("phq9", phq(14, item9=2), 2))
    await history(clinic, quiet, ("phq9", phq(9), 40))
    # Eli's last contact was 40 days ago: overdue.
    await log_contact(clinic, quiet, 15, days_ago=40)
    for pid in (lagging, better, unsafe):
        await log_contact(clinic, pid, 20)

    page = await open_page(viewport=DESKTOP)
    await sign_in_browser(page, live_app, "cm.patel")
    await page.get_by_role("link", name="Open the caseload registry").click()
    await expect(page).to_have_url(re.compile(r"/registry$"))
    rows = page.locator("table.registry tbody tr")
    await expect(rows).to_have_count(4)
    # Flags first: safety, then not improving, then overdue contact.
    await expect(rows.nth(0)).to_contain_text("Di Safe")
    await expect(rows.nth(0).locator(".flag--safety")).to_have_text("Safety")
    await expect(rows.nth(1)).to_contain_text("Ana Lag")
    await expect(rows.nth(1).locator(".flag")).to_have_text(["Not improving"])
    await expect(rows.nth(1)).to_contain_text("20 → 13")
    await expect(rows.nth(1)).to_contain_text("\N{MINUS SIGN}35%")  # the typographic minus
    headers = ["Patient", "Flags \N{BLACK DOWN-POINTING TRIANGLE}", "PHQ-9", "PHQ-9 change"]
    headers += ["GAD-7", "GAD-7 change", "Weeks", "Last contact", "Last reviewed", "Tasks"]
    await expect(page.locator("table.registry thead th")).to_have_text(headers)
    await expect(rows.nth(1).locator("td").nth(5)).to_have_text("\N{MINUS SIGN}30%")
    quiet_row = rows.filter(has_text="Eli Quiet")
    await expect(quiet_row.locator(".flag")).to_have_text(["Contact overdue"])
    await expect(rows.filter(has_text="Ben Half").locator(".flag")).to_have_count(0)
    await expect(page.get_by_text("Showing 4 of 4 patients.")).to_be_visible()
    await page.screenshot(path=design_shots / "registry.png", full_page=True)

    # Filter by a flag, by name, and sort by a column.
    await page.get_by_role("button", name="1 not improving").click()
    await expect(rows).to_have_count(1)
    await expect(page).to_have_url(re.compile(r"/registry\?flag=not_improving$"))
    await page.get_by_label("Show").select_option("")
    await page.get_by_label("Find").fill("R2")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("Ben Half")
    await page.get_by_label("Find").fill("")
    await page.get_by_role("button", name="PHQ-9 change").click()
    await expect(rows.first).to_contain_text("Di Safe")  # +17 %, the worst change first
    await page.get_by_role("button", name="PHQ-9 change").click()
    await expect(rows.first).to_contain_text("Ben Half")  # minus 56 %
    await page.get_by_role("button", name="GAD-7 change").click()
    await expect(rows.nth(0)).to_contain_text("Ana Lag")  # minus 30 %, the least improved
    await expect(rows.nth(1)).to_contain_text("Ben Half")  # minus 60 %
    await expect(page).to_have_url(re.compile(r"/registry\?sort=gad7_change$"))
    await page.get_by_role("button", name="GAD-7 change").click()
    await expect(rows.nth(0)).to_contain_text("Ben Half")

    # This month's minutes.
    minutes = page.get_by_role("region", name=re.compile("Care-management minutes"))
    await expect(minutes.locator("tfoot")).to_contain_text("60")

    # One patient: the chart, a contact, a follow-up task.
    await rows.filter(has_text="Ana Lag").get_by_role("link", name="Ana Lag").click()
    await expect(page).to_have_url(re.compile(rf"/registry/{lagging}$"))
    await expect(page.get_by_role("heading", level=1)).to_have_text("Ana Lag")
    chart = page.get_by_role("img", name=re.compile("PHQ-9 and GAD-7 scores of Ana Lag"))
    await expect(chart).to_be_visible()
    await expect(chart.locator(".scorechart__dot--phq9")).to_have_count(4)
    await expect(chart.locator(".scorechart__dot--gad7")).to_have_count(2)
    await expect(page.get_by_text("Not improving", exact=True)).to_be_visible()

    await page.get_by_label("Minutes", exact=True).fill("25")
    await page.get_by_label("Kind").select_option("caseload_review")
    await page.get_by_role("button", name="Log contact").click()
    await expect(page.get_by_text("25 minutes logged.")).to_be_visible()
    await expect(page.locator(".contacts__item").first).to_contain_text("Caseload review")

    await page.get_by_text("Add a follow-up").click()
    await page.get_by_label("Follow-up", exact=True).fill(
        "Psychiatrist: increase sertraline to 100 mg; PHQ-9 in 4 weeks"
    )
    await page.get_by_role("button", name="Add follow-up").click()
    task = page.locator(".tasks__item").filter(has_text="increase sertraline")
    await expect(task).to_contain_text("Due")
    await page.screenshot(path=design_shots / "registry-patient.png", full_page=True)
    await task.get_by_role("checkbox").check()
    await expect(task).to_contain_text("Done")
    await expect(page.get_by_role("link", name="Open the chart and notes")).to_have_attribute(
        "href", f"/patients/{lagging}"
    )
