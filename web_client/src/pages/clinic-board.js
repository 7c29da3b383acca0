// The psychiatrist's live clinic board, /clinics/{sessionId}: every patient booked in the
// session with where they are (not arrived, waiting since when, in the visit, done, no-show),
// the PHQ-9 / GAD-7 they filled in before the visit with its severity band, and safety flags
// (PHQ-9 item 9) first and impossible to miss. "Admit" opens the visit and lets the patient in
// (clinics/admit.js). "Running late" tells everyone waiting. "Mark no-show", once a patient's
// slot has started and they have not arrived, closes the visit (after a confirmation).
//
// Live: the server sends `clinic:board {session_id}` to the psychiatrist's connections whenever
// something on the board changes; the board then refetches (one request at a time, coalescing
// bursts). Reading the board is audited per patient, so it is never polled.

import { admitPath } from "../clinics/admit.js";
import { CLINIC_BOARD } from "../clinics/events.js";
import { BOARD_STATUS, severityLabel } from "../clinics/format.js";
import { ANSWERS, instrumentName, maxTotal } from "../clinics/instruments.js";
import { h, keepChildren, keepFocus, replaceChildren } from "../dom.js";
import { messageSlot, submitButton } from "../forms.js";
import { messageFor } from "../messages.js";
import { RtcSocket } from "../rtc/socket.js";
import { dayOf, timeOfDay, waitedFor } from "../visit/format.js";

/** @typedef {import('../app.js').PageContext} PageContext */
/**
 * @typedef {{id: number, instrument: "phq9" | "gad7", total: number, severity: string, answers: number[], administered_at: string}} Screening
 * @typedef {{id: number, item_value: number, raised_at: string}} SafetyFlag
 * @typedef {object} BoardRow
 * @property {number} booking_id
 * @property {number} visit_id
 * @property {string} slot_start
 * @property {{id: number, mrn: string, given_name: string, family_name: string}} patient
 * @property {string} status
 * @property {string | null} waiting_since
 * @property {number} late_minutes
 * @property {string | null} patient_participant_id
 * @property {Screening[]} screenings
 * @property {SafetyFlag[]} safety_flags
 * @property {NoShow | null} [no_show]
 * @typedef {{automatic: boolean, marked_at: string, marked_by_name: string | null, not_checked_in_by: string | null}} NoShow
 * @typedef {{session: {id: number, title: string, starts_at: string, ends_at: string, slot_minutes: number}, rows: BoardRow[]}} Board
 */

const LATE_CHOICES = [5, 10, 15, 20, 30, 45];
const SEVERITY_TONE = /** @type {Record<string, string>} */ ({
  minimal: "score--low",
  mild: "score--low",
  moderate: "score--mid",
  moderately_severe: "score--high",
  severe: "score--high",
});
// Relative times ("waiting 12 minutes") are redrawn from the last board, without a request.
const TICK_MS = 30_000;
// How long the first read waits for the live connection (see listen()).
const FIRST_READ_WAIT_MS = 1000;

/** @type {import('../app.js').Page} */
export const clinicBoardPage = {
  title: "Clinic board",
  access: "user",
  roles: ["psychiatrist", "care_manager"],
  layout: "frame",
  render(ctx) {
    const id = Number(ctx.params.sessionId);
    const head = h("div", { class: "page__head" }, h("p", { class: "page__eyebrow", text: "Clinic board" }), h("h1", { text: "Clinic board" }), h("p", { class: "muted", role: "status", text: "Loading the board…" }));
    const page = h("div", { class: "page board-page" }, head);
    if (!Number.isInteger(id) || id < 1) {
      replaceChildren(head, h("h1", { text: "Clinic session not found" }), h("p", {}, h("a", { href: "/clinics", text: "Back to clinic sessions" })));
      return page;
    }
    new BoardView(ctx, id, head, page);
    return page;
  },
};

