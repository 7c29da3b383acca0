// Joining a video visit from a link, with no account: the token is read once from the link's
// fragment and taken out of the address bar at once, then exchanged (POST /join/exchange) for a
// visit-session cookie. Then the steps, in order, with a progress indicator: identity (date of
// birth, patients only), consent, location (patients only), the device check, and the waiting
// room; then the call. A reload resumes where the person left off (GET /join/status).
//
// Every refusal says what to do next (messages.js). The token is never sent anywhere but the
// body of the exchange, and never stored.

import { Api } from "../api.js";
import { VISIT_NOTICE } from "../clinics/events.js";
import { screeningForms } from "../clinics/screening-form.js";
import { h, replaceChildren } from "../dom.js";
import { messageFor } from "../messages.js";
import { Call } from "../rtc/call.js";
import { callScreen } from "../visit/call-screen.js";
import { deviceCheck } from "../visit/device-check.js";
import { dayOf, timeOfDay } from "../visit/format.js";
import { consentStep, identityStep, locationStep } from "../visit/join-steps.js";
import { waitingRoom } from "../visit/waiting-room.js";

/** @typedef {import('../app.js').PageContext} PageContext */
/** @typedef {import('../rtc/media.js').LocalMedia} LocalMedia */

/**
 * @typedef {"identity" | "consent" | "location"} ServerStep
 * @typedef {ServerStep | "devices" | "waiting"} Step
 * @typedef {object} JoinStatus   the server's JoinStatusOut
 * @property {{id: number, starts_at: string, ends_at: string, duration_minutes: number, status: string,
 *   clinicians: string[], patient_first_name: string | null}} visit
 * @property {{kind: "patient" | "guest", display_name: string, participant_id: string}} you
 * @property {ServerStep[]} steps_completed
 * @property {ServerStep[]} steps_remaining
 * @property {ServerStep | null} next_step
 * @property {boolean} ready_for_room
 * @property {string} csrf_token
 */

/** @type {Record<Step, string>} */
const STEP_NAMES = {
  identity: "Confirm it's you",
  consent: "Consent",
  location: "Your location",
  devices: "Camera and sound",
  waiting: "Waiting room",
};
const CLOSED_VISIT = { cancelled: "visit_cancelled", completed: "visit_ended", no_show: "visit_ended" };
const EMERGENCY = "If you are in danger or thinking about harming yourself, call 911 now, or call or text 988 (Suicide & Crisis Lifeline). Don't wait for your visit.";

/** @type {import('../app.js').Page} */
export const joinPage = {
  title: "Join your video visit",
  access: "public",
  layout: "bare",
  render(ctx) {
    // Read the token once and take it out of the address bar (and so out of the history,
    // bookmarks and anything that copies the address) before anything else happens.
    const token = ctx.url.hash.length > 1 ? tokenFrom(ctx.url.hash.slice(1)) : "";
    if (window.location.hash) {
      window.history.replaceState(window.history.state, "", window.location.pathname + window.location.search);
    }
    return new JoinFlow(ctx, token).element;
  },
};

