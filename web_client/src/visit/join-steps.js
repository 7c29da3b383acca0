// The join page's forms, one function per step: identity (date of birth), consent and
// location. Each calls the join API with the flow's visit-session client and hands the answer
// back to the flow (pages/join.js), which decides what comes next.

import { h } from "../dom.js";
import { field, messageSlot, submitButton } from "../forms.js";
import { messageFor } from "../messages.js";
import { isoDate } from "./format.js";
import { US_STATES } from "./us-states.js";

/**
 * What a step needs from the flow.
 * @typedef {object} JoinFlow
 * @property {import('../app.js').PageContext} ctx
 * @property {import('../api.js').Api} api
 * @property {import('../pages/join.js').JoinStatus | null} status
 * @property {(body: any) => void} accept
 * @property {() => void} next
 * @property {(step: import('../pages/join.js').Step | null, ...content: Node[]) => void} show
 * @property {(text: string) => void} loading
 * @property {(failure: unknown) => void} problem
 * @property {() => void} consentStep
 */

/** @typedef {import('../pages/join.js').JoinStatus} JoinStatus */

/** Date of birth as month, day and year (patients). @param {JoinFlow} flow */
export function identityStep(flow) {
  const status = /** @type {JoinStatus} */ (flow.status);
  const messages = messageSlot();
  const error = h("p", { id: "dob-error", class: "field__error", hidden: true });
  /** @param {string} name @param {string} label @param {number} size */
  const part = (name, label, size) => {
    const input = h("input", {
      id: `dob-${name}`,
      name,
      class: `input input--date input--w${size}`,
      inputmode: "numeric",
      maxlength: String(size),
      autocomplete: `bday-${name === "year" ? "year" : name === "month" ? "month" : "day"}`,
      "aria-describedby": "dob-hint dob-error",
    });
    return { input, element: h("div", { class: "date__part" }, h("label", { class: "field__label", for: input.id, text: label }), input) };
  };
  const month = part("month", "Month", 2);
  const day = part("day", "Day", 2);
  const year = part("year", "Year", 4);
  const parts = [month, day, year];
  const submit = submitButton("Continue", "Checking…");
  const form = h(
    "form",
    { class: "form", novalidate: true },
    h(
      "fieldset",
      { class: "fieldset", "aria-describedby": "dob-hint" },
      h("legend", { class: "fieldset__legend", text: "Date of birth" }),
      h("p", { id: "dob-hint", class: "field__hint", text: "For example, 4 12 1988 for April 12, 1988." }),
      error,
      h("div", { class: "date" }, parts.map((p) => p.element)),
    ),
    h("div", { class: "form__actions" }, submit.button),
  );
  /** @param {string | null} text */
  const setError = (text) => {
    error.textContent = text ?? "";
    error.hidden = !text;
    for (const p of parts) {
      if (text) p.input.setAttribute("aria-invalid", "true");
      else p.input.removeAttribute("aria-invalid");
    }
    form.classList.toggle("field--invalid", Boolean(text));
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (submit.busy) return;
    messages.clear();
    const born = isoDate(year.input.value, month.input.value, day.input.value);
    if (!born) {
      setError("Enter your date of birth as month, day and year, for example 4 12 1988.");
      (parts.find((p) => !p.input.value.trim()) ?? month).input.focus();
      return;
    }
    setError(null);
    submit.setBusy(true);
    try {
      flow.accept(await flow.api.post("/join/verify", { date_of_birth: born }, { signal: flow.ctx.signal }));
      flow.next();
    } catch (failure) {
      if (flow.ctx.signal.aborted) return;
      submit.setBusy(false);
      const code = /** @type {{code?: string}} */ (failure).code;
      if (code === "identity_mismatch" || code === "validation_failed") {
        setError(code === "validation_failed" ? "That isn't a real date of birth. Check the day, month and year." : messageFor(failure));
        month.input.focus(); // the field's description carries the error to screen readers
      } else if (code === "identity_throttled") {
        messages.show("error", messageFor(failure));
      } else {
        flow.problem(failure);
      }
    }
  });
  const name = status.visit.patient_first_name;
  flow.show(
    "identity",
    h("div", { class: "step" },
      h("h2", { class: "step__title", tabindex: "-1", text: "Confirm your date of birth" }),
      h("p", { text: `${name ? `Hello ${name}. ` : ""}To keep your visit private, enter your date of birth. We check it against your health record.` }),
      messages.element,
      form,
    ),
  );
}

/** The consent text, and agreeing to it. @param {JoinFlow} flow */
export async function consentStep(flow) {
  flow.loading("Loading the consent…");
  let consent;
  try {
    consent = await flow.api.get("/join/consent-text", { signal: flow.ctx.signal });
  } catch (failure) {
    if (!flow.ctx.signal.aborted) flow.problem(failure);
    return;
  }
  const messages = messageSlot();
  const box = h("input", { type: "checkbox", id: "consent-agree", class: "checkbox__input", "aria-describedby": "consent-error" });
  const error = h("p", { id: "consent-error", class: "field__error", hidden: true });
  const submit = submitButton("Agree and continue", "Saving…");
  const form = h(
    "form",
    { class: "form", novalidate: true },
    error,
    h("div", { class: "checkbox" }, box, h("label", { for: "consent-agree", class: "checkbox__label", text: "I have read this and I agree to have my visit by video." })),
    h("div", { class: "form__actions" }, submit.button),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (submit.busy) return;
    if (!box.checked) {
      error.textContent = "Tick the box to agree, or call the clinic if you'd rather not have a video visit.";
      error.hidden = false;
      box.focus();
      return;
    }
    error.hidden = true;
    submit.setBusy(true);
    try {
      flow.accept(await flow.api.post("/join/consent", { consent_version: consent.version, accepted: true }, { signal: flow.ctx.signal }));
      flow.next();
    } catch (failure) {
      if (flow.ctx.signal.aborted) return;
      submit.setBusy(false);
      const code = /** @type {{code?: string}} */ (failure).code;
      if (code === "consent_outdated") {
        flow.consentStep();
      } else {
        messages.show("error", messageFor(failure));
      }
    }
  });
  const [title, ...rest] = String(consent.text).split("\n");
  flow.show(
    "consent",
    h("div", { class: "step" },
      h("h2", { class: "step__title", tabindex: "-1", text: title.trim() || "Consent" }),
      h("div", { class: "consent", id: "consent-text" }, consentBody(rest.join("\n"))),
      h("p", { class: "consent__version muted", text: `Version ${consent.version}` }),
      messages.element,
      form,
      h("p", { class: "muted", text: "If you don't agree, you don't have to go on: call the clinic to arrange another kind of visit." }),
    ),
  );
}

