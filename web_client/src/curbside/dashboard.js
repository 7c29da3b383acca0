// The psychiatrist's on-call dashboard, /curbside. Keeping it open is what makes them available
// (its signaling connection is their presence). It shows their presence, rings with a visible,
// focus-taking alert and a chime when a request comes in (Accept / Decline; "taken" when someone
// else won), starts the call by opening the consult as soon as they accept, and lists the
// written queue, their own consults, their on-call shifts and the states they are licensed in.

import { h, keepFocus, replaceChildren } from "../dom.js";
import { messageSlot } from "../forms.js";
import { messageFor } from "../messages.js";
import { Chime } from "./chime.js";
import { contextList } from "./context.js";
import { CurbsideSocket } from "./socket.js";
import { rotaSection } from "./rota.js";
import { anyRinging, dueText, MODE, ringsReducer, STATUS_BADGE, STATUS_LABEL, URGENCY } from "./status.js";

/** @typedef {import('./status.js').Consult} Consult */
/** @typedef {import('./status.js').Ring} Ring */
/** @typedef {import('../app.js').PageContext} PageContext */

const REFRESH_MS = 30_000;
const PRESENCE = /** @type {Record<string, {label: string, badge: string, text: string}>} */ ({
  available: { label: "Available", badge: "badge--ok", text: "You're on call and this dashboard is connected: requests ring here." },
  busy: { label: "Busy", badge: "badge--attention", text: "You're in a call. New requests go to the other psychiatrists on call." },
  offline: { label: "Offline", badge: "badge--off", text: "This dashboard isn't connected, so requests can't ring you. It reconnects by itself." },
  off_call: { label: "Not on call", badge: "badge--plain", text: "You have no on-call shift now. Add one below to receive call-now requests while it runs." },
});