class JoinFlow {
  /** @param {PageContext} ctx @param {string} token */
  constructor(ctx, token) {
    this.ctx = ctx;
    this.csrf = "";
    // The visit session is not a login: it has an API client of its own, sending the visit
    // session's CSRF token and never acting on a signed-in user's session hooks.
    this.api = new Api({
      csrfToken: () => this.csrf,
      onSessionLost: () => {},
      onEnrolmentRequired: () => {},
      onActivity: () => {},
    });
    /** @type {JoinStatus | null} */
    this.status = null;
    /** @type {LocalMedia | null} */
    this.media = null;
    /** @type {Call | null} */
    this.call = null;
    /** @type {(() => void) | null} */
    this.teardown = null;
    /** @type {ReturnType<typeof waitingRoom> | null} */
    this.room = null;
    /** @type {HTMLElement | null} */
    this.questionnaires = null;
    this.inCall = false;
    this.shownBefore = false;
    this.summary = h("div", { class: "join__summary" });
    this.progress = h("nav", { class: "progress", "aria-label": "Steps to join" });
    this.body = h("div", { class: "join__body card" });
    this.signedInWarning = ctx.session.signedIn ? this.signedInNotice() : null;
    this.element = h(
      "div",
      { class: "join" },
      h(
        "header",
        { class: "join__head" },
        h("span", { class: "brand__mark", "aria-hidden": "true" }),
        h("div", {}, h("p", { class: "join__brand", text: "Liaison" }), h("h1", { class: "join__title", text: "Your video visit" })),
      ),
      this.signedInWarning,
      this.summary,
      this.progress,
      this.body,
      h("p", { class: "join__emergency", text: EMERGENCY }),
    );
    ctx.signal.addEventListener("abort", () => this.stop());
    this.begin(token);
  }

  /** @param {string} token */
  async begin(token) {
    this.loading("Opening your visit…");
    try {
      const body = token
        ? await this.api.post("/join/exchange", { token }, { signal: this.ctx.signal })
        : await this.api.get("/join/status", { signal: this.ctx.signal });
      this.accept(body);
      this.next();
    } catch (error) {
      if (this.ctx.signal.aborted) return;
      this.problem(error);
    }
  }

  /** @param {JoinStatus} body */
  accept(body) {
    this.status = body;
    this.csrf = body.csrf_token;
    const visit = body.visit;
    const who = visit.clinicians.length ? ` with ${visit.clinicians.join(" and ")}` : "";
    replaceChildren(
      this.summary,
      h("p", { class: "join__when" }, `Video visit${who}`, h("br"), `${dayOf(visit.starts_at)} at ${timeOfDay(visit.starts_at)} (${visit.duration_minutes} minutes)`),
    );
  }

  /** The steps this person takes, in order. @returns {Step[]} */
  get steps() {
    const server = /** @type {ServerStep[]} */ ([...(this.status?.steps_completed ?? []), ...(this.status?.steps_remaining ?? [])]);
    const order = /** @type {ServerStep[]} */ (["identity", "consent", "location"]).filter((s) => server.includes(s));
    return [...order, "devices", "waiting"];
  }

  next() {
    const status = /** @type {JoinStatus} */ (this.status);
    const closed = /** @type {Record<string, string>} */ (CLOSED_VISIT)[status.visit.status];
    if (closed) {
      this.problem({ code: closed, name: "ApiError", message: "" });
      return;
    }
    const step = status.next_step;
    if (step === "identity") this.identityStep();
    else if (step === "consent") this.consentStep();
    else if (step === "location") this.locationStep();
    else if (!this.media) this.devicesStep();
    else this.waitingStep();
  }

  /** @param {Step} current */
  showProgress(current) {
    const steps = this.steps;
    const at = steps.indexOf(current);
    this.progress.hidden = false;
    replaceChildren(
      this.progress,
      h("p", { class: "progress__count", text: `Step ${at + 1} of ${steps.length}: ${STEP_NAMES[current]}` }),
      h(
        "ol",
        { class: "progress__list" },
        steps.map((step, i) =>
          h(
            "li",
            {
              class: `progress__item${i < at ? " progress__item--done" : ""}${i === at ? " progress__item--current" : ""}`,
              "aria-current": i === at ? "step" : null,
            },
            h("span", { class: "progress__label", text: STEP_NAMES[step] }),
            i < at ? h("span", { class: "visually-hidden", text: " (done)" }) : null,
          ),
        ),
      ),
    );
  }

  /**
   * Put a step's content on screen and move focus to its heading (not on the first render,
   * where the app's own focus rule applies).
   * @param {Step | null} step  null hides the progress
   * @param {Node[]} content
   */
  show(step, ...content) {
    this.teardown?.();
    this.teardown = null;
    if (step) this.showProgress(step);
    else this.progress.hidden = true;
    replaceChildren(this.body, ...content);
    const heading = /** @type {HTMLElement | null} */ (this.body.querySelector(".step__title"));
    if (heading && this.shownBefore) heading.focus();
    this.shownBefore = true;
  }

