// The consultant's time on a written answer. Reading a queued request starts nothing: the
// psychiatrist's time starts when they choose "Start answering" (POST .../writing, once: a later
// start, after a reload, keeps the first). The form then offers the minutes since as "Minutes
// spent", which they confirm or correct when they send the answer: e-consult codes bill on the
// minutes the consultant attests. A time too long for one sitting (back after lunch, or the next
// day) is not offered: they are told when their time started and asked for the minutes they
// actually spent. The server checks the figure again (no more minutes than have passed since the
// request was asked).

import { h, uid } from "../dom.js";
import { fieldError } from "../forms.js";
import { messageFor } from "../messages.js";
import { formatWhen } from "../notes/editor.js";

// The server's MAX_WRITTEN_MINUTES (signaling/curbside/), used until the server has said its
// own limit for this request (max_minutes); the server is the judge.
export const MAX_MINUTES = 240;
// Longer than this since the start is not believable as one sitting: no figure is offered.
export const PLAUSIBLE_SITTING_S = 60 * 60;
const REFRESH_MS = 30_000;

/**
 * The minutes to offer for the time measured: rounded to the nearest minute, at least 1 (an
 * answer takes some time), at most `max`; null (offer nothing) past one plausible sitting.
 * @param {number} elapsedSeconds @param {number} max
 * @returns {number | null}
 */
export function suggestedMinutes(elapsedSeconds, max) {
  if (elapsedSeconds > PLAUSIBLE_SITTING_S) return null;
  return Math.min(max, Math.max(1, Math.round(elapsedSeconds / 60)));
}

/**
 * What the psychiatrist typed: a whole number of minutes within 1..max, nothing (null), or the
 * sentence that says what is wrong. `badInput`: the browser holds text it could not read as a
 * number (a number input then reports its value as "").
 * @param {string} text @param {number} [max] @param {boolean} [badInput]
 * @returns {{minutes: number | null, error: string | null}}
 */
export function parseMinutes(text, max = MAX_MINUTES, badInput = false) {
  const value = text.trim();
  const wrong = `Give the minutes as a whole number from 1 to ${max}.`;
  if (badInput) return { minutes: null, error: wrong };
  if (!value) return { minutes: null, error: "Say how many minutes you spent on this consult." };
  const minutes = Number(value);
  if (!/^\d+$/.test(value) || minutes < 1 || minutes > max) return { minutes: null, error: wrong };
  return { minutes, error: null };
}

const ABOUT = "Reviewing the request and the record, and writing the answer.";

/**
 * The "Minutes spent" field of the answer form. Nothing is started until `start()`.
 * @param {import('../app.js').PageContext} ctx
 * @param {number} requestId
 */
export function minutesField(ctx, requestId) {
  const id = uid("answer-minutes");
  const input = h("input", { id, name: "minutes", type: "number", class: "input input--w", min: "1", max: String(MAX_MINUTES), step: "1", inputmode: "numeric", "aria-required": "true", "aria-describedby": `${id}-hint ${id}-error` });
  const hint = h("p", { id: `${id}-hint`, class: "field__hint", text: ABOUT });
  const error = h("p", { id: `${id}-error`, class: "field__error", hidden: true });
  const element = h("div", { class: "field" }, h("label", { class: "field__label", for: id, text: "Minutes spent on this consult" }), hint, error, input);
  const setError = fieldError(element, input, error);
  let max = MAX_MINUTES;
  // Offered until the psychiatrist types a figure of their own; theirs is never overwritten.
  let edited = false;
  let started = false;
  input.addEventListener("input", () => {
    edited = true;
    setError(null);
  });

  /** Start the psychiatrist's time (once; the server keeps the first start). */
  function start() {
    if (started) return;
    started = true;
    hint.textContent = `${ABOUT} Starting your time…`;
    ctx.api.post(`/curbside/requests/${requestId}/writing`, undefined, { signal: ctx.signal }).then(
      (/** @type {{started_at: string | null, elapsed_s: number | null, max_minutes: number}} */ w) => {
        // Counted from the server's figures and this page's own clock, so a wrong clock on
        // this computer does not change them.
        const received = performance.now();
        const since = () => (performance.now() - received) / 1000;
        const limit = () => Math.min(MAX_MINUTES, w.max_minutes + Math.floor(since() / 60));
        max = w.max_minutes;
        input.max = String(max);
        if (w.started_at === null || w.elapsed_s === null) {
          hint.textContent = ABOUT;
          return;
        }
        const startedAt = w.started_at;
        const elapsedAtReceipt = w.elapsed_s;
        const offer = () => {
          max = limit();
          input.max = String(max);
          const minutes = suggestedMinutes(elapsedAtReceipt + since(), max);
          if (minutes === null) {
            hint.textContent = `${ABOUT} Your time started ${formatWhen(startedAt)}, more than an hour ago, so no figure is offered: enter the minutes you actually spent on this consult.`;
            if (!edited) input.value = "";
            window.clearInterval(timer);
            return;
          }
          hint.textContent = `${ABOUT} Your time started ${formatWhen(startedAt)}, when you started answering; we offer the minutes since. Correct them if you did something else meanwhile.`;
          if (!edited) input.value = String(minutes);
        };
        const timer = window.setInterval(offer, REFRESH_MS);
        ctx.signal.addEventListener("abort", () => window.clearInterval(timer), { once: true });
        offer();
      },
      (error) => {
        if (ctx.signal.aborted) return;
        hint.textContent = `${ABOUT} Your time could not be started (${messageFor(error)}); give the minutes yourself.`;
      },
    );
  }

  return {
    element,
    input,
    setError,
    start,
    /** The minutes to send, or null with the field marked invalid. */
    read() {
      const { minutes, error: problem } = parseMinutes(input.value, max, input.validity.badInput);
      setError(problem);
      return minutes;
    },
  };
}
