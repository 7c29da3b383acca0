// Unit tests of the clinics' and registry's pure client logic: the questionnaires' items and
// bands (against the published instruments), answer checking, the caseload's sort and filter,
// change wording and the chart's geometry. The browser paths are covered by
// tests/e2e/test_clinic_board.py and test_registry_page.py.

import assert from "node:assert/strict";
import { test } from "node:test";

import { caseloadView, changeText, chartGeometry, daysAgo, shiftMonth } from "../src/clinics/format.js";
import { checkAnswers, INSTRUMENTS, maxTotal, severityOf } from "../src/clinics/instruments.js";
import { latestOnly } from "../src/pages/registry.js";

test("the instruments have the published number of items and maxima", () => {
  assert.equal(INSTRUMENTS.phq9.items.length, 9);
  assert.equal(INSTRUMENTS.gad7.items.length, 7);
  assert.equal(maxTotal("phq9"), 27);
  assert.equal(maxTotal("gad7"), 21);
  assert.match(INSTRUMENTS.phq9.items[8], /better off dead/);
});

test("severity bands change at their published lower bounds", () => {
  const phq = [0, 4, 5, 9, 10, 14, 15, 19, 20, 27].map((t) => severityOf("phq9", t));
  assert.deepEqual(phq, ["minimal", "minimal", "mild", "mild", "moderate", "moderate", "moderately_severe", "moderately_severe", "severe", "severe"]);
  const gad = [4, 5, 10, 14, 15, 21].map((t) => severityOf("gad7", t));
  assert.deepEqual(gad, ["minimal", "mild", "moderate", "moderate", "severe", "severe"]);
});

test("a form with an unanswered item names it; a complete one gives the answers", () => {
  assert.deepEqual(checkAnswers("gad7", [0, 1, 2, 3, null, 1, 1]), { ok: false, missing: [5] });
  assert.deepEqual(checkAnswers("gad7", [0, 1, 2, 3, 0, 1]), { ok: false, missing: [7] });
  assert.deepEqual(checkAnswers("gad7", [0, 1, 2, 3, 0, 1, 4]), { ok: false, missing: [7] });
  assert.deepEqual(checkAnswers("gad7", [0, 1, 2, 3, 0, 1, 1]), { ok: true, answers: [0, 1, 2, 3, 0, 1, 1] });
});

test("a change from baseline reads as better, worse or the same", () => {
  assert.deepEqual(changeText(-45), { text: "−45%", tone: "better" });
  assert.deepEqual(changeText(16.7), { text: "+17%", tone: "worse" });
  assert.deepEqual(changeText(0.2), { text: "0%", tone: "same" });
  assert.deepEqual(changeText(null), { text: "—", tone: "none" });
  assert.equal(daysAgo(null), "never");
  assert.equal(daysAgo(1), "yesterday");
  assert.equal(daysAgo(12), "12 days ago");
});

/** @returns {import('../src/clinics/format.js').CaseloadRow} */
function row(id, family, flags, phqLatest, change, days) {
  const trend = { baseline: phqLatest === null ? null : 20, latest: phqLatest, count: phqLatest === null ? 0 : 2, change_percent: change };
  return {
    patient_id: id, mrn: `R${id}`, given_name: "P", family_name: family, phq9: trend,
    gad7: { baseline: null, latest: null, count: 0, change_percent: null }, weeks_in_treatment: 4,
    last_contact: null, days_since_contact: days, flags, not_improving: [], open_safety_flags: 0, open_tasks: 0,
  };
}

const CASELOAD = [
  row(1, "Ames", [], 8, -60, 3),
  row(2, "Bell", ["overdue_contact"], null, null, null),
  row(3, "Cole", ["not_improving", "overdue_contact"], 15, -25, 40),
  row(4, "Dunn", ["safety"], 14, 10, 1),
];
const names = (rows) => rows.map((r) => r.family_name);

test("by default flagged patients come first, safety before the rest", () => {
  assert.deepEqual(names(caseloadView(CASELOAD, {})), ["Dunn", "Cole", "Bell", "Ames"]);
});

test("patients without a value stay last whichever way a column is sorted", () => {
  assert.deepEqual(names(caseloadView(CASELOAD, { sort: "change" })), ["Dunn", "Cole", "Ames", "Bell"]);
  assert.deepEqual(names(caseloadView(CASELOAD, { sort: "change", reverse: true })), ["Ames", "Cole", "Dunn", "Bell"]);
  // Never contacted is the most overdue.
  assert.deepEqual(names(caseloadView(CASELOAD, { sort: "last_contact" })), ["Bell", "Cole", "Ames", "Dunn"]);
});

test("the caseload filters by flag and by name or MRN", () => {
  assert.deepEqual(names(caseloadView(CASELOAD, { flag: "overdue_contact" })), ["Cole", "Bell"]);
  assert.deepEqual(names(caseloadView(CASELOAD, { flag: "any", sort: "name" })), ["Bell", "Cole", "Dunn"]);
  assert.deepEqual(names(caseloadView(CASELOAD, { query: "r1" })), ["Ames"]);
  assert.deepEqual(names(caseloadView(CASELOAD, { query: "dun" })), ["Dunn"]);
});

test("the chart puts points by time and score inside its box", () => {
  const box = { width: 700, height: 300, left: 40, right: 20, top: 20, bottom: 40 };
  const day = 86_400_000;
  const now = Date.UTC(2025, 5, 1);
  const at = (daysAgo) => new Date(now - daysAgo * day).toISOString();
  const g = chartGeometry({ phq9: [{ total: 27, administered_at: at(0) }, { total: 0, administered_at: at(70) }], gad7: [] }, box, now);
  // Sorted oldest first; the oldest at the left edge, the newest at the right.
  assert.deepEqual(g.phq9.map((p) => [p.x, p.y]), [[40, 260], [680, 20]]);
  assert.equal(g.gad7.length, 0);
  assert.equal(g.ticks[0].label, "0");
  assert.equal(g.ticks.at(-1).label, "10");
  // A single score still gets a week-wide axis.
  const one = chartGeometry({ phq9: [{ total: 9, administered_at: at(0) }], gad7: [] }, box, now);
  assert.ok(Number.isFinite(one.phq9[0].x) && one.phq9[0].x === 40);
});

test("months step across the year's end", () => {
  assert.equal(shiftMonth("2025-01", -1), "2024-12");
  assert.equal(shiftMonth("2024-12", 1), "2025-01");
});

test("of overlapping loads, only the one started last may draw, whatever order they end in", () => {
  const next = latestOnly();
  const first = next();
  assert.equal(first(), true);
  const second = next();
  // The first answer arriving after the second was asked for is stale, even if it comes first.
  assert.equal(first(), false);
  assert.equal(second(), true);
  const third = next();
  assert.equal(second(), false);
  assert.equal(third(), true);
  // Each list of tasks keeps its own count.
  assert.equal(latestOnly()()(), true);
  assert.equal(third(), true);
});