  /** @param {string} text */
  loading(text) {
    replaceChildren(this.body, h("p", { class: "muted", role: "status", text }));
  }

  // --- steps (the forms are in visit/join-steps.js) -------------------------------------------

  identityStep() {
    identityStep(this);
  }

  consentStep() {
    consentStep(this);
  }

  locationStep() {
    locationStep(this);
  }

  devicesStep() {
    const check = deviceCheck({
      post: (offer) => this.api.post("/device-check/offer", offer, { signal: this.ctx.signal, quiet: true }),
      continueLabel: "Continue to the waiting room",
      signal: this.ctx.signal,
      onContinue: (media) => {
        this.media = media;
        this.waitingStep();
      },
    });
    this.show(
      "devices",
      h("div", { class: "step" },
        h("h2", { class: "step__title", tabindex: "-1", text: "Check your camera and sound" }),
        h("p", { text: "If your browser asks, allow it to use your camera and microphone. They're used only during your visit." }),
        check.element,
      ),
    );
    // Leaving this step any other way (an error, closing the page) must free the camera.
    this.teardown = () => {
      if (!this.media) check.media?.stop();
    };
  }

  waitingStep() {
    const status = /** @type {JoinStatus} */ (this.status);
    const media = /** @type {LocalMedia} */ (this.media);
    // Clinics (issue 6): the patient's optional PHQ-9 / GAD-7, made once for the visit: someone
    // let in and sent back to the waiting room finds the answers they had chosen (or sent).
    if (status.you.kind === "patient") {
      this.questionnaires ??= screeningForms({
        send: (body) => this.api.post("/clinics/waiting-room/screenings", body, { signal: this.ctx.signal }),
        announce: this.ctx.announce,
      }).element;
    }
    const room = waitingRoom({
      media,
      startsAt: status.visit.starts_at,
      clinicians: status.visit.clinicians,
      onLeave: () => this.call?.leave().catch(() => {}),
      questionnaires: this.questionnaires ?? undefined,
    });
    this.show("waiting", room.element);
    this.teardown = () => room.destroy();
    if (!this.call) {
      const call = new Call({ visitId: status.visit.id, media });
      this.call = call;
      call.socket.on(VISIT_NOTICE, (/** @type {{text: string}} */ notice) => this.room?.clinicianMessage(notice.text));
      call.on("state", (detail) => this.onCallState(detail));
      call.on("online", (online) => this.onOnline(online));
      call.start();
    }
    this.room = room;
  }

  /** @param {boolean} online */
  onOnline(online) {
    this.room?.setOnline(online);
  }

