// The collaborative-care registry. /registry: the caseload (baseline and latest PHQ-9 and GAD-7,
// change from baseline, weeks in treatment, last contact, flags: safety, not improving, contact
// overdue), sortable and filterable, and this month's care-management minutes.
// /registry/{patientId}: one patient's scores over time, contacts with minutes (log one), and
// follow-up tasks (add with a due date and an owner, complete; each shows the note it came from);
// notes live in the chart. The caseload review (/registry/review, registry-review.js) walks the
// flagged patients with the pieces exported here.

import { caseloadView, changeText, daysAgo, FLAGS, monthName, monthOf, shiftMonth } from "../clinics/format.js";
import { scoreChart } from "../clinics/score-chart.js";
import { h, replaceChildren } from "../dom.js";
import { field, messageSlot, submitButton } from "../forms.js";
import { messageFor } from "../messages.js";
import { noteHref } from "./chart.js";

/** @typedef {import('../app.js').PageContext} PageContext */
/** @typedef {import('../clinics/format.js').CaseloadRow} CaseloadRow */
/** @typedef {{user_id: number, display_name: string, role_on_team: string}} TeamMember */
/**
 * A note a follow-up task can come from (the registry's tasks accept its id as source_note_id).
 * @typedef {{id: number, title: string, author_name: string, signed_at: string | null}} SourceNote
 */

const COLUMNS = [
  { key: "name", label: "Patient" },
  { key: "flags", label: "Flags" },
  // Each change sits beside its scores, so the eye reads one instrument at a time.
  { key: "phq9", label: "PHQ-9" },
  { key: "change", label: "PHQ-9 change" },
  { key: "gad7", label: "GAD-7" },
  { key: "gad7_change", label: "GAD-7 change" },
  { key: "weeks", label: "Weeks" },
  { key: "last_contact", label: "Last contact" },
];
export const REVIEW_TEMPLATE = "caseload_review";
const CONTACT_KINDS = /** @type {Record<string, string>} */ ({
  phone: "Phone call",
  video: "Video",
  in_person: "In person",
  message: "Message",
  caseload_review: "Caseload review",
});
export const DAY = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric" });
const WHEN = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", hour: "numeric", minute: "2-digit" });

/** @type {import('../app.js').Page} */
export const registryPage = {
  title: "Caseload registry",
  access: "user",
  roles: ["care_manager", "psychiatrist"],
  layout: "frame",
  render(ctx) {
    const rest = (ctx.params.rest ?? "").replace(/\/$/, "");
    if (rest) {
      const id = Number(rest);
      if (!Number.isInteger(id) || id < 1) return h("div", { class: "page" }, h("h1", { text: "Patient not found" }), h("p", {}, h("a", { href: "/registry", text: "Back to the caseload" })));
      return patientView(ctx, id);
    }
    return caseloadPage(ctx);
  },
};

// --- the caseload ------------------------------------------------------------------------------

