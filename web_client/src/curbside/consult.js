// One curbside consult, /curbside/requests/{id}, for the PCP who asked and for the psychiatrist
// who takes it (or answers it from the written queue). It follows the request live: the PCP's
// status events, the call starting for both as soon as it is accepted, the psychiatrist's
// curbside recommendation note beside the call, completing the consult with the signed note,
// and the written answer with its acknowledgement. The server is the truth: each event that
// changes more than the status is followed by reading the request again.

import { h, keepChildren, keepFocus, replaceChildren } from "../dom.js";
import { messageSlot } from "../forms.js";
import { messageFor } from "../messages.js";
import { formatWhen, loadTemplates, noteEditor, sectionsOf } from "../notes/editor.js";
import { callPanel } from "./call-panel.js";
import { contextCard } from "./context.js";
import { answerForm, answerView } from "./written.js";
import { Chime } from "./chime.js";
import { CurbsideSocket } from "./socket.js";
import { applyStatus, CANCELLABLE, dueText, forPcp, IN_CALL, MODE, STATUS_BADGE, STATUS_LABEL, URGENCY } from "./status.js";

/** @typedef {import('./status.js').Consult} Consult */
/** @typedef {import('../app.js').PageContext} PageContext */

export const NOTE_TEMPLATE = "curbside_recommendation";
// After the call connects, the server opens the consult's encounter; the note is written on it.
const ENCOUNTER_POLL_MS = 1000;
const ENCOUNTER_POLLS = 20;

