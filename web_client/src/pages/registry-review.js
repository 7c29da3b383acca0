// The systematic caseload review, /registry/review: the care manager and the psychiatric
// consultant go through the flagged patients one at a time, in the registry's flag order (safety,
// then not improving, then contact overdue). For each: the flags, the scores from baseline to
// latest, weeks in treatment, last contact and review, the score chart and the open follow-ups;
// the psychiatrist writes and signs the recommendation (the note editor on the caseload-review
// template) and either of them adds follow-up tasks tied to that note. A care manager cannot
// author the note; they see it once it is signed.
//
// The queue is taken once, when the review starts, so that it does not reorder under the
// reviewers as flags change (a safety flag addressed mid-review). Each patient's panel is built
// the first time it is shown and kept, so going back finds the draft and the forms as they were
// (and an autosave in flight is never cut off).

import { caseloadView, FLAGS } from "../clinics/format.js";
import { scoreChart } from "../clinics/score-chart.js";
import { h, replaceChildren } from "../dom.js";
import { messageFor } from "../messages.js";
import { formatWhen, loadTemplates, noteEditor, sectionsOf } from "../notes/editor.js";
import { flagList, REVIEW_TEMPLATE, summaryLine, tasksCard } from "./registry.js";

/** @typedef {import('../app.js').PageContext} PageContext */
/** @typedef {import('../clinics/format.js').CaseloadRow} CaseloadRow */
/** @typedef {import('./registry.js').SourceNote} SourceNote */
/**
 * @typedef {{id: number, template_id: string | null, state: string, author_id: number,
 *   author_name: string, title: string, signed_at: string | null, updated_at: string}} NoteLine
 */

// A recommendation signed this long ago still belongs to the current review: new follow-ups are
// tied to it by default (the form lets the reviewer untie them).
const RECENT_DAYS = 7;

/** @type {import('../app.js').Page} */
export const registryReviewPage = {
  title: "Caseload review",
  access: "user",
  roles: ["care_manager", "psychiatrist"],
  layout: "frame",
  render(ctx) {
    const lede = h("p", { class: "page__lede", role: "status", text: "Loading the flagged patients…" });
    const bar = h("nav", { class: "card review-bar", "aria-label": "Review progress", hidden: true });
    const slot = h("div", { class: "review-slot" });
    const page = h(
      "div",
      { class: "page review-page" },
      h("div", { class: "page__head" }, h("p", { class: "page__eyebrow" }, h("a", { class: "page__eyebrow-link", href: "/registry", text: "Caseload registry" })), h("h1", { text: "Caseload review" }), lede),
      bar,
      slot,
    );

    ctx.api.get("/registry?flagged=true", { signal: ctx.signal }).then(
      (body) => {
        const queue = caseloadView(body.patients, { sort: "flags", flag: "any" });
        if (!queue.length) {
          lede.textContent = "No patient on your caseload is flagged: there is nobody to review.";
          slot.append(h("p", {}, h("a", { href: "/registry", text: "Back to the caseload" })));
          return;
        }
        const counts = Object.entries(FLAGS)
          .map(([key, f]) => [queue.filter((r) => r.flags.includes(/** @type {any} */ (key))).length, f.label.toLowerCase()])
          .filter(([n]) => n)
          .map(([n, label]) => `${n} ${label}`);
        lede.textContent = `${queue.length} flagged ${queue.length === 1 ? "patient" : "patients"} (${counts.join(", ")}), safety first, then not improving, then contact overdue.`;
        walkThrough(ctx, queue, bar, slot);
      },
      (error) => {
        if (!ctx.signal.aborted) lede.replaceWith(h("div", { class: "notice notice--error" }, h("p", { text: `The caseload could not be loaded. ${messageFor(error)}` })));
      },
    );
    return page;
  },
};

/**
 * The walk-through: the progress bar (position, the queue, Previous / Skip / Next) and one
 * patient's panel at a time.
 * @param {PageContext} ctx @param {CaseloadRow[]} queue @param {HTMLElement} bar @param {HTMLElement} slot
 */
