// The signaling connection: socket.io's client on the `/rtc` namespace, with every request's
// ack turned into a promise (resolved with the ack, rejected with a SignalError carrying the
// server's code) and the connection's life reported through a few callbacks.
//
// The browser's cookie authenticates the socket (a clinician's session, or a patient's or
// guest's visit session); no token is passed in script. socket.io reconnects by itself after a
// network drop; `onConnect(again = true)` is the moment to rejoin the room. A connection the
// server refuses (connect_error with {data: {code}}) is not retried.
//
// A server that shuts down says `server:draining` and then disconnects its sockets: this
// socket reconnects after a random delay (so that a server's clients do not all arrive on the
// others at once), through the load balancer to another server, and the page rejoins its room.
// The same goes for any other disconnect the server decides.

import { io } from "socket.io-client";
import { NAMESPACE, SERVER_DRAINING } from "./events.js";

export const REQUEST_TIMEOUT_MS = 10_000;
// Reconnects after the server closed the socket are spread over this window by default.
const RECONNECT_WITHIN_MS = 3000;
const RECONNECT_AT_LEAST_MS = 250;

/**
 * When to reconnect after the server let us go: a random moment in the window.
 * @param {number} withinMs
 * @param {() => number} [random]
 */
export function reconnectDelayMs(withinMs, random = Math.random) {
  const spread = Math.max(0, Math.min(withinMs, 30_000) - RECONNECT_AT_LEAST_MS);
  return RECONNECT_AT_LEAST_MS + Math.floor(random() * spread);
}

export class SignalError extends Error {
  /** @param {string} code @param {string} message */
  constructor(code, message) {
    super(message);
    this.name = "SignalError";
    this.code = code;
  }
}

/**
 * @typedef {object} SocketHooks
 * @property {(again: boolean) => void} [onConnect]   connected; `again` after a reconnect
 * @property {(reason: string) => void} [onDisconnect]  lost; socket.io retries unless refused
 * @property {(error: SignalError) => void} [onRefused]  the server refused the connection
 * @property {() => void} [onDraining]  the server is shutting down; we move to another
 */

export class RtcSocket {
  /** @param {SocketHooks} hooks */
  constructor(hooks = {}) {
    this.hooks = hooks;
    this.connectedBefore = false;
    this.closed = false;
    /** @type {number | undefined} */
    this.reconnectTimer = undefined;
    this.socket = io(NAMESPACE, {
      transports: ["websocket"],
      withCredentials: true,
      autoConnect: false,
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
    });
    this.socket.on("connect", () => {
      const again = this.connectedBefore;
      this.connectedBefore = true;
      this.hooks.onConnect?.(again);
    });
    this.socket.on("disconnect", (reason) => {
      if (this.closed) return;
      this.hooks.onDisconnect?.(reason);
      // The server closed this socket on purpose (shutting down, a flood, a sweep): socket.io
      // does not retry that by itself. Try again after a moment; if it refuses, connect_error
      // says why.
      if (reason === "io server disconnect") this.reconnectSoon(RECONNECT_WITHIN_MS);
    });
    this.socket.on(SERVER_DRAINING, (/** @type {import('./events.js').ServerDraining} */ data) => {
      if (this.closed) return;
      this.hooks.onDraining?.();
      // Leave now rather than wait for the server's disconnect: nothing more is sent there.
      this.socket.disconnect();
      this.reconnectSoon(Number(data?.reconnect_within_ms) || RECONNECT_WITHIN_MS);
    });
    this.socket.on("connect_error", (error) => {
      if (this.closed) return;
      // `active` is false when the server refused the connection (socket.io will not retry).
      if (!this.socket.active) {
        const data = /** @type {{data?: {code?: string}}} */ (/** @type {unknown} */ (error)).data;
        this.hooks.onRefused?.(new SignalError(data?.code ?? "refused", error.message));
      } else {
        this.hooks.onDisconnect?.("connect_error");
      }
    });
  }

  connect() {
    this.socket.connect();
  }

  /** @param {number} withinMs */
  reconnectSoon(withinMs) {
    if (this.reconnectTimer !== undefined) return;
    this.reconnectTimer = window.setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.closed && !this.socket.connected) this.socket.connect();
    }, reconnectDelayMs(withinMs));
  }

  get connected() {
    return this.socket.connected;
  }

  /** This connection's id: the `conn_id` others know us by (changes on every reconnect). */
  get id() {
    return this.socket.id ?? "";
  }

  /**
   * Listen to a server event until the socket is closed.
   * @param {string} event
   * @param {(data: any) => void} handler
   */
  on(event, handler) {
    this.socket.on(event, handler);
    return this;
  }

  /**
   * Send an event and wait for its ack.
   * @param {string} event
   * @param {Record<string, unknown>} [data]
   * @param {number} [timeoutMs]
   * @returns {Promise<Record<string, any>>} the ack of a request the server accepted
   */
  request(event, data = {}, timeoutMs = REQUEST_TIMEOUT_MS) {
    if (!this.socket.connected) {
      // socket.io would buffer it until the reconnect, when the new connection is not in the
      // room yet: refuse now instead, and let the caller decide.
      return Promise.reject(new SignalError("offline", "Not connected to Liaison right now."));
    }
    return new Promise((resolve, reject) => {
      this.socket.timeout(timeoutMs).emit(event, data, (/** @type {Error | null} */ err, /** @type {any} */ ack) => {
        if (err) {
          reject(new SignalError("timeout", "Liaison did not answer in time."));
        } else if (ack && ack.ok) {
          resolve(ack);
        } else {
          const error = ack?.error ?? {};
          reject(new SignalError(error.code ?? "refused", error.message ?? "Refused."));
        }
      });
    });
  }

  close() {
    this.closed = true;
    window.clearTimeout(this.reconnectTimer);
    this.socket.removeAllListeners();
    this.socket.disconnect();
  }
}
