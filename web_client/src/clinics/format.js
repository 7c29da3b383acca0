// Words, order and geometry for the clinic board and the registry. Pure (no DOM), unit-tested
// in test/clinics.test.js.

import { maxTotal, SEVERITY_LABEL } from "./instruments.js";

/** @typedef {import('./instruments.js').Instrument} Instrument */

/** The board's statuses (server/clinics/board.py BoardStatus). @type {Record<string, {label: string, badge: string}>} */
export const BOARD_STATUS = {
  scheduled: { label: "Not arrived", badge: "badge--plain" },
  waiting: { label: "Waiting", badge: "badge--attention" },
  in_visit: { label: "In the visit", badge: "badge--ok" },
  done: { label: "Done", badge: "badge--plain" },
  no_show: { label: "No-show", badge: "badge--off" },
  cancelled: { label: "Cancelled", badge: "badge--off" },
};

/** The registry's flags (server/clinics/registry.py Flag), in the order a reviewer reads them. */
export const FLAGS = /** @type {const} */ ({
  safety: { label: "Safety", long: "Safety: PHQ-9 item 9 or an open safety flag", badge: "flag--safety" },
  not_improving: { label: "Not improving", long: "Not improving", badge: "flag--lagging" },
  overdue_contact: { label: "Contact overdue", long: "Contact overdue", badge: "flag--overdue" },
});

/** "Moderately severe" for "moderately_severe". @param {string} severity */
export function severityLabel(severity) {
  return SEVERITY_LABEL[/** @type {import('./instruments.js').Severity} */ (severity)] ?? severity;
}

/**
 * A change from baseline in words: negative is better on both instruments.
 * @param {number | null | undefined} percent
 * @returns {{text: string, tone: "better" | "worse" | "same" | "none"}}
 */
export function changeText(percent) {
  if (percent === null || percent === undefined || !Number.isFinite(percent)) return { text: "—", tone: "none" };
  const rounded = Math.round(percent);
  if (rounded === 0) return { text: "0%", tone: "same" };
  return rounded < 0 ? { text: `−${-rounded}%`, tone: "better" } : { text: `+${rounded}%`, tone: "worse" };
}

/** "today", "yesterday", "12 days ago". @param {number | null | undefined} days */
export function daysAgo(days) {
  if (days === null || days === undefined) return "never";
  if (days <= 0) return "today";
  if (days === 1) return "yesterday";
  return `${days} days ago`;
}

/**
 * @typedef {object} Trend
 * @property {number | null} baseline
 * @property {number | null} latest
 * @property {number} count
 * @property {number | null} change_percent
 *
 * @typedef {object} CaseloadRow   the server's CaseloadRowOut
 * @property {number} patient_id
 * @property {string} mrn
 * @property {string} given_name
 * @property {string} family_name
 * @property {Trend} phq9
 * @property {Trend} gad7
 * @property {number | null} weeks_in_treatment
 * @property {string | null} last_contact
 * @property {number | null} days_since_contact
 * @property {(keyof typeof FLAGS)[]} flags
 * @property {string[]} not_improving
 * @property {number} open_safety_flags
 * @property {number} open_tasks
 */

const FLAG_ORDER = /** @type {(keyof typeof FLAGS)[]} */ (Object.keys(FLAGS));

/** A row's most urgent flag as a number (lower is more urgent; no flag is last). @param {CaseloadRow} row */
function urgency(row) {
  const ranks = row.flags.map((f) => FLAG_ORDER.indexOf(f)).filter((i) => i >= 0);
  return ranks.length ? Math.min(...ranks) : FLAG_ORDER.length;
}

const collator = new Intl.Collator(undefined, { sensitivity: "base" });
/** @param {CaseloadRow} row */
const nameOf = (row) => `${row.family_name} ${row.given_name}`;

/**
 * Sort keys of the caseload table: the value a row sorts by, and whether the largest comes
 * first by default. Rows without a value (no score yet) stay last in either direction.
 * @type {Record<string, {value: (r: CaseloadRow) => number | string | null, largestFirst: boolean}>}
 */
export const SORTS = {
  flags: { value: (r) => urgency(r) * 10 - r.flags.length, largestFirst: false },
  name: { value: nameOf, largestFirst: false },
  phq9: { value: (r) => r.phq9.latest, largestFirst: true },
  gad7: { value: (r) => r.gad7.latest, largestFirst: true },
  change: { value: (r) => r.phq9.change_percent, largestFirst: true },
  gad7_change: { value: (r) => r.gad7.change_percent, largestFirst: true },
  weeks: { value: (r) => r.weeks_in_treatment, largestFirst: true },
  // Never contacted is the most overdue of all.
  last_contact: { value: (r) => r.days_since_contact ?? Number.POSITIVE_INFINITY, largestFirst: true },
};