function walkThrough(ctx, queue, bar, slot) {
  /** @type {Map<number, HTMLElement>} */
  const panels = new Map();
  /** @type {Map<number, "reviewed" | "skipped">} */
  const outcome = new Map();
  const wanted = Number(ctx.url.searchParams.get("patient"));
  let at = Math.max(0, queue.findIndex((r) => r.patient_id === wanted));

  const position = h("p", { class: "review-bar__position", "aria-live": "polite" });
  const prev = h("button", { type: "button", class: "button button--secondary", text: "← Previous" });
  const skip = h("button", { type: "button", class: "button button--quiet", text: "Skip" });
  const next = h("button", { type: "button", class: "button button--primary", text: "Next patient →" });
  prev.addEventListener("click", () => go(at - 1));
  skip.addEventListener("click", () => {
    if (outcome.get(queue[at].patient_id) !== "reviewed") outcome.set(queue[at].patient_id, "skipped");
    go(at + 1);
  });
  next.addEventListener("click", () => go(at + 1));
  // The steps are made once and updated in place: a step keeps the focus across redraws (a
  // recommendation signed meanwhile redraws the bar).
  const stepButtons = queue.map((r, i) => {
    const jump = h("button", { type: "button", class: "review-step" }, h("span", { class: "review-step__n", text: String(i + 1) }), `${r.given_name} ${r.family_name}`, h("span", { class: "visually-hidden" }));
    jump.addEventListener("click", () => go(i));
    return jump;
  });
  const steps = h("ol", { class: "review-bar__steps" }, stepButtons.map((b) => h("li", {}, b)));
  bar.hidden = false;
  replaceChildren(bar, h("div", { class: "review-bar__where" }, position, steps), h("div", { class: "review-bar__actions" }, prev, skip, next));

  /** @param {number} i  queue.length: the end of the review */
  function go(i) {
    at = Math.max(0, Math.min(queue.length, i));
    draw();
    window.scrollTo({ top: 0 });
    // The button pressed may now be disabled or hidden (Previous on the first patient, Finish
    // review): without a deliberate move the focus would fall to the page's body. The heading of
    // what is now shown takes it, so a keyboard or screen-reader user reads on from there.
    slot.querySelector(/** @type {"h2"} */ (".review-focus"))?.focus({ preventScroll: true });
  }

  function draw() {
    const done = at >= queue.length;
    const row = queue[at];
    const q = new URLSearchParams(done ? {} : { patient: String(row.patient_id) });
    window.history.replaceState(window.history.state, "", `/registry/review${q.size ? `?${q}` : ""}`);
    const where = done ? "Review finished" : `Patient ${at + 1} of ${queue.length}: ${row.given_name} ${row.family_name}`;
    if (position.textContent !== where) position.textContent = where;
    prev.disabled = at === 0;
    skip.hidden = done;
    next.hidden = done;
    next.textContent = at === queue.length - 1 ? "Finish review" : "Next patient →";
    queue.forEach((r, i) => {
      const state = outcome.get(r.patient_id);
      const jump = stepButtons[i];
      jump.className = `review-step${i === at ? " is-current" : ""}${state ? ` review-step--${state}` : ""}${r.flags.includes("safety") ? " review-step--safety" : ""}`;
      if (i === at) jump.setAttribute("aria-current", "step");
      else jump.removeAttribute("aria-current");
      /** @type {HTMLElement} */ (jump.lastElementChild).textContent = state ? ` (${state})` : "";
    });
    if (done) {
      replaceChildren(slot, summary(queue, outcome));
      ctx.announce("Review finished.");
      return;
    }
    let panel = panels.get(row.patient_id);
    if (!panel) {
      panel = patientPanel(ctx, row, () => {
        // Idempotent: found again on "Check again", or on load and then signed, it changes nothing.
        if (outcome.get(row.patient_id) === "reviewed") return;
        outcome.set(row.patient_id, "reviewed");
        draw();
      });
      panels.set(row.patient_id, panel);
    }
    if (slot.firstChild !== panel) replaceChildren(slot, panel);
    ctx.setTitle(`Caseload review · ${at + 1} of ${queue.length}`);
  }
  draw();
}

