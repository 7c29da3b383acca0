// The PCP's side of /curbside: who is on call now, and their own requests, kept live. A
// curbside:status event (sent to the PCP's user room, so it reaches this page on any server
// process) changes the request's row in place; an answer waiting for acknowledgement is marked
// for attention, counted in the heading and announced. The rows are keyed and kept across
// updates, so a keyboard user's focus on a link stays where it was.

import { h, keepChildren, keepFocus, replaceChildren } from "../dom.js";
import { messageFor } from "../messages.js";
import { CurbsideSocket } from "./socket.js";
import { applyStatus, MODE, STATUS_BADGE, STATUS_LABEL, URGENCY } from "./status.js";

/** @typedef {import('../app.js').PageContext} PageContext */
/** @typedef {import('./status.js').Consult} Consult */

/** Answers the PCP has not acknowledged yet. @param {Consult[]} list */
export function awaitingAcknowledgement(list) {
  return list.filter((c) => c.status === "answered").length;
}

/** "1 answer to acknowledge", "2 answers to acknowledge". @param {number} n */
function answersText(n) {
  return `${n} answer${n === 1 ? "" : "s"} to acknowledge`;
}

/** @param {PageContext} ctx */
export function requestsPage(ctx) {
  const roster = h("div", { class: "section__body" }, h("p", { class: "muted", text: "Loading…" }));
  const mine = h("div", { class: "section__body" }, h("p", { class: "muted", text: "Loading…" }));
  const count = h("span", { class: "badge badge--attention curbside__count", hidden: true });
  /** @type {Consult[] | null} */
  let consults = null;
  /** @type {Map<number, HTMLLIElement>} */
  const rows = new Map();
  const list = h("ul", { class: "curbside__list" });

  ctx.api.get("/curbside/on-call", { signal: ctx.signal }).then(
    ({ on_call }) => replaceChildren(roster, onCallList(on_call)),
    (error) => !ctx.signal.aborted && replaceChildren(roster, h("p", { text: messageFor(error) })),
  );

  async function load() {
    try {
      const { requests } = await ctx.api.get("/curbside/requests", { signal: ctx.signal });
      consults = /** @type {Consult[]} */ (requests);
      render();
    } catch (error) {
      if (!ctx.signal.aborted) replaceChildren(mine, h("div", { class: "notice notice--error" }, h("p", { text: messageFor(error) })));
    }
  }

  function render() {
    if (!consults) return;
    const waiting = awaitingAcknowledgement(consults);
    count.textContent = waiting ? answersText(waiting) : "";
    count.hidden = waiting === 0;
    if (!consults.length) {
      replaceChildren(mine, h("p", { class: "muted", text: "You haven't asked for a curbside consult yet." }));
      return;
    }
    const seen = new Set(consults.map((c) => c.id));
    for (const id of [...rows.keys()]) if (!seen.has(id)) rows.delete(id);
    keepFocus(mine, () => {
      for (const c of consults ?? []) {
        const row = rows.get(c.id) ?? h("li", { class: "curbside__item", dataset: { key: String(c.id) } });
        rows.set(c.id, row);
        fillRow(row, c);
      }
      keepChildren(list, (consults ?? []).map((c) => rows.get(c.id)));
      keepChildren(mine, list);
    });
  }

  const socket = new CurbsideSocket(ctx.signal);
  socket.on("status", (event) => {
    const before = consults?.find((c) => c.id === event.request_id);
    if (!consults || !before) {
      // A request asked elsewhere (another tab): read the list again to show it.
      load();
      return;
    }
    const next = applyStatus(before, event).consult;
    consults = consults.map((c) => (c.id === next.id ? next : c));
    render();
    if (next.status === "answered" && before.status !== "answered") {
      const who = next.consultant?.display_name ?? "A psychiatrist";
      ctx.announce(`${who} answered your curbside request. ${answersText(awaitingAcknowledgement(consults))}.`);
    }
  });
  // The list is read each time the live connection comes up: first, so that no status event
  // can fall between the read and the subscription; again on reconnecting, since events sent
  // while the connection was down are lost. A slow connection holds the list back a second at
  // most (it is then read once more when the connection is up).
  const early = window.setTimeout(load, 1000);
  ctx.signal.addEventListener("abort", () => window.clearTimeout(early), { once: true });
  socket.on("online", (online) => {
    if (!online) return;
    window.clearTimeout(early);
    load();
  });

  return h(
    "div",
    { class: "page" },
    ctx.flash ? h("div", { class: `notice notice--${ctx.flash.kind}`, role: "status" }, h("p", { text: ctx.flash.text })) : null,
    h(
      "div",
      { class: "page__head" },
      h("p", { class: "page__eyebrow", text: "Curbside consults" }),
      h("h1", { text: "Ask a psychiatrist" }),
      h("p", { class: "page__lede", text: "A quick consult with the on-call psychiatrist, by video now or in writing. The recommendation goes into the patient's record." }),
      h("a", { class: "button button--primary", href: "/curbside/new", text: "New request" }),
    ),
    h(
      "div",
      { class: "columns" },
      h("section", { class: "card section", "aria-labelledby": "oncall-heading" }, h("h2", { id: "oncall-heading", class: "section__title", text: "On call now" }), roster),
      h("section", { class: "card section", "aria-labelledby": "requests-heading" }, h("h2", { id: "requests-heading", class: "section__title" }, "Your requests ", count), mine),
    ),
  );
}

