// The consultant's time on a written answer. Opening the answer form starts the psychiatrist's
// time on the server (POST .../writing, once: a reload keeps the first start), and the form
// offers the minutes since as "Minutes spent", which they confirm or correct when they send
// the answer: e-consult codes bill on the minutes the consultant attests. The server checks
// the figure again (no more minutes than have passed since the request was asked).

import { h, uid } from "../dom.js";
import { fieldError } from "../forms.js";
import { messageFor } from "../messages.js";

// The server's MAX_WRITTEN_MINUTES (signaling/curbside/); the server is the judge.
export const MAX_MINUTES = 240;
const REFRESH_MS = 30_000;

/**
 * The minutes to offer for the time measured: rounded to the nearest minute, at least 1 (an
 * answer takes some time), at most `max`.
 * @param {number} elapsedSeconds @param {number} max
 */
export function suggestedMinutes(elapsedSeconds, max) {
  return Math.min(max, Math.max(1, Math.round(elapsedSeconds / 60)));
}

/**
 * What the psychiatrist typed: a whole number of minutes within 1..MAX_MINUTES, nothing
 * (null), or the sentence that says what is wrong.
 * @param {string} text
 * @returns {{minutes: number | null, error: string | null}}
 */
export function parseMinutes(text) {
  const value = text.trim();
  if (!value) return { minutes: null, error: "Say how many minutes you spent on this consult." };
  const minutes = Number(value);
  if (!/^\d+$/.test(value) || minutes < 1 || minutes > MAX_MINUTES) {
    return { minutes: null, error: `Give the minutes as a whole number from 1 to ${MAX_MINUTES}.` };
  }
  return { minutes, error: null };
}

/**
 * The "Minutes spent" field of the answer form; starts the psychiatrist's time when made.
 * @param {import('../app.js').PageContext} ctx
 * @param {number} requestId
 */
export function minutesField(ctx, requestId) {
  const id = uid("answer-minutes");
  const input = h("input", { id, name: "minutes", type: "number", class: "input input--w", min: "1", max: String(MAX_MINUTES), step: "1", inputmode: "numeric", "aria-required": "true", "aria-describedby": `${id}-hint ${id}-error` });
  const hint = h("p", { id: `${id}-hint`, class: "field__hint", text: "Reviewing the request and the record, and writing the answer. Starting your time…" });
  const error = h("p", { id: `${id}-error`, class: "field__error", hidden: true });
  const element = h("div", { class: "field" }, h("label", { class: "field__label", for: id, text: "Minutes spent on this consult" }), hint, error, input);
  const setError = fieldError(element, input, error);
  // Offered until the psychiatrist types a figure of their own; theirs is never overwritten.
  let edited = false;
  input.addEventListener("input", () => {
    edited = true;
    setError(null);
  });

  ctx.api.post(`/curbside/requests/${requestId}/writing`, undefined, { signal: ctx.signal }).then(
    (/** @type {{started_at: string | null, elapsed_s: number | null, max_minutes: number}} */ w) => {
      if (w.started_at === null || w.elapsed_s === null) {
        hint.textContent = "Reviewing the request and the record, and writing the answer.";
        return;
      }
      const started = new Date(w.started_at).toLocaleTimeString(undefined, { timeStyle: "short" });
      hint.textContent = `Reviewing the request and the record, and writing the answer. Your time started at ${started}, when you opened this form; we offer the minutes since. Correct them if you did something else meanwhile.`;
      // Counted from the server's elapsed time and this page's own clock, so a wrong clock on
      // this computer does not change the figure.
      const received = performance.now();
      const elapsedAtReceipt = w.elapsed_s;
      const offer = () => {
        if (edited) return;
        const elapsed = elapsedAtReceipt + (performance.now() - received) / 1000;
        input.value = String(suggestedMinutes(elapsed, MAX_MINUTES));
      };
      offer();
      const timer = window.setInterval(offer, REFRESH_MS);
      ctx.signal.addEventListener("abort", () => window.clearInterval(timer), { once: true });
    },
    (error) => {
      if (ctx.signal.aborted) return;
      hint.textContent = `Reviewing the request and the record, and writing the answer. Your time could not be started (${messageFor(error)}); give the minutes yourself.`;
    },
  );

  return {
    element,
    input,
    setError,
    /** The minutes to send, or null with the field marked invalid. */
    read() {
      const { minutes, error: problem } = parseMinutes(input.value);
      setError(problem);
      return minutes;
    },
  };
}
