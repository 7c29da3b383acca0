// The PCP's curbside request form (/curbside/new?patient=<id>): the patient (one of theirs, or
// a minimal new one), the question, urgency, call now or a written answer, where the patient
// is now, and the patient's consent. Submitting opens the request's own page, which follows it live.

import { h, replaceChildren, uid } from "../dom.js";
import { field, focusFirstInvalid, messageSlot, submitButton } from "../forms.js";
import { messageFor } from "../messages.js";
import { US_STATES } from "../visit/us-states.js";

/** @typedef {import('../app.js').PageContext} PageContext */

const NEW_PATIENT = "new";
const QUESTION_MAX = 4000;

/** @param {PageContext} ctx */
export function askPage(ctx) {
  const wanted = ctx.url.searchParams.get("patient") ?? "";
  const messages = messageSlot();
  const patient = field({ label: "Patient", name: "patient", type: "select", options: [{ value: "", label: "Loading your patients…" }] });
  const newPatient = newPatientFields();
  newPatient.element.hidden = true;
  patient.input.addEventListener("change", () => {
    newPatient.element.hidden = patient.input.value !== NEW_PATIENT;
  });
  ctx.api.get("/patients", { signal: ctx.signal }).then(
    ({ patients }) => {
      const list = /** @type {any[]} */ (patients);
      replaceChildren(
        patient.input,
        h("option", { value: "", text: list.length ? "Choose a patient" : "You have no patients yet" }),
        list.map((p) => h("option", { value: String(p.id), text: `${p.family_name}, ${p.given_name} (MRN ${p.mrn}, born ${p.date_of_birth})` })),
        h("option", { value: NEW_PATIENT, text: "A new patient…" }),
      );
      if (wanted && list.some((p) => String(p.id) === wanted)) patient.input.value = wanted;
    },
    (error) => !ctx.signal.aborted && messages.show("error", `Your patients could not be loaded. ${messageFor(error)}`),
  );

  const question = field({ label: "Your question", name: "question", idPrefix: "question", type: "textarea", rows: 5, maxlength: QUESTION_MAX, required: true, hint: "What you want to know. The patient's problems, medications and latest PHQ-9 and GAD-7 go with it." });

  const urgency = radios("urgency", "Urgency", [
    { value: "routine", label: "Routine", hint: "no rush; answered within the routine target" },
    { value: "urgent", label: "Urgent", hint: "needed today" },
    { value: "emergent", label: "Emergent", hint: "needed as soon as possible" },
  ], "urgent");
  const mode = radios("mode", "How", [
    { value: "call_now", label: "Call now", hint: "rings the on-call psychiatrists; video starts as soon as one accepts" },
    { value: "written", label: "Written answer", hint: "goes to the written queue" },
  ], "call_now");
  const state = field({ label: "Where the patient is now", name: "patient_state", type: "select", hint: "Only psychiatrists licensed there are rung.", options: [{ value: "", label: "Where they live (from the record)" }, ...US_STATES.map(([code, name]) => ({ value: code, label: name }))] });
  const consentId = uid("consent");
  const consent = h("input", { id: consentId, type: "checkbox", name: "patient_consented", class: "checkbox__input" });
  const consentBox = h("div", { class: "checkbox" }, consent, h("label", { class: "checkbox__label", for: consentId, text: "The patient agrees to this consult with a psychiatrist" }));
  const submit = submitButton("Send request", "Sending…");
  const form = h(
    "form",
    { class: "card section form", novalidate: true },
    patient.element,
    newPatient.element,
    question.element,
    urgency.element,
    mode.element,
    state.element,
    consentBox,
    h("p", { class: "field__hint", text: "Without the patient's agreement the consult can still happen, but it is flagged as not billable as an interprofessional consult." }),
    messages.element,
    h("div", { class: "form__actions" }, submit.button, h("a", { class: "button button--quiet", href: "/curbside", text: "Cancel" })),
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (submit.busy) return;
    messages.clear();
    const chosen = patient.input.value;
    patient.setError(chosen ? null : "Choose the patient, or “A new patient…”.");
    const text = question.input.value.trim();
    question.setError(text ? null : "Write your question.");
    const fresh = chosen === NEW_PATIENT ? newPatient.read() : null;
    if (!chosen || !text || (chosen === NEW_PATIENT && !fresh)) {
      focusFirstInvalid([patient, ...newPatient.fields, question]);
      return;
    }
    /** @type {Record<string, unknown>} */
    const body = {
      question: text,
      urgency: urgency.value(),
      mode: mode.value(),
      patient_consented: consent.checked,
      patient_state: state.input.value || undefined,
    };
    if (fresh) body.new_patient = fresh;
    else body.patient_id = Number(chosen);
    submit.setBusy(true);
    try {
      const created = await ctx.api.post("/curbside/requests", body, { signal: ctx.signal });
      ctx.navigate(`/curbside/requests/${created.id}`);
    } catch (error) {
      if (ctx.signal.aborted) return;
      const problems = /** @type {import('../api.js').ApiError} */ (error).fields ?? [];
      messages.show("error", problems.length ? `Check the form: ${problems.map((p) => p.message).join(" ")}` : messageFor(error));
      submit.setBusy(false);
    }
  });

  return h(
    "div",
    { class: "page page--narrow" },
    h(
      "div",
      { class: "page__head" },
      h("p", { class: "page__eyebrow", text: "Curbside consults" }),
      h("h1", { text: "Ask a psychiatrist" }),
      h("p", { class: "page__lede", text: "If the patient is in danger now, call your local emergency number: this is not an emergency service." }),
    ),
    form,
  );
}

