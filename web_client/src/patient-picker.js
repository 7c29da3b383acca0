// Find a patient on your care teams by name or MRN and choose one (GET /patients?query=): the
// clinic booking form and the visit scheduling form.

import { h, replaceChildren, uid } from "./dom.js";
import { field } from "./forms.js";
import { messageFor } from "./messages.js";

const SEARCH_DELAY_MS = 250;

/**
 * @param {import('./app.js').PageContext} ctx
 * @param {{label?: string, hint?: string}} [options]
 */
export function patientPicker(ctx, { label = "Patient", hint = "Type a name or MRN of a patient on your care teams, then choose them." } = {}) {
  const search = field({ label, name: "patient_query", type: "search", autocomplete: "off", hint });
  const results = h("ul", { class: "choices", "aria-label": "Matching patients" });
  const group = uid("pick");
  /** @type {{id: number, name: string} | null} */
  let chosen = null;
  let timer = 0;
  search.input.addEventListener("input", () => {
    chosen = null;
    window.clearTimeout(timer);
    timer = window.setTimeout(find, SEARCH_DELAY_MS);
  });

  async function find() {
    const query = search.input.value.trim();
    if (!query) {
      replaceChildren(results);
      return;
    }
    try {
      const { patients } = await ctx.api.get(`/patients?query=${encodeURIComponent(query)}`, { signal: ctx.signal });
      replaceChildren(
        results,
        patients.length
          ? patients.slice(0, 8).map((/** @type {{id: number, given_name: string, family_name: string, mrn: string, date_of_birth: string}} */ p) => {
              const id = `${group}-${p.id}`;
              const radio = h("input", { type: "radio", name: group, id, value: String(p.id), class: "checkbox__input" });
              radio.addEventListener("change", () => {
                chosen = { id: p.id, name: `${p.given_name} ${p.family_name}` };
                search.setError(null);
              });
              return h("li", { class: "checkbox" }, radio, h("label", { for: id, class: "checkbox__label", text: `${p.given_name} ${p.family_name} · MRN ${p.mrn} · born ${p.date_of_birth}` }));
            })
          : h("li", { class: "muted", text: "No patient on your care teams matches." }),
      );
    } catch (error) {
      if (!ctx.signal.aborted) search.setError(messageFor(error));
    }
  }

  return {
    element: h("div", { class: "picker" }, search.element, results),
    get chosen() {
      return chosen;
    },
    /** Say the choice is missing; returns false. */
    require() {
      if (chosen) return true;
      search.setError("Search for the patient, then choose them in the list.");
      search.input.focus();
      return false;
    },
    /** Start again: no query, no matches, nothing chosen. */
    reset() {
      window.clearTimeout(timer);
      search.input.value = "";
      search.setError(null);
      chosen = null;
      replaceChildren(results);
    },
  };
}
