// The on-call rota. A psychiatrist manages their own shifts (add, remove) and the states they
// are licensed in (a call-now request names where the patient is; only psychiatrists licensed
// there are rung, unless an admin has turned that rule off); an administrator manages everyone's
// shifts from /admin/curbside with the same card, showing who and choosing for whom.

import { h, replaceChildren } from "../dom.js";
import { field, messageSlot, submitButton } from "../forms.js";
import { messageFor } from "../messages.js";
import { US_STATES } from "../visit/us-states.js";
import { parseStates } from "./status.js";

/** @typedef {import('../app.js').PageContext} PageContext */
/** @typedef {{id: number, psychiatrist_id: number, psychiatrist_name: string, tier: string, starts_at: string, ends_at: string}} Shift */

const SHOWN_DAYS = 14;

/** @param {PageContext} ctx @param {number} myId @param {() => void} changed */
export function rotaSection(ctx, myId, changed) {
  return h("div", { class: "columns" }, shiftsCard(ctx, myId, changed), licencesCard(ctx, changed));
}

/** Everyone's shifts, for an administrator. @param {PageContext} ctx */
export function rotaAdminSection(ctx) {
  return shiftsCard(ctx, null, () => {});
}

/**
 * @param {PageContext} ctx
 * @param {number | null} myId  the psychiatrist whose own shifts these are; null: everyone's
 * @param {() => void} changed
 */