/** @param {CaseloadRow[]} queue @param {Map<number, string>} outcome */
function summary(queue, outcome) {
  const reviewed = queue.filter((r) => outcome.get(r.patient_id) === "reviewed");
  const skipped = queue.filter((r) => outcome.get(r.patient_id) === "skipped");
  const open = queue.filter((r) => !outcome.has(r.patient_id));
  /** @param {string} title @param {CaseloadRow[]} rows */
  const group = (title, rows) =>
    rows.length
      ? h("div", { class: "stack-small" }, h("h3", { class: "subsection__title", text: `${title} (${rows.length})` }), h("ul", {}, rows.map((r) => h("li", {}, h("a", { href: `/registry/${r.patient_id}`, text: `${r.given_name} ${r.family_name}` }), " ", flagList(r)))))
      : null;
  return h(
    "section",
    { class: "card section", "aria-labelledby": "review-done" },
    h("h2", { id: "review-done", class: "section__title review-focus", tabindex: "-1", text: "Review finished" }),
    h("p", { text: `${reviewed.length} of ${queue.length} flagged patients have a signed recommendation from this review.` }),
    group("Recommendation signed", reviewed),
    group("Skipped", skipped),
    group("Seen, no recommendation signed", open),
    h("p", {}, h("a", { class: "button button--secondary", href: "/registry", text: "Back to the caseload" })),
  );
}

/**
 * One patient: who and why flagged, the figures, the chart, the follow-ups, the recommendation.
 * @param {PageContext} ctx @param {CaseloadRow} row @param {() => void} onReviewed
 */
