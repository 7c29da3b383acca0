// "Today's visits" on a clinician's home page (GET /visits?date=&tz= for the viewer's own day
// and time zone), and a short form to schedule one: find a patient on your care teams, pick a
// start and a length; the patient's join link is shown once, to copy.

import { h, replaceChildren } from "../dom.js";
import { field, messageSlot, submitButton } from "../forms.js";
import { messageFor } from "../messages.js";
import { patientPicker } from "../patient-picker.js";
import { localDay, STATUS_BADGE, timeOfDay, VISIT_STATUS } from "./format.js";

/** @typedef {import('../app.js').PageContext} PageContext */
/**
 * @typedef {{id: number, patient: {given_name: string, family_name: string}, scheduled_start: string,
 *   ends_at: string, status: string, reason: string | null}} VisitSummary
 */

const DURATIONS = [15, 20, 30, 45, 60];

/**
 * @param {PageContext} ctx
 * @param {{id: string, title: string}} section
 */
export function todaysVisits(ctx, section) {
  const status = h("p", { class: "muted", role: "status", text: "Loading today's visits…" });
  const list = h("ul", { class: "visits" });
  const headingId = `section-${section.id}`;

  async function reload() {
    const { date, zone } = localDay();
    try {
      const body = await ctx.api.get(`/visits?date=${date}&tz=${encodeURIComponent(zone)}`, { signal: ctx.signal });
      /** @type {VisitSummary[]} */
      const visits = body.visits;
      status.textContent = visits.length ? "" : "No video visits today. Scheduled visits appear here, with a button to open each one.";
      replaceChildren(list, visits.map(item));
    } catch (error) {
      if (ctx.signal.aborted) return;
      status.textContent = `Today's visits could not be loaded. ${messageFor(error)}`;
    }
  }

  /** @param {VisitSummary} v */
  function item(v) {
    const name = `${v.patient.given_name} ${v.patient.family_name}`;
    return h(
      "li",
      { class: "visits__item" },
      h("p", { class: "visits__time" }, h("time", { datetime: v.scheduled_start, text: timeOfDay(v.scheduled_start) }), `–${timeOfDay(v.ends_at)}`),
      h("div", { class: "visits__who" }, h("p", { class: "visits__name", text: name }), v.reason ? h("p", { class: "visits__reason", text: v.reason }) : null),
      h("span", { class: `badge ${STATUS_BADGE[v.status] ?? "badge--plain"}`, text: VISIT_STATUS[v.status] ?? v.status }),
      h(
        "a",
        { class: "button button--secondary button--small", href: `/visit/${v.id}` },
        "Open visit",
        h("span", { class: "visually-hidden", text: ` with ${name} at ${timeOfDay(v.scheduled_start)}` }),
      ),
    );
  }

  reload();
  const element = h(
    "section",
    { class: "card section section--wide", id: section.id, "aria-labelledby": headingId },
    h("h2", { id: headingId, class: "section__title", text: section.title }),
    status,
    list,
    scheduleForm(ctx, reload),
    h("p", { class: "section__foot" }, h("a", { href: "/device-check", text: "Check your camera and connection" })),
  );
  return element;
}

/**
 * @param {PageContext} ctx
 * @param {() => Promise<void>} onScheduled
 */
function scheduleForm(ctx, onScheduled) {
  const messages = messageSlot();
  const picker = patientPicker(ctx, { hint: "Type a name or MRN of a patient on your care teams." });
  const start = field({ label: "Start", name: "scheduled_start", type: "datetime-local", value: soon() });
  const length = field({
    label: "Length",
    name: "duration_minutes",
    type: "select",
    value: "30",
    options: DURATIONS.map((m) => ({ value: String(m), label: `${m} minutes` })),
  });
  const reason = field({ label: "Reason (optional)", name: "reason", autocomplete: "off" });
  const submit = submitButton("Schedule visit", "Scheduling…");
  const issued = h("div", { class: "issued", hidden: true, tabindex: "-1" });
  const form = h(
    "form",
    { class: "form form--compact", novalidate: true },
    picker.element,
    h("div", { class: "form__row" }, start.element, length.element),
    reason.element,
    h("div", { class: "form__actions" }, submit.button),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (submit.busy) return;
    messages.clear();
    const when = new Date(start.input.value);
    const patient = picker.chosen;
    start.setError(Number.isNaN(when.getTime()) ? "Choose the day and time the visit starts." : null);
    if (!patient) {
      picker.require();
      return;
    }
    if (Number.isNaN(when.getTime())) {
      start.input.focus();
      return;
    }
    submit.setBusy(true);
    try {
      const body = await ctx.api.post(
        "/visits",
        {
          patient_id: patient.id,
          scheduled_start: when.toISOString(),
          duration_minutes: Number(length.input.value),
          clinician_ids: [ctx.session.user?.id],
          ...(reason.input.value.trim() ? { reason: reason.input.value.trim() } : {}),
        },
        { signal: ctx.signal },
      );
      const url = body.patient_link.url;
      const input = h("input", { id: "scheduled-url", class: "input input--url", readonly: true, value: url });
      const copy = h("button", { type: "button", class: "button button--primary button--small", text: "Copy link" });
      const copied = h("span", { class: "muted", role: "status" });
      copy.addEventListener("click", async () => {
        try {
          await navigator.clipboard.writeText(url);
          copied.textContent = "Copied.";
        } catch {
          input.select();
          copied.textContent = "Copying isn't allowed here: the link is selected, copy it yourself.";
        }
      });
      replaceChildren(
        issued,
        h("p", { class: "issued__title", text: `Visit scheduled with ${patient.name} at ${timeOfDay(body.visit.scheduled_start)}.` }),
        h("label", { class: "field__label", for: "scheduled-url", text: "The patient's join link" }),
        h("div", { class: "issued__row" }, input, copy),
        copied,
        h("p", { class: "field__hint", text: "Copy it now and send it by your clinic's secure messaging: it can't be shown again. The patient also needs their date of birth to join." }),
        h("p", {}, h("a", { href: `/visit/${body.visit.id}`, text: "Open the visit" })),
      );
      issued.hidden = false;
      issued.focus();
      form.reset();
      picker.reset();
      start.input.value = soon();
      await onScheduled();
    } catch (error) {
      if (ctx.signal.aborted) return;
      messages.show("error", messageFor(error));
    } finally {
      submit.setBusy(false);
    }
  });

  return h(
    "details",
    { class: "schedule" },
    h("summary", { class: "schedule__summary", text: "Schedule a video visit" }),
    messages.element,
    issued,
    form,
  );
}

/** The next quarter hour at least 5 minutes away, as a datetime-local value. */
function soon() {
  const d = new Date(Date.now() + 5 * 60_000);
  d.setMinutes(Math.ceil(d.getMinutes() / 15) * 15, 0, 0);
  const pad = (/** @type {number} */ n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