/** @param {PageContext} ctx */
export function dashboardPage(ctx) {
  const me = /** @type {import('../session.js').User} */ (ctx.session.user);
  const socket = new CurbsideSocket(ctx.signal, { watch: true });
  const chime = new Chime();
  ctx.signal.addEventListener("abort", () => {
    chime.close();
    stopTitle();
  });

  // --- presence ----------------------------------------------------------------------------

  const presenceBadge = h("span", { class: "badge badge--plain", text: "Connecting…" });
  const presenceText = h("p", { class: "muted", text: "Connecting to Liaison…" });
  const presenceCard = h(
    "section",
    { class: "card section", "aria-labelledby": "presence-heading" },
    h("div", { class: "section__head" }, h("h2", { id: "presence-heading", class: "section__title", text: "Your presence" }), presenceBadge),
    presenceText,
  );
  /** @type {string} */
  let rosterPresence = "off_call";

  async function refreshPresence() {
    try {
      const { on_call } = await ctx.api.get("/curbside/on-call", { signal: ctx.signal });
      const mine = /** @type {any[]} */ (on_call).find((m) => m.psychiatrist_id === me.id);
      rosterPresence = mine ? mine.presence : "off_call";
    } catch {
      // the badge keeps its last value; the next refresh tries again
    }
    renderPresence();
  }

  function renderPresence() {
    // The socket is the truth about this page's connection; the roster about the shift.
    const key = !socket.online ? "offline" : rosterPresence === "off_call" ? "off_call" : rosterPresence === "busy" ? "busy" : "available";
    const p = PRESENCE[key];
    presenceBadge.className = `badge ${p.badge}`;
    presenceBadge.textContent = p.label;
    presenceText.textContent = p.text;
  }

  // --- ringing -----------------------------------------------------------------------------

  const alerts = h("div", { class: "curbside__alerts" });
  // Said at once, interrupting (role=alert): a ring is the one thing on this page that can't
  // wait. The card itself holds the question and the context, read when the focus lands.
  const ringAlert = h("p", { class: "visually-hidden", role: "alert" });
  const alertMessages = messageSlot();
  /** @type {Ring[]} */
  let rings = [];
  let accepted = 0;

  /** @param {Parameters<typeof ringsReducer>[1]} event */
  function dispatch(event) {
    const before = new Set(rings.filter((r) => r.state === "ringing").map((r) => r.request.id));
    rings = ringsReducer(rings, event);
    renderRings();
    if (anyRinging(rings)) {
      chime.start();
      startTitle();
    } else {
      chime.stop();
      stopTitle();
    }
    const fresh = rings.find((r) => r.state === "ringing" && !before.has(r.request.id));
    if (fresh) {
      ringAlert.textContent = "";
      ringAlert.textContent = `Curbside call ringing: ${URGENCY[fresh.request.urgency] ?? ""} request from ${fresh.request.pcp.display_name}.`;
      const button = /** @type {HTMLElement | null} */ (alerts.querySelector(`[data-accept="${fresh.request.id}"]`));
      button?.focus();
    }
  }

  function renderRings() {
    // One ring changing must not take the focus off another's Accept.
    keepFocus(alerts, () => replaceChildren(alerts, rings.map(ringCard)));
  }

  /** @param {Ring} ring */
  function ringCard(ring) {
    const r = ring.request;
    const headingId = `ring-${r.id}-heading`;
    const live = ring.state === "ringing" || ring.state === "accepting";
    const body = [
      h("p", { class: "curbside__question", text: r.question }),
      contextList(r.context ?? {}),
    ];
    /** @type {Node[]} */
    let controls;
    if (live) {
      const accept = h("button", { type: "button", class: "button button--primary curbside__accept", "data-accept": String(r.id), text: ring.state === "accepting" ? "Accepting…" : "Accept" });
      const decline = h("button", { type: "button", class: "button button--secondary", text: "Decline" });
      if (ring.state === "accepting") accept.setAttribute("aria-disabled", "true");
      accept.addEventListener("click", () => acceptRing(r.id));
      decline.addEventListener("click", () => declineRing(r.id));
      controls = [accept, decline];
    } else {
      const dismiss = h("button", { type: "button", class: "button button--secondary", text: "Dismiss" });
      dismiss.addEventListener("click", () => dispatch({ type: "dismiss", request_id: r.id }));
      const why = {
        taken: "Taken by someone else: another psychiatrist accepted first.",
        cancelled: `${r.pcp.display_name} cancelled this request.`,
        escalated: "No longer ringing you: it has moved on to the next on-call tier.",
      }[/** @type {"taken" | "cancelled" | "escalated"} */ (ring.state)];
      controls = [h("p", { class: "curbside__gone", role: "status", text: why }), dismiss];
    }
    return h(
      "section",
      { class: `curbside__alert${live ? " curbside__alert--ringing" : ""}`, "aria-labelledby": headingId, dataset: { key: String(r.id) } },
      live ? h("p", { class: "curbside__ringing-label" }, h("span", { class: "curbside__pulse", "aria-hidden": "true" }), ring.state === "accepting" ? "Accepting…" : "Ringing now") : null,
      h(
        "div",
        { class: "section__head" },
        h("h2", { id: headingId, class: "section__title curbside__alert-title", text: live ? `Curbside request from ${r.pcp.display_name}` : `Request from ${r.pcp.display_name}` }),
        h("span", { class: `curbside__urgency curbside__urgency--${r.urgency}`, text: URGENCY[r.urgency] ?? r.urgency }),
      ),
      h("p", { class: "muted", text: ringLine(ring) }),
      ...body,
      h("div", { class: "form__actions" }, ...controls),
    );
  }

  /** @param {number} id */
  async function acceptRing(id) {
    const ring = rings.find((r) => r.request.id === id);
    if (!ring || ring.state !== "ringing") return;
    alertMessages.clear();
    dispatch({ type: "accepting", request_id: id });
    try {
      await socket.accept(id);
      accepted = id;
      chime.stop();
      ctx.navigate(`/curbside/requests/${id}`);
    } catch (error) {
      const code = /** @type {{code?: string}} */ (error).code;
      if (code === "already_taken") dispatch({ type: "taken", request_id: id });
      else if (code === "cancelled") dispatch({ type: "stop", request_id: id, reason: "cancelled" });
      else if (code === "not_ringing" || code === "not_rung") dispatch({ type: "stop", request_id: id, reason: "escalated" });
      else {
        dispatch({ type: "failed", request_id: id });
        alertMessages.show("error", messageFor(error));
      }
    }
  }

  /** @param {number} id */
  async function declineRing(id) {
    alertMessages.clear();
    try {
      await socket.decline(id);
      dispatch({ type: "declined", request_id: id });
    } catch (error) {
      alertMessages.show("error", messageFor(error));
    }
  }

  socket.on("ring", (ring) => dispatch({ type: "ring", ring }));
  socket.on("taken", (e) => dispatch({ type: "taken", request_id: e.request_id }));
  socket.on("stop", (e) => dispatch({ type: "stop", request_id: e.request_id, reason: e.reason }));
  socket.on("connected", (e) => {
    // The accept's ack normally gets here first; this covers an ack lost to a reconnect.
    if (rings.some((r) => r.request.id === e.request_id && r.state === "accepting") && accepted !== e.request_id) {
      accepted = e.request_id;
      ctx.navigate(`/curbside/requests/${e.request_id}`);
    }
  });
  socket.on("online", (online) => {
    renderPresence();
    if (online) {
      refreshPresence();
      restoreRings();
      lists.reload();
    }
  });
  socket.on("refused", (error) => alertMessages.show("error", messageFor(error)));

  /** After (re)connecting: what is ringing us now, in case a ring was missed meanwhile. */
  async function restoreRings() {
    try {
      const { requests } = await ctx.api.get("/curbside/ringing", { signal: ctx.signal });
      for (const c of /** @type {Consult[]} */ (requests)) {
        if (rings.some((r) => r.request.id === c.id && r.state === "ringing")) continue;
        const request = { id: c.id, urgency: c.urgency, mode: c.mode, question: c.question, patient_state: c.patient_state, context: c.context, pcp: c.pcp, asked_at: c.created_at };
        dispatch({ type: "ring", ring: { request, tier: c.ringing_tier ?? "primary", ring_deadline: c.ring_deadline } });
      }
    } catch {
      // the socket's rings still arrive
    }
  }

  // The browser may hold the sound back until the page has been used once.
  const unlock = () => chime.unlock();
  document.addEventListener("pointerdown", unlock);
  document.addEventListener("keydown", unlock);
  ctx.signal.addEventListener("abort", () => {
    document.removeEventListener("pointerdown", unlock);
    document.removeEventListener("keydown", unlock);
  });

  /** @type {ReturnType<typeof setInterval> | undefined} */
  let titleTimer;
  const baseTitle = document.title;
  function startTitle() {
    if (titleTimer) return;
    let on = false;
    titleTimer = setInterval(() => {
      on = !on;
      document.title = on ? "Curbside request ringing · Liaison" : baseTitle;
    }, 1000);
  }
  function stopTitle() {
    if (!titleTimer) return;
    clearInterval(titleTimer);
    titleTimer = undefined;
    if (!ctx.signal.aborted) document.title = baseTitle;
  }

  // --- queue and consults ------------------------------------------------------------------

  const lists = consultLists(ctx);
  const refresher = setInterval(() => {
    refreshPresence();
    lists.reload();
  }, REFRESH_MS);
  ctx.signal.addEventListener("abort", () => clearInterval(refresher));

  const rota = rotaSection(ctx, me.id, () => refreshPresence());

  return h(
    "div",
    { class: "page curbside__stack" },
    h(
      "div",
      { class: "page__head" },
      h("p", { class: "page__eyebrow", text: "Curbside consults" }),
      h("h1", { text: "On-call dashboard" }),
      h("p", { class: "page__lede", text: "Keep this page open while you're on call: requests ring here, with a sound. Accepting starts the call at once." }),
    ),
    alertMessages.element,
    ringAlert,
    alerts,
    h("div", { class: "columns" }, presenceCard, lists.queue),
    lists.mine,
    rota,
  );
}