  /** @param {import('../rtc/call.js').CallEvents['state']} detail */
  onCallState(detail) {
    const call = /** @type {Call} */ (this.call);
    switch (detail.state) {
      case "waiting":
        if (!this.room || !this.body.contains(this.room.element)) this.waitingStep();
        this.room?.waiting(detail.since ?? new Date().toISOString(), Boolean(detail.returned));
        if (detail.returned) this.ctx.announce("You're back in the waiting room.");
        break;
      case "in_call": {
        if (this.inCall) break;
        this.inCall = true;
        this.room = null;
        const screen = callScreen({ call, media: /** @type {LocalMedia} */ (this.media), role: this.status?.you.kind === "guest" ? "guest" : "patient" });
        this.element.classList.add("join--call");
        this.show(null, h("div", { class: "step" }, h("h2", { class: "step__title visually-hidden", tabindex: "-1", text: "Your video visit" }), screen.element));
        this.teardown = () => {
          screen.destroy();
          this.inCall = false;
          this.element.classList.remove("join--call");
        };
        this.ctx.announce("You're in the call.");
        break;
      }
      case "ended":
        this.finish(
          detail.code === "cancelled" || detail.code === "visit_cancelled" ? "Your visit was cancelled" : "Your visit has ended",
          detail.code === "cancelled" || detail.code === "visit_cancelled"
            ? messageFor({ code: "visit_cancelled", name: "ApiError", message: "" })
            : "Thank you. You can close this page now. If you need anything after your visit, contact the clinic.",
        );
        break;
      case "removed":
        this.finish(
          "You weren't let into this visit",
          detail.reason === "link_revoked"
            ? messageFor({ code: "link_revoked", name: "ApiError", message: "" })
            : "The clinician couldn't let you into this visit. If you think this is a mistake, contact the clinic.",
        );
        break;
      case "replaced": {
        const again = h("button", { type: "button", class: "button button--primary", text: "Use this window instead" });
        again.addEventListener("click", () => {
          this.inCall = false;
          call.rejoin();
          this.waitingStep();
        });
        this.show(null, outcome("Your visit is open in another window", "It was opened in another tab, window or device, so this one has stopped.", again));
        break;
      }
      case "left": {
        const again = h("button", { type: "button", class: "button button--primary", text: "Join again" });
        again.addEventListener("click", () => {
          this.inCall = false;
          call.rejoin();
          this.waitingStep();
        });
        this.show(null, outcome("You left the visit", "If you left by mistake, join again: you'll wait in the waiting room until the clinician lets you back in.", again));
        break;
      }
      case "refused":
      case "signed_out":
        this.problem({ code: detail.code ?? "visit_session_ended", name: "ApiError", message: detail.message ?? "" });
        break;
      default:
        break;
    }
  }

  /** The visit is over for this page: release the camera and say so. @param {string} title @param {string} text */
  finish(title, text) {
    this.stop();
    this.show(null, outcome(title, text));
  }

  /** A refusal that ends the flow, with what to do next. @param {unknown} failure */
  problem(failure) {
    this.stop();
    const code = /** @type {{code?: string}} */ (failure)?.code ?? "";
    const action =
      code === "steps_incomplete" || code === "step_out_of_order" || code === "network_error"
        ? reloadButton()
        : null;
    this.show(null, outcome("We can't open your visit", messageFor(failure), action));
    this.element.dataset.problem = code;
  }

  stop() {
    this.teardown?.();
    this.teardown = null;
    this.call?.close();
    this.call = null;
    this.media?.stop();
    this.media = null;
    this.room = null;
  }

  signedInNotice() {
    const user = this.ctx.session.user;
    const signOut = h("button", { type: "button", class: "button button--secondary button--small", text: "Sign out of Liaison" });
    signOut.addEventListener("click", async () => {
      try {
        await this.ctx.signOut();
      } finally {
        this.ctx.navigate("/join", { replace: true });
      }
    });
    return h(
      "div",
      { class: "notice notice--warning", role: "status" },
      h("p", { text: `You're signed in to Liaison as ${user?.display_name ?? "a staff member"} in this browser, so the video visit would connect as you, not as the person this link is for. Sign out first.` }),
      signOut,
    );
  }
}

/** A closing screen: heading, sentence, optional button. @param {string} title @param {string} text @param {Node | null} [action] */
function outcome(title, text, action = null) {
  return h(
    "div",
    { class: "step outcome" },
    h("h2", { class: "step__title", tabindex: "-1", text: title }),
    h("p", { class: "outcome__text", text }),
    action ? h("div", { class: "form__actions" }, action) : null,
  );
}

function reloadButton() {
  const button = h("button", { type: "button", class: "button button--primary", text: "Reload the page" });
  button.addEventListener("click", () => window.location.reload());
  return button;
}

/** The fragment as sent (tokens are URL-safe); a mangled one is passed on for the server to refuse. @param {string} fragment */
function tokenFrom(fragment) {
  try {
    return decodeURIComponent(fragment);
  } catch {
    return fragment;
  }
}
