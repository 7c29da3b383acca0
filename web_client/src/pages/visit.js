// A clinician's visit page, /visit/{id}: the visit's details, its invitations, the live
// waiting room and the call. Opening the page puts the clinician in the visit's room (clinicians
// need no admission), so they see who is waiting and can let them in.

import { h, replaceChildren } from "../dom.js";
import { messageFor } from "../messages.js";
import { Call } from "../rtc/call.js";
import { acquireCameraAndMic, LocalMedia } from "../rtc/media.js";
import { callScreen } from "../visit/call-screen.js";
import { admitOnArrival } from "../clinics/admit.js";
import { dayOf, languageName, STATUS_BADGE, timeOfDay, VISIT_STATUS } from "../visit/format.js";
import { invitationsPanel } from "../visit/invitations.js";
import { lobbyPanel } from "../visit/lobby.js";
import { noteEditor } from "../notes/editor.js";

/** @typedef {import('../app.js').PageContext} PageContext */
/**
 * @typedef {import('../visit/invitations.js').Visit & {
 *   scheduled_start: string, ends_at: string, duration_minutes: number, reason: string | null,
 *   patient: {id: number, mrn: string, given_name: string, family_name: string, preferred_language: string},
 *   clinicians: {user_id: number, display_name: string, role: string}[]}} VisitDetail
 */

const CLINICAL_ROLES = /** @type {import('../session.js').Role[]} */ (["psychiatrist", "pcp", "therapist", "care_manager", "admin"]);
const CLOSED = new Set(["completed", "cancelled", "no_show"]);

/** @type {import('../app.js').Page} */
export const visitPage = {
  title: "Video visit",
  access: "user",
  roles: CLINICAL_ROLES,
  layout: "frame",
  render(ctx) {
    const head = h("div", { class: "page__head" }, h("h1", { text: "Video visit" }), h("p", { class: "muted", role: "status", text: "Loading the visit…" }));
    const body = h("div", { class: "visit" });
    const page = h("div", { class: "page" }, head, body);
    const id = Number(ctx.params.visitId);
    if (!Number.isInteger(id) || id < 1) {
      replaceChildren(head, h("h1", { text: "Visit not found" }), h("p", { text: messageFor({ code: "visit_not_found", name: "ApiError", message: "" }) }));
      return page;
    }
    const load = () => /** @type {Promise<VisitDetail>} */ (ctx.api.get(`/visits/${id}`, { signal: ctx.signal }));
    load().then(
      (visit) => show(ctx, visit, head, body, load),
      (error) => {
        if (ctx.signal.aborted) return;
        replaceChildren(
          head,
          h("h1", { text: "This visit can't be opened" }),
          h("div", { class: "notice notice--error" }, h("p", { text: messageFor(error) })),
          h("p", {}, h("a", { href: "/home", text: "Back to today's visits" })),
        );
      },
    );
    return page;
  },
};

/**
 * @param {PageContext} ctx
 * @param {VisitDetail} visit
 * @param {HTMLElement} head
 * @param {HTMLElement} body
 * @param {() => Promise<VisitDetail>} load
 */