/** "Call now · you're on the primary tier · patient in CA · rings until 6:38 AM". @param {Ring} ring */
function ringLine(ring) {
  const r = ring.request;
  const parts = [MODE[r.mode] ?? r.mode, ring.tier === "backup" ? "rung as backup" : "rung as primary on call"];
  if (r.patient_state) parts.push(`patient in ${r.patient_state}`);
  if (ring.deadline && (ring.state === "ringing" || ring.state === "accepting")) {
    const until = new Date(ring.deadline).toLocaleTimeString(undefined, { timeStyle: "short" });
    parts.push(ring.tier === "backup" ? `rings until ${until}, then goes to the written queue` : `rings until ${until}, then the backup tier`);
  }
  return parts.join(" · ");
}

/** The written queue and the psychiatrist's own consults. @param {PageContext} ctx */
function consultLists(ctx) {
  const queueBody = h("div", { class: "section__body" }, h("p", { class: "muted", text: "Loading…" }));
  const mineBody = h("div", { class: "section__body" }, h("p", { class: "muted", text: "Loading…" }));
  const queue = h("section", { class: "card section", id: "queue", "aria-labelledby": "queue-heading" }, h("h2", { id: "queue-heading", class: "section__title", text: "Written queue" }), queueBody);
  const mine = h("section", { class: "card section", id: "my-consults", "aria-labelledby": "mine-heading" }, h("h2", { id: "mine-heading", class: "section__title", text: "Your consults" }), mineBody);

  async function reload() {
    try {
      const [q, m] = await Promise.all([ctx.api.get("/curbside/queue", { signal: ctx.signal }), ctx.api.get("/curbside/requests", { signal: ctx.signal })]);
      // Reloaded every half minute: a keyboard user's focus on a consult stays on it.
      keepFocus(queueBody, () => replaceChildren(queueBody, consultList(q.requests, "Nothing is waiting for a written answer.", true)));
      keepFocus(mineBody, () => replaceChildren(mineBody, consultList(m.requests, "Consults you take or answer will be listed here.", false)));
    } catch (error) {
      if (ctx.signal.aborted) return;
      replaceChildren(queueBody, h("div", { class: "notice notice--error" }, h("p", { text: messageFor(error) })));
    }
  }
  return { queue, mine, reload };
}