/** @param {PageContext} ctx */
function caseloadPage(ctx) {
  const params = ctx.url.searchParams;
  const view = { sort: params.get("sort") ?? "flags", reverse: params.get("dir") === "desc", flag: params.get("flag") ?? "", query: "" };
  const lede = h("p", { class: "page__lede", text: "Loading the caseload…" });
  const tally = h("div", { class: "registry__tally" });
  const search = h("input", { id: "registry-search", type: "search", class: "input", placeholder: "Name or MRN", autocomplete: "off" });
  const filter = h(
    "select",
    { id: "registry-flag", class: "input" },
    h("option", { value: "", text: "All patients" }),
    h("option", { value: "any", text: "Any flag" }),
    Object.entries(FLAGS).map(([value, f]) => h("option", { value, text: f.label })),
  );
  filter.value = view.flag;
  const table = h("div", { class: "table-wrap" });
  const count = h("p", { class: "muted registry__count", role: "status" });
  /** @type {CaseloadRow[]} */
  let rows = [];

  function draw() {
    const shown = caseloadView(rows, view);
    count.textContent = `Showing ${shown.length} of ${rows.length} patients.`;
    replaceChildren(table, shown.length ? caseloadTable(shown) : h("p", { class: "section__empty", text: rows.length ? "No patient matches." : "Nobody is on your caseload yet. Patients appear here when you are on their care team." }));
    const bits = Object.entries(FLAGS).map(([key, f]) => {
      const n = rows.filter((r) => r.flags.includes(/** @type {any} */ (key))).length;
      const button = h("button", { type: "button", class: `tally tally--${key}${view.flag === key ? " is-active" : ""}`, "aria-pressed": String(view.flag === key) }, h("strong", { text: String(n) }), ` ${f.label.toLowerCase()}`);
      button.addEventListener("click", () => setFlag(view.flag === key ? "" : key));
      return button;
    });
    replaceChildren(tally, bits);
  }

  /** @param {string} flag */
  function setFlag(flag) {
    view.flag = flag;
    filter.value = flag;
    keepInUrl();
    draw();
  }

  function keepInUrl() {
    const q = new URLSearchParams();
    if (view.sort !== "flags") q.set("sort", view.sort);
    if (view.reverse) q.set("dir", "desc");
    if (view.flag) q.set("flag", view.flag);
    const s = q.toString();
    window.history.replaceState(window.history.state, "", `/registry${s ? `?${s}` : ""}`);
  }

  /** @param {CaseloadRow[]} shown */
  function caseloadTable(shown) {
    return h(
      "table",
      { class: "table registry" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          COLUMNS.map((c) => {
            const active = view.sort === c.key;
            const button = h("button", { type: "button", class: "registry__sort" }, c.label, h("span", { class: "registry__arrow", "aria-hidden": "true", text: active ? (view.reverse ? " ▲" : " ▼") : "" }));
            button.addEventListener("click", () => {
              view.reverse = active ? !view.reverse : false;
              view.sort = c.key;
              keepInUrl();
              draw();
            });
            return h("th", { scope: "col", "aria-sort": active ? (view.reverse ? "ascending" : "descending") : null }, button);
          }),
          h("th", { scope: "col", class: "registry__plain", text: "Last reviewed" }),
          h("th", { scope: "col", text: "Tasks" }),
        ),
      ),
      h("tbody", {}, shown.map(caseloadRow)),
    );
  }

  filter.addEventListener("change", () => setFlag(filter.value));
  search.addEventListener("input", () => {
    view.query = search.value;
    draw();
  });

  ctx.api.get("/registry", { signal: ctx.signal }).then(
    (body) => {
      rows = body.patients;
      const r = body.rules;
      lede.textContent = `${rows.length} ${rows.length === 1 ? "patient" : "patients"} on your caseload. Not improving: less than ${r.improvement_target_percent}% better than baseline after ${r.not_improving_weeks} weeks or more. Contact overdue: none for more than ${r.contact_overdue_days} days.`;
      draw();
    },
    (error) => {
      if (!ctx.signal.aborted) lede.replaceWith(h("div", { class: "notice notice--error" }, h("p", { text: `The caseload could not be loaded. ${messageFor(error)}` })));
    },
  );

  return h(
    "div",
    { class: "page registry-page" },
    h(
      "div",
      { class: "page__head review-start" },
      h("div", {}, h("p", { class: "page__eyebrow", text: "Collaborative care" }), h("h1", { text: "Caseload registry" }), lede),
      h("a", { class: "button button--primary", href: "/registry/review", text: "Start caseload review" }),
    ),
    h(
      "section",
      { class: "card section section--wide", "aria-labelledby": "caseload-heading" },
      h("div", { class: "section__head registry__head" }, h("h2", { id: "caseload-heading", class: "section__title", text: "Caseload" }), tally),
      h(
        "div",
        { class: "registry__filters" },
        h("div", { class: "field" }, h("label", { class: "field__label", for: "registry-search", text: "Find" }), search),
        h("div", { class: "field" }, h("label", { class: "field__label", for: "registry-flag", text: "Show" }), filter),
        count,
      ),
      table,
    ),
    minutesCard(ctx),
  );
}

