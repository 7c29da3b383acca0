// Curbside consults without DOM: what each status means in plain words for the PCP and the
// psychiatrist, the psychiatrist's list of ringing requests as socket events change it, and
// due-time wording for the written queue. The server decides every transition
// (signaling/curbside/); these functions only describe what it said.

/**
 * @typedef {"ringing" | "accepted" | "in_call" | "documenting" | "completed" | "queued_written" |
 *   "answered" | "acknowledged" | "cancelled"} Status
 *
 * @typedef {{id: number, display_name: string}} Person
 * @typedef {object} Consult  a request as GET /api/v1/curbside/requests/{id} returns it
 * @property {number} id
 * @property {Status} status
 * @property {"call_now" | "written"} mode
 * @property {"routine" | "urgent" | "emergent"} urgency
 * @property {string} question
 * @property {number} patient_id
 * @property {string | null} patient_state
 * @property {Record<string, any>} context
 * @property {Person} pcp
 * @property {Person | null} consultant
 * @property {"primary" | "backup" | null} ringing_tier
 * @property {string | null} ring_deadline
 * @property {number | null} visit_id
 * @property {number | null} encounter_id
 * @property {number | null} note_id
 * @property {string} created_at
 * @property {string} answer_due_at
 * @property {boolean} overdue
 * @property {any} answer
 * @property {{to_answer_s: number | null, ringing_s: number | null, talking_s: number | null, documenting_s: number | null}} times
 * @property {string[] | null} billing_flags
 *
 * @typedef {{tone: "info" | "success" | "warning" | "error", title: string, text: string}} Described
 */

/** @type {Record<string, string>} */
export const URGENCY = { routine: "Routine", urgent: "Urgent", emergent: "Emergent" };
/** @type {Record<string, string>} */
export const MODE = { call_now: "Call now", written: "Written answer" };
/** Short labels for lists and badges. @type {Record<Status, string>} */
export const STATUS_LABEL = {
  ringing: "Ringing",
  accepted: "Accepted",
  in_call: "In call",
  documenting: "Writing the note",
  completed: "Completed",
  queued_written: "Written queue",
  answered: "Answered",
  acknowledged: "Acknowledged",
  cancelled: "Cancelled",
};
/** Badge classes (styles.css) by status. @type {Record<Status, string>} */
export const STATUS_BADGE = {
  ringing: "badge--attention",
  accepted: "badge--ok",
  in_call: "badge--ok",
  documenting: "badge--attention",
  completed: "badge--ok",
  queued_written: "badge--attention",
  answered: "badge--ok",
  acknowledged: "badge--plain",
  cancelled: "badge--plain",
};
/** Statuses in which the PCP may still withdraw the request (signaling/curbside/ CANCELLABLE). */
export const CANCELLABLE = new Set(["ringing", "accepted", "queued_written"]);
/** A call is on (or about to be): both sides are in the call's room. */
export const IN_CALL = new Set(["accepted", "in_call"]);

/**
 * What the PCP who asked should read about their request now. `detail` is the server's own
 * plain sentence from the latest curbside:status, when this page has one.
 *
 * @param {Consult} c
 * @param {string} [detail]
 * @returns {Described}
 */
export function forPcp(c, detail) {
  const who = c.consultant?.display_name || "a psychiatrist";
  switch (c.status) {
    case "ringing":
      return {
        tone: "info",
        title: c.ringing_tier === "backup" ? "Ringing the backup psychiatrists" : "Ringing the on-call psychiatrists",
        text:
          detail ||
          (c.ringing_tier === "backup"
            ? "Nobody on the first tier answered in time, so the backup on-call psychiatrists are being rung."
            : "Every available on-call psychiatrist is being rung. The call starts as soon as one accepts."),
      };
    case "accepted":
      return { tone: "success", title: `Accepted by ${who}`, text: "Connecting the call…" };
    case "in_call":
      return { tone: "success", title: `In a call with ${who}`, text: "The call is connected." };
    case "documenting":
      return { tone: "info", title: "The call has ended", text: `${who} is writing the recommendation in the patient's record. You can read it here once it is signed.` };
    case "completed":
      return { tone: "success", title: "Recommendation signed", text: `${who} signed the recommendation. It is in the patient's record.` };
    case "queued_written":
      return {
        tone: "warning",
        title: c.mode === "call_now" ? "No psychiatrist could take the call" : "Waiting for a written answer",
        text:
          c.mode === "call_now"
            ? "Nobody on call could answer now, so your request has moved to the written consult queue. A psychiatrist will answer in writing; you don't need to ask again."
            : "Your request is in the written consult queue. A psychiatrist will answer in writing.",
      };
    case "answered":
      return { tone: "success", title: `Answered by ${who}`, text: "Read the answer below, then acknowledge it." };
    case "acknowledged":
      return { tone: "info", title: "Answer acknowledged", text: `You acknowledged ${who}'s answer.` };
    case "cancelled":
      return { tone: "info", title: "Request cancelled", text: "This request was cancelled. Nobody is being rung for it." };
    default:
      return { tone: "info", title: String(c.status), text: detail ?? "" };
  }
}

