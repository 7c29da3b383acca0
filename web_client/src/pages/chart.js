// A patient's chart, /patients/{id}: the header (name, MRN, date of birth, care team), open
// safety flags first, problems, medications, allergies, the latest PHQ-9 and GAD-7 (read-only
// here), the notes the reader may see, and the note editor to start or continue a note.
// /patients/{id}?note={note_id} opens that note (a task's "From" link): scrolled to, shown in the
// editor with its heading focused, or a plain word that it can't be shown. Only ids in the URL.

import { h, replaceChildren } from "../dom.js";
import { messageFor } from "../messages.js";
import { formatWhen, noteEditor } from "../notes/editor.js";

/** @typedef {import('../app.js').PageContext} PageContext */

const CLINICAL_ROLES = /** @type {import('../session.js').Role[]} */ (["psychiatrist", "pcp", "therapist", "care_manager", "admin"]);
const WRITERS = new Set(["psychiatrist", "pcp", "therapist", "care_manager"]);
const KIND = /** @type {Record<string, string>} */ ({ consult: "Consult", progress: "Follow-up", curbside: "Curbside", psychotherapy: "Psychotherapy (private)" });
const STATE = /** @type {Record<string, string>} */ ({ draft: "Draft", signed: "Signed" });
const INSTRUMENT = /** @type {Record<string, string>} */ ({ phq9: "PHQ-9", gad7: "GAD-7" });

/** @type {import('../app.js').Page} */
export const chartPage = {
  title: "Patient chart",
  access: "user",
  roles: CLINICAL_ROLES,
  layout: "frame",
  render(ctx) {
    const head = h("div", { class: "page__head" }, h("h1", { text: "Patient chart" }), h("p", { class: "muted", role: "status", text: "Loading the chart…" }));
    const body = h("div", { class: "chart" });
    const page = h("div", { class: "page" }, head, body);
    const id = Number(ctx.params.patientId);
    if (!Number.isInteger(id) || id < 1) {
      replaceChildren(head, h("h1", { text: "Patient not found" }));
      return page;
    }
    Promise.all([ctx.api.get(`/patients/${id}`, { signal: ctx.signal }), ctx.api.get(`/patients/${id}/record`, { signal: ctx.signal })]).then(
      ([patient, record]) => show(ctx, id, patient, record, head, body),
      (error) => {
        if (ctx.signal.aborted) return;
        replaceChildren(
          head,
          h("h1", { text: "This chart can't be opened" }),
          h("div", { class: "notice notice--error" }, h("p", { text: messageFor(error) })),
          h("p", {}, h("a", { href: "/home", text: "Back to the home page" })),
        );
      },
    );
    return page;
  },
};

/**
 * @param {PageContext} ctx @param {number} id @param {any} patient @param {any} record
 * @param {HTMLElement} head @param {HTMLElement} body
 */
