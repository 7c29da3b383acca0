// Clinic sessions, /clinics. Psychiatrists see their own sessions and open each one's live
// board. Staff (care managers, administrators) create sessions for a psychiatrist and manage the
// bookings of one session at a time (?session=ID): book a patient into a free slot (a video
// visit and an emailed invitation with the join link), move a booking, cancel it, or resend the
// invitation with a fresh link.

import { patientPicker } from "../patient-picker.js";
import { h, replaceChildren } from "../dom.js";
import { field, messageSlot, submitButton } from "../forms.js";
import { messageFor } from "../messages.js";
import { dayOf, timeOfDay } from "../visit/format.js";

/** @typedef {import('../app.js').PageContext} PageContext */
/**
 * @typedef {{id: number, psychiatrist_id: number, title: string, starts_at: string, ends_at: string, slot_minutes: number}} SessionSummary
 * @typedef {{id: number, kind: string, to_address: string | null, created_at: string, sent_at: string | null, attempts: number, error: string | null}} Outbox
 * @typedef {{id: number, session_id: number, slot_start: string, status: string, visit_id: number, replaced_by: number | null,
 *   patient: {id: number, mrn: string, given_name: string, family_name: string}, invitation: Outbox | null}} Booking
 * @typedef {SessionSummary & {psychiatrist_name: string, slots: string[], bookings: Booking[]}} SessionDetail
 */

const STAFF = new Set(["care_manager", "admin"]);
const SLOT_LENGTHS = [15, 20, 30, 45, 60];
const DAYS_AHEAD = 60;

/** @type {import('../app.js').Page} */
export const clinicsPage = {
  title: "Clinic sessions",
  access: "user",
  roles: ["psychiatrist", "care_manager", "admin"],
  layout: "frame",
  render(ctx) {
    const staff = STAFF.has(ctx.session.user?.role ?? "");
    const list = h("div", { class: "clinics__list" }, h("p", { class: "muted", role: "status", text: "Loading clinic sessions…" }));
    const detail = h("div", { class: "clinics__detail" });
    /** @type {Map<number, string>} */
    const names = new Map();

    async function loadList() {
      const from = new Date();
      from.setHours(0, 0, 0, 0);
      const to = new Date(from.getTime() + DAYS_AHEAD * 86_400_000);
      try {
        const [body, people] = await Promise.all([
          ctx.api.get(`/clinics/sessions?from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`, { signal: ctx.signal }),
          staff && !names.size ? ctx.api.get("/clinics/psychiatrists", { signal: ctx.signal }) : null,
        ]);
        for (const p of people?.psychiatrists ?? []) names.set(p.id, p.display_name);
        replaceChildren(list, sessionsTable(ctx, body.sessions, names, staff));
        if (staff && create.select.childElementCount === 0) create.fill([...names].map(([id, name]) => ({ id, name })));
      } catch (error) {
        if (!ctx.signal.aborted) replaceChildren(list, h("div", { class: "notice notice--error" }, h("p", { text: `The clinic sessions could not be loaded. ${messageFor(error)}` })));
      }
    }

    const create = createForm(ctx, async (session) => {
      await loadList();
      ctx.navigate(`/clinics?session=${session.id}`);
    });
    const chosen = Number(ctx.url.searchParams.get("session"));
    if (staff && Number.isInteger(chosen) && chosen > 0) sessionDetail(ctx, chosen, detail);
    loadList();

    return h(
      "div",
      { class: "page clinics" },
      h(
        "div",
        { class: "page__head" },
        h("p", { class: "page__eyebrow", text: "Remote clinics" }),
        h("h1", { text: "Clinic sessions" }),
        h("p", { class: "page__lede", text: staff ? "Create a psychiatrist's clinic session, then book patients into its slots. Each booking sends the patient an invitation with their join link." : "Your clinic sessions for the next two months. Open a session's board to see who is waiting." }),
      ),
      detail,
      h(
        "section",
        { class: "card section section--wide", "aria-labelledby": "sessions-heading" },
        h("div", { class: "section__head" }, h("h2", { id: "sessions-heading", class: "section__title", text: "Upcoming sessions" })),
        list,
      ),
      staff ? create.wrapper : null,
    );
  },
};

/**
 * @param {PageContext} ctx @param {SessionSummary[]} sessions @param {Map<number, string>} names
 * @param {boolean} staff
 */