/** @param {PageContext} ctx @param {number} id */
export function consultPage(ctx, id) {
  const me = /** @type {import('../session.js').User} */ (ctx.session.user);
  const pcp = me.role === "pcp";
  const head = h("div", { class: "page__head" }, h("p", { class: "page__eyebrow", text: "Curbside consult" }), h("h1", { text: "Curbside consult" }), h("p", { class: "muted", role: "status", text: "Loading the request…" }));
  const statusBox = h("div", { class: "curbside__status", role: "status", "aria-live": "polite" });
  const messages = messageSlot();
  const ringSlot = messageSlot("status");
  /** @type {Set<number>} */
  const rung = new Set();
  const actions = h("div", { class: "form__actions" });
  const callArea = h("div", { class: "curbside__callarea" });
  const written = h("div", {});
  const noteArea = h("div", {});
  const side = h("div", { class: "curbside__side" });
  const main = h("div", { class: "curbside__main" }, ringSlot.element, statusBox, messages.element, actions, callArea, written, noteArea);
  const layout = h("div", { class: "curbside__layout" }, main, side);
  const page = h("div", { class: "page" }, head, layout);

  /** @type {Consult | null} */
  let consult = null;
  let detail = "";
  /** @type {ReturnType<typeof callPanel> | null} */
  let panel = null;
  /** @type {ReturnType<typeof noteEditor> | null} */
  let editor = null;
  /** @type {number | null} */
  let signedNoteId = null;
  let patientName = "";
  /** @type {number | null} */
  let shownNote = null;
  let polling = false;
  const notePlaceholder = h("section", { class: "card section" }, h("h2", { class: "section__title", text: "Curbside recommendation" }), h("p", { class: "muted", text: "The note opens here as soon as the call connects." }));

  // A psychiatrist's consult page rings them too (the notice below), so it watches.
  const socket = new CurbsideSocket(ctx.signal, { watch: !pcp });
  socket.on("status", (event) => {
    if (!consult) return;
    const next = applyStatus(consult, event);
    detail = next.detail;
    if (next.stale) reload();
    else update(next.consult);
  });
  socket.on("connected", (event) => event.request_id === id && reload());
  socket.on("stop", (event) => event.request_id === id && reload());
  // This page's connection watches, keeping a psychiatrist present, so new requests may ring them here
  // too (after the call, while they write): say so, and point to the dashboard that answers.
  if (!pcp) {
    const chime = new Chime();
    ctx.signal.addEventListener("abort", () => chime.close());
    socket.on("ring", (ring) => {
      rung.add(ring.request.id);
      chime.ring();
      ringSlot.show("warning", `A new curbside request from ${ring.request.pcp.display_name} is ringing for you.`, h("p", {}, h("a", { href: "/curbside", text: "Answer it on your on-call dashboard" })));
    });
    /** @param {{request_id: number}} event */
    const gone = (event) => {
      rung.delete(event.request_id);
      if (!rung.size) ringSlot.clear();
    };
    socket.on("taken", gone);
    socket.on("stop", gone);
  }
  // Events missed while the connection was down are read back from the server.
  socket.on("online", (online) => online && consult && reload());

  const load = () => /** @type {Promise<Consult>} */ (ctx.api.get(`/curbside/requests/${id}`, { signal: ctx.signal }));
  load().then(
    (found) => {
      ctx.api.get(`/patients/${found.patient_id}`, { signal: ctx.signal }).then(
        (patient) => {
          patientName = `${patient.given_name} ${patient.family_name}`;
          if (consult) renderHead(consult);
        },
        () => {}, // a psychiatrist who is only being rung sees the context, not the identity
      );
      update(found);
    },
    (error) => {
      if (ctx.signal.aborted) return;
      replaceChildren(head, h("h1", { text: "This request can't be opened" }), h("div", { class: "notice notice--error" }, h("p", { text: messageFor(error) })), h("p", {}, h("a", { href: "/curbside", text: "Back to curbside consults" })));
      layout.hidden = true;
    },
  );

  function reload() {
    load().then(update, (error) => !ctx.signal.aborted && messages.show("error", messageFor(error)));
  }

  /** @param {Consult} next */
  function update(next) {
    if (ctx.signal.aborted) return;
    const before = consult;
    consult = next;
    renderHead(next);
    renderStatus(next);
    renderActions(next);
    renderCall(next);
    renderWritten(next);
    renderNote(next);
    renderSide(next);
    if (!before || before.status !== next.status) ctx.announce(STATUS_LABEL[next.status] ?? next.status);
    if (!pcp) tryComplete();
  }

  /** @param {Consult} c */
  function renderHead(c) {
    ctx.setTitle(patientName ? `Curbside consult · ${patientName}` : "Curbside consult");
    keepFocus(head, () => replaceChildren(
      head,
      h("p", { class: "page__eyebrow", text: "Curbside consult" }),
      h("h1", { text: patientName ? `Curbside consult about ${patientName}` : "Curbside consult" }),
      h(
        "p",
        { class: "page__lede curbside__meta" },
        h("span", { class: `badge ${STATUS_BADGE[c.status] ?? "badge--plain"}`, text: STATUS_LABEL[c.status] ?? c.status }),
        h("span", { text: [URGENCY[c.urgency] ?? c.urgency, MODE[c.mode] ?? c.mode, `asked by ${c.pcp.display_name}, ${formatWhen(c.created_at)}`, c.patient_state ? `patient in ${c.patient_state}` : ""].filter(Boolean).join(" · ") }),
      ),
      h("p", { class: "visit__links" }, h("a", { href: "/curbside", text: pcp ? "All my requests" : "On-call dashboard" }), patientName ? h("a", { href: `/patients/${c.patient_id}`, text: "Patient's chart" }) : null),
    ));
  }

  /** @param {Consult} c */
  function renderStatus(c) {
    const said = pcp ? forPcp(c, detail) : forPsychiatrist(c, me.id);
    // While it rings, when the next step comes: the PCP isn't left wondering how long to wait.
    const next =
      c.status === "ringing" && c.ring_deadline
        ? `If nobody accepts by ${new Date(c.ring_deadline).toLocaleTimeString(undefined, { timeStyle: "short" })}, ${c.ringing_tier === "backup" ? "your request goes to the written consult queue" : "the backup on-call psychiatrists are rung"}.`
        : "";
    replaceChildren(
      statusBox,
      h(
        "div",
        { class: `notice notice--${said.tone}${c.status === "ringing" ? " curbside__status--ringing" : ""}` },
        h("h2", { class: "curbside__status-title" }, c.status === "ringing" ? h("span", { class: "curbside__pulse", "aria-hidden": "true" }) : null, said.title),
        h("p", { text: said.text }),
        next ? h("p", { class: "curbside__next", text: next }) : null,
      ),
    );
  }

  // One button for the page's life: a status update while it rings must not take the focus
  // off it.
  const cancel = h("button", { type: "button", class: "button button--secondary", text: "Cancel request" });
  cancel.addEventListener("click", async () => {
    if (cancel.getAttribute("aria-disabled") === "true") return;
    cancel.setAttribute("aria-disabled", "true");
    try {
      update(await ctx.api.post(`/curbside/requests/${id}/cancel`, undefined, { signal: ctx.signal }));
    } catch (error) {
      if (!ctx.signal.aborted) messages.show("error", messageFor(error));
      cancel.removeAttribute("aria-disabled");
    }
  });

  /** @param {Consult} c */
  function renderActions(c) {
    keepChildren(actions, pcp && CANCELLABLE.has(c.status) ? cancel : null);
  }

  /** @param {Consult} c */
  function renderCall(c) {
    const mine = pcp || c.consultant?.id === me.id;
    if (mine && IN_CALL.has(c.status) && c.visit_id && !panel) {
      const other = pcp ? c.consultant?.display_name || "the psychiatrist" : c.pcp.display_name;
      panel = callPanel({
        requestId: id,
        visitId: c.visit_id,
        otherName: other,
        socket,
        signal: ctx.signal,
        onConnected: () => {
          if (!pcp) waitForEncounter();
        },
        onEnded: () => {
          panel = null;
          replaceChildren(callArea);
          reload();
        },
      });
      replaceChildren(callArea, panel.element);
    } else if (!IN_CALL.has(c.status) && panel) {
      panel.destroy();
      panel = null;
      replaceChildren(callArea);
    }
  }

  /** The psychiatrist's note beside the call (and after it), then the request's context. @param {Consult} c */
  function renderSide(c) {
    const writing = !pcp && c.consultant?.id === me.id && c.mode === "call_now" && ["accepted", "in_call", "documenting"].includes(c.status);
    if (writing && c.encounter_id && !editor) {
      editor = noteEditor({
        api: ctx.api,
        signal: ctx.signal,
        patientId: c.patient_id,
        userId: me.id,
        encounterId: c.encounter_id,
        templateId: NOTE_TEMPLATE,
        announce: ctx.announce,
        onSigned: (note) => {
          if (note.template_id !== NOTE_TEMPLATE) return;
          signedNoteId = note.id;
          tryComplete();
        },
      });
      editor.element.classList.add("curbside__editor");
      resumeDraft(c);
    }
    const top = !writing ? null : editor ? editor.element : notePlaceholder;
    // The question first, to write against; the editor below it stays where it is once there
    // (moving it would drop the focus of someone typing).
    if (top && top.parentNode === side) return;
    replaceChildren(side, contextCard(c), top);
  }

  /** A draft already started on this consult (a reload) opens again instead of a new one. @param {Consult} c */
  function resumeDraft(c) {
    ctx.api.get(`/patients/${c.patient_id}/notes`, { signal: ctx.signal }).then(
      (result) => {
        const ours = /** @type {any[]} */ (result.notes).find((n) => n.encounter_id === c.encounter_id && n.template_id === NOTE_TEMPLATE && n.author_id === me.id && n.amends === null);
        if (!ours) return;
        if (ours.state === "signed") signedNoteId = ours.id;
        editor?.open(ours.id);
        tryComplete();
      },
      () => {},
    );
  }

  function waitForEncounter() {
    if (polling) return;
    polling = true;
    let left = ENCOUNTER_POLLS;
    const poll = async () => {
      if (ctx.signal.aborted || !consult || consult.encounter_id || left <= 0) {
        polling = false;
        return;
      }
      left -= 1;
      try {
        const fresh = await load();
        if (fresh.encounter_id) {
          polling = false;
          update(fresh);
          return;
        }
      } catch {
        // try again on the next round
      }
      setTimeout(poll, ENCOUNTER_POLL_MS);
    };
    poll();
  }

  /** Once the note is signed and the call is over, the consult is complete. */
  async function tryComplete() {
    const c = consult;
    if (!c || signedNoteId === null || pcp || c.consultant?.id !== me.id) return;
    if (c.status === "in_call" || c.status === "accepted") {
      messages.show("info", "Your note is signed. The consult is completed as soon as the call ends.");
      return;
    }
    if (c.status !== "documenting") return;
    const noteId = signedNoteId;
    signedNoteId = null;
    try {
      const done = await ctx.api.post(`/curbside/requests/${id}/complete`, { note_id: noteId }, { signal: ctx.signal });
      messages.show("success", "The consult is complete. The recommendation is in the patient's record, and the requesting clinician can read it now.");
      update(done);
    } catch (error) {
      signedNoteId = noteId;
      if (!ctx.signal.aborted) messages.show("error", messageFor(error));
    }
  }

  /** @type {HTMLElement | null} */
  let answerFormElement = null;
  /** @type {HTMLElement | null} */
  let acknowledge = null;
  const due = h("p", {});

  /** @param {Consult} c */
  function renderWritten(c) {
    /** @type {Node[]} */
    const parts = [];
    if (c.mode === "written" || c.status === "queued_written" || c.answer) {
      if (c.status === "queued_written") {
        due.className = c.overdue ? "curbside__overdue" : "muted";
        due.textContent = `Answer target: ${formatWhen(c.answer_due_at)} (${dueText(c.answer_due_at)})${c.overdue ? ". Overdue." : ""}`;
        parts.push(due);
        // One form for the page's life, left in place: a status update re-renders this
        // section, and must not throw away an answer being typed, nor its focus.
        if (me.role === "psychiatrist") parts.push((answerFormElement ??= answerForm(ctx, id, update)));
      }
      if (c.answer) {
        parts.push(answerView(c.answer));
        if (pcp && c.status === "answered") parts.push((acknowledge ??= acknowledgeButton()));
      }
    }
    keepChildren(written, parts);
  }

  function acknowledgeButton() {
    const button = h("button", { type: "button", class: "button button--primary", text: "Acknowledge the answer" });
    button.addEventListener("click", async () => {
      if (button.getAttribute("aria-disabled") === "true") return;
      button.setAttribute("aria-disabled", "true");
      try {
        update(await ctx.api.post(`/curbside/requests/${id}/acknowledge`, undefined, { signal: ctx.signal }));
        ctx.announce("Acknowledged.");
      } catch (error) {
        button.removeAttribute("aria-disabled");
        if (!ctx.signal.aborted) messages.show("error", messageFor(error));
      }
    });
    return h("div", { class: "form__actions" }, button);
  }

  /** The signed recommendation, on this page and linked in the chart. @param {Consult} c */
  function renderNote(c) {
    if (!c.note_id || shownNote === c.note_id) return;
    shownNote = c.note_id;
    const noteId = c.note_id;
    const card = h("section", { class: "card section", "aria-labelledby": "recommendation-heading" }, h("h2", { id: "recommendation-heading", class: "section__title", text: "Recommendation" }), h("p", { class: "muted", role: "status", text: "Loading the note…" }));
    replaceChildren(noteArea, card);
    Promise.all([ctx.api.get(`/notes/${noteId}`, { signal: ctx.signal }), loadTemplates(ctx.api, ctx.signal)]).then(
      ([note, templates]) => {
        const template = templates.find((t) => t.id === note.template_id);
        replaceChildren(
          card,
          h("div", { class: "note-editor__head" }, h("h2", { id: "recommendation-heading", class: "section__title", text: note.title }), h("span", { class: "badge badge--ok", text: "Signed" })),
          h("p", { class: "muted", text: `Signed by ${note.author_name}, ${formatWhen(note.signed_at ?? note.updated_at)}.` }),
          h("dl", { class: "note-view" }, sectionsOf(note, template).flatMap(([label, value]) => [h("dt", { text: label }), h("dd", { class: "note-view__text", text: value })])),
          h("p", {}, h("a", { href: `/patients/${note.patient_id}`, text: "Open it in the patient's chart" })),
        );
      },
      (error) => {
        shownNote = null;
        if (!ctx.signal.aborted) replaceChildren(card, h("div", { class: "notice notice--error" }, h("p", { text: messageFor(error) })));
      },
    );
  }

  return page;
}