/** @param {CaseloadRow} r */
function caseloadRow(r) {
  const change = changeText(r.phq9.change_percent);
  const gadChange = changeText(r.gad7.change_percent);
  return h(
    "tr",
    { class: r.flags.includes("safety") ? "registry__row--safety" : "" },
    h("td", {}, h("a", { class: "table__name", href: `/registry/${r.patient_id}`, text: `${r.given_name} ${r.family_name}` }), h("span", { class: "table__sub", text: `MRN ${r.mrn}` })),
    h("td", {}, flagList(r)),
    h("td", {}, trend(r.phq9, r.not_improving.includes("phq9"))),
    h("td", { class: `registry__change registry__change--${change.tone}`, text: change.text }),
    h("td", {}, trend(r.gad7, r.not_improving.includes("gad7"))),
    h("td", { class: `registry__change registry__change--${gadChange.tone}`, text: gadChange.text }),
    h("td", { class: "registry__num", text: r.weeks_in_treatment === null ? "—" : String(r.weeks_in_treatment) }),
    h("td", { class: r.flags.includes("overdue_contact") ? "nowrap registry__overdue" : "nowrap" }, daysAgo(r.days_since_contact)),
    h("td", { class: "nowrap" }, reviewedText(r)),
    h("td", { class: "registry__num", text: r.open_tasks ? String(r.open_tasks) : "—" }),
  );
}

/**
 * When the newest signed caseload-review note was signed (the server's last_reviewed), or null.
 * @param {CaseloadRow | undefined} r
 * @returns {string | null}
 */
export function lastReviewed(r) {
  return /** @type {{last_reviewed?: string | null} | undefined} */ (r)?.last_reviewed ?? null;
}

/** "5 Dec 2026" or "never". @param {CaseloadRow | undefined} r */
function reviewedText(r) {
  const at = lastReviewed(r);
  return at ? DAY.format(new Date(at)) : h("span", { class: "muted", text: "never" });
}

/** @param {CaseloadRow} r */
export function flagList(r) {
  if (!r.flags.length) return h("span", { class: "muted", text: "—" });
  return h("span", { class: "flags" }, r.flags.map((f) => h("span", { class: `flag ${FLAGS[f]?.badge ?? ""}`, text: FLAGS[f]?.label ?? f })));
}

/** "20 → 11" with the baseline dimmed. @param {import('../clinics/format.js').Trend} t @param {boolean} lagging */
export function trend(t, lagging) {
  if (t.latest === null) return h("span", { class: "muted", text: "—" });
  if (t.count < 2 || t.baseline === null) return h("span", { class: "trend" }, h("strong", { text: String(t.latest) }), h("span", { class: "trend__note", text: " (1 score)" }));
  return h("span", { class: `trend${lagging ? " trend--lagging" : ""}` }, h("span", { class: "trend__base", text: String(t.baseline) }), h("span", { class: "trend__arrow", "aria-label": " to ", text: " → " }), h("strong", { text: String(t.latest) }));
}

