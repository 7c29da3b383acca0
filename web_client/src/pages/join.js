// Joining a video visit from a link, with no account: the token is read once from the link's
// fragment and taken out of the address bar at once, then exchanged (POST /join/exchange) for a
// visit-session cookie. Then the steps, in order, with a progress indicator: identity (date of
// birth, patients only), consent, location (patients only), the device check, and the waiting
// room; then the call. A reload resumes where the person left off (GET /join/status).
//
// Every refusal says what to do next (messages.js). The token is never sent anywhere but the
// body of the exchange, and never stored.

import { Api } from "../api.js";
import { h, replaceChildren } from "../dom.js";
import { field, messageSlot, submitButton } from "../forms.js";
import { messageFor } from "../messages.js";
import { Call } from "../rtc/call.js";
import { callScreen } from "../visit/call-screen.js";
import { deviceCheck } from "../visit/device-check.js";
import { dayOf, timeOfDay } from "../visit/format.js";
import { US_STATES } from "../visit/us-states.js";
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
    const token = ctx.url.hash.length > 1 ? decodeURIComponent(ctx.url.hash.slice(1)) : "";
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

  // --- steps -------------------------------------------------------------------------------

  identityStep() {
    const status = /** @type {JoinStatus} */ (this.status);
    const messages = messageSlot();
    const error = h("p", { id: "dob-error", class: "field__error", hidden: true });
    /** @param {string} name @param {string} label @param {number} size */
    const part = (name, label, size) => {
      const input = h("input", {
        id: `dob-${name}`,
        name,
        class: `input input--date input--w${size}`,
        inputmode: "numeric",
        maxlength: String(size),
        autocomplete: `bday-${name === "year" ? "year" : name === "month" ? "month" : "day"}`,
        "aria-describedby": "dob-hint dob-error",
      });
      return { input, element: h("div", { class: "date__part" }, h("label", { class: "field__label", for: input.id, text: label }), input) };
    };
    const month = part("month", "Month", 2);
    const day = part("day", "Day", 2);
    const year = part("year", "Year", 4);
    const parts = [month, day, year];
    const submit = submitButton("Continue", "Checking…");
    const form = h(
      "form",
      { class: "form", novalidate: true },
      h(
        "fieldset",
        { class: "fieldset", "aria-describedby": "dob-hint" },
        h("legend", { class: "fieldset__legend", text: "Date of birth" }),
        h("p", { id: "dob-hint", class: "field__hint", text: "For example, 4 12 1988 for April 12, 1988." }),
        error,
        h("div", { class: "date" }, parts.map((p) => p.element)),
      ),
      h("div", { class: "form__actions" }, submit.button),
    );
    /** @param {string | null} text */
    const setError = (text) => {
      error.textContent = text ?? "";
      error.hidden = !text;
      for (const p of parts) {
        if (text) p.input.setAttribute("aria-invalid", "true");
        else p.input.removeAttribute("aria-invalid");
      }
      form.classList.toggle("field--invalid", Boolean(text));
    };
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (submit.busy) return;
      messages.clear();
      const born = isoDate(year.input.value, month.input.value, day.input.value);
      if (!born) {
        setError("Enter your date of birth as month, day and year, for example 4 12 1988.");
        (parts.find((p) => !p.input.value.trim()) ?? month).input.focus();
        return;
      }
      setError(null);
      submit.setBusy(true);
      try {
        this.accept(await this.api.post("/join/verify", { date_of_birth: born }, { signal: this.ctx.signal }));
        this.next();
      } catch (failure) {
        if (this.ctx.signal.aborted) return;
        submit.setBusy(false);
        const code = /** @type {{code?: string}} */ (failure).code;
        if (code === "identity_mismatch" || code === "validation_failed") {
          setError(code === "validation_failed" ? "That isn't a real date of birth. Check the day, month and year." : messageFor(failure));
          month.input.focus(); // the field's description carries the error to screen readers
        } else if (code === "identity_throttled") {
          messages.show("error", messageFor(failure));
        } else {
          this.problem(failure);
        }
      }
    });
    const name = status.visit.patient_first_name;
    this.show(
      "identity",
      h("div", { class: "step" },
        h("h2", { class: "step__title", tabindex: "-1", text: "Confirm your date of birth" }),
        h("p", { text: `${name ? `Hello ${name}. ` : ""}To keep your visit private, enter your date of birth. We check it against your health record.` }),
        messages.element,
        form,
      ),
    );
  }

  async consentStep() {
    this.loading("Loading the consent…");
    let consent;
    try {
      consent = await this.api.get("/join/consent-text", { signal: this.ctx.signal });
    } catch (failure) {
      if (!this.ctx.signal.aborted) this.problem(failure);
      return;
    }
    const messages = messageSlot();
    const box = h("input", { type: "checkbox", id: "consent-agree", class: "checkbox__input", "aria-describedby": "consent-error" });
    const error = h("p", { id: "consent-error", class: "field__error", hidden: true });
    const submit = submitButton("Agree and continue", "Saving…");
    const form = h(
      "form",
      { class: "form", novalidate: true },
      error,
      h("div", { class: "checkbox" }, box, h("label", { for: "consent-agree", class: "checkbox__label", text: "I have read this and I agree to have my visit by video." })),
      h("div", { class: "form__actions" }, submit.button),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (submit.busy) return;
      if (!box.checked) {
        error.textContent = "Tick the box to agree, or call the clinic if you'd rather not have a video visit.";
        error.hidden = false;
        box.focus();
        return;
      }
      error.hidden = true;
      submit.setBusy(true);
      try {
        this.accept(await this.api.post("/join/consent", { consent_version: consent.version, accepted: true }, { signal: this.ctx.signal }));
        this.next();
      } catch (failure) {
        if (this.ctx.signal.aborted) return;
        submit.setBusy(false);
        const code = /** @type {{code?: string}} */ (failure).code;
        if (code === "consent_outdated") {
          this.consentStep();
        } else {
          messages.show("error", messageFor(failure));
        }
      }
    });
    const [title, ...rest] = String(consent.text).split("\n");
    this.show(
      "consent",
      h("div", { class: "step" },
        h("h2", { class: "step__title", tabindex: "-1", text: title.trim() || "Consent" }),
        h("div", { class: "consent", id: "consent-text" }, consentBody(rest.join("\n"))),
        h("p", { class: "consent__version muted", text: `Version ${consent.version}` }),
        messages.element,
        form,
        h("p", { class: "muted", text: "If you don't agree, you don't have to go on: call the clinic to arrange another kind of visit." }),
      ),
    );
  }

  locationStep() {
    const messages = messageSlot();
    const address = field({
      label: "Address (optional)",
      name: "address",
      autocomplete: "street-address",
      hint: "Where you are right now: street, town and state. If you'd rather not say, choose just the state below.",
    });
    const state = field({
      label: "State",
      name: "state",
      type: "select",
      value: "",
      options: [{ value: "", label: "Choose the state you are in" }, ...US_STATES.map(([code, name]) => ({ value: code, label: name }))],
      hint: "Needed if you don't give your address.",
    });
    const phone = field({
      label: "Phone number to call you back",
      name: "callback_phone",
      type: "tel",
      autocomplete: "tel",
      inputmode: "tel",
      hint: "If the video stops working, your clinician will call you on this number.",
    });
    /** @type {Record<string, import('../forms.js').Field>} */
    const byName = { address, state, callback_phone: phone };
    const submit = submitButton("Continue", "Saving…");
    const form = h("form", { class: "form", novalidate: true }, address.element, state.element, phone.element, h("div", { class: "form__actions" }, submit.button));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (submit.busy) return;
      messages.clear();
      const values = {
        address: address.input.value.trim(),
        state: state.input.value,
        callback_phone: phone.input.value.trim(),
      };
      const digits = values.callback_phone.replace(/\D/g, "").length;
      address.setError(values.address && values.address.length < 5 ? "Give a street address, or the town and state you are in." : null);
      state.setError(!values.address && !values.state ? "Choose the state you are in, or give your address above." : null);
      phone.setError(digits >= 10 && digits <= 15 ? null : "Enter a phone number with its area code, for example 415 555 0134.");
      const invalid = [address, state, phone].find((f) => f.input.getAttribute("aria-invalid") === "true");
      if (invalid) {
        invalid.input.focus();
        return;
      }
      submit.setBusy(true);
      try {
        const body = {
          callback_phone: values.callback_phone,
          ...(values.address ? { address: values.address } : {}),
          ...(values.state ? { state: values.state } : {}),
        };
        this.accept(await this.api.post("/join/location", body, { signal: this.ctx.signal }));
        this.next();
      } catch (failure) {
        if (this.ctx.signal.aborted) return;
        submit.setBusy(false);
        const apiError = /** @type {import('../api.js').ApiError} */ (failure);
        if (apiError.fields?.length) {
          for (const problem of apiError.fields) byName[problem.field]?.setError(tidy(problem.message));
          messages.show("error", "Some answers need a change.");
        } else if (apiError.code === "location_missing") {
          state.setError(messageFor(failure));
          state.input.focus();
        } else {
          messages.show("error", messageFor(failure));
        }
      }
    });
    this.show(
      "location",
      h("div", { class: "step" },
        h("h2", { class: "step__title", tabindex: "-1", text: "Where are you right now?" }),
        h("p", { text: "We ask at the start of every visit, because:" }),
        h(
          "ul",
          { class: "reasons" },
          h("li", { text: "if there's an emergency during your visit, your clinician needs to know where to send help;" }),
          h("li", { text: "clinicians may only treat you in the states where they are licensed." }),
        ),
        messages.element,
        form,
      ),
    );
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
    const room = waitingRoom({
      media,
      startsAt: status.visit.starts_at,
      clinicians: status.visit.clinicians,
      onLeave: () => this.call?.leave().catch(() => {}),
    });
    this.show("waiting", room.element);
    this.teardown = () => room.destroy();
    if (!this.call) {
      const call = new Call({ visitId: status.visit.id, media });
      this.call = call;
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

/**
 * The consent text as paragraphs and lists: lines starting "- " are list items (indented lines
 * continue them), blank lines separate paragraphs. Text only.
 * @param {string} text
 */
function consentBody(text) {
  /** @type {Node[]} */
  const out = [];
  /** @type {HTMLUListElement | null} */
  let list = null;
  /** @type {HTMLElement | null} */
  let current = null;
  for (const raw of text.split("\n")) {
    const line = raw.trimEnd();
    if (!line.trim()) {
      list = null;
      current = null;
    } else if (line.startsWith("- ")) {
      if (!list) {
        list = h("ul", { class: "consent__list" });
        out.push(list);
      }
      current = h("li", { text: line.slice(2) });
      list.append(current);
    } else if (current && raw.startsWith(" ")) {
      current.textContent += ` ${line.trim()}`;
    } else {
      list = null;
      current = h("p", { text: line.trim() });
      out.push(current);
    }
  }
  return out;
}

/** YYYY-MM-DD from the three parts, or null if they are not a real date. @param {string} y @param {string} m @param {string} d */
function isoDate(y, m, d) {
  const [year, month, day] = [y, m, d].map((v) => Number.parseInt(v.trim(), 10));
  if (!(year >= 1900 && year <= 9999 && month >= 1 && month <= 12 && day >= 1 && day <= 31)) return null;
  const date = new Date(Date.UTC(year, month - 1, day));
  if (date.getUTCMonth() !== month - 1) return null; // e.g. February 30
  return `${String(year).padStart(4, "0")}-${String(month).padStart(2, "0")}-${String(day).padStart(2, "0")}`;
}

/** pydantic's "Value error, a phone number has ..." as a sentence. @param {string} message */
function tidy(message) {
  const text = message.replace(/^Value error, /, "");
  return text.charAt(0).toUpperCase() + text.slice(1) + (text.endsWith(".") ? "" : ".");
}