/**
 * The caseload as the table shows it: filtered by flag and by name or MRN, then sorted (ties
 * by name; `reverse` flips the default direction).
 * @param {CaseloadRow[]} rows
 * @param {{sort?: string, reverse?: boolean, flag?: string, query?: string}} view
 */
export function caseloadView(rows, { sort = "flags", reverse = false, flag = "", query = "" }) {
  const needle = query.trim().toLowerCase();
  const key = SORTS[sort] ?? SORTS.flags;
  const sign = (key.largestFirst ? -1 : 1) * (reverse ? -1 : 1);
  const kept = rows.filter(
    (row) =>
      (flag === "" || (flag === "any" ? row.flags.length > 0 : row.flags.includes(/** @type {any} */ (flag)))) &&
      (needle === "" || `${row.given_name} ${row.family_name} ${row.mrn}`.toLowerCase().includes(needle)),
  );
  return kept
    .map((row) => ({ row, value: key.value(row) }))
    .sort((x, y) => {
      const xMissing = x.value === null || x.value === undefined;
      const yMissing = y.value === null || y.value === undefined;
      if (xMissing || yMissing) return xMissing === yMissing ? collator.compare(nameOf(x.row), nameOf(y.row)) : xMissing ? 1 : -1;
      const order = typeof x.value === "string" ? collator.compare(x.value, String(y.value)) : Number(x.value) - Number(y.value);
      return order * sign || collator.compare(nameOf(x.row), nameOf(y.row));
    })
    .map((x) => x.row);
}

/**
 * @typedef {{total: number, administered_at: string}} ScorePoint
 * @typedef {{x: number, y: number, total: number, at: string}} PlotPoint
 */

/**
 * Where a chart of scores over time puts each point, the severity bands and the time axis.
 * Pure geometry for an SVG of `width` x `height` user units with room for axes.
 *
 * @param {{phq9: ScorePoint[], gad7: ScorePoint[]}} scores
 * @param {{width: number, height: number, left: number, right: number, top: number, bottom: number}} box
 * @param {number} [now]  the right end of the axis is the later of this and the newest score
 */
export function chartGeometry(scores, box, now = Date.now()) {
  const all = [...scores.phq9, ...scores.gad7].map((p) => new Date(p.administered_at).getTime());
  const plotW = box.width - box.left - box.right;
  const plotH = box.height - box.top - box.bottom;
  const maxY = maxTotal("phq9");
  const first = all.length ? Math.min(...all) : now;
  const last = Math.max(now, ...all);
  // At least a week wide, so one score or a burst on one day still reads as a time axis.
  const span = Math.max(last - first, 7 * 86_400_000);
  /** @param {number} t */
  const x = (t) => box.left + ((t - first) / span) * plotW;
  /** @param {number} v */
  const y = (v) => box.top + plotH - (v / maxY) * plotH;
  /** @param {ScorePoint[]} points @returns {PlotPoint[]} */
  const plot = (points) =>
    [...points]
      .sort((a, b) => new Date(a.administered_at).getTime() - new Date(b.administered_at).getTime())
      .map((p) => ({ x: round(x(new Date(p.administered_at).getTime())), y: round(y(p.total)), total: p.total, at: p.administered_at }));
  const weeks = span / (7 * 86_400_000);
  const stepWeeks = weeks <= 8 ? 1 : weeks <= 20 ? 2 : weeks <= 52 ? 4 : 8;
  const ticks = [];
  for (let w = 0; w * 7 * 86_400_000 <= span + 1; w += stepWeeks) {
    ticks.push({ x: round(x(first + w * 7 * 86_400_000)), label: `${w}` });
  }
  return {
    phq9: plot(scores.phq9),
    gad7: plot(scores.gad7),
    y,
    ticks,
    // The PHQ-9 bands behind the lines: minimal below 5, mild, moderate from 10, severe from 15.
    bands: [
      { from: 0, to: 5, name: "minimal" },
      { from: 5, to: 10, name: "mild" },
      { from: 10, to: 15, name: "moderate" },
      { from: 15, to: maxY, name: "severe" },
    ].map((b) => ({ ...b, y: round(y(b.to)), height: round(y(b.from) - y(b.to)) })),
    maxY,
  };
}

/** @param {number} n */
function round(n) {
  return Math.round(n * 10) / 10;
}

/** "2025-03" for the month containing a date, in the viewer's calendar. @param {Date} [d] */
export function monthOf(d = new Date()) {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}`;
}

/** The month before or after "YYYY-MM". @param {string} month @param {number} delta */
export function shiftMonth(month, delta) {
  const [y, m] = month.split("-").map(Number);
  const d = new Date(y, m - 1 + delta, 1);
  return monthOf(d);
}

/** "March 2025" for "2025-03". @param {string} month */
export function monthName(month) {
  const [y, m] = month.split("-").map(Number);
  return new Intl.DateTimeFormat(undefined, { month: "long", year: "numeric" }).format(new Date(y, m - 1, 1));
}