/** This month's care-management minutes per patient, with the months before. @param {PageContext} ctx */
function minutesCard(ctx) {
  let month = monthOf();
  const title = h("h2", { id: "minutes-heading", class: "section__title" });
  const body = h("div", { class: "table-wrap" });
  const prev = h("button", { type: "button", class: "button button--quiet button--small", text: "← Previous month" });
  const next = h("button", { type: "button", class: "button button--quiet button--small", text: "Next month →" });
  prev.addEventListener("click", () => load(shiftMonth(month, -1)));
  next.addEventListener("click", () => load(shiftMonth(month, 1)));

  /** @param {string} m */
  async function load(m) {
    month = m;
    title.textContent = `Care-management minutes · ${monthName(m)}`;
    next.hidden = m >= monthOf();
    try {
      const { patients } = await ctx.api.get(`/registry/minutes?month=${m}`, { signal: ctx.signal });
      const total = patients.reduce((/** @type {number} */ n, /** @type {{minutes: number}} */ p) => n + p.minutes, 0);
      replaceChildren(
        body,
        patients.length
          ? h(
              "table",
              { class: "table minutes" },
              h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Patient" }), h("th", { scope: "col", class: "registry__num", text: "Contacts" }), h("th", { scope: "col", class: "registry__num", text: "Minutes" }))),
              h(
                "tbody",
                {},
                patients.map((/** @type {any} */ p) => h("tr", {}, h("td", {}, h("a", { href: `/registry/${p.patient_id}`, text: `${p.given_name} ${p.family_name}` }), h("span", { class: "table__sub", text: `MRN ${p.mrn}` })), h("td", { class: "registry__num", text: String(p.contacts) }), h("td", { class: "registry__num", text: String(p.minutes) }))),
              ),
              h("tfoot", {}, h("tr", {}, h("th", { scope: "row", text: "Total" }), h("td", {}), h("td", { class: "registry__num" }, h("strong", { text: String(total) })))),
            )
          : h("p", { class: "section__empty", text: "No care-management minutes recorded this month." }),
      );
    } catch (error) {
      if (!ctx.signal.aborted) replaceChildren(body, h("div", { class: "notice notice--error" }, h("p", { text: messageFor(error) })));
    }
  }
  load(month);
  return h(
    "section",
    { class: "card section section--wide registry__minutes", "aria-labelledby": "minutes-heading" },
    h("div", { class: "section__head" }, title, h("div", { class: "table__actions" }, prev, next)),
    body,
  );
}

// --- one patient -------------------------------------------------------------------------------

/** @param {PageContext} ctx @param {number} id */
function patientView(ctx, id) {
  const head = h("div", { class: "page__head" }, h("p", { class: "page__eyebrow" }, h("a", { class: "page__eyebrow-link", href: "/registry", text: "Caseload registry" })), h("h1", { text: "Patient" }), h("p", { class: "muted", role: "status", text: "Loading…" }));
  const chart = h("section", { class: "card section section--wide", "aria-labelledby": "scores-heading" }, h("h2", { id: "scores-heading", class: "section__title", text: "Scores over time" }));
  const contacts = h("section", { class: "card section", "aria-labelledby": "contacts-heading" });
  const tasks = h("section", { class: "card section", "aria-labelledby": "tasks-heading" });
  const page = h("div", { class: "page registry-patient" }, head, chart, h("div", { class: "registry__columns" }, tasks, contacts));
  const get = (/** @type {string} */ path) => ctx.api.get(path, { signal: ctx.signal });

  Promise.all([get(`/patients/${id}`), get(`/registry/${id}/scores`), get("/registry").catch(() => ({ patients: [] }))]).then(
    ([patient, scores, caseload]) => {
      const name = `${patient.given_name} ${patient.family_name}`;
      ctx.setTitle(`${name} · registry`);
      /** @type {CaseloadRow | undefined} */
      const row = caseload.patients.find((/** @type {CaseloadRow} */ r) => r.patient_id === id);
      replaceChildren(
        head,
        h("p", { class: "page__eyebrow" }, h("a", { class: "page__eyebrow-link", href: "/registry", text: "Caseload registry" })),
        h("h1", { text: name }),
        h("p", { class: "page__lede" }, `MRN ${patient.mrn} · born ${patient.date_of_birth}`, row?.weeks_in_treatment != null ? ` · week ${row.weeks_in_treatment} of treatment` : "", " · ", h("a", { href: `/patients/${id}`, text: "Open the chart and notes" })),
        row?.flags.length ? h("p", { class: "flags registry__flags" }, row.flags.map((f) => h("span", { class: `flag ${FLAGS[f].badge}`, text: FLAGS[f].long }))) : null,
        row?.flags.includes("safety") ? h("div", { class: "notice notice--error" }, h("p", { text: "Safety: PHQ-9 item 9 was answered above “Not at all”, or a safety flag has not been addressed. Contact the patient and record how it was addressed in the chart." })) : null,
      );
      // A patient no longer on the caseload has no summary line (append(null) would print "null").
      const summary = summaryLine(row);
      chart.append(...(summary ? [summary] : []), scoreChart(scores, name));
      contactsCard(ctx, id, contacts);
      tasksCard(ctx, id, tasks, patient.care_team);
    },
    (error) => {
      if (ctx.signal.aborted) return;
      replaceChildren(head, h("h1", { text: "This patient can't be opened" }), h("div", { class: "notice notice--error" }, h("p", { text: messageFor(error) })), h("p", {}, h("a", { href: "/registry", text: "Back to the caseload" })));
      chart.hidden = true;
    },
  );
  return page;
}

