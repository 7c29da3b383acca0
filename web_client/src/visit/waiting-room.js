// The patient's (or guest's) waiting room: a plain-language status, how long they have been
// waiting, what to do if it takes long, and their own camera, until a clinician lets them in.
// A patient may also fill in the PHQ-9 and GAD-7 here (clinics/screening-form.js, made by the
// page once for the visit), and a clinician's notice ("running about 10 minutes late",
// visit:notice) shows at the top.

import { h } from "../dom.js";
import { play } from "../rtc/media.js";
import { timeOfDay, waitedFor } from "./format.js";

/** @typedef {import('../rtc/media.js').LocalMedia} LocalMedia */

// How long past the visit's start before the page suggests calling the clinic.
const LATE_AFTER_MIN = 15;

/**
 * @param {object} options
 * @param {LocalMedia} options.media
 * @param {string} options.startsAt      the visit's scheduled start (ISO)
 * @param {string[]} options.clinicians  their names
 * @param {() => void} options.onLeave
 * @param {HTMLElement} [options.questionnaires]  given for patients (clinics/screening-form.js)
 */
export function waitingRoom({ media, startsAt, clinicians, onLeave, questionnaires }) {
  const heading = h("h2", { class: "step__title", tabindex: "-1", text: "You're in the waiting room" });
  const status = h("p", { class: "waiting__status", role: "status" });
  const since = h("p", { class: "waiting__since" });
  const late = h("div", { class: "notice notice--warning", hidden: true });
  // A clinician's notice (visit:notice), such as "running about 10 minutes late".
  const clinicianNote = h("div", { class: "message-slot waiting__notice", role: "status" });
  const preview = h("video", { class: "tile__video", muted: true, playsinline: true, autoplay: true, "aria-label": "Your camera" });
  preview.muted = true;
  const who = clinicians.length ? clinicians.join(" and ") : "your clinician";
  /** @type {string | null} */
  let waitingSince = null;
  let online = true;
  let returned = false;

  function render() {
    if (!online) {
      status.textContent = "Reconnecting to Liaison… Keep this page open: you keep your place in the waiting room.";
    } else if (returned) {
      status.textContent = "Your clinician has moved you back to the waiting room for a moment. Stay on this page: you'll rejoin the call when they let you in again.";
    } else {
      status.textContent = "Your clinician knows you are here and will let you in soon.";
    }
    since.textContent = waitingSince
      ? `Waiting since ${timeOfDay(waitingSince)} (${waitedFor(waitingSince)}).`
      : "Joining the waiting room…";
    const lateBy = (Date.now() - new Date(startsAt).getTime()) / 60_000;
    late.hidden = lateBy < LATE_AFTER_MIN;
    late.textContent = "";
    late.append(
      h("p", { text: "It's taking longer than planned. Please stay on this page. If nobody has let you in within a few more minutes, call the clinic on the phone number in the message with your link." }),
    );
  }
  const timer = window.setInterval(render, 30_000);

  const leave = h("button", { type: "button", class: "button button--secondary", text: "Leave the waiting room" });
  leave.addEventListener("click", onLeave);

  play(preview, media.hasCamera ? media.stream : null);
  render();

  const element = h(
    "div",
    { class: "step waiting" },
    heading,
    status,
    clinicianNote,
    h(
      "div",
      { class: "waiting__layout" },
      h(
        "div",
        { class: "waiting__text" },
        since,
        h("p", { text: `Your visit with ${who} is at ${timeOfDay(startsAt)}.` }),
        late,
        h("h3", { class: "waiting__subtitle", text: "While you wait" }),
        h(
          "ul",
          { class: "waiting__tips" },
          h("li", { text: "Keep this page open. The call starts by itself when you're let in." }),
          h("li", { text: "Find a quiet, private place where nobody else can hear." }),
          h("li", { text: `If nobody has let you in ${LATE_AFTER_MIN} minutes after your visit's time, call the clinic on the number in the message with your link.` }),
        ),
      ),
      h(
        "figure",
        { class: "waiting__self" },
        h("div", { class: "tile tile--mirror" }, preview, media.hasCamera ? null : h("p", { class: "tile__overlay", text: "No camera: sound only" })),
        h("figcaption", { class: "devcheck__caption", text: media.hasCamera ? "How you'll appear" : "Your clinician will hear you but not see you." }),
      ),
    ),
    questionnaires,
    h("div", { class: "form__actions" }, leave),
  );

  return {
    element,
    heading,
    /** @param {string} at @param {boolean} wasReturned */
    waiting(at, wasReturned) {
      waitingSince = at;
      returned = wasReturned;
      render();
    },
    /** @param {boolean} isOnline */
    setOnline(isOnline) {
      online = isOnline;
      render();
    },
    /** @param {string} text */
    clinicianMessage(text) {
      clinicianNote.textContent = "";
      clinicianNote.append(h("div", { class: "notice notice--warning" }, h("p", { class: "waiting__notice-text", text })));
    },
    destroy() {
      window.clearInterval(timer);
      preview.srcObject = null;
    },
  };
}