function sessionsTable(ctx, sessions, names, staff) {
  if (!sessions.length) {
    return h("p", { class: "section__empty", text: staff ? "No clinic sessions in the next two months. Create one below." : "You have no clinic sessions in the next two months." });
  }
  const chosen = Number(ctx.url.searchParams.get("session"));
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "table clinics__table" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Day" }), h("th", { scope: "col", text: "Time" }), h("th", { scope: "col", text: "Session" }), staff ? h("th", { scope: "col", text: "Psychiatrist" }) : null, h("th", { scope: "col" }, h("span", { class: "visually-hidden", text: "Actions" })))),
      h(
        "tbody",
        {},
        sessions.map((s) =>
          h(
            "tr",
            { class: s.id === chosen ? "is-current" : "" },
            h("td", { text: dayOf(s.starts_at) }),
            h("td", { class: "nowrap", text: `${timeOfDay(s.starts_at)}–${timeOfDay(s.ends_at)}` }),
            h("td", {}, h("span", { class: "table__name" }, staff ? s.title : h("a", { href: `/clinics/${s.id}`, text: s.title })), h("span", { class: "table__sub", text: `${s.slot_minutes}-minute slots` })),
            staff ? h("td", { text: names.get(s.psychiatrist_id) ?? "—" }) : null,
            h(
              "td",
              {},
              h(
                "div",
                { class: "table__actions" },
                staff ? h("a", { class: "button button--secondary button--small", href: `/clinics?session=${s.id}` }, "Bookings", h("span", { class: "visually-hidden", text: ` for ${s.title}` })) : null,
                ctx.session.user?.role === "admin" ? null : h("a", { class: `button button--small ${staff ? "button--quiet" : "button--primary"}`, href: `/clinics/${s.id}` }, "Open board", h("span", { class: "visually-hidden", text: ` of ${s.title}` })),
              ),
            ),
          ),
        ),
      ),
    ),
  );
}

/** @param {PageContext} ctx @param {(session: SessionDetail) => Promise<void>} onCreated */
function createForm(ctx, onCreated) {
  const messages = messageSlot();
  const psychiatrist = field({ label: "Psychiatrist", name: "psychiatrist_id", type: "select", options: [] });
  const title = field({ label: "Title", name: "title", autocomplete: "off", hint: "For example: Thursday medication clinic." });
  const day = field({ label: "Day", name: "day", type: "date", value: localDate(new Date(Date.now() + 86_400_000)) });
  const start = field({ label: "Starts", name: "start", type: "time", value: "09:00" });
  const end = field({ label: "Ends", name: "end", type: "time", value: "12:00" });
  const slot = field({ label: "Slot length", name: "slot_minutes", type: "select", value: "30", options: SLOT_LENGTHS.map((m) => ({ value: String(m), label: `${m} minutes` })) });
  const submit = submitButton("Create session", "Creating…");
  const element = h(
    "form",
    { class: "form form--compact", novalidate: true },
    psychiatrist.element,
    title.element,
    h("div", { class: "form__row" }, day.element, start.element, end.element, slot.element),
    messages.element,
    h("div", { class: "form__actions" }, submit.button),
  );
  element.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (submit.busy) return;
    messages.clear();
    const startsAt = new Date(`${day.input.value}T${start.input.value}`);
    const endsAt = new Date(`${day.input.value}T${end.input.value}`);
    title.setError(title.input.value.trim() ? null : "Give the session a title.");
    start.setError(Number.isNaN(startsAt.getTime()) ? "Choose the day and the time it starts." : null);
    end.setError(!(endsAt > startsAt) ? "The session must end after it starts." : null);
    psychiatrist.setError(psychiatrist.input.value ? null : "Choose the psychiatrist.");
    if (!title.input.value.trim() || !(endsAt > startsAt) || !psychiatrist.input.value) return;
    submit.setBusy(true);
    try {
      const session = await ctx.api.post(
        "/clinics/sessions",
        { psychiatrist_id: Number(psychiatrist.input.value), title: title.input.value.trim(), starts_at: startsAt.toISOString(), ends_at: endsAt.toISOString(), slot_minutes: Number(slot.input.value) },
        { signal: ctx.signal },
      );
      element.reset();
      await onCreated(session);
    } catch (error) {
      if (!ctx.signal.aborted) messages.show("error", messageFor(error));
    } finally {
      submit.setBusy(false);
    }
  });
  const wrapper = h(
    "section",
    { class: "card section section--wide clinics__create", "aria-labelledby": "create-heading" },
    h("h2", { id: "create-heading", class: "section__title", text: "New clinic session" }),
    element,
  );
  return {
    wrapper,
    select: psychiatrist.input,
    /** @param {{id: number, name: string}[]} people */
    fill(people) {
      replaceChildren(psychiatrist.input, h("option", { value: "", text: "Choose…" }), people.map((p) => h("option", { value: String(p.id), text: p.name })));
    },
  };
}