function show(ctx, visit, head, body, load) {
  const patient = `${visit.patient.given_name} ${visit.patient.family_name}`;
  ctx.setTitle(`Visit with ${patient}`);
  const status = h("span", { class: "badge" });
  /** @param {string} value */
  const setStatus = (value) => {
    status.className = `badge ${STATUS_BADGE[value] ?? "badge--plain"}`;
    status.textContent = VISIT_STATUS[value] ?? value;
  };
  setStatus(visit.status);
  const side = h("div", { class: "visit__side" });
  replaceChildren(
    head,
    h("p", { class: "page__eyebrow", text: "Video visit" }),
    h("h1", { text: patient }),
    h(
      "p",
      { class: "page__lede visit__when" },
      h("span", { text: `${dayOf(visit.scheduled_start)}, ${timeOfDay(visit.scheduled_start)}–${timeOfDay(visit.ends_at)}` }),
      status,
    ),
    notesLinks(ctx, visit, side),
  );

  const invitations = invitationsPanel({ ctx, visit, reload: load });
  const details = detailsCard(visit);
  const callArea = h("div", { class: "visit__call" });
  // First on a phone (letting people in comes before the call), beside the call on a desktop.
  const lobbyArea = h("div", { class: "visit__lobby" });
  replaceChildren(body, lobbyArea, callArea, side);

  if (CLOSED.has(visit.status)) {
    replaceChildren(callArea, h("div", { class: "card" }, h("p", { text: `This visit is ${(VISIT_STATUS[visit.status] ?? visit.status).toLowerCase()}. There is no call to join.` }), h("p", {}, h("a", { href: "/home", text: "Back to today's visits" }))));
    replaceChildren(side, invitations.element, details);
    lobbyArea.hidden = true;
    return;
  }

  replaceChildren(callArea, h("div", { class: "card" }, h("p", { class: "muted", role: "status", text: "Starting your camera and microphone…" })));
  replaceChildren(lobbyArea, h("div", { class: "card section" }, h("h2", { class: "section__title", text: "Waiting room" }), h("p", { class: "muted", text: "Connecting…" })));
  side.append(invitations.element, details);

  /** @type {LocalMedia | null} */
  let media = null;
  /** @type {Call | null} */
  let call = null;
  const cleanups = /** @type {(() => void)[]} */ ([]);
  ctx.signal.addEventListener("abort", () => {
    for (const cleanup of cleanups) cleanup();
    call?.close({ leave: true });
    media?.stop();
  });

  acquireCameraAndMic().then((acquired) => {
    if (ctx.signal.aborted) {
      acquired.stream.getTracks().forEach((t) => t.stop());
      return;
    }
    media = new LocalMedia(acquired);
    call = new Call({ visitId: visit.id, media });
    const lobby = lobbyPanel({ call, announce: ctx.announce });
    const screen = callScreen({
      call,
      media,
      role: "clinician",
      onLeave: () => ctx.navigate("/home", { flash: { kind: "info", text: "You left the call. The visit stays open: come back to it from today's visits." } }),
    });
    cleanups.push(() => lobby.destroy(), () => screen.destroy());
    replaceChildren(lobbyArea, lobby.element);
    replaceChildren(callArea, screen.element);
    cleanups.push(
      call.on("lobby", (waiting) => {
        if (waiting.length && visit.status === "scheduled") setStatus("waiting");
        invitations.refresh(); // someone arriving has opened their link
      }),
      call.on("remotes", (remotes) => {
        if (remotes.some((r) => r.kind !== "clinician" && r.connection === "connected")) {
          visit.status = "in_progress";
          setStatus("in_progress");
        }
      }),
      call.on("state", (detail) => {
        if (detail.state === "ended") ended(detail.code ?? "completed");
        else if (detail.state === "refused" || detail.state === "signed_out") refused(detail);
        else if (detail.state === "replaced") replaced();
      }),
    );
    cleanups.push(admitOnArrival(call, ctx.url, ctx.announce)); // from the clinic board
    call.start();

    /** @param {string} code */
    function ended(code) {
      const value = code === "visit_cancelled" ? "cancelled" : code === "visit_ended" ? "completed" : code;
      setStatus(value);
      screen.destroy();
      lobby.destroy();
      lobbyArea.hidden = true;
      media?.stop();
      replaceChildren(
        callArea,
        h(
          "div",
          { class: "card stack" },
          h("h2", { text: "The visit has ended" }),
          h("p", { text: value === "cancelled" ? "This visit was cancelled." : "Everyone has left the call, and the visit is recorded as completed." }),
          h("p", {}, h("a", { href: "/home", text: "Back to today's visits" })),
        ),
      );
      load().then((fresh) => invitations.update(fresh), () => {});
      ctx.announce("The visit has ended.");
    }

    /** @param {import('../rtc/call.js').CallEvents['state']} detail */
    function refused(detail) {
      screen.destroy();
      media?.stop();
      replaceChildren(callArea, h("div", { class: "notice notice--error" }, h("p", { text: messageFor({ code: detail.code ?? "", name: "SignalError", message: detail.message ?? "The call could not be joined." }) })));
    }

    function replaced() {
      const again = h("button", { type: "button", class: "button button--primary", text: "Use this window instead" });
      again.addEventListener("click", () => {
        replaceChildren(callArea, screen.element);
        call?.rejoin();
      });
      replaceChildren(callArea, h("div", { class: "card stack" }, h("h2", { text: "This visit is open in another window" }), h("p", { text: "You opened it in another tab, window or device, so this one has stopped." }), again));
    }
  });
}

/**
 * The "Chart" link and, for clinicians who write notes, a "Notes" toggle that shows the note
 * editor in the side column beside the call.
 * @param {PageContext} ctx @param {VisitDetail} visit @param {HTMLElement} side
 */
function notesLinks(ctx, visit, side) {
  const links = h("p", { class: "visit__links" }, h("a", { href: `/patients/${visit.patient.id}`, text: "Chart" }));
  const user = ctx.session.user;
  if (!user || user.role === "admin") return links;
  /** @type {ReturnType<typeof noteEditor> | null} */
  let editor = null;
  const toggle = h("button", { type: "button", class: "button button--secondary button--small", "aria-expanded": "false", text: "Notes" });
  toggle.addEventListener("click", () => {
    if (!editor) {
      editor = noteEditor({ api: ctx.api, signal: ctx.signal, patientId: visit.patient.id, userId: user.id, announce: ctx.announce });
      editor.element.classList.add("visit__notes");
      editor.element.hidden = true;
      side.prepend(editor.element);
    }
    const open = editor.element.hidden;
    editor.element.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
  });
  links.append(" ", toggle);
  return links;
}

/** @param {VisitDetail} visit */
function detailsCard(visit) {
  /** @param {string} term @param {string} value */
  const row = (term, value) => [h("dt", { text: term }), h("dd", { text: value })];
  return h(
    "section",
    { class: "card section", "aria-labelledby": "details-heading" },
    h("h2", { id: "details-heading", class: "section__title", text: "Visit details" }),
    h(
      "dl",
      { class: "details" },
      row("Patient", `${visit.patient.given_name} ${visit.patient.family_name} (MRN ${visit.patient.mrn})`),
      row("Preferred language", languageName(visit.patient.preferred_language)),
      row("Length", `${visit.duration_minutes} minutes`),
      row("Reason", visit.reason || "Not given"),
      row("Clinicians", visit.clinicians.map((c) => c.display_name).join(", ")),
    ),
  );
}