function patientPanel(ctx, row, onReviewed) {
  const id = row.patient_id;
  const name = `${row.given_name} ${row.family_name}`;
  const isPsychiatrist = ctx.session.user?.role === "psychiatrist";
  const headingId = `review-patient-${id}`;
  const chart = h("section", { class: "card section", "aria-labelledby": `review-scores-${id}` }, h("h3", { id: `review-scores-${id}`, class: "section__title", text: "Scores over time" }), h("p", { class: "muted", role: "status", text: "Loading…" }));
  const tasks = h("section", { class: "card section", "aria-labelledby": `review-tasks-${id}` }, h("p", { class: "muted", text: "Loading…" }));
  let stats = summaryLine(row);
  const note = h("div", { class: "review-note" }, h("section", { class: "card section" }, h("p", { class: "muted", role: "status", text: "Loading the recommendation…" })));
  const panel = h(
    "article",
    { class: "review-patient", "aria-labelledby": headingId },
    h(
      "header",
      { class: "card review-patient__head" },
      h(
        "div",
        { class: "review-patient__who" },
        h("h2", { id: headingId, class: "review-patient__name review-focus", tabindex: "-1", text: name }),
        h("p", { class: "muted" }, `MRN ${row.mrn} · `, h("a", { href: `/registry/${id}`, text: "Registry view" }), " · ", h("a", { href: `/patients/${id}`, text: "Chart and notes" })),
        h("p", { class: "flags" }, row.flags.map((f) => h("span", { class: `flag ${FLAGS[f].badge}`, text: FLAGS[f].long }))),
      ),
      stats,
    ),
    row.flags.includes("safety")
      ? h("div", { class: "notice notice--error" }, h("p", { text: "Safety: PHQ-9 item 9 was answered above “Not at all”, or a safety flag has not been addressed. Say in the recommendation whether the safety plan was addressed." }))
      : null,
    h("div", { class: "review-patient__body" }, h("div", { class: "review-patient__data" }, chart, tasks), note),
  );

  /** @type {SourceNote | null} */
  let recommendation = null;
  /** @type {ReturnType<typeof tasksCard> | null} */
  let taskList = null;
  const get = (/** @type {string} */ path) => ctx.api.get(path, { signal: ctx.signal });

  Promise.all([get(`/patients/${id}`), get(`/registry/${id}/scores`), get(`/patients/${id}/notes`)]).then(
    ([patient, scores, { notes }]) => {
      replaceChildren(chart, h("h3", { id: `review-scores-${id}`, class: "section__title", text: "Scores over time" }), scoreChart(scores, name));
      /** @type {NoteLine[]} */
      const reviews = notes.filter((/** @type {NoteLine} */ n) => n.template_id === REVIEW_TEMPLATE);
      const signed = reviews.find((n) => n.state === "signed") ?? null; // newest first
      if (signed && isRecent(signed.signed_at)) {
        // Signed before this page was opened (a reload mid-review): this patient is reviewed.
        recommendation = signed;
        onReviewed();
      }
      taskList = tasksCard(ctx, id, tasks, patient.care_team, { source: () => recommendation, level: "h3" });
      if (isPsychiatrist) {
        const mine = reviews.find((n) => n.state === "draft" && n.author_id === ctx.session.user?.id);
        writeRecommendation(mine?.id ?? recommendation?.id ?? null);
      } else void readRecommendation(signed);
    },
    (error) => {
      if (ctx.signal.aborted) return;
      replaceChildren(note, h("div", { class: "notice notice--error" }, h("p", { text: `This patient can't be opened. ${messageFor(error)}` })));
      chart.hidden = true;
      tasks.hidden = true;
    },
  );

  /** The psychiatrist's editor on the caseload-review template (or their draft). @param {number | null} open */
  function writeRecommendation(open) {
    const editor = noteEditor({
      api: ctx.api,
      signal: ctx.signal,
      patientId: id,
      userId: ctx.session.user?.id ?? 0,
      announce: ctx.announce,
      templateId: REVIEW_TEMPLATE,
      onSigned: (signedNote) => {
        if (signedNote.template_id !== REVIEW_TEMPLATE) return;
        recommendation = { id: signedNote.id, title: signedNote.title, author_name: signedNote.author_name, signed_at: signedNote.signed_at };
        // The queue's row was read when the review began: "last reviewed" is now.
        const fresh = summaryLine(/** @type {CaseloadRow} */ ({ ...row, last_reviewed: signedNote.signed_at }));
        if (fresh && stats) stats.replaceWith(fresh);
        stats = fresh;
        taskList?.refreshSource();
        void taskList?.reload();
        onReviewed();
      },
    });
    replaceChildren(note, editor.element);
    if (open) void editor.open(open);
  }

  /** What a care manager sees: the signed recommendation, or that there is none yet. @param {NoteLine | null} line */
  async function readRecommendation(line) {
    const refresh = h("button", { type: "button", class: "button button--secondary button--small", text: "Check again" });
    refresh.addEventListener("click", async () => {
      refresh.disabled = true;
      try {
        const { notes } = await get(`/patients/${id}/notes`);
        const found = notes.find((/** @type {NoteLine} */ n) => n.template_id === REVIEW_TEMPLATE && n.state === "signed") ?? null;
        if (found && isRecent(found.signed_at)) {
          recommendation = found;
          taskList?.refreshSource();
          onReviewed();
        }
        await readRecommendation(found);
      } catch (error) {
        failed(error);
      }
    });
    const head = h("h3", { class: "section__title", text: "Recommendation" });
    /** Why the recommendation is not shown, with the way to try again. @param {unknown} error */
    const failed = (error) => {
      if (ctx.signal.aborted) return;
      refresh.disabled = false;
      replaceChildren(note, h("section", { class: "card section" }, head, h("div", { class: "notice notice--error", role: "alert" }, h("p", { text: `The recommendation could not be loaded. ${messageFor(error)}` })), refresh));
    };
    if (!line) {
      replaceChildren(note, h("section", { class: "card section" }, head, h("p", { class: "muted", text: "The psychiatrist has not signed a caseload review recommendation for this patient yet. It shows here once signed." }), refresh));
      return;
    }
    /** @type {any} */
    let full;
    /** @type {Awaited<ReturnType<typeof loadTemplates>>} */
    let templates;
    try {
      [full, templates] = await Promise.all([get(`/notes/${line.id}`), loadTemplates(ctx.api, ctx.signal)]);
    } catch (error) {
      failed(error);
      return;
    }
    const template = templates.find((t) => t.id === REVIEW_TEMPLATE);
    replaceChildren(
      note,
      h(
        "section",
        { class: "card section" },
        h("div", { class: "note-editor__head" }, h("h3", { class: "section__title", text: full.title }), h("span", { class: "badge badge--ok", text: "Signed" })),
        h("p", { class: "muted", text: `Signed by ${full.author_name}, ${formatWhen(full.signed_at)}.${isRecent(full.signed_at) ? "" : " From an earlier review."}` }),
        h("dl", { class: "note-view" }, sectionsOf(full, template).flatMap(([label, value]) => [h("dt", { text: label }), h("dd", { class: "note-view__text", text: value })])),
        refresh,
      ),
    );
  }

  return panel;
}

/** @param {string | null} iso */
function isRecent(iso) {
  return Boolean(iso) && Date.now() - new Date(/** @type {string} */ (iso)).getTime() < RECENT_DAYS * 86_400_000;
}
