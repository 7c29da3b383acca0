// The signaling connection: socket.io's client on the `/rtc` namespace, with every request's
// ack turned into a promise (resolved with the ack, rejected with a SignalError carrying the
// server's code) and the connection's life reported through a few callbacks.
//
// The browser's cookie authenticates the socket (a clinician's session, or a patient's or
// guest's visit session); no token is passed in script. socket.io reconnects by itself after a
// network drop; `onConnect(again = true)` is the moment to rejoin the room. A connection the
// server refuses (connect_error with {data: {code}}) is not retried.

import { io } from "socket.io-client";
import { NAMESPACE } from "./events.js";

export const REQUEST_TIMEOUT_MS = 10_000;

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
 */

export class RtcSocket {
  /** @param {SocketHooks} hooks */
  constructor(hooks = {}) {
    this.hooks = hooks;
    this.connectedBefore = false;
    this.closed = false;
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
      // The server closed this socket on purpose (a flood, a sweep): try once more after a
      // moment; if it refuses, connect_error says why.
      if (reason === "io server disconnect") {
        window.setTimeout(() => {
          if (!this.closed) this.socket.connect();
        }, 1000);
      }
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
    this.socket.removeAllListeners();
    this.socket.disconnect();
  }
}