/** Where the patient is now, and a number to call back. @param {JoinFlow} flow */
export function locationStep(flow) {
  const messages = messageSlot();
  const address = field({
    label: "Address (optional)",
    name: "address",
    autocomplete: "street-address",
    hint: "Where you are right now: street, town and state. If you'd rather not say, choose just the state below.",
  });
  const state = field({
    label: "State",
    name: "state",
    type: "select",
    value: "",
    options: [{ value: "", label: "Choose the state you are in" }, ...US_STATES.map(([code, name]) => ({ value: code, label: name }))],
    hint: "Needed if you don't give your address.",
  });
  const phone = field({
    label: "Phone number to call you back",
    name: "callback_phone",
    type: "tel",
    autocomplete: "tel",
    inputmode: "tel",
    hint: "If the video stops working, your clinician will call you on this number.",
  });
  /** @type {Record<string, import('../forms.js').Field>} */
  const byName = { address, state, callback_phone: phone };
  const submit = submitButton("Continue", "Saving…");
  const form = h("form", { class: "form", novalidate: true }, address.element, state.element, phone.element, h("div", { class: "form__actions" }, submit.button));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (submit.busy) return;
    messages.clear();
    const values = {
      address: address.input.value.trim(),
      state: state.input.value,
      callback_phone: phone.input.value.trim(),
    };
    const digits = values.callback_phone.replace(/\D/g, "").length;
    address.setError(values.address && values.address.length < 5 ? "Give a street address, or the town and state you are in." : null);
    state.setError(!values.address && !values.state ? "Choose the state you are in, or give your address above." : null);
    phone.setError(digits >= 10 && digits <= 15 ? null : "Enter a phone number with its area code, for example 415 555 0134.");
    const invalid = [address, state, phone].find((f) => f.input.getAttribute("aria-invalid") === "true");
    if (invalid) {
      invalid.input.focus();
      return;
    }
    submit.setBusy(true);
    try {
      const body = {
        callback_phone: values.callback_phone,
        ...(values.address ? { address: values.address } : {}),
        ...(values.state ? { state: values.state } : {}),
      };
      flow.accept(await flow.api.post("/join/location", body, { signal: flow.ctx.signal }));
      flow.next();
    } catch (failure) {
      if (flow.ctx.signal.aborted) return;
      submit.setBusy(false);
      const apiError = /** @type {import('../api.js').ApiError} */ (failure);
      if (apiError.fields?.length) {
        for (const problem of apiError.fields) byName[problem.field]?.setError(tidy(problem.message));
        messages.show("error", "Some answers need a change.");
      } else if (apiError.code === "location_missing") {
        state.setError(messageFor(failure));
        state.input.focus();
      } else {
        messages.show("error", messageFor(failure));
      }
    }
  });
  flow.show(
    "location",
    h("div", { class: "step" },
      h("h2", { class: "step__title", tabindex: "-1", text: "Where are you right now?" }),
      h("p", { text: "We ask at the start of every visit, because:" }),
      h(
        "ul",
        { class: "reasons" },
        h("li", { text: "if there's an emergency during your visit, your clinician needs to know where to send help;" }),
        h("li", { text: "clinicians may only treat you in the states where they are licensed." }),
      ),
      messages.element,
      form,
    ),
  );
}

/**
 * The consent text as paragraphs and lists: lines starting "- " are list items (indented lines
 * continue them), blank lines separate paragraphs. Text only.
 * @param {string} text
 */
function consentBody(text) {
  /** @type {Node[]} */
  const out = [];
  /** @type {HTMLUListElement | null} */
  let list = null;
  /** @type {HTMLElement | null} */
  let current = null;
  for (const raw of text.split("\n")) {
    const line = raw.trimEnd();
    if (!line.trim()) {
      list = null;
      current = null;
    } else if (line.startsWith("- ")) {
      if (!list) {
        list = h("ul", { class: "consent__list" });
        out.push(list);
      }
      current = h("li", { text: line.slice(2) });
      list.append(current);
    } else if (current && raw.startsWith(" ")) {
      current.textContent += ` ${line.trim()}`;
    } else {
      list = null;
      current = h("p", { text: line.trim() });
      out.push(current);
    }
  }
  return out;
}

/** pydantic's "Value error, a phone number has ..." as a sentence. @param {string} message */
function tidy(message) {
  const text = message.replace(/^Value error, /, "");
  return text.charAt(0).toUpperCase() + text.slice(1) + (text.endsWith(".") ? "" : ".");
}