/** @param {CaseloadRow | undefined} row */
export function summaryLine(row) {
  if (!row) return null;
  /** @param {string} label @param {import('../clinics/format.js').Trend} t */
  const part = (label, t) => {
    const c = changeText(t.change_percent);
    return h("div", { class: "stat" }, h("span", { class: "stat__label", text: label }), h("span", { class: "stat__value" }, t.latest === null ? "—" : trend(t, false)), h("span", { class: `stat__sub registry__change--${c.tone}`, text: c.tone === "none" ? "no change yet" : `${c.text} from baseline` }));
  };
  /** @param {string} label @param {import('../dom.js').Child} value */
  const plain = (label, value) => h("div", { class: "stat" }, h("span", { class: "stat__label", text: label }), h("span", { class: "stat__value" }, value));
  return h(
    "div",
    { class: "stats" },
    part("PHQ-9 baseline → latest", row.phq9),
    part("GAD-7 baseline → latest", row.gad7),
    plain("Weeks in treatment", row.weeks_in_treatment === null ? "—" : String(row.weeks_in_treatment)),
    plain("Last contact", daysAgo(row.days_since_contact)),
    plain("Last reviewed", reviewedText(row)),
  );
}

/** @param {PageContext} ctx @param {number} id @param {HTMLElement} into */
function contactsCard(ctx, id, into) {
  const messages = messageSlot();
  const list = h("div", { class: "registry__list" });
  const minutes = field({ label: "Minutes", name: "minutes", type: "number", inputmode: "numeric", attrs: { min: "1", max: "600" } });
  const kind = field({ label: "Kind", name: "kind", type: "select", options: Object.entries(CONTACT_KINDS).map(([value, label]) => ({ value, label })) });
  const submit = submitButton("Log contact", "Saving…");
  const form = h("form", { class: "form form--compact", novalidate: true }, h("div", { class: "form__row" }, minutes.element, kind.element), messages.element, h("div", { class: "form__actions" }, submit.button));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (submit.busy) return;
    const value = Number(minutes.input.value);
    minutes.setError(Number.isInteger(value) && value >= 1 && value <= 600 ? null : "Give the minutes spent, from 1 to 600.");
    if (minutes.input.getAttribute("aria-invalid")) return minutes.input.focus();
    submit.setBusy(true);
    try {
      await ctx.api.post(`/registry/${id}/contacts`, { minutes: value, kind: kind.input.value }, { signal: ctx.signal });
      form.reset();
      messages.show("success", `${value} minutes logged.`);
      await load();
    } catch (error) {
      if (!ctx.signal.aborted) messages.show("error", messageFor(error));
    } finally {
      submit.setBusy(false);
    }
  });

  async function load() {
    try {
      const { contacts } = await ctx.api.get(`/registry/${id}/contacts`, { signal: ctx.signal });
      replaceChildren(
        list,
        contacts.length
          ? h("ul", { class: "contacts" }, contacts.slice(0, 20).map((/** @type {any} */ c) => h("li", { class: "contacts__item" }, h("span", { class: "contacts__when", text: WHEN.format(new Date(c.at)) }), h("span", { text: CONTACT_KINDS[c.kind] ?? c.kind }), h("strong", { class: "contacts__minutes", text: `${c.minutes} min` }))))
          : h("p", { class: "section__empty", text: "No contact recorded yet." }),
      );
    } catch (error) {
      if (!ctx.signal.aborted) replaceChildren(list, h("div", { class: "notice notice--error" }, h("p", { text: messageFor(error) })));
    }
  }
  replaceChildren(into, h("h2", { id: "contacts-heading", class: "section__title", text: "Contacts and minutes" }), form, list);
  load();
}

