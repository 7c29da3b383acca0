// What to tell a person when a request fails, by the server's error code. Each message says
// what happened and what to do next; unknown codes fall back to the server's own message,
// which is always client-safe.

/** @typedef {import('./api.js').ApiError} ApiError */

/** @type {Record<string, string | ((error: ApiError) => string)>} */
const MESSAGES = {
  invalid_credentials:
    "That username and password don't match an account. Check them (passwords are case-sensitive) and try again.",
  invalid_totp:
    "That code didn't work. Codes change every 30 seconds: enter the one your app shows now.",
  account_disabled:
    "This account has been turned off. If you think this is a mistake, contact your Liaison administrator.",
  login_throttled: (error) =>
    `Too many unsuccessful sign-in attempts. For your security, please wait ${duration(
      error.retryAfter ?? 60,
    )} before trying again.`,
  too_many_requests: (error) =>
    `Too many requests. Please wait ${duration(error.retryAfter ?? 60)} and try again.`,
  bad_origin:
    "Liaison refused this request because this page's web address isn't the one Liaison is set up for. Open Liaison at the address your administrator gave you.",
  csrf_failed: "This page is out of date. Reload it, then try again.",
  role_forbidden: "Your account doesn't have access to this.",
  totp_enrolled:
    "An authenticator app is already set up for this account. If you have lost it, ask your Liaison administrator to reset it.",
  totp_not_started: "The set-up was interrupted. Start again to get a new QR code.",
  session_expired: "Your session expired. Sign in again to continue.",
  not_signed_in: "Your session expired. Sign in again to continue.",
  session_ended: "Your session has ended. Sign in again to continue.",
};

/** The sentence to show for a failed request. @param {unknown} error */
export function messageFor(error) {
  const apiError = /** @type {ApiError} */ (error);
  const known = apiError && typeof apiError.code === "string" ? MESSAGES[apiError.code] : undefined;
  if (typeof known === "function") return known(apiError);
  if (typeof known === "string") return known;
  if (apiError && typeof apiError.message === "string" && apiError.name === "ApiError") {
    return apiError.message;
  }
  return "Something went wrong. Reload the page and try again.";
}

/** "45 seconds", "1 minute", "15 minutes". @param {number} seconds */
export function duration(seconds) {
  if (seconds < 60) {
    const s = Math.max(1, Math.ceil(seconds));
    return `${s} second${s === 1 ? "" : "s"}`;
  }
  const m = Math.ceil(seconds / 60);
  return `${m} minute${m === 1 ? "" : "s"}`;
}