/**
 * Merge a curbside:status event into the consult this page shows. The event carries the new
 * status and who took it; anything else (the visit, the encounter, the answer) is read again
 * from the server, so `stale` says whether to do that.
 *
 * @param {Consult} c
 * @param {{request_id: number, status: string, detail: string, psychiatrist: Person | null}} event
 * @returns {{consult: Consult, detail: string, stale: boolean}}
 */
export function applyStatus(c, event) {
  if (event.request_id !== c.id) return { consult: c, detail: "", stale: false };
  const status = /** @type {Status} */ (event.status);
  const consult = { ...c, status, consultant: event.psychiatrist ?? c.consultant };
  if (status === "ringing") consult.ringing_tier = /\bbackup\b/.test(event.detail) ? "backup" : "primary";
  else consult.ringing_tier = null;
  // Only the status and the person travel in the event; everything else is re-read.
  const stale = status !== "ringing" && status !== c.status;
  return { consult, detail: event.detail, stale };
}

/**
 * @typedef {object} Ring  one request ringing this psychiatrist's dashboard
 * @property {import('../rtc/events.js').RingSummary} request
 * @property {"primary" | "backup"} tier
 * @property {string | null} deadline
 * @property {"ringing" | "taken" | "cancelled" | "escalated" | "accepting"} state
 */

/**
 * The dashboard's ringing list after a socket event or a user action. Taken, cancelled and
 * escalated rings stay in the list (saying so) until dismissed, so that a psychiatrist who was
 * about to press Accept is told why the alert changed instead of seeing it vanish.
 *
 * @param {Ring[]} rings
 * @param {{type: "ring", ring: import('../rtc/events.js').CurbsideRing} |
 *   {type: "taken" | "accepting" | "dismiss" | "declined" | "failed", request_id: number} |
 *   {type: "stop", request_id: number, reason: string}} event
 * @returns {Ring[]}
 */
export function ringsReducer(rings, event) {
  switch (event.type) {
    case "ring": {
      const { request, tier, ring_deadline } = event.ring;
      const ring = { request, tier, deadline: ring_deadline, state: /** @type {const} */ ("ringing") };
      return [...rings.filter((r) => r.request.id !== request.id), ring];
    }
    case "taken":
      return mark(rings, event.request_id, "taken");
    case "stop":
      return mark(rings, event.request_id, event.reason === "escalated" ? "escalated" : "cancelled");
    case "accepting":
      return mark(rings, event.request_id, "accepting");
    case "failed":
      return mark(rings, event.request_id, "ringing");
    case "declined":
    case "dismiss":
      return rings.filter((r) => r.request.id !== event.request_id);
    default:
      return rings;
  }
}

/** @param {Ring[]} rings @param {number} id @param {Ring["state"]} state */
function mark(rings, id, state) {
  return rings.map((r) => (r.request.id === id ? { ...r, state } : r));
}

/** Whether any ring still wants an answer (the alert sounds while this is true). @param {Ring[]} rings */
export function anyRinging(rings) {
  return rings.some((r) => r.state === "ringing");
}

/**
 * "due in 3 h 20 min", "due in 8 min", "overdue by 25 min".
 * @param {string} dueAt  ISO time
 * @param {number} [now]  ms since the epoch
 */
export function dueText(dueAt, now = Date.now()) {
  const ms = Date.parse(dueAt) - now;
  const span = spanText(Math.abs(ms));
  return ms >= 0 ? `due in ${span}` : `overdue by ${span}`;
}

/** @param {number} ms */
export function spanText(ms) {
  const minutes = Math.max(1, Math.round(ms / 60_000));
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  if (hours < 48) return rest ? `${hours} h ${rest} min` : `${hours} h`;
  return `${Math.round(hours / 24)} days`;
}

/** Seconds as people read a duration: "45 s", "3 min 5 s", "—" when there is none. @param {number | null | undefined} s */
export function seconds(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return "—";
  if (s < 60) return `${Math.round(s)} s`;
  const m = Math.floor(s / 60);
  const rest = Math.round(s % 60);
  return rest ? `${m} min ${rest} s` : `${m} min`;
}

/** A share as a percentage, "—" when there is nothing to share. @param {number | null | undefined} x */
export function percent(x) {
  return x === null || x === undefined || !Number.isFinite(x) ? "—" : `${Math.round(x * 100)}%`;
}

/**
 * The text field of licensed states ("ca, NY  tx") as codes; unknown entries come back apart.
 * @param {string} text
 * @param {Iterable<string>} known  valid two-letter codes
 */
export function parseStates(text, known) {
  const valid = new Set(known);
  const codes = text
    .split(/[\s,;]+/)
    .map((s) => s.trim().toUpperCase())
    .filter(Boolean);
  const states = [...new Set(codes.filter((c) => valid.has(c)))].sort();
  const unknown = codes.filter((c) => !valid.has(c));
  return { states, unknown };
}
