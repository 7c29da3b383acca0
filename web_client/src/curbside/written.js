// Written eConsults: the psychiatrist's structured recommendation form (POST .../answer) and
// the answer as the PCP reads it.

import { h, uid } from "../dom.js";
import { field, focusFirstInvalid, messageSlot, submitButton } from "../forms.js";
import { messageFor } from "../messages.js";
import { formatWhen } from "../notes/editor.js";
import { minutesField } from "./answer-time.js";

/** @typedef {import('./status.js').Consult} Consult */

const FIELDS = /** @type {const} */ ([
  { name: "assessment", label: "Assessment", hint: "Your impression of the problem asked about.", required: true },
  { name: "recommendations", label: "Recommendations", hint: "What the requesting clinician should do.", required: true },
  { name: "medication_suggestions", label: "Medication suggestions", hint: "Drug, starting dose, titration, monitoring (optional).", required: false },
  { name: "follow_up", label: "Follow-up", hint: "When to reassess, and when to call back or escalate.", required: true },
]);

/**
 * @param {import('../app.js').PageContext} ctx
 * @param {number} requestId
 * @param {(consult: Consult) => void} done
 */
export function answerForm(ctx, requestId, done) {
  const messages = messageSlot();
  const submit = submitButton("Send the answer", "Sending…");
  const fields = FIELDS.map((f) => ({ ...f, ...field({ type: "textarea", rows: 3, name: f.name, idPrefix: `answer-${f.name}`, label: f.required ? f.label : `${f.label} (optional)`, hint: f.hint, required: f.required }) }));
  const faceId = uid("face-to-face");
  const face = h("select", { id: faceId, name: "face_to_face_advised", class: "input input--w" }, h("option", { value: "no", text: "No" }), h("option", { value: "yes", text: "Yes" }));
  const time = minutesField(ctx, requestId); // consultant time (answer-time.js)
  // Reading the request starts nothing: the consultant's time starts when they choose to answer.
  const begin = h("button", { type: "button", class: "button button--primary", text: "Start answering" });
  const intro = h("div", { class: "stack-small" }, h("p", { class: "muted", text: "Your time on this consult (attested with the answer) starts when you start answering." }), h("div", { class: "form__actions" }, begin));
  const body = h("div", { class: "form", hidden: true }, ...fields.map((f) => f.element), h("div", { class: "field" }, h("label", { class: "field__label", for: faceId, text: "Face-to-face psychiatric evaluation advised" }), face), time.element, messages.element, h("div", { class: "form__actions" }, submit.button));
  begin.addEventListener("click", () => {
    time.start();
    body.hidden = false;
    intro.remove();
    fields[0].input.focus();
  });
  const form = h("form", { class: "card section form", novalidate: true, "aria-labelledby": "answer-heading" }, h("h2", { id: "answer-heading", class: "section__title", text: "Answer in writing" }), intro, body);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (submit.busy) return;
    messages.clear();
    let valid = true;
    for (const f of fields) {
      const missing = f.required && !f.input.value.trim();
      f.setError(missing ? `Write the ${f.label.toLowerCase()}.` : null);
      valid &&= !missing;
    }
    const minutes = time.read();
    if (!valid || minutes === null) {
      focusFirstInvalid([...fields, time]);
      return;
    }
    /** @type {Record<string, unknown>} */
    const answer = { face_to_face_advised: face.value === "yes", minutes };
    for (const f of fields) if (f.input.value.trim()) answer[f.name] = f.input.value.trim();
    submit.setBusy(true);
    try {
      const answered = await ctx.api.post(`/curbside/requests/${requestId}/answer`, answer, { signal: ctx.signal });
      ctx.announce("Your answer was sent.");
      done(answered);
    } catch (error) {
      if (!ctx.signal.aborted) messages.show("error", messageFor(error));
    } finally {
      submit.setBusy(false);
    }
  });
  return form;
}

/** The written answer. @param {NonNullable<Consult["answer"]>} answer */
export function answerView(answer) {
  /** @param {string} term @param {string | null} value */
  const row = (term, value) => (value ? [h("dt", { text: term }), h("dd", { class: "note-view__text", text: value })] : []);
  return h(
    "section",
    { class: "card section", "aria-labelledby": "written-answer-heading" },
    h("h2", { id: "written-answer-heading", class: "section__title", text: "Written answer" }),
    h("p", { class: "muted", text: `By ${answer.author.display_name}, ${formatWhen(answer.answered_at)}.` }),
    h(
      "dl",
      { class: "note-view" },
      row("Assessment", answer.assessment),
      row("Recommendations", answer.recommendations),
      row("Medication suggestions", answer.medication_suggestions),
      row("Follow-up", answer.follow_up),
      row("Face-to-face evaluation advised", answer.face_to_face_advised ? "Yes" : "No"),
    ),
  );
}
