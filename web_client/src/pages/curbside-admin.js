// The administrator's curbside page, /admin/curbside: how the service is doing over a period
// (time to answer, median and 90th percentile; the share of call-now requests that escalated or
// went unanswered; consult minutes), each consult's billing line with its flags, and the licence
// rule (ring only psychiatrists licensed where the patient is), and the on-call rota (everyone's
// shifts, added and removed here). No clinical content: ids, times and flags only, as the API
// gives them. The consult lines of the period shown download as CSV (audited on the server).

import { h, replaceChildren } from "../dom.js";
import { field, messageSlot } from "../forms.js";
import { messageFor } from "../messages.js";
import { rotaAdminSection } from "../curbside/rota.js";
import { MODE, percent, seconds, STATUS_LABEL, URGENCY } from "../curbside/status.js";

/** @typedef {import('../app.js').PageContext} PageContext */

const PERIODS = [
  { value: "7", label: "Last 7 days" },
  { value: "30", label: "Last 30 days" },
  { value: "90", label: "Last 90 days" },
  { value: "365", label: "Last 12 months" },
];
/** @type {Record<string, string>} */
const FLAGS = {
  no_consent: "No patient consent recorded",
  face_to_face_with_consultant: "Face-to-face visit with the consultant within the window",
  repeat_consult: "Second consult about this patient within the window",
  not_answered: "Never answered",
};

/** @type {import('../app.js').Page} */
export const curbsideAdminPage = {
  title: "Curbside metrics",
  access: "user",
  roles: ["admin"],
  layout: "frame",
  render(ctx) {
    return h(
      "div",
      { class: "page curbside__stack" },
      h(
        "div",
        { class: "page__head" },
        h("p", { class: "page__eyebrow", text: "Administration" }),
        h("h1", { text: "Curbside consults" }),
        h("p", { class: "page__lede", text: "How quickly requests are answered, what escalates, consult minutes and billing flags, the licence rule, and who is on call." }),
        h("p", { class: "visit__links" }, h("a", { href: "/admin", text: "Back to administration" })),
      ),
      metricsSection(ctx),
      rotaAdminSection(ctx),
      policySection(ctx),
    );
  },
};

/** @param {PageContext} ctx */
function metricsSection(ctx) {
  const period = field({ label: "Period", name: "period", type: "select", value: "30", options: PERIODS });
  const body = h("div", { class: "section__body stack" }, h("p", { class: "muted", role: "status", text: "Loading the figures…" }));
  period.input.addEventListener("change", () => load());

  async function load() {
    const days = Number(period.input.value);
    const since = new Date(Date.now() - days * 86_400_000).toISOString();
    try {
      const m = await ctx.api.get(`/admin/curbside/metrics?since=${encodeURIComponent(since)}`, { signal: ctx.signal });
      replaceChildren(body, figures(m), download(ctx, m), billing(m.consults));
    } catch (error) {
      if (!ctx.signal.aborted) replaceChildren(body, h("div", { class: "notice notice--error" }, h("p", { text: messageFor(error) })));
    }
  }
  load();
  return h(
    "section",
    { class: "card section", id: "metrics", "aria-labelledby": "metrics-heading" },
    h("div", { class: "section__head" }, h("h2", { id: "metrics-heading", class: "section__title", text: "Figures" }), h("div", { class: "form--compact" }, period.element)),
    body,
  );
}

/** @param {any} m */
function figures(m) {
  /** @param {string} label @param {string} value @param {string} [note] */
  const figure = (label, value, note) => h("div", { class: "curbside__figure" }, h("dt", { text: label }), h("dd", {}, h("span", { class: "curbside__figure-value", text: value }), note ? h("span", { class: "muted", text: note }) : null));
  const minutes = m.minutes_per_consult === null ? "—" : `${m.minutes_per_consult.toFixed(1)} min`;
  // A dash alone reads like a fault; say why there is no figure.
  const noCalls = m.call_now ? undefined : "No call-now requests in this period";
  const total = (m.consults ?? []).reduce((/** @type {number} */ sum, /** @type {any} */ c) => sum + (c.consultant_minutes ?? 0), 0);
  return h(
    "dl",
    { class: "curbside__figures" },
    // Three rows of three: how many, how fast, what escalated and what it cost.
    figure("Requests", String(m.requests), `${m.call_now} call now · ${m.written} written · ${m.cancelled} cancelled`),
    figure("Answered", String(m.answered)),
    figure("Requests still unanswered", percent(m.share_unanswered), "of those not cancelled"),
    figure("Time to answer, median", seconds(m.time_to_answer_median_s)),
    figure("Time to answer, 90th percentile", seconds(m.time_to_answer_p90_s)),
    figure("Ringing before an answer, median", seconds(m.ringing_median_s), noCalls),
    figure("Call-now requests that escalated to backup", percent(m.share_escalated), noCalls),
    figure("Call-now requests nobody took (went to writing)", percent(m.share_unanswered_then_written), noCalls),
    figure("Consultant minutes per consult", minutes, m.minutes_per_consult === null ? "No consult with recorded time in this period" : `${total.toFixed(1)} min in all (calls: talking and documenting; written: as attested, else the answer form’s time up to 240 min)`),
  );
}

/**
 * The consult lines of exactly the period shown, as the server answered for it. Fetched through
 * the API client (not a plain download link) so that a refusal or a failure is said on the page
 * in words, instead of a browser download error or an error body saved as a .csv file.
 * @param {PageContext} ctx @param {any} m
 */
