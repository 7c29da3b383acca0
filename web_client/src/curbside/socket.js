// The curbside pages' own signaling connection (`/rtc`, authenticated by the session cookie).
// For a psychiatrist, a connection that watches (`curbside:watch`, sent on every connect) *is*
// their presence: while a page that rings them holds it they are available (busy while a socket
// of theirs is in a call). Their other pages' sockets never make them available. The server sends the
// curbside events to every socket of the users concerned, so this one hears about requests
// even while the call itself runs on the Call's socket.

import * as ev from "../rtc/events.js";
import { RtcSocket } from "../rtc/socket.js";

/**
 * @typedef {object} CurbsideEvents
 * @property {import('../rtc/events.js').CurbsideRing} ring
 * @property {{request_id: number}} taken
 * @property {{request_id: number, reason: string}} stop
 * @property {import('../rtc/events.js').CurbsideStatus} status
 * @property {import('../rtc/events.js').CurbsideConnected} connected
 * @property {boolean} online       connected (again) or lost
 * @property {import('../rtc/socket.js').SignalError} refused
 */

const SERVER_EVENTS = /** @type {const} */ ([
  ["ring", ev.CURBSIDE_RING],
  ["taken", ev.CURBSIDE_TAKEN],
  ["stop", ev.CURBSIDE_STOP],
  ["status", ev.CURBSIDE_STATUS],
  ["connected", ev.CURBSIDE_CONNECTED],
]);

const WATCH_RETRY_MS = 2000;

export class CurbsideSocket {
  /**
   * @param {AbortSignal} signal  the page's: the connection closes when it aborts
   * @param {{watch?: boolean}} [options]  watch: this page rings the psychiatrist (it handles
   *   `ring` with a sound and a visible alert), so its connection makes them present
   */
  constructor(signal, { watch = false } = {}) {
    /** @type {{[K in keyof CurbsideEvents]?: Set<(detail: CurbsideEvents[K]) => void>}} */
    this.listeners = {};
    this.online = false;
    this.socket = new RtcSocket({
      onConnect: () => (watch ? this.watch() : this.setOnline(true)),
      onDisconnect: () => this.setOnline(false),
      onRefused: (error) => this.emit("refused", error),
    });
    for (const [name, event] of SERVER_EVENTS) {
      this.socket.on(event, (/** @type {any} */ data) => this.emit(name, data));
    }
    signal.addEventListener("abort", () => this.close());
    if (!signal.aborted) this.socket.connect();
  }

  /**
   * @template {keyof CurbsideEvents} K
   * @param {K} type
   * @param {(detail: CurbsideEvents[K]) => void} listener
   */
  on(type, listener) {
    const set = /** @type {Set<(detail: CurbsideEvents[K]) => void>} */ (this.listeners[type] ??= /** @type {any} */ (new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /**
   * @template {keyof CurbsideEvents} K
   * @param {K} type
   * @param {CurbsideEvents[K]} detail
   */
  emit(type, detail) {
    for (const listener of this.listeners[type] ?? []) listener(detail);
  }

  /** Tell the server this connection rings us; online (present) once it agrees. */
  async watch() {
    try {
      await this.socket.request(ev.CURBSIDE_WATCH);
      if (this.socket.connected) this.setOnline(true);
    } catch (error) {
      const code = /** @type {{code?: string}} */ (error).code;
      // Lost meanwhile: the next connect watches again. No answer: ask again while connected.
      if (code === "offline" || this.socket.closed) return;
      if (code === "timeout") window.setTimeout(() => this.socket.connected && this.watch(), WATCH_RETRY_MS);
      else this.emit("refused", /** @type {import('../rtc/socket.js').SignalError} */ (error));
    }
  }

  /** @param {boolean} online */
  setOnline(online) {
    if (this.online === online) return;
    this.online = online;
    this.emit("online", online);
  }

  /** @param {number} requestId @returns {Promise<{visit_id: number}>} */
  async accept(requestId) {
    const ack = await this.socket.request(ev.CURBSIDE_ACCEPT, { request_id: requestId });
    return { visit_id: Number(ack.visit_id) };
  }

  /** @param {number} requestId */
  decline(requestId) {
    return this.socket.request(ev.CURBSIDE_DECLINE, { request_id: requestId });
  }

  /** @param {number} requestId */
  cancel(requestId) {
    return this.socket.request(ev.CURBSIDE_CANCEL, { request_id: requestId });
  }

  /** Hang up the curbside call (not visit:end: the consult service closes the room). @param {number} requestId */
  end(requestId) {
    return this.socket.request(ev.CURBSIDE_END, { request_id: requestId });
  }

  close() {
    this.listeners = {};
    this.socket.close();
  }
}
