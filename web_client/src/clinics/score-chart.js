// A patient's PHQ-9 and GAD-7 totals over time as an inline SVG (no chart library): one line
// per instrument over the PHQ-9 severity bands, weeks in treatment along the bottom, every point
// labelled with its total. The same figures follow as a table for screen readers and print.

import { h } from "../dom.js";
import { chartGeometry, severityLabel } from "./format.js";
import { INSTRUMENTS, severityOf } from "./instruments.js";

const NS = "http://www.w3.org/2000/svg";
const BOX = { width: 720, height: 280, left: 40, right: 16, top: 16, bottom: 40 };
const DATE = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric" });

/**
 * @param {string} tag
 * @param {Record<string, string | number>} [attrs]
 * @param {...(SVGElement | string)} children
 */
function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const child of children) el.append(child);
  return el;
}

/**
 * @param {{phq9: import('./format.js').ScorePoint[], gad7: import('./format.js').ScorePoint[]}} scores
 * @param {string} patientName
 */
export function scoreChart(scores, patientName) {
  if (!scores.phq9.length && !scores.gad7.length) {
    return h("p", { class: "section__empty", text: "No PHQ-9 or GAD-7 recorded yet." });
  }
  const g = chartGeometry(scores, BOX);
  const plotRight = BOX.width - BOX.right;
  const plotBottom = BOX.height - BOX.bottom;
  const drawing = svg(
    "svg",
    { class: "scorechart__svg", viewBox: `0 0 ${BOX.width} ${BOX.height}`, role: "img", "aria-label": `PHQ-9 and GAD-7 scores of ${patientName} over time; the figures are in the table below.` },
    ...g.bands.map((b) => svg("rect", { class: `scorechart__band scorechart__band--${b.name}`, x: BOX.left, y: b.y, width: plotRight - BOX.left, height: b.height })),
    ...[0, 5, 10, 15, 20, 27].map((v) =>
      svg("g", {}, svg("line", { class: "scorechart__grid", x1: BOX.left, x2: plotRight, y1: g.y(v), y2: g.y(v) }), svg("text", { class: "scorechart__ylabel", x: BOX.left - 8, y: g.y(v) + 4, "text-anchor": "end" }, String(v))),
    ),
    ...g.ticks.map((t) => svg("text", { class: "scorechart__xlabel", x: t.x, y: plotBottom + 18, "text-anchor": "middle" }, t.label)),
    svg("text", { class: "scorechart__axis", x: (BOX.left + plotRight) / 2, y: BOX.height - 4, "text-anchor": "middle" }, "Weeks since the first score"),
    ...line(g.gad7, "gad7"),
    ...line(g.phq9, "phq9"),
  );
  const legend = h(
    "ul",
    { class: "scorechart__legend" },
    h("li", { class: "scorechart__key scorechart__key--phq9", text: "PHQ-9 (depression, 0–27)" }),
    h("li", { class: "scorechart__key scorechart__key--gad7", text: "GAD-7 (anxiety, 0–21)" }),
    h("li", { class: "scorechart__key scorechart__key--bands", text: "Shading: PHQ-9 bands (minimal < 5, mild, moderate ≥ 10, severe ≥ 15)" }),
  );
  const rows = [...scores.phq9.map((p) => ({ ...p, instrument: "phq9" })), ...scores.gad7.map((p) => ({ ...p, instrument: "gad7" }))].sort(
    (a, b) => new Date(b.administered_at).getTime() - new Date(a.administered_at).getTime(),
  );
  const table = h(
    "details",
    { class: "scorechart__table" },
    h("summary", { text: `All scores as a table (${rows.length})` }),
    h(
      "table",
      { class: "table" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Date" }), h("th", { scope: "col", text: "Questionnaire" }), h("th", { scope: "col", text: "Total" }), h("th", { scope: "col", text: "Severity" }))),
      h(
        "tbody",
        {},
        rows.map((r) => {
          const inst = /** @type {"phq9" | "gad7"} */ (r.instrument);
          return h("tr", {}, h("td", { text: DATE.format(new Date(r.administered_at)) }), h("td", { text: INSTRUMENTS[inst].name }), h("td", { text: String(r.total) }), h("td", { text: severityLabel(severityOf(inst, r.total)) }));
        }),
      ),
    ),
  );
  return h("figure", { class: "scorechart" }, drawing, h("figcaption", {}, legend), table);
}

/** @param {import('./format.js').PlotPoint[]} points @param {string} kind */
function line(points, kind) {
  if (!points.length) return [];
  const path = points.map((p, i) => `${i ? "L" : "M"}${p.x} ${p.y}`).join(" ");
  return [
    svg("path", { class: `scorechart__line scorechart__line--${kind}`, d: path }),
    ...points.map((p) =>
      svg(
        "g",
        {},
        svg("circle", { class: `scorechart__dot scorechart__dot--${kind}`, cx: p.x, cy: p.y, r: 4.5 }),
        svg("text", { class: `scorechart__value scorechart__value--${kind}`, x: p.x, y: p.y - 9, "text-anchor": "middle" }, String(p.total)),
      ),
    ),
  ];
}