class BoardView {
  /** @param {PageContext} ctx @param {number} id @param {HTMLElement} head @param {HTMLElement} page */
  constructor(ctx, id, head, page) {
    this.ctx = ctx;
    this.id = id;
    this.head = head;
    this.eyebrow = h("p", { class: "page__eyebrow" }, h("a", { class: "page__eyebrow-link", href: "/clinics", text: "Clinic sessions" }), " / Board");
    this.title = /** @type {HTMLElement} */ (head.querySelector("h1"));
    this.lede = h("p", { class: "page__lede" });
    this.isPsychiatrist = ctx.session.user?.role === "psychiatrist";
    /** @type {Board | null} */
    this.board = null;
    // The booking whose no-show confirmation is open: kept here, not in the DOM, because every
    // board update redraws the rows.
    /** @type {number | null} */
    this.confirming = null;
    this.marking = false;
    this.loading = false;
    this.again = false;
    this.live = h("span", { class: "live live--off", role: "status", text: "Connecting…" });
    this.alerts = h("div", { class: "board__alerts" });
    this.counts = h("p", { class: "board__counts" });
    this.list = h("ol", { class: "board", "aria-label": "Patients in this clinic" });
    this.problem = messageSlot();
    // What came of a "Mark no-show": outlives the redraw that follows it.
    this.outcome = messageSlot("status");
    this.body = h("div", { class: "board__body", hidden: true }, this.toolbar(), this.problem.element, this.outcome.element, this.alerts, this.list);
    page.append(this.body);
    this.timer = window.setInterval(() => this.draw(), TICK_MS);
    ctx.signal.addEventListener("abort", () => {
      window.clearInterval(this.timer);
      this.socket?.close();
    });
    /** @type {RtcSocket | null} */
    this.socket = null;
    if (this.isPsychiatrist) this.listen();
    else this.load().then(() => this.setLive(null));
  }

  toolbar() {
    const parts = [this.counts, h("div", { class: "board__tools" }, this.live, this.isPsychiatrist ? this.lateForm() : this.refreshButton())];
    return h("div", { class: "board__toolbar card" }, parts);
  }

  refreshButton() {
    const button = h("button", { type: "button", class: "button button--secondary button--small", text: "Refresh" });
    button.addEventListener("click", () => this.load());
    return button;
  }

