// The optional PHQ-9 and GAD-7 a patient can fill in while waiting for a clinic visit. Each
// item is a group of four radio buttons with the published wording; the answers go to
// POST /clinics/waiting-room/screenings and reach the psychiatrist's board. Item 9 of the
// PHQ-9 asks about self-harm: the form says before it and after it what to do in an emergency,
// and that the answers are read at the visit, not watched live.

import { h, replaceChildren, uid } from "../dom.js";
import { messageSlot, submitButton } from "../forms.js";
import { messageFor } from "../messages.js";
import { ANSWERS, checkAnswers, INSTRUMENTS, QUESTION, SELF_HARM_ITEM } from "./instruments.js";

/** @typedef {import('./instruments.js').Instrument} Instrument */

export const EMERGENCY_TEXT =
  "If you are thinking about harming yourself or you are in danger now, don't wait for your visit: call 911, or call or text 988 (Suicide & Crisis Lifeline).";

/**
 * @param {object} options
 * @param {(body: {instrument: Instrument, answers: number[]}) => Promise<unknown>} options.send
 * @param {(text: string) => void} [options.announce]
 */
export function screeningForms({ send, announce = () => {} }) {
  const forms = /** @type {Instrument[]} */ (["phq9", "gad7"]).map((instrument) => questionnaire(instrument, send, announce));
  const element = h(
    "section",
    { class: "questionnaires", "aria-labelledby": "questionnaires-heading" },
    h("h3", { id: "questionnaires-heading", class: "waiting__subtitle", text: "Two short questionnaires (optional)" }),
    h("p", { text: "While you wait, you can answer questions about your mood and about anxiety. Your answers go to your clinician for your visit. Each takes about two minutes; you can skip them." }),
    h("div", { class: "notice notice--info questionnaires__emergency" }, h("p", { text: `Your clinician reads your answers at your visit, not straight away. ${EMERGENCY_TEXT}` })),
    forms.map((f) => f.element),
  );
  return { element };
}

/**
 * @param {Instrument} instrument
 * @param {(body: {instrument: Instrument, answers: number[]}) => Promise<unknown>} send
 * @param {(text: string) => void} announce
 */
function questionnaire(instrument, send, announce) {
  const def = INSTRUMENTS[instrument];
  const messages = messageSlot();
  const submit = submitButton(`Send my ${def.name} answers`, "Sending…");
  /** @type {(number | null)[]} */
  const answers = def.items.map(() => null);
  /** @type {HTMLFieldSetElement[]} */
  const groups = [];
  const items = def.items.map((text, index) => {
    const number = index + 1;
    const name = uid(`${instrument}-item`);
    const selfHarm = instrument === "phq9" && number === SELF_HARM_ITEM;
    const group = h(
      "fieldset",
      { class: `item${selfHarm ? " item--safety" : ""}` },
      h("legend", { class: "item__text" }, h("span", { class: "item__number", text: `${number}.` }), ` ${text}`),
      h(
        "div",
        { class: "item__answers" },
        ANSWERS.map((answer) => {
          const id = `${name}-${answer.value}`;
          const radio = h("input", { type: "radio", id, name, value: String(answer.value), class: "item__radio" });
          radio.addEventListener("change", () => {
            answers[index] = answer.value;
            group.classList.remove("item--missing");
            group.removeAttribute("aria-invalid");
          });
          return h("label", { class: "item__answer", for: id }, radio, h("span", { text: answer.text }));
        }),
      ),
      selfHarm ? h("p", { class: "item__note", text: `About this question: answering it helps your clinician look after you. ${EMERGENCY_TEXT}` }) : null,
    );
    groups.push(group);
    return group;
  });

  const form = h(
    "form",
    { class: "questionnaire__form", novalidate: true },
    h("p", { class: "questionnaire__question", text: QUESTION }),
    items,
    messages.element,
    h("div", { class: "form__actions" }, submit.button),
  );
  const summary = h("summary", { class: "questionnaire__summary" }, h("span", { text: def.title }), h("span", { class: "questionnaire__count", text: `${def.items.length} questions` }));
  const details = h("details", { class: "questionnaire" }, summary, form);
  const element = h("div", { class: "questionnaire__slot" }, details);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (submit.busy) return;
    messages.clear();
    const checked = checkAnswers(instrument, answers);
    if (!checked.ok) {
      for (const n of checked.missing) {
        groups[n - 1].classList.add("item--missing");
        groups[n - 1].setAttribute("aria-invalid", "true");
      }
      const list = checked.missing.join(", ");
      messages.show("error", `Please answer every question before sending (${checked.missing.length === 1 ? "question" : "questions"} ${list}).`);
      groups[checked.missing[0] - 1].querySelector("input")?.focus();
      return;
    }
    submit.setBusy(true);
    try {
      await send({ instrument, answers: checked.answers });
    } catch (error) {
      messages.show("error", `Your answers weren't sent. ${messageFor(error)}`);
      submit.setBusy(false);
      return;
    }
    const selfHarm = instrument === "phq9" && checked.answers[SELF_HARM_ITEM - 1] > 0;
    const done = h(
      "div",
      { class: "questionnaire__done", tabindex: "-1" },
      h("p", { class: "questionnaire__sent", text: `${def.title}: sent. Thank you.` }),
      selfHarm
        ? h(
            "div",
            { class: "notice notice--warning" },
            h("p", { text: "Thank you for telling us about thoughts of hurting yourself. Your clinician will talk with you about it at your visit." }),
            h("p", { text: EMERGENCY_TEXT }),
          )
        : null,
    );
    replaceChildren(element, done);
    done.focus();
    announce(`${def.title} sent. Thank you.`);
  });
  return { element };
}
