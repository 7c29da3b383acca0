// The clinician's live waiting room (lobby:update): who is waiting and since when, with Admit
// and Deny. Any clinician on the visit may admit; the server records who did.

import { h, replaceChildren } from "../dom.js";
import { messageSlot } from "../forms.js";
import { messageFor } from "../messages.js";
import { PEER_KINDS, timeOfDay, waitedFor } from "./format.js";

/** @typedef {import('../rtc/call.js').Call} Call */
/** @typedef {import('../rtc/events.js').LobbyEntry} LobbyEntry */

// The one deny reason the room machine (signaling/rooms.py DenyReason) and the event model
// (signaling/events.py LobbyDeny) both accept today; the server's default does not validate.
const DENY_REASON = "wrong_visit";

/**
 * @param {object} options
 * @param {Call} options.call
 * @param {(text: string) => void} options.announce
 */
export function lobbyPanel({ call, announce }) {
  const messages = messageSlot("status");
  const list = h("ul", { class: "lobby__list" });
  const empty = h("p", { class: "muted", text: "Nobody is waiting. Patients and guests appear here when they open their link." });
  const count = h("span", { class: "badge badge--plain", text: "0" });
  /** Items stay in place between updates, so a focused button keeps its focus. @type {Map<string, {li: HTMLLIElement, waited: HTMLElement, since: string}>} */
  const items = new Map();
  let first = true;

  /** @param {LobbyEntry[]} waiting */
  function render(waiting) {
    const arrived = waiting.filter((w) => !items.has(w.participant_id));
    if (!first && arrived.length) {
      announce(`${arrived.map((w) => w.display_name).join(", ")} ${arrived.length === 1 ? "is" : "are"} waiting to be let in.`);
    }
    first = false;
    const ids = new Set(waiting.map((w) => w.participant_id));
    for (const [id, item] of items) {
      if (!ids.has(id)) {
        item.li.remove();
        items.delete(id);
      }
    }
    waiting.forEach((w, index) => {
      let item = items.get(w.participant_id);
      if (!item || item.since !== w.since) {
        item?.li.remove();
        item = entry(w);
        items.set(w.participant_id, item);
      }
      item.waited.textContent = `(${waitedFor(w.since)})`;
      // The server's order (longest waiting first); nodes already in place are not moved.
      if (list.children[index] !== item.li) list.insertBefore(item.li, list.children[index] ?? null);
    });
    count.textContent = String(waiting.length);
    count.className = `badge ${waiting.length ? "badge--attention" : "badge--plain"}`;
    empty.hidden = waiting.length > 0;
  }

  /** @param {LobbyEntry} w */
  function entry(w) {
    const admit = h("button", { type: "button", class: "button button--primary button--small" }, "Admit", h("span", { class: "visually-hidden", text: ` ${w.display_name}` }));
    const deny = h("button", { type: "button", class: "button button--quiet button--small" }, "Deny", h("span", { class: "visually-hidden", text: ` ${w.display_name}` }));
    const confirm = h("div", { class: "lobby__confirm", hidden: true });
    admit.addEventListener("click", () =>
      act(admit, () => call.admit(w.participant_id), `${w.display_name} is joining the call.`),
    );
    deny.addEventListener("click", () => {
      const yes = h("button", { type: "button", class: "button button--danger button--small", text: "Deny entry" });
      const no = h("button", { type: "button", class: "button button--secondary button--small", text: "Cancel" });
      replaceChildren(
        confirm,
        h("p", { text: `Deny ${w.display_name} entry? They are told the clinician couldn't let them in, and their link no longer works for this visit.` }),
        h("div", { class: "form__actions" }, yes, no),
      );
      confirm.hidden = false;
      yes.focus();
      yes.addEventListener("click", () =>
        act(yes, () => call.deny(w.participant_id, DENY_REASON), `${w.display_name} was not let in.`),
      );
      no.addEventListener("click", () => {
        confirm.hidden = true;
        deny.focus();
      });
    });
    const waited = h("span");
    const li = h(
      "li",
      { class: "lobby__item" },
      h(
        "div",
        { class: "lobby__who" },
        h("p", { class: "lobby__name", text: w.display_name }),
        h("p", { class: "lobby__meta" }, `${PEER_KINDS[w.kind] ?? w.kind} · waiting since `, h("time", { datetime: w.since, text: timeOfDay(w.since) }), " ", waited),
      ),
      h("div", { class: "lobby__actions" }, admit, deny),
      confirm,
    );
    return { li, waited, since: w.since };
  }

  /** @param {HTMLButtonElement} button @param {() => Promise<unknown>} run @param {string} done */
  async function act(button, run, done) {
    if (button.getAttribute("aria-disabled") === "true") return;
    button.setAttribute("aria-disabled", "true");
    messages.clear();
    try {
      await run();
      messages.show("success", done);
    } catch (error) {
      messages.show("error", messageFor(error));
    } finally {
      button.removeAttribute("aria-disabled");
    }
  }

  const stop = call.on("lobby", render);
  const timer = window.setInterval(() => render(call.lobby), 30_000);
  render(call.lobby);

  const element = h(
    "section",
    { class: "card section lobby", "aria-labelledby": "lobby-heading" },
    h("div", { class: "section__head" }, h("h2", { id: "lobby-heading", class: "section__title", text: "Waiting room" }), count),
    messages.element,
    empty,
    list,
  );
  return {
    element,
    destroy() {
      stop();
      window.clearInterval(timer);
    },
  };
}