  lateForm() {
    const minutes = h("select", { id: "late-minutes", class: "input input--inline", name: "minutes" }, LATE_CHOICES.map((m) => h("option", { value: String(m), text: `${m} minutes` })));
    minutes.value = "10";
    const submit = submitButton("Tell waiting patients", "Sending…", "secondary");
    submit.button.classList.add("button--small");
    const result = h("span", { class: "board__late-result", role: "status" });
    const form = h(
      "form",
      { class: "board__late", novalidate: true },
      h("label", { for: "late-minutes", class: "board__late-label", text: "Running about" }),
      minutes,
      h("span", { class: "board__late-label", text: "late?" }),
      submit.button,
      result,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (submit.busy) return;
      submit.setBusy(true);
      result.textContent = "";
      try {
        const { notified } = await this.ctx.api.post(`/clinics/sessions/${this.id}/running-late`, { minutes: Number(minutes.value) }, { signal: this.ctx.signal });
        result.textContent = notified
          ? `Told ${notified} waiting ${notified === 1 ? "person" : "people"} you're about ${minutes.value} minutes late.`
          : "Nobody is waiting right now, so nobody was told.";
      } catch (error) {
        if (!this.ctx.signal.aborted) result.textContent = messageFor(error);
      } finally {
        submit.setBusy(false);
      }
    });
    return form;
  }

  /** Fetch the board; a request asked for while one runs is made once, after it. */
  async load() {
    if (this.loading) {
      this.again = true;
      return;
    }
    this.loading = true;
    try {
      do {
        this.again = false;
        try {
          this.board = await this.ctx.api.get(`/clinics/sessions/${this.id}/board`, { signal: this.ctx.signal });
          this.problem.clear();
          this.draw();
        } catch (error) {
          if (this.ctx.signal.aborted) return;
          if (!this.board) {
            this.socket?.close();
            this.socket = null;
            replaceChildren(this.head, h("h1", { text: "This clinic board can't be opened" }), h("div", { class: "notice notice--error" }, h("p", { text: messageFor(error) })), h("p", {}, h("a", { href: "/clinics", text: "Back to clinic sessions" })));
            return;
          }
          this.problem.show("error", `The board could not be updated. ${messageFor(error)}`);
        }
      } while (this.again && !this.ctx.signal.aborted);
    } finally {
      this.loading = false;
    }
  }

  /**
   * Live updates. The board is read each time the connection comes up, the first included, so
   * no change can fall between a read and the subscription, or pass unseen while the
   * connection was down. A slow connection holds the first read back a second at most (the
   * board is then read once more when the connection is up).
   */
  listen() {
    const early = window.setTimeout(() => this.load(), FIRST_READ_WAIT_MS);
    this.ctx.signal.addEventListener("abort", () => window.clearTimeout(early), { once: true });
    const socket = new RtcSocket({
      onConnect: () => {
        window.clearTimeout(early);
        this.setLive(true);
        this.load();
      },
      onDisconnect: () => this.setLive(false),
      onRefused: () => this.setLive(false),
    });
    socket.on(CLINIC_BOARD, (/** @type {{session_id: number}} */ data) => {
      if (data.session_id === this.id) this.load();
    });
    this.socket = socket;
    socket.connect();
  }

  /** @param {boolean | null} on  null: this viewer gets no live updates */
  setLive(on) {
    this.live.className = `live ${on ? "live--on" : "live--off"}`;
    this.live.textContent = on ? "Live" : on === null ? "Not live: use Refresh" : "Reconnecting…";
  }

  draw() {
    const board = this.board;
    if (!board) return;
    const s = board.session;
    this.ctx.setTitle(`${s.title} · clinic board`);
    // The heading stays the same element (the page's focus starts on it); only its words change.
    this.title.textContent = s.title;
    this.lede.textContent = `${dayOf(s.starts_at)}, ${timeOfDay(s.starts_at)}–${timeOfDay(s.ends_at)} · ${s.slot_minutes}-minute slots`;
    keepChildren(this.head, this.eyebrow, this.title, this.lede);
    this.body.hidden = false;
    const rows = board.rows;
    const tally = (/** @type {string} */ status) => rows.filter((r) => r.status === status).length;
    replaceChildren(
      this.counts,
      countChip(tally("waiting"), "waiting", "count--waiting"),
      countChip(tally("in_visit"), "in the visit", "count--visit"),
      countChip(tally("scheduled"), "not arrived", "count--plain"),
      countChip(tally("done") + tally("no_show"), "seen or no-show", "count--plain"),
    );
    const flagged = rows.filter((r) => r.safety_flags.length);
    replaceChildren(
      this.alerts,
      flagged.length
        ? h(
            "div",
            { class: "board__safety", role: "alert" },
            h("p", { class: "board__safety-title", text: flagged.length === 1 ? "1 patient has a safety flag" : `${flagged.length} patients have a safety flag` }),
            h("p", { text: `${flagged.map((r) => name(r)).join(", ")}: PHQ-9 item 9 (thoughts of being better off dead or of self-harm) answered above “Not at all”. Assess risk at the start of the visit.` }),
          )
        : null,
    );
    // Every update redraws the rows: a keyboard user's focus on one follows it to the new one.
    keepFocus(this.list, () => replaceChildren(this.list, rows.length ? rows.map((r) => this.row(r)) : h("li", { class: "board__empty card", text: "Nobody is booked into this session yet. Care managers book patients from the clinic sessions page." })));
  }

  /** @param {BoardRow} r */
  row(r) {
    const status = BOARD_STATUS[r.status] ?? { label: r.status, badge: "badge--plain" };
    const flagged = r.safety_flags.length > 0;
    return h(
      "li",
      { class: `board__row card${flagged ? " board__row--safety" : ""}${r.status === "waiting" ? " board__row--waiting" : ""}`, dataset: { visit: String(r.visit_id), key: String(r.booking_id) } },
      h("div", { class: "board__slot" }, h("time", { datetime: r.slot_start, text: timeOfDay(r.slot_start) })),
      h(
        "div",
        { class: "board__who" },
        h("a", { class: "board__name", href: `/patients/${r.patient.id}`, text: name(r) }),
        h("span", { class: "board__mrn", text: `MRN ${r.patient.mrn}` }),
        flagged
          ? h(
              "p",
              { class: "board__flag" },
              h("span", { class: "flag flag--safety", text: "Safety" }),
              ` PHQ-9 item 9: “${answerText(r.safety_flags[r.safety_flags.length - 1].item_value)}”`,
            )
          : null,
      ),
      h("div", { class: "board__status" }, h("span", { class: `badge ${status.badge}`, text: status.label }), h("span", { class: "board__since", text: since(r) })),
      h("div", { class: "board__scores" }, scores(r)),
      h("div", { class: "board__actions" }, this.actions(r)),
      this.confirming === r.booking_id && mayMarkNoShow(r) ? this.noShowConfirm(r) : null,
    );
  }

  /** @param {BoardRow} r */
  noShowConfirm(r) {
    const yes = h("button", { type: "button", class: "button button--danger button--small", text: "Mark as no-show" });
    const no = h("button", { type: "button", class: "button button--secondary button--small", text: "Keep waiting" });
    no.addEventListener("click", () => {
      this.confirming = null;
      this.draw();
      this.focusIn(r, ".board__actions button");
    });
    yes.addEventListener("click", async () => {
      if (this.marking) return;
      this.marking = true;
      yes.setAttribute("aria-disabled", "true");
      try {
        await this.ctx.api.post(`/visits/${r.visit_id}/no-show`, undefined, { signal: this.ctx.signal });
        this.outcome.show("success", `${name(r)} is marked as a no-show for ${timeOfDay(r.slot_start)}.`);
      } catch (error) {
        if (this.ctx.signal.aborted) return;
        // Most often the patient arrived meanwhile (participant_waiting): the reload shows it.
        this.outcome.show("error", `${name(r)} was not marked as a no-show. ${messageFor(error)}`);
      } finally {
        this.marking = false;
      }
      this.confirming = null;
      await this.load();
    });
    return h(
      "div",
      { class: "board__confirm" },
      h("p", { text: `Mark ${name(r)} as a no-show for ${timeOfDay(r.slot_start)}? The visit closes and their join link stops working. This cannot be undone.` }),
      h("div", { class: "form__actions" }, yes, no),
    );
  }

  /** @param {BoardRow} r @param {string} selector */
  focusIn(r, selector) {
    const target = this.list.querySelector(`[data-key="${r.booking_id}"] ${selector}`);
    if (target instanceof HTMLElement) target.focus();
  }

  /** @param {BoardRow} r */
  actions(r) {
    const who = h("span", { class: "visually-hidden", text: ` ${name(r)}` });
    if (r.status === "waiting" && this.isPsychiatrist) {
      return h("a", { class: "button button--primary", href: admitPath(r.visit_id) }, "Admit", who);
    }
    if (r.status === "scheduled" || r.status === "waiting" || r.status === "in_visit") {
      const open = h("a", { class: "button button--secondary button--small", href: `/visit/${r.visit_id}` }, r.status === "in_visit" ? "Return to visit" : "Open visit", who);
      if (!mayMarkNoShow(r)) return open;
      const mark = h("button", { type: "button", class: "button button--quiet button--small", "aria-expanded": String(this.confirming === r.booking_id) }, "Mark no-show", who.cloneNode(true));
      mark.addEventListener("click", () => {
        this.confirming = this.confirming === r.booking_id ? null : r.booking_id;
        this.outcome.clear();
        this.draw();
        if (this.confirming !== null) this.focusIn(r, ".board__confirm .button--danger");
      });
      return [open, mark];
    }
    return h("a", { class: "button button--quiet button--small", href: `/patients/${r.patient.id}` }, "Chart", who);
  }
}