/**
 * The follow-up tasks of a patient and a form to add one. `source`, when given, is the note
 * new tasks come from (the caseload review's recommendation): the form says so and may untie it.
 * @param {PageContext} ctx @param {number} id @param {HTMLElement} into
 * @param {TeamMember[]} team
 * @param {{source?: () => SourceNote | null, level?: "h2" | "h3"}} [options]  level: of the heading
 * @returns {{reload: () => Promise<void>, refreshSource: () => void}}
 */
export function tasksCard(ctx, id, into, team, options = {}) {
  const messages = messageSlot();
  const tie = h("input", { type: "checkbox", id: `task-source-${id}`, class: "checkbox__input", checked: true });
  const tieLabel = h("label", { for: `task-source-${id}`, class: "task-source__label" });
  const tieRow = h("div", { class: "task-source", hidden: true }, tie, tieLabel);
  /** @type {SourceNote | null} */
  let source = null;
  function refreshSource() {
    source = options.source?.() ?? null;
    tieRow.hidden = !source;
    if (source) tieLabel.textContent = `From the ${source.title.toLowerCase()} signed${source.signed_at ? ` ${DAY.format(new Date(source.signed_at))}` : ""} by ${source.author_name}`;
  }
  const list = h("div", { class: "registry__list" });
  const me = ctx.session.user?.id ?? 0;
  const owners = team.some((m) => m.user_id === me) ? team : [{ user_id: me, display_name: ctx.session.user?.display_name ?? "Me", role_on_team: "" }, ...team];
  const nameOf = (/** @type {number} */ uid) => owners.find((m) => m.user_id === uid)?.display_name ?? "Someone else";
  const title = field({ label: "Follow-up", name: "title", autocomplete: "off", hint: "For example: repeat PHQ-9 in 2 weeks; increase sertraline to 100 mg." });
  const due = field({ label: "Due", name: "due", type: "date", value: isoDay(new Date(Date.now() + 7 * 86_400_000)) });
  const owner = field({ label: "Owner", name: "owner_id", type: "select", value: String(me), options: owners.map((m) => ({ value: String(m.user_id), label: m.display_name })) });
  const submit = submitButton("Add follow-up", "Adding…");
  const form = h("form", { class: "form form--compact", novalidate: true }, title.element, h("div", { class: "form__row" }, due.element, owner.element), tieRow, messages.element, h("div", { class: "form__actions" }, submit.button));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (submit.busy) return;
    title.setError(title.input.value.trim() ? null : "Say what needs doing.");
    due.setError(due.input.value ? null : "Choose the due date.");
    if (!title.input.value.trim() || !due.input.value) return;
    submit.setBusy(true);
    try {
      const from = source && tie.checked ? { source_note_id: source.id } : {};
      await ctx.api.post(`/registry/${id}/tasks`, { title: title.input.value.trim(), due: due.input.value, owner_id: Number(owner.input.value), ...from }, { signal: ctx.signal });
      title.input.value = "";
      messages.show("success", "Follow-up added.");
      await load();
    } catch (error) {
      if (!ctx.signal.aborted) messages.show("error", messageFor(error));
    } finally {
      submit.setBusy(false);
    }
  });

  // Loads overlap (two boxes ticked quickly; a task added while reload() runs): only the
  // newest may draw, or an older list could land last and undo what the newer one showed.
  const nextLoad = latestOnly();
  async function load() {
    const current = nextLoad();
    try {
      const [{ tasks }, notes] = await Promise.all([ctx.api.get(`/registry/${id}/tasks`, { signal: ctx.signal }), notesOf(ctx, id)]);
      if (!current()) return;
      const today = isoDay(new Date());
      replaceChildren(
        list,
        tasks.length
          ? h(
              "ul",
              { class: "tasks" },
              tasks.map((/** @type {any} */ t) => {
                const done = Boolean(t.done_at);
                const box = h("input", { type: "checkbox", id: `task-${t.id}`, class: "checkbox__input", checked: done });
                box.addEventListener("change", async () => {
                  box.disabled = true;
                  try {
                    await ctx.api.request("PATCH", `/registry/tasks/${t.id}`, { done: box.checked }, { signal: ctx.signal });
                    ctx.announce(box.checked ? `Done: ${t.title}` : `Open again: ${t.title}`);
                    await load();
                  } catch (error) {
                    if (!ctx.signal.aborted) messages.show("error", messageFor(error));
                    box.disabled = false;
                  }
                });
                const overdue = !done && t.due < today;
                return h(
                  "li",
                  { class: `tasks__item${done ? " tasks__item--done" : ""}` },
                  box,
                  h("label", { for: `task-${t.id}`, class: "tasks__title", text: t.title }),
                  h("span", { class: `tasks__meta${overdue ? " tasks__meta--overdue" : ""}`, text: `${done ? "Done" : overdue ? "Overdue: was due" : "Due"} ${DAY.format(new Date(`${t.due}T12:00:00`))} · ${nameOf(t.owner_id)}` }),
                  t.source_note_id ? sourceLink(id, t.source_note_id, notes.get(t.source_note_id)) : null,
                );
              }),
            )
          : h("p", { class: "section__empty", text: "No follow-up tasks." }),
      );
    } catch (error) {
      if (!ctx.signal.aborted && current()) replaceChildren(list, h("div", { class: "notice notice--error" }, h("p", { text: messageFor(error) })));
    }
  }
  refreshSource();
  replaceChildren(into, h(options.level ?? "h2", { id: into.getAttribute("aria-labelledby") ?? "tasks-heading", class: "section__title", text: "Follow-up tasks" }), list, h("details", { class: "schedule" }, h("summary", { class: "schedule__summary", text: "Add a follow-up" }), form));
  load();
  return { reload: load, refreshSource };
}