function show(ctx, id, patient, record, head, body) {
  const name = `${patient.given_name} ${patient.family_name}`;
  ctx.setTitle(`${name} · chart`);
  replaceChildren(
    head,
    h("p", { class: "page__eyebrow", text: "Patient chart" }),
    h("h1", { text: name }),
    h("p", { class: "page__lede", text: `MRN ${patient.mrn} · born ${patient.date_of_birth} · care team: ${patient.care_team.map((/** @type {any} */ m) => m.display_name).join(", ") || "none"}` }),
    // A PCP asks for a curbside consult about this patient (issue 5).
    ctx.session.user?.role === "pcp" ? h("p", { class: "visit__links" }, h("a", { class: "button button--secondary", href: `/curbside/new?patient=${id}`, text: "Ask a psychiatrist" })) : null,
    // The registry view (issue 6): scores over time, contacts and follow-up tasks.
    ["care_manager", "psychiatrist"].includes(ctx.session.user?.role ?? "") ? h("p", {}, h("a", { href: `/registry/${id}`, text: "Scores over time, contacts and follow-ups" })) : null,
  );

  const notesList = h("div", {});
  const role = ctx.session.user?.role ?? "";
  const editor = WRITERS.has(role)
    ? noteEditor({ api: ctx.api, signal: ctx.signal, patientId: id, userId: ctx.session.user?.id ?? 0, announce: ctx.announce, onChange: () => loadNotes() })
    : null;

  const flags = record.open_safety_flags ?? [];
  const summary = h(
    "div",
    { class: "chart__summary" },
    flags.length
      ? h(
          "section",
          { class: "notice notice--error", "aria-labelledby": "flags-heading" },
          h("h2", { id: "flags-heading", class: "section__title", text: "Open safety flags" }),
          h("ul", {}, flags.map((/** @type {any} */ f) => h("li", { text: `PHQ-9 item 9 answered ${f.item_value} on ${formatWhen(f.raised_at)}: not yet addressed` }))),
        )
      : null,
    listCard("Problems", record.problems, (p) => `${p.text}${p.code ? ` (${p.code})` : ""} · ${p.clinical_status}`),
    listCard("Medications", record.medications, (m) => [m.name, m.dose, m.route, m.frequency].filter(Boolean).join(" ") + ` · ${m.status}`),
    listCard("Allergies", record.allergies, (a) => `${a.substance}${a.reaction ? `: ${a.reaction}` : ""}${a.severity ? ` (${a.severity})` : ""}`),
    listCard("Latest screenings", latestScreenings(record.screenings), (s) => `${INSTRUMENT[s.instrument] ?? s.instrument}: ${s.total} (${s.severity}), ${formatWhen(s.administered_at)}`),
  );
  const notesCard = h("section", { class: "card section", "aria-labelledby": "notes-heading" }, h("h2", { id: "notes-heading", class: "section__title", text: "Notes" }), notesList);
  replaceChildren(body, h("div", { class: "chart__record" }, summary, notesCard), editor ? h("div", { class: "chart__editor" }, editor.element) : null);

  const linked = h("div", { class: "message-slot", role: "alert" });
  notesList.before(linked);
  // Once: a later reload of the list (after a save) must not jump back to the linked note.
  let wanted = noteParam(ctx.url);

  function loadNotes() {
    ctx.api.get(`/patients/${id}/notes`, { signal: ctx.signal }).then(
      (result) => {
        const all = /** @type {any[]} */ (result.notes);
        const notes = all.filter((n) => n.amends === null);
        /** @type {Map<number, HTMLElement>} */
        const items = new Map();
        if (!notes.length) replaceChildren(notesList, h("p", { class: "muted", text: "No notes yet." }));
        else
          replaceChildren(
            notesList,
            h(
              "ul",
              { class: "chart__notes" },
              notes.map((n) => {
                const open = h("button", { type: "button", class: "button button--quiet button--small", text: n.title });
                open.addEventListener("click", () => editor?.open(n.id));
                const item = h(
                  "li",
                  { class: "chart__note", id: `note-${n.id}` },
                  editor ? open : h("span", { text: n.title }),
                  h("span", { class: `badge ${n.state === "signed" ? "badge--ok" : "badge--attention"}`, text: STATE[n.state] ?? n.state }),
                  h("span", { class: "muted", text: `${KIND[n.kind] ?? n.kind} · ${n.author_name} · ${formatWhen(n.signed_at ?? n.updated_at)}` }),
                );
                items.set(n.id, item);
                return item;
              }),
            ),
          );
        if (wanted !== null) {
          const target = wanted;
          wanted = null;
          // An addendum is shown with the note it amends.
          const hit = all.find((n) => n.id === target);
          openLinked(hit ? (hit.amends ?? hit.id) : null, items);
        }
      },
      (error) => !ctx.signal.aborted && replaceChildren(notesList, h("div", { class: "notice notice--error" }, h("p", { text: messageFor(error) }))),
    );
  }
  loadNotes();

  /** @param {number | null} noteId the linked note, if the list has it @param {Map<number, HTMLElement>} items */
  async function openLinked(noteId, items) {
    const item = noteId === null ? undefined : items.get(noteId);
    if (noteId === null || !item) {
      // The list holds every note this reader may see: a missing one is gone, or someone
      // else's private note or draft, and the server does not say which.
      replaceChildren(linked, h("div", { class: "notice notice--warning" }, h("p", { text: "The note this link points to can't be shown: it is not in this chart, or only its author can read it." })));
      return;
    }
    item.setAttribute("aria-current", "true");
    if (!editor) {
      item.scrollIntoView({ block: "center" });
      return;
    }
    await editor.open(noteId);
    if (ctx.signal.aborted) return;
    const heading = editor.element.querySelector("h2");
    editor.element.scrollIntoView({ block: "start" });
    if (heading instanceof HTMLElement) {
      heading.tabIndex = -1;
      heading.focus();
    }
  }
}

/** The ?note= id of a task's "From" link, or null. @param {URL} url */
export function noteParam(url) {
  const raw = url.searchParams.get("note");
  if (raw === null || !/^[1-9][0-9]{0,15}$/.test(raw)) return null;
  return Number(raw);
}

/** A link that opens one note on a patient's chart. @param {number} patientId @param {number} noteId */
export function noteHref(patientId, noteId) {
  return `/patients/${patientId}?note=${noteId}`;
}

/** @param {any[]} screenings */
function latestScreenings(screenings) {
  /** @type {Map<string, any>} */
  const latest = new Map();
  for (const s of screenings ?? []) {
    const seen = latest.get(s.instrument);
    if (!seen || seen.administered_at < s.administered_at) latest.set(s.instrument, s);
  }
  return [...latest.values()];
}

/** @param {string} title @param {any[]} items @param {(item: any) => string} line */
function listCard(title, items, line) {
  return h(
    "section",
    { class: "card section chart__list" },
    h("h2", { class: "section__title", text: title }),
    items?.length ? h("ul", {}, items.map((item) => h("li", { text: line(item) }))) : h("p", { class: "muted", text: "None recorded." }),
  );
}