/** A row's parts, made once and kept, so that focus on its link survives updates. */
const PARTS = new WeakMap();

/** One request as its PCP sees it in the list. @param {HTMLLIElement} row @param {Consult} c */
function fillRow(row, c) {
  /** @type {{link: HTMLAnchorElement, badge: HTMLSpanElement, excerpt: HTMLParagraphElement}} */
  let parts = PARTS.get(row);
  if (!parts) {
    parts = { link: h("a", { href: `/curbside/requests/${c.id}` }), badge: h("span"), excerpt: h("p", { class: "curbside__excerpt" }) };
    PARTS.set(row, parts);
    replaceChildren(row, h("p", { class: "curbside__item-head" }, parts.link, parts.badge), parts.excerpt);
  }
  const waiting = c.status === "answered";
  row.classList.toggle("curbside__item--attention", waiting);
  const who = c.consultant ? ` · ${c.consultant.display_name}` : "";
  parts.link.textContent = `${URGENCY[c.urgency] ?? c.urgency} · ${MODE[c.mode] ?? c.mode}${who}`;
  parts.badge.className = `badge ${waiting ? "badge--attention" : (STATUS_BADGE[c.status] ?? "badge--plain")}`;
  parts.badge.textContent = waiting ? "Answered — please acknowledge" : (STATUS_LABEL[c.status] ?? c.status);
  parts.excerpt.textContent = c.question;
}

/** @param {any[]} onCall  GET /curbside/on-call's list */
function onCallList(onCall) {
  const available = onCall.filter((m) => m.presence === "available");
  return [
    h("p", { text: available.length ? `${available.length} psychiatrist${available.length === 1 ? " is" : "s are"} available for a call now.` : "No psychiatrist is available for a call right now. A call-now request will go to the written queue, and you'll be told." }),
    onCall.length
      ? h("ul", { class: "curbside__list" }, onCall.map((m) => h("li", { class: "curbside__item curbside__shift" }, h("span", { text: m.display_name }), h("span", { class: "muted", text: m.tier === "backup" ? "Backup" : "Primary" }), h("span", { class: `badge ${m.presence === "available" ? "badge--ok" : m.presence === "busy" ? "badge--attention" : "badge--plain"}`, text: m.presence === "available" ? "Available" : m.presence === "busy" ? "Busy" : "Offline" }))))
      : null,
  ];
}