/**
 * Not arrived, and the slot has started by the server's clock (late_minutes counts from it; the
 * server refuses a no-show before the start). The first minute is left alone on purpose.
 * @param {BoardRow} r
 */
function mayMarkNoShow(r) {
  return r.status === "scheduled" && r.late_minutes > 0;
}

/** @param {BoardRow} r */
function name(r) {
  return `${r.patient.given_name} ${r.patient.family_name}`;
}

/** @param {number} count @param {string} label @param {string} tone */
function countChip(count, label, tone) {
  return h("span", { class: `count ${tone}${count ? "" : " count--zero"}` }, h("strong", { text: String(count) }), ` ${label}`);
}

/** @param {number} value */
function answerText(value) {
  return ANSWERS.find((a) => a.value === value)?.text ?? String(value);
}

/** @param {BoardRow} r */
function since(r) {
  if (r.status === "waiting" && r.waiting_since) return `since ${timeOfDay(r.waiting_since)} (${waitedFor(r.waiting_since)})`;
  if (r.status === "scheduled" && r.late_minutes > 0) return `${r.late_minutes} min past the slot`;
  if (r.status === "no_show" && r.no_show) return noShowText(r.no_show);
  return "";
}

/**
 * Who marked a no-show: the rule (nobody checked in by its deadline) or a named clinician.
 * @param {NoShow} n
 */
export function noShowText(n) {
  if (n.automatic) return `not checked in by ${timeOfDay(n.not_checked_in_by ?? n.marked_at)}, marked automatically`;
  return n.marked_by_name ? `marked by ${n.marked_by_name}` : "";
}

/** @param {BoardRow} r */
function scores(r) {
  if (!r.screenings.length) {
    return h("p", { class: "board__noscore", text: r.status === "waiting" ? "No questionnaire yet" : "No pre-visit questionnaire" });
  }
  return h(
    "ul",
    { class: "scores" },
    r.screenings.map((s) =>
      h(
        "li",
        { class: `score ${SEVERITY_TONE[s.severity] ?? ""}` },
        h("span", { class: "score__name", text: instrumentName(s.instrument) }),
        h("span", { class: "score__total" }, h("strong", { text: String(s.total) }), h("span", { class: "score__max", text: `/${maxTotal(s.instrument)}` })),
        h("span", { class: "score__band", text: severityLabel(s.severity) }),
        h("span", { class: "score__when", text: timeOfDay(s.administered_at) }),
      ),
    ),
  );
}
