// PHQ-9 and GAD-7 as the patient reads them: the published wording of each item and of the
// answers, and the severity bands, mirroring server/record/screenings.py (the server scores
// and stores; the client only shows). Pure: no DOM, so it is unit-tested under Node.

/** @typedef {"phq9" | "gad7"} Instrument */
/** @typedef {"minimal" | "mild" | "moderate" | "moderately_severe" | "severe"} Severity */

export const QUESTION = "Over the last 2 weeks, how often have you been bothered by any of the following problems?";

export const ANSWERS = [
  { value: 0, text: "Not at all" },
  { value: 1, text: "Several days" },
  { value: 2, text: "More than half the days" },
  { value: 3, text: "Nearly every day" },
];

/** @type {Record<Instrument, {name: string, title: string, items: string[], bands: [number, Severity][]}>} */
export const INSTRUMENTS = {
  phq9: {
    name: "PHQ-9",
    title: "Mood (PHQ-9)",
    items: [
      "Little interest or pleasure in doing things",
      "Feeling down, depressed, or hopeless",
      "Trouble falling or staying asleep, or sleeping too much",
      "Feeling tired or having little energy",
      "Poor appetite or overeating",
      "Feeling bad about yourself — or that you are a failure or have let yourself or your family down",
      "Trouble concentrating on things, such as reading the newspaper or watching television",
      "Moving or speaking so slowly that other people could have noticed? Or the opposite — being so fidgety or restless that you have been moving around a lot more than usual",
      "Thoughts that you would be better off dead or of hurting yourself in some way",
    ],
    bands: [
      [0, "minimal"],
      [5, "mild"],
      [10, "moderate"],
      [15, "moderately_severe"],
      [20, "severe"],
    ],
  },
  gad7: {
    name: "GAD-7",
    title: "Anxiety (GAD-7)",
    items: [
      "Feeling nervous, anxious, or on edge",
      "Not being able to stop or control worrying",
      "Worrying too much about different things",
      "Trouble relaxing",
      "Being so restless that it is hard to sit still",
      "Becoming easily annoyed or irritable",
      "Feeling afraid, as if something awful might happen",
    ],
    bands: [
      [0, "minimal"],
      [5, "mild"],
      [10, "moderate"],
      [15, "severe"],
    ],
  },
};

// PHQ-9 item 9 (self-harm), counted from 1 as the form numbers it.
export const SELF_HARM_ITEM = 9;

/** @type {Record<Severity, string>} */
export const SEVERITY_LABEL = {
  minimal: "Minimal",
  mild: "Mild",
  moderate: "Moderate",
  moderately_severe: "Moderately severe",
  severe: "Severe",
};

/** @param {string} instrument */
export function instrumentName(instrument) {
  return INSTRUMENTS[/** @type {Instrument} */ (instrument)]?.name ?? instrument;
}

/** The band a total falls in. @param {Instrument} instrument @param {number} total @returns {Severity} */
export function severityOf(instrument, total) {
  let band = INSTRUMENTS[instrument].bands[0][1];
  for (const [lowest, severity] of INSTRUMENTS[instrument].bands) if (total >= lowest) band = severity;
  return band;
}

/** The highest total an instrument can reach (27 for the PHQ-9, 21 for the GAD-7). @param {Instrument} instrument */
export function maxTotal(instrument) {
  return INSTRUMENTS[instrument].items.length * 3;
}

/**
 * The answers of a filled-in form, or the numbers (from 1) of the items left unanswered.
 * @param {Instrument} instrument
 * @param {(number | null)[]} answers
 * @returns {{ok: true, answers: number[]} | {ok: false, missing: number[]}}
 */
export function checkAnswers(instrument, answers) {
  const count = INSTRUMENTS[instrument].items.length;
  const missing = [];
  for (let i = 0; i < count; i += 1) {
    const value = answers[i];
    if (!(typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= 3)) missing.push(i + 1);
  }
  if (missing.length) return { ok: false, missing };
  return { ok: true, answers: /** @type {number[]} */ (answers.slice(0, count)) };
}