/**
 * What the psychiatrist reads about a consult they are looking at.
 * @param {Consult} c @param {number} myId
 * @returns {import('./status.js').Described}
 */
function forPsychiatrist(c, myId) {
  const mine = c.consultant?.id === myId;
  switch (c.status) {
    case "ringing":
      return { tone: "warning", title: "Ringing", text: "Accept or decline it from your on-call dashboard." };
    case "accepted":
      return mine ? { tone: "success", title: `Connecting you to ${c.pcp.display_name}…`, text: "The call starts by itself. Write your recommendation beside it." } : taken(c);
    case "in_call":
      return mine ? { tone: "success", title: `In a call with ${c.pcp.display_name}`, text: "Write your curbside recommendation beside the call, then sign it." } : taken(c);
    case "documenting":
      return mine ? { tone: "warning", title: "Write and sign your recommendation", text: "The call has ended. Sign the curbside recommendation note to complete the consult; the requesting clinician reads it at once." } : taken(c);
    case "completed":
      return { tone: "success", title: "Completed", text: "The signed recommendation is in the patient's record." };
    case "queued_written":
      return { tone: "info", title: "Waiting for a written answer", text: "Answer it below with your recommendation. The requesting clinician is told at once." };
    case "answered":
      return { tone: "success", title: `Answered by ${c.consultant?.display_name ?? "a psychiatrist"}`, text: "The requesting clinician has been told and will acknowledge it." };
    case "acknowledged":
      return { tone: "info", title: "Acknowledged", text: `${c.pcp.display_name} acknowledged the answer.` };
    case "cancelled":
      return { tone: "info", title: "Cancelled", text: `${c.pcp.display_name} cancelled this request.` };
    default:
      return { tone: "info", title: String(c.status), text: "" };
  }
}

/** @param {Consult} c */
function taken(c) {
  return { tone: /** @type {const} */ ("info"), title: `Taken by ${c.consultant?.display_name ?? "another psychiatrist"}`, text: "Another psychiatrist is handling this consult." };
}