/**
 * The patient's notes the reader may see, by id (titles for the tasks' "from" links); empty if
 * they can't be listed, since a task stays useful without its link.
 * @param {PageContext} ctx @param {number} id
 * @returns {Promise<Map<number, SourceNote>>}
 */
async function notesOf(ctx, id) {
  try {
    const { notes } = await ctx.api.get(`/patients/${id}/notes`, { signal: ctx.signal });
    return new Map(notes.map((/** @type {SourceNote} */ n) => [n.id, n]));
  } catch {
    return new Map();
  }
}

/**
 * "From: Caseload review recommendation, 5 Dec 2026" opening that note on the chart (which says
 * so if the reader can't see it). @param {number} patientId @param {number} noteId @param {SourceNote | undefined} note
 */
function sourceLink(patientId, noteId, note) {
  const what = note ? `${note.title}${note.signed_at ? `, ${DAY.format(new Date(note.signed_at))}` : " (draft)"}` : "a note in the chart";
  return h("span", { class: "tasks__meta tasks__source" }, "From: ", h("a", { href: noteHref(patientId, noteId), text: what }));
}

/** @param {Date} d */
export function isoDay(d) {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

/**
 * For requests that may overlap: each call starts one and returns its check, true while no later
 * one has started. A response whose check is false is stale and must be dropped.
 * @returns {() => () => boolean}
 */
export function latestOnly() {
  let last = 0;
  return () => {
    const mine = ++last;
    return () => mine === last;
  };
}
