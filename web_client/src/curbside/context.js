// The question and the record's context a curbside request carries (problems, medications,
// latest PHQ-9 and GAD-7, an open safety flag), as the ringing alert and the consult page show
// them. Everything goes in as text.

import { h } from "../dom.js";

/**
 * @typedef {{question: string, context: Record<string, any>}} Asked
 */

/** The context as a definition list. @param {Record<string, any>} context */
export function contextList(context) {
  const problems = /** @type {any[]} */ (context.problems ?? []);
  const meds = /** @type {any[]} */ (context.medications ?? []);
  const screenings = /** @type {Record<string, any>} */ (context.screenings ?? {});
  /** "16, moderately severe (Dec 5, 2026)". @param {any} s */
  const score = (s) => (s ? `${s.total}, ${String(s.severity).replaceAll("_", " ")} (${new Date(s.administered_at).toLocaleDateString(undefined, { dateStyle: "medium" })})` : "None recorded");
  return h(
    "dl",
    { class: "details curbside__context" },
    context.safety_flag_open ? [h("dt", { text: "Safety" }), h("dd", { class: "curbside__flag", text: "Open safety flag (PHQ-9 item 9) not yet addressed" })] : null,
    h("dt", { text: "Problems" }),
    h("dd", { text: problems.length ? problems.map((p) => p.text).join("; ") : "None recorded" }),
    h("dt", { text: "Medications" }),
    h("dd", { text: meds.length ? meds.map((m) => [m.name, m.dose, m.frequency].filter(Boolean).join(" ")).join("; ") : "None recorded" }),
    h("dt", { text: "Latest PHQ-9" }),
    h("dd", { text: score(screenings.phq9) }),
    h("dt", { text: "Latest GAD-7" }),
    h("dd", { text: score(screenings.gad7) }),
  );
}

/** A card with the question and the context. @param {Asked} asked */
export function contextCard(asked) {
  return h(
    "section",
    { class: "card section", "aria-labelledby": "question-heading" },
    h("h2", { id: "question-heading", class: "section__title", text: "The question" }),
    h("p", { class: "curbside__question", text: asked.question }),
    h("h3", { class: "subsection__title", text: "From the record when asked" }),
    contextList(asked.context ?? {}),
  );
}
