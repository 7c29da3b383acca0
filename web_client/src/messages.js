// What to tell a person when a request fails, by the server's error code. Each message says
// what happened and what to do next; unknown codes fall back to the server's own message,
// which is always client-safe.

/** @typedef {import('./api.js').ApiError} ApiError  (a SignalError from rtc/socket.js has the same code and message) */

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

  // Join links (patients and guests). Each says what to do next: almost always, contact the clinic.
  link_not_found:
    "This link doesn't work. Check that you opened the whole link from your message. If it still doesn't work, contact the clinic for a new link.",
  link_expired: "This link has expired. Contact the clinic: they can send you a new link.",
  link_used:
    "This link has already been opened, and it works only once. Go back to the browser or device where you first opened it, or contact the clinic for a new link.",
  link_revoked:
    "This link has been withdrawn or replaced by a newer one. Use the newest link the clinic sent you, or contact the clinic.",
  link_locked:
    "This link is locked after too many attempts to confirm the date of birth. Contact the clinic for a new link.",
  visit_cancelled:
    "This visit has been cancelled. Contact the clinic if you need to arrange another one.",
  visit_ended: "This visit has ended. Contact the clinic if you need to speak to your care team again.",
  visit_session_missing:
    "We can't find your visit. Open the link from your message again, in this browser. If you already opened it somewhere else, go back there.",
  visit_session_ended: "Your access to this visit has ended. Contact the clinic for a new link.",
  identity_mismatch: (error) => {
    const left = Number(error.extra?.attempts_remaining);
    const tries = Number.isFinite(left)
      ? ` You have ${left} more ${left === 1 ? "try" : "tries"} before this link is locked.`
      : "";
    return `That date of birth doesn't match our records. Check the day, month and year.${tries}`;
  },
  identity_throttled: (error) =>
    `Too many tries. For your security, please wait ${duration(error.retryAfter ?? 300)}, then try again.`,
  consent_outdated: "The consent text has just changed. Read the new version below, then accept it.",
  consent_not_accepted:
    "A video visit needs your consent. If you'd rather not have one, call the clinic to arrange another kind of visit.",
  location_missing: "Give your address, or at least the state you are in.",
  steps_incomplete: "A step before the waiting room isn't finished yet. Reload the page to continue where you left off.",
  step_out_of_order: "A step before this one isn't finished yet. Reload the page to continue where you left off.",
  echo_busy: (error) =>
    `The network check is busy right now. Wait ${duration(error.retryAfter ?? 10)} and try again, or skip it.`,

  // Visits and calls (clinicians).
  visit_not_found: "This visit doesn't exist, or you are not one of its clinicians.",
  not_on_visit: "You are not on this visit. Ask the clinician who scheduled it to add you.",
  room_full: "The call is full (four people at most). Someone must leave before anyone else can join.",
  not_started: "The visit hasn't started yet (nobody has been let in), so there is nothing to end. Use Leave instead.",
  not_in_call: "That person isn't in the call any more.",
  not_waiting: "That person is no longer in the waiting room.",
  already_admitted: "That person has already been let in.",
  rate_limited: "Too many messages too quickly. Wait a moment, then try again.",
  offline: "You're not connected to Liaison right now. Wait for the connection to come back, then try again.",
  timeout: "Liaison didn't answer in time. Check your connection, then try again.",
};

/** The sentence to show for a failed request. @param {unknown} error */
export function messageFor(error) {
  const apiError = /** @type {ApiError} */ (error);
  const known = apiError && typeof apiError.code === "string" ? MESSAGES[apiError.code] : undefined;
  if (typeof known === "function") return known(apiError);
  if (typeof known === "string") return known;
  if (apiError && typeof apiError.message === "string" && ["ApiError", "SignalError"].includes(apiError.name)) {
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