/**
 * @param {string} name @param {string} legend
 * @param {{value: string, label: string, hint: string}[]} options @param {string} initial
 */
function radios(name, legend, options, initial) {
  const inputs = options.map((o) => {
    const id = uid(`${name}-${o.value}`);
    const input = h("input", { id, type: "radio", name, value: o.value, class: "checkbox__input", checked: o.value === initial });
    return { input, element: h("div", { class: "checkbox" }, input, h("label", { class: "checkbox__label", for: id }, h("strong", { text: o.label }), h("span", { class: "muted", text: `: ${o.hint}` }))) };
  });
  return {
    element: h("fieldset", { class: "fieldset" }, h("legend", { class: "fieldset__legend", text: legend }), inputs.map((i) => i.element)),
    value: () => inputs.find((i) => i.input.checked)?.input.value ?? initial,
  };
}

/** The minimal new patient the API accepts with a request (the PCP joins their care team). */
function newPatientFields() {
  const given = field({ label: "Given name", name: "given_name", autocomplete: "off" });
  const family = field({ label: "Family name", name: "family_name", autocomplete: "off" });
  const dob = field({ label: "Date of birth", name: "date_of_birth", type: "date" });
  const state = field({ label: "State where they live", name: "state", type: "select", options: [{ value: "", label: "Choose" }, ...US_STATES.map(([code, n]) => ({ value: code, label: n }))] });
  const phone = field({ label: "Phone", name: "phone", type: "tel", autocomplete: "off" });
  const fields = [given, family, dob, state, phone];
  const element = h("fieldset", { class: "fieldset stack-small" }, h("legend", { class: "fieldset__legend", text: "New patient" }), fields.map((f) => f.element));
  return {
    element,
    fields,
    /** @returns {Record<string, string> | null} the fields, or null after marking what is missing */
    read() {
      let ok = true;
      for (const f of fields) {
        const missing = !f.input.value.trim();
        f.setError(missing ? "Required." : null);
        ok &&= !missing;
      }
      if (!ok) return null;
      return { given_name: given.input.value.trim(), family_name: family.input.value.trim(), date_of_birth: dob.input.value, state: state.input.value, phone: phone.input.value.trim() };
    },
  };
}