function download(ctx, m) {
  const query = new URLSearchParams({ since: m.since, until: m.until });
  const button = h("button", { type: "button", class: "button button--quiet", text: "Download CSV" });
  const problem = h("div", { class: "message-slot", role: "alert" });
  button.addEventListener("click", async () => {
    if (button.getAttribute("aria-disabled") === "true") return;
    button.setAttribute("aria-disabled", "true");
    replaceChildren(problem);
    try {
      /** @type {Response} */
      const response = await ctx.api.get(`/admin/curbside/report.csv?${query}`, { signal: ctx.signal, raw: true });
      const url = URL.createObjectURL(await response.blob());
      const save = h("a", { href: url, download: csvFilename(response.headers.get("Content-Disposition")), hidden: true });
      document.body.append(save);
      save.click();
      save.remove();
      // The download has taken the data by the time this runs; the URL only holds memory.
      window.setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (error) {
      if (!ctx.signal.aborted) replaceChildren(problem, h("div", { class: "notice notice--error" }, h("p", { text: `The CSV could not be downloaded. ${messageFor(error)}` })));
    } finally {
      button.removeAttribute("aria-disabled");
    }
  });
  return h(
    "div",
    { class: "stack-small" },
    h(
      "p",
      { class: "form__actions" },
      button,
      h("span", { class: "muted", text: "One row per consult of this period: times, consultant minutes, consent and billing flags. No patient names or clinical content. Each download is recorded in the audit trail." }),
    ),
    problem,
  );
}

/** The file name the server gave (Content-Disposition), else a plain one. @param {string | null} disposition */
export function csvFilename(disposition) {
  const name = /filename="([^"]+)"/.exec(disposition ?? "")?.[1];
  return name && /^[\w.-]+$/.test(name) ? name : "curbside-report.csv";
}

/** A consult's minutes, and where they come from. @param {any} c */
function consultantMinutes(c) {
  if (c.consultant_minutes === null) return "—";
  const value = c.consultant_minutes.toFixed(1);
  const t = c.times ?? {};
  if (t.attested_minutes !== null && t.attested_minutes !== undefined) {
    return t.writing_s === null ? `${value} (attested)` : `${value} (attested; form open ${Math.round(t.writing_s / 60)} min)`;
  }
  if (t.talking_s === null && t.writing_s !== null) return `${value} (form open, not attested)`;
  return value;
}

/** @param {any[]} consults */
function billing(consults) {
  if (!consults.length) return h("p", { class: "muted", text: "No curbside requests in this period." });
  const flagged = consults.filter((c) => c.billing_flags.length).length;
  return h(
    "div",
    { class: "stack-small" },
    h("h3", { class: "subsection__title", text: "Consults and billing flags" }),
    h("p", { class: "muted", text: `${flagged} of ${consults.length} would not meet the billing rules for interprofessional consults.` }),
    h(
      "div",
      { class: "curbside__table-wrap" },
      h(
        "table",
        { class: "table" },
        h("thead", {}, h("tr", {}, ["Request", "Asked", "Kind", "Status", "Consultant minutes", "Billing flags"].map((t) => h("th", { scope: "col", text: t })))),
        h(
          "tbody",
          {},
          consults.map((c) =>
            h(
              "tr",
              {},
              h("td", { text: `#${c.id}` }),
              h("td", { text: new Date(c.created_at).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) }),
              h("td", { text: `${MODE[c.mode] ?? c.mode}, ${(URGENCY[c.urgency] ?? c.urgency).toLowerCase()}` }),
              h("td", { text: STATUS_LABEL[/** @type {import('../curbside/status.js').Status} */ (c.status)] ?? c.status }),
              h("td", { text: consultantMinutes(c) }),
              h("td", {}, c.billing_flags.length ? h("ul", { class: "curbside__flags" }, c.billing_flags.map((/** @type {string} */ f) => h("li", { text: FLAGS[f] ?? f }))) : h("span", { class: "badge badge--ok", text: "Billable" })),
            ),
          ),
        ),
      ),
    ),
  );
}

/** @param {PageContext} ctx */
function policySection(ctx) {
  const messages = messageSlot();
  const toggle = h("input", { id: "licence-rule", type: "checkbox", class: "checkbox__input", name: "require_license_match" });
  const state = h("p", { class: "muted" });
  const reset = h("button", { type: "button", class: "button button--quiet", text: "Use the configured setting", hidden: true });

  /** @param {{require_license_match: boolean, configured: boolean, overridden: boolean}} p */
  function show(p) {
    toggle.checked = p.require_license_match;
    state.textContent = p.overridden
      ? `Set here: ${p.require_license_match ? "on" : "off"} (the configuration says ${p.configured ? "on" : "off"}).`
      : `From the configuration (curbside.require_license_match): ${p.configured ? "on" : "off"}.`;
    reset.hidden = !p.overridden;
  }

  /** @param {boolean | null} value */
  async function save(value) {
    messages.clear();
    try {
      show(await ctx.api.put("/admin/curbside/policy", { require_license_match: value }, { signal: ctx.signal }));
      ctx.announce("Licence rule saved.");
    } catch (error) {
      if (!ctx.signal.aborted) messages.show("error", messageFor(error));
      load();
    }
  }
  function load() {
    ctx.api.get("/admin/curbside/policy", { signal: ctx.signal }).then(show, (error) => !ctx.signal.aborted && messages.show("error", messageFor(error)));
  }
  toggle.addEventListener("change", () => save(toggle.checked));
  reset.addEventListener("click", () => save(null));
  load();
  return h(
    "section",
    { class: "card section", id: "licence-rule-section", "aria-labelledby": "policy-heading" },
    h("h2", { id: "policy-heading", class: "section__title", text: "Licence rule" }),
    h("div", { class: "checkbox" }, toggle, h("label", { class: "checkbox__label", for: "licence-rule", text: "Ring only psychiatrists licensed in the state where the patient is" })),
    state,
    messages.element,
    reset,
  );
}
