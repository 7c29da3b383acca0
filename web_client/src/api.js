// The one way the client talks to Liaison's JSON API (/api/v1). It adds the CSRF header to
// state-changing requests and turns every failure into an ApiError with the server's
// client-safe `code` and `message`, so pages branch on codes, never on status numbers or text.

export const API_BASE = "/api/v1";

// Codes with which the server says "there is no usable session": the app returns to sign-in.
export const SESSION_LOST_CODES = new Set(["not_signed_in", "session_expired", "session_ended"]);

export class ApiError extends Error {
  /**
   * @param {number} status  HTTP status, or 0 when the server could not be reached
   * @param {string} code    stable, machine-readable reason (e.g. "invalid_credentials")
   * @param {string} message client-safe sentence from the server
   * @param {Record<string, unknown>} [extra]  e.g. retry_after, fields
   */
  constructor(status, code, message, extra = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.extra = extra;
  }

  /** Seconds the server asked us to wait (429), if it said. */
  get retryAfter() {
    const value = Number(this.extra.retry_after);
    return Number.isFinite(value) && value > 0 ? value : null;
  }

  /** Field-level problems of a 422: [{field, message}]. */
  get fields() {
    const fields = this.extra.fields;
    return Array.isArray(fields) ? /** @type {{field: string, message: string}[]} */ (fields) : [];
  }
}

/**
 * @typedef {object} ApiHooks
 * @property {() => string} csrfToken        the current session's CSRF token ("" when none)
 * @property {(error: ApiError) => void} onSessionLost    a 401 with a SESSION_LOST_CODES code
 * @property {(error: ApiError) => void} onEnrolmentRequired  403 totp_enrolment_required
 * @property {() => void} onActivity         any response from the server (resets idle watch)
 */

/**
 * @typedef {object} RequestOptions
 * @property {AbortSignal} [signal]
 * @property {boolean} [quiet]  do not call the session hooks (used while booting)
 * @property {boolean} [raw]    resolve to the Response itself (a file to save), not its JSON
 * @property {boolean} [keepalive]  let the request outlive the page (a save on leaving it)
 */

const STATE_CHANGING = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export class Api {
  /** @param {ApiHooks} hooks */
  constructor(hooks) {
    this.hooks = hooks;
  }

  /** @param {string} path @param {RequestOptions} [options] */
  get(path, options) {
    return this.request("GET", path, undefined, options);
  }

  /** @param {string} path @param {unknown} [body] @param {RequestOptions} [options] */
  post(path, body, options) {
    return this.request("POST", path, body, options);
  }

  /** @param {string} path @param {unknown} [body] @param {RequestOptions} [options] */
  put(path, body, options) {
    return this.request("PUT", path, body, options);
  }

  /**
   * @param {string} method
   * @param {string} path  below /api/v1, e.g. "/auth/session"
   * @param {unknown} [body]  sent as JSON when given
   * @param {RequestOptions} [options]
   * @returns {Promise<any>} the parsed JSON body, or null for 204
   */
  async request(method, path, body, { signal, quiet = false, raw = false, keepalive = false } = {}) {
    /** @type {Record<string, string>} */
    const headers = { Accept: raw ? "*/*" : "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (STATE_CHANGING.has(method)) {
      const token = this.hooks.csrfToken();
      if (token) headers["X-CSRF-Token"] = token;
    }
    let response;
    try {
      response = await fetch(API_BASE + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
        cache: "no-store",
        signal,
        keepalive,
      });
    } catch (cause) {
      if (signal?.aborted) throw cause;
      throw new ApiError(
        0,
        "network_error",
        "Liaison can't be reached. Check your internet connection, then try again.",
      );
    }
    this.hooks.onActivity();
    if (response.ok) {
      if (raw) return response;
      return response.status === 204 ? null : response.json();
    }
    const error = await errorFrom(response);
    if (!quiet) {
      if (error.status === 401 && SESSION_LOST_CODES.has(error.code)) {
        this.hooks.onSessionLost(error);
      } else if (error.status === 403 && error.code === "totp_enrolment_required") {
        this.hooks.onEnrolmentRequired(error);
      }
    }
    throw error;
  }
}

/** @param {Response} response @returns {Promise<ApiError>} */
async function errorFrom(response) {
  try {
    const body = await response.json();
    const { code, message, ...extra } = body.error;
    if (typeof code === "string" && typeof message === "string") {
      return new ApiError(response.status, code, message, extra);
    }
  } catch {
    // Not our JSON (a proxy's error page, say): fall through to a generic message.
  }
  const message =
    response.status >= 500
      ? "Liaison had a problem on its side. Try again in a moment."
      : `The request failed (HTTP ${response.status}).`;
  return new ApiError(response.status, "http_error", message);
}