function shiftsCard(ctx, myId, changed) {
  const everyone = myId === null;
  const list = h("div", { class: "section__body" }, h("p", { class: "muted", text: everyone ? "Loading the shifts…" : "Loading your shifts…" }));
  const messages = messageSlot();
  const now = new Date();
  const later = new Date(now.getTime() + 8 * 3600_000);
  const tier = field({ label: "Tier", name: "tier", type: "select", options: [{ value: "primary", label: "Primary (rung first)" }, { value: "backup", label: "Backup (rung if primary doesn't answer)" }] });
  const starts = field({ label: "Starts", name: "starts_at", type: "datetime-local", value: localInput(now) });
  const ends = field({ label: "Ends", name: "ends_at", type: "datetime-local", value: localInput(later) });
  const who = everyone ? field({ label: "Psychiatrist", name: "psychiatrist_id", type: "select", options: [{ value: "", label: "Loading the psychiatrists…" }] }) : null;
  if (who) {
    ctx.api.get("/clinics/psychiatrists", { signal: ctx.signal }).then(
      ({ psychiatrists }) => {
        const people = /** @type {{id: number, display_name: string}[]} */ (psychiatrists);
        replaceChildren(who.input, h("option", { value: "", text: people.length ? "Choose a psychiatrist" : "There are no psychiatrists' accounts" }), people.map((p) => h("option", { value: String(p.id), text: p.display_name })));
      },
      (error) => !ctx.signal.aborted && messages.show("error", `The psychiatrists could not be loaded. ${messageFor(error)}`),
    );
  }
  const submit = submitButton("Add shift", "Adding…", "secondary");
  const form = h("form", { class: "form form--compact", novalidate: true }, who?.element, tier.element, h("div", { class: "form__row" }, starts.element, ends.element), messages.element, h("div", { class: "form__actions" }, submit.button));

  async function reload() {
    const since = new Date(Date.now() - 24 * 3600_000).toISOString();
    const until = new Date(Date.now() + SHOWN_DAYS * 24 * 3600_000).toISOString();
    try {
      const { shifts } = await ctx.api.get(`/curbside/shifts?since=${encodeURIComponent(since)}&until=${encodeURIComponent(until)}`, { signal: ctx.signal });
      const shown = /** @type {Shift[]} */ (shifts).filter((s) => (everyone || s.psychiatrist_id === myId) && Date.parse(s.ends_at) > Date.now());
      replaceChildren(
        list,
        shown.length
          ? h("ul", { class: "curbside__list" }, shown.map((s) => shiftItem(s)))
          : h("p", { class: "muted", text: everyone ? `Nobody is on call in the next ${SHOWN_DAYS} days.` : `You have no on-call shift in the next ${SHOWN_DAYS} days.` }),
      );
    } catch (error) {
      if (!ctx.signal.aborted) replaceChildren(list, h("div", { class: "notice notice--error" }, h("p", { text: messageFor(error) })));
    }
  }

  /** @param {Shift} s */
  function shiftItem(s) {
    const remove = h("button", { type: "button", class: "button button--quiet button--small" }, "Remove", h("span", { class: "visually-hidden", text: ` ${everyone ? `${s.psychiatrist_name}'s` : "the"} shift starting ${when(s.starts_at)}` }));
    remove.addEventListener("click", async () => {
      try {
        await ctx.api.request("DELETE", `/curbside/shifts/${s.id}`, undefined, { signal: ctx.signal });
        ctx.announce("Shift removed.");
        await reload();
        changed();
      } catch (error) {
        if (!ctx.signal.aborted) messages.show("error", messageFor(error));
      }
    });
    const current = Date.parse(s.starts_at) <= Date.now();
    return h(
      "li",
      { class: "curbside__item curbside__shift", dataset: { key: String(s.id) } },
      everyone ? h("span", { class: "curbside__shift-who", text: s.psychiatrist_name }) : null,
      h("span", { class: "curbside__shift-when", text: span(s.starts_at, s.ends_at) }),
      h("span", { class: `badge ${current ? "badge--ok" : "badge--plain"}`, text: `${s.tier === "backup" ? "Backup" : "Primary"}${current ? " · now" : ""}` }),
      remove,
    );
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (submit.busy) return;
    messages.clear();
    const psychiatrist = who ? Number(who.input.value) : myId;
    who?.setError(psychiatrist ? null : "Choose the psychiatrist on call.");
    const from = new Date(starts.input.value);
    const to = new Date(ends.input.value);
    starts.setError(Number.isNaN(from.getTime()) ? "Give the start date and time." : null);
    ends.setError(Number.isNaN(to.getTime()) ? "Give the end date and time." : to <= from ? "The shift must end after it starts." : null);
    if (!psychiatrist || Number.isNaN(from.getTime()) || Number.isNaN(to.getTime()) || to <= from) return;
    submit.setBusy(true);
    try {
      await ctx.api.post("/curbside/shifts", { psychiatrist_id: psychiatrist, tier: tier.input.value, starts_at: from.toISOString(), ends_at: to.toISOString() }, { signal: ctx.signal });
      ctx.announce("Shift added.");
      await reload();
      changed();
    } catch (error) {
      if (!ctx.signal.aborted) messages.show("error", messageFor(error));
    } finally {
      submit.setBusy(false);
    }
  });

  reload();
  return h(
    "section",
    { class: "card section", id: "shifts", "aria-labelledby": "shifts-heading" },
    h("h2", { id: "shifts-heading", class: "section__title", text: everyone ? "On-call rota" : "Your on-call shifts" }),
    everyone ? h("p", { class: "muted", text: `Current and upcoming shifts for the next ${SHOWN_DAYS} days. Call-now requests ring the primary tier first, then the backup tier.` }) : null,
    list,
    h("h3", { class: "subsection__title", text: "Add a shift" }),
    form,
  );
}

/** @param {PageContext} ctx @param {() => void} changed */
function licencesCard(ctx, changed) {
  // Closed until the saved states are in: the load would overwrite what was typed before it
  // arrived, and saving (which replaces the whole list) before it would drop states never seen.
  // A failed load leaves it closed for the same reason.
  const states = field({ label: "States you are licensed in", name: "states", hint: "Two-letter codes, separated by commas or spaces, e.g. CA, NY, TX.", autocomplete: "off", placeholder: "Loading your states…", attrs: { disabled: true } });
  const messages = messageSlot();
  const submit = submitButton("Save states", "Saving…", "secondary");
  submit.button.setAttribute("aria-disabled", "true");
  let loaded = false;
  const form = h("form", { class: "form form--compact", novalidate: true }, states.element, messages.element, h("div", { class: "form__actions" }, submit.button));
  /** @param {boolean} retried  from "Try again", which has the focus: it then goes to the field */
  function load(retried) {
    ctx.api.get("/curbside/licenses", { signal: ctx.signal }).then(
      (body) => {
        messages.clear();
        states.input.value = body.states.join(", ");
        states.input.removeAttribute("placeholder");
        states.input.disabled = false;
        submit.button.removeAttribute("aria-disabled");
        loaded = true;
        if (retried) states.input.focus();
      },
      (error) => {
        if (ctx.signal.aborted) return;
        states.input.removeAttribute("placeholder");
        // The field stays closed until the load succeeds; this button is the way there.
        const retry = h("button", { type: "button", class: "button button--secondary button--small", text: "Try again" });
        retry.addEventListener("click", () => {
          if (retry.getAttribute("aria-disabled") === "true") return;
          // Kept in place while it loads (aria-disabled, not disabled) so the focus stays on it.
          retry.setAttribute("aria-disabled", "true");
          retry.textContent = "Loading…";
          load(true);
        });
        messages.show("error", `Your states could not be loaded. ${messageFor(error)}`, retry);
        if (retried) retry.focus();
      },
    );
  }
  load(false);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!loaded || submit.busy) return;
    messages.clear();
    const parsed = parseStates(states.input.value, US_STATES.map(([code]) => code));
    if (parsed.unknown.length) {
      states.setError(`Not a state code: ${parsed.unknown.join(", ")}.`);
      states.input.focus();
      return;
    }
    states.setError(null);
    submit.setBusy(true);
    try {
      const typed = states.input.value;
      const saved = await ctx.api.put("/curbside/licenses", { states: parsed.states }, { signal: ctx.signal });
      // Tidied ("ca ny" reads back "CA, NY"), unless more was typed while it saved.
      if (states.input.value === typed) states.input.value = saved.states.join(", ");
      messages.show("success", saved.states.length ? `Saved: ${saved.states.join(", ")}.` : "Saved: no states.");
      changed();
    } catch (error) {
      if (!ctx.signal.aborted) messages.show("error", messageFor(error));
    } finally {
      submit.setBusy(false);
    }
  });
  return h(
    "section",
    { class: "card section", id: "licences", "aria-labelledby": "licences-heading" },
    h("h2", { id: "licences-heading", class: "section__title", text: "Licensed states" }),
    h("p", { class: "muted", text: "A call-now request rings you only when the patient is in one of these states (unless your administrator has turned that rule off)." }),
    form,
  );
}

/** A Date as the value of an <input type="datetime-local"> (local time, to the minute). @param {Date} d */
function localInput(d) {
  const pad = (/** @type {number} */ n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** @param {string} iso */
/** "Sat, Dec 5, 06:34 – 14:39" within a day; both dates when it runs overnight. @param {string} from @param {string} to */
function span(from, to) {
  const a = new Date(from);
  const b = new Date(to);
  const sameDay = a.toDateString() === b.toDateString();
  const end = sameDay ? b.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" }) : when(to);
  return `${when(from)} – ${end}`;
}

/** @param {string} iso */
function when(iso) {
  return new Date(iso).toLocaleString(undefined, { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
}