/**
 * One session's slots and bookings, for staff.
 * @param {PageContext} ctx @param {number} id @param {HTMLElement} into
 */
function sessionDetail(ctx, id, into) {
  const messages = messageSlot("status");
  const body = h("div", { class: "clinics__body" }, h("p", { class: "muted", text: "Loading the bookings…" }));
  const heading = h("h2", { id: "bookings-heading", class: "section__title", text: "Bookings" });
  const sub = h("p", { class: "muted" });
  replaceChildren(
    into,
    h(
      "section",
      { class: "card section section--wide bookings", id: "bookings", "aria-labelledby": "bookings-heading" },
      h("div", { class: "section__head" }, h("div", {}, heading, sub), h("div", { class: "table__actions" }, h("a", { class: "button button--secondary button--small", href: `/clinics/${id}`, text: "Open board" }), h("a", { class: "button button--quiet button--small", href: "/clinics", text: "Close" }))),
      messages.element,
      body,
    ),
  );

  async function load() {
    try {
      /** @type {SessionDetail} */
      const s = await ctx.api.get(`/clinics/sessions/${id}`, { signal: ctx.signal });
      heading.textContent = `Bookings · ${s.title}`;
      sub.textContent = `${dayOf(s.starts_at)}, ${timeOfDay(s.starts_at)}–${timeOfDay(s.ends_at)} · ${s.psychiatrist_name} · ${s.slot_minutes}-minute slots`;
      replaceChildren(body, slotsTable(s));
    } catch (error) {
      if (!ctx.signal.aborted) replaceChildren(body, h("div", { class: "notice notice--error" }, h("p", { text: messageFor(error) })));
    }
  }

  /** @param {SessionDetail} s */
  function slotsTable(s) {
    const active = new Map(s.bookings.filter((b) => b.status === "booked").map((b) => [new Date(b.slot_start).getTime(), b]));
    const free = s.slots.filter((t) => !active.has(new Date(t).getTime()));
    return h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "table slots" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Slot" }), h("th", { scope: "col", text: "Patient" }), h("th", { scope: "col", text: "Invitation" }), h("th", { scope: "col" }, h("span", { class: "visually-hidden", text: "Actions" })))),
        h(
          "tbody",
          {},
          s.slots.map((t) => {
            const booking = active.get(new Date(t).getTime());
            return booking ? bookedRow(s, booking, free) : freeRow(s, t);
          }),
        ),
      ),
    );
  }

  /** @param {SessionDetail} s @param {string} t */
  function freeRow(s, t) {
    const cell = h("td", { colspan: "3" });
    const book = h("button", { type: "button", class: "button button--secondary button--small" }, "Book", h("span", { class: "visually-hidden", text: ` the ${timeOfDay(t)} slot` }));
    replaceChildren(cell, h("span", { class: "muted", text: "Free" }), " ", book);
    book.addEventListener("click", () => {
      const picker = patientPicker(ctx);
      const submit = submitButton("Book and send invitation", "Booking…");
      const cancel = h("button", { type: "button", class: "button button--quiet", text: "Cancel" });
      const form = h("form", { class: "form form--compact slots__book", novalidate: true }, picker.element, h("div", { class: "form__actions" }, submit.button, cancel));
      cancel.addEventListener("click", () => load());
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        if (submit.busy || !picker.require()) return;
        submit.setBusy(true);
        try {
          /** @type {Booking} */
          const booked = await ctx.api.post(`/clinics/sessions/${s.id}/bookings`, { patient_id: picker.chosen?.id, slot_start: t }, { signal: ctx.signal });
          messages.show("success", `${picker.chosen?.name} is booked at ${timeOfDay(t)}. ${invitationText(booked.invitation)}.`);
          await load();
        } catch (error) {
          if (!ctx.signal.aborted) messages.show("error", messageFor(error));
          submit.setBusy(false);
        }
      });
      replaceChildren(cell, form);
      /** @type {HTMLElement | null} */ (form.querySelector("input"))?.focus();
    });
    return h("tr", { class: "slots__free" }, h("th", { scope: "row", class: "nowrap", text: timeOfDay(t) }), cell);
  }

  /** @param {SessionDetail} s @param {Booking} b @param {string[]} free */
  function bookedRow(s, b, free) {
    const who = `${b.patient.given_name} ${b.patient.family_name}`;
    const hidden = h("span", { class: "visually-hidden", text: ` (${who})` });
    const resend = h("button", { type: "button", class: "button button--secondary button--small" }, "Resend invitation", hidden.cloneNode(true));
    const move = h("button", { type: "button", class: "button button--quiet button--small" }, "Move", hidden.cloneNode(true));
    const cancel = h("button", { type: "button", class: "button button--quiet button--small" }, "Cancel", hidden.cloneNode(true));
    const extra = h("div", { class: "slots__extra", hidden: true });
    resend.addEventListener("click", () =>
      act(resend, async () => {
        const sent = await ctx.api.post(`/clinics/bookings/${b.id}/invitation`, { kind: "invitation" }, { signal: ctx.signal });
        return `A new invitation for ${who}: ${invitationText(sent).toLowerCase()}. Earlier links no longer work.`;
      }),
    );
    move.addEventListener("click", () => {
      const to = field({ label: "Move to", name: "slot", type: "select", options: free.map((t) => ({ value: t, label: timeOfDay(t) })) });
      const go = h("button", { type: "submit", class: "button button--primary button--small", text: "Move booking" });
      const form = h("form", { class: "slots__move" }, to.element, go);
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        act(go, async () => {
          await ctx.api.post(`/clinics/bookings/${b.id}/reschedule`, { session_id: s.id, slot_start: to.input.value }, { signal: ctx.signal });
          return `${who} moved to ${timeOfDay(to.input.value)}. A new invitation was sent; the old link no longer works.`;
        });
      });
      replaceChildren(extra, free.length ? form : h("p", { class: "muted", text: "No free slot left in this session." }));
      extra.hidden = false;
    });
    cancel.addEventListener("click", () => {
      const yes = h("button", { type: "button", class: "button button--danger button--small", text: "Cancel the booking" });
      const no = h("button", { type: "button", class: "button button--secondary button--small", text: "Keep it" });
      yes.addEventListener("click", () => act(yes, async () => {
        await ctx.api.post(`/clinics/bookings/${b.id}/cancel`, undefined, { signal: ctx.signal });
        return `${who}'s booking at ${timeOfDay(b.slot_start)} is cancelled, and so is the visit.`;
      }));
      no.addEventListener("click", () => {
        extra.hidden = true;
      });
      replaceChildren(extra, h("p", { text: `Cancel ${who}'s visit at ${timeOfDay(b.slot_start)}? Their join link stops working. Tell them yourself: no message is sent.` }), h("div", { class: "form__actions" }, yes, no));
      extra.hidden = false;
      yes.focus();
    });
    return h(
      "tr",
      {},
      h("th", { scope: "row", class: "nowrap", text: timeOfDay(b.slot_start) }),
      h("td", {}, h("a", { class: "table__name", href: `/patients/${b.patient.id}`, text: who }), h("span", { class: "table__sub", text: `MRN ${b.patient.mrn}` })),
      h("td", {}, h("span", { class: `badge ${b.invitation?.sent_at ? "badge--ok" : "badge--attention"}`, text: invitationText(b.invitation) })),
      h("td", {}, h("div", { class: "table__actions" }, resend, move, cancel), extra),
    );
  }

  /** @param {HTMLButtonElement} button @param {() => Promise<string>} run */
  async function act(button, run) {
    if (button.getAttribute("aria-disabled") === "true") return;
    button.setAttribute("aria-disabled", "true");
    try {
      const done = await run();
      messages.show("success", done);
      await load();
    } catch (error) {
      if (!ctx.signal.aborted) messages.show("error", messageFor(error));
      button.removeAttribute("aria-disabled");
    }
  }

  load();
}

/** @param {Outbox | null} m */
function invitationText(m) {
  if (!m) return "No invitation";
  if (m.sent_at) return `${m.kind === "reminder" ? "Reminder" : "Invitation"} sent ${timeOfDay(m.sent_at)}`;
  if (m.error === "no_address") return "Not sent: no email address on file";
  return "Not sent yet (retrying)";
}

/** YYYY-MM-DD in the viewer's calendar. @param {Date} d */
function localDate(d) {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}