/**
 * @param {Consult[]} list @param {string} empty
 * @param {boolean} queue  the written queue: due time and overdue flag
 */
export function consultList(list, empty, queue) {
  if (!list.length) return h("p", { class: "muted", text: empty });
  return h(
    "ul",
    { class: "curbside__list" },
    list.map((c) =>
      h(
        "li",
        { class: "curbside__item", dataset: { key: String(c.id) } },
        h(
          "p",
          { class: "curbside__item-head" },
          h("a", { href: `/curbside/requests/${c.id}`, text: `${URGENCY[c.urgency] ?? c.urgency} · ${MODE[c.mode] ?? c.mode} · from ${c.pcp.display_name}` }),
          queue
            ? h("span", { class: `badge ${c.overdue ? "badge--off" : "badge--plain"}`, text: c.overdue ? "Overdue" : dueText(c.answer_due_at) })
            : h("span", { class: `badge ${STATUS_BADGE[c.status] ?? "badge--plain"}`, text: STATUS_LABEL[c.status] ?? c.status }),
        ),
        h("p", { class: "curbside__excerpt", text: c.question }),
        queue ? h("p", { class: "muted", text: `Target: ${new Date(c.answer_due_at).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" })} (${dueText(c.answer_due_at)})` }) : null,
      ),
    ),
  );
}
