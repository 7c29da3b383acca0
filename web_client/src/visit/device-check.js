// The device check before the waiting room: a camera preview, a microphone level, and a
// network check against the server's echo peer (rtc/echo-check.js) reported in plain words.
// Nothing here stops anyone from going on: without a camera the visit is sound only, and a
// network check that cannot run is skipped with a sentence saying why.

import { h } from "../dom.js";
import { messageFor } from "../messages.js";
import { EchoCheckError, runEchoCheck } from "../rtc/echo-check.js";
import { acquireCameraAndMic, DEVICE_ADVICE, LocalMedia, play, watchLevel } from "../rtc/media.js";
import { VERDICT_WORDS } from "../rtc/quality.js";

/**
 * @typedef {object} DeviceCheckOptions
 * @property {(offer: {sdp: string, type: "offer"}) => Promise<{sdp: string, type: "answer"}>} post
 *   sends the offer to POST /api/v1/device-check/offer
 * @property {(media: LocalMedia) => void} onContinue   the person is ready; the media goes on
 * @property {string} continueLabel
 * @property {AbortSignal} signal
 */

/** @param {DeviceCheckOptions} options */
export function deviceCheck({ post, onContinue, continueLabel, signal }) {
  /** @type {LocalMedia | null} */
  let media = null;
  let stopLevel = () => {};
  let networkRun = 0;
  /** @type {AbortController | null} */
  let networkAbort = null;

  const preview = h("video", { class: "devcheck__video tile--mirror", muted: true, playsinline: true, autoplay: true, "aria-label": "Your camera" });
  preview.muted = true;
  const previewNote = h("p", { class: "devcheck__overlay", text: "Starting your camera…" });
  const echoVideo = h("video", { class: "devcheck__video", muted: true, playsinline: true, autoplay: true, "aria-label": "Your video, back from Liaison through the network" });
  echoVideo.muted = true;
  const echoFigure = h(
    "figure",
    { class: "devcheck__figure", hidden: true },
    h("div", { class: "devcheck__frame" }, echoVideo),
    h("figcaption", { class: "devcheck__caption", text: "Back through the network" }),
  );

  const cameraStatus = h("p", { class: "check__text", text: "Asking your browser for the camera…" });
  const micStatus = h("p", { class: "check__text", text: "Asking your browser for the microphone…" });
  const level = h("meter", { class: "check__meter", min: "0", max: "1", low: "0.05", high: "0.6", optimum: "0.3", value: "0", "aria-label": "Microphone level" });
  level.hidden = true;
  const netStatus = h("p", { class: "check__text", text: "Waiting for the camera and microphone…" });
  const netDetail = h("p", { class: "check__detail muted" });
  const netBadge = badge("Waiting", "plain");
  const cameraBadge = badge("Checking", "plain");
  const micBadge = badge("Checking", "plain");

  const retryDevices = h("button", { type: "button", class: "button button--secondary", text: "Try camera and microphone again", hidden: true });
  const retryNetwork = h("button", { type: "button", class: "button button--secondary", text: "Check the connection again", hidden: true });
  const proceed = h("button", { type: "button", class: "button button--primary", text: continueLabel, "aria-disabled": "true" });

  async function startDevices() {
    retryDevices.hidden = true;
    stopLevel();
    if (media) {
      await media.retry();
    } else {
      media = new LocalMedia(await acquireCameraAndMic());
    }
    if (signal.aborted) return;
    showDevices();
    proceed.removeAttribute("aria-disabled");
    runNetwork();
  }

  function showDevices() {
    const m = /** @type {LocalMedia} */ (media);
    if (m.hasCamera) {
      play(preview, m.stream);
      previewNote.hidden = true;
      setBadge(cameraBadge, "Working", "ok");
      cameraStatus.textContent = "You should see yourself. If the picture is dark, face a window or a lamp.";
    } else {
      previewNote.hidden = false;
      previewNote.textContent = "No camera";
      setBadge(cameraBadge, "Not available", "off");
      cameraStatus.textContent = `Your camera isn't available. ${DEVICE_ADVICE[m.cameraProblem ?? "other"]} Or continue with sound only: your clinician will hear you but not see you.`;
      if (m.cameraProblem === "blocked" && m.microphoneProblem === "blocked") {
        // One sentence for both, not the same advice twice.
        cameraStatus.textContent = `Your browser is blocking the camera and the microphone. Select the camera or lock icon next to the web address, choose Allow for both, then select "Try camera and microphone again".`;
      }
    }
    if (m.microphone) {
      setBadge(micBadge, "Working", "ok");
      micStatus.textContent = "Say something: the bar should move when you speak.";
      level.hidden = false;
      stopLevel = watchLevel(m.microphone, (value) => {
        level.value = value;
      });
    } else {
      setBadge(micBadge, "Not available", "off");
      level.hidden = true;
      micStatus.textContent =
        m.microphoneProblem === "blocked" && !m.hasCamera && m.cameraProblem === "blocked"
          ? "Without it your clinician can't hear you, but you can still type in the chat."
          : `Your microphone isn't available. ${DEVICE_ADVICE[m.microphoneProblem ?? "other"]} Without it your clinician can't hear you, but you can still type in the chat.`;
    }
    retryDevices.hidden = m.hasCamera && m.hasMicrophone;
    proceed.textContent = m.hasCamera ? continueLabel : `${continueLabel} with sound only`;
  }

  async function runNetwork() {
    const m = /** @type {LocalMedia} */ (media);
    networkAbort?.abort();
    const abort = new AbortController();
    networkAbort = abort;
    const run = ++networkRun;
    signal.addEventListener("abort", () => abort.abort(), { once: true });
    retryNetwork.hidden = true;
    echoFigure.hidden = true;
    netDetail.textContent = "";
    setBadge(netBadge, "Checking", "plain");
    netStatus.textContent = "Checking your connection to Liaison… (a few seconds)";
    try {
      const result = await runEchoCheck({
        post,
        stream: m.stream,
        signal: abort.signal,
        onEcho: (stream) => {
          if (run !== networkRun) return;
          echoFigure.hidden = !m.hasCamera;
          play(echoVideo, stream);
        },
        onEchoEnded: () => {
          if (run !== networkRun) return;
          echoFigure.hidden = true;
          echoVideo.srcObject = null;
        },
      });
      if (abort.signal.aborted) result.stop();
      else abort.signal.addEventListener("abort", result.stop);
      if (run !== networkRun) return;
      setBadge(netBadge, { good: "Good", fair: "Fair", poor: "Poor" }[result.verdict], result.verdict === "good" ? "ok" : result.verdict === "fair" ? "attention" : "off");
      netStatus.textContent = VERDICT_WORDS[result.verdict];
      const rtt = result.rttMs === null ? "no replies" : `${Math.round(result.rttMs)} ms`;
      netDetail.textContent = `Round trip ${rtt}, ${Math.round(result.lossPct)}% of test messages lost${result.videoEchoed ? ", your video came back through the network" : ""}.`;
      retryNetwork.hidden = result.verdict === "good";
    } catch (error) {
      if (run !== networkRun || signal.aborted) return;
      const failure = /** @type {EchoCheckError} */ (error);
      retryNetwork.hidden = false;
      if (failure.reason === "refused") {
        const code = /** @type {{code?: string}} */ (failure.cause)?.code ?? "";
        if (["not_signed_in", "role_forbidden", "session_expired", "http_error"].includes(code)) {
          // The server runs the check only for signed-in users so far.
          setBadge(netBadge, "Skipped", "plain");
          netStatus.textContent =
            "The connection check isn't available for visit links on this Liaison server yet, so it was skipped. If the call has trouble, your clinician will call you on the number you gave.";
          retryNetwork.hidden = true;
        } else {
          setBadge(netBadge, "Not checked", "plain");
          netStatus.textContent = `The connection couldn't be checked. ${messageFor(failure.cause)}`;
        }
      } else if (failure.reason === "blocked") {
        setBadge(netBadge, "Blocked", "off");
        netStatus.textContent =
          "A test call couldn't get through. The network you're on (often a workplace, school or public Wi-Fi) may block video calls. Try another network, such as your home Wi-Fi or your phone's mobile data, then check again.";
      } else {
        setBadge(netBadge, "Not checked", "plain");
        netStatus.textContent = "The connection check didn't finish. Check again, or continue: your clinician will call you if the video doesn't work.";
      }
    }
  }

  retryDevices.addEventListener("click", () => startDevices());
  retryNetwork.addEventListener("click", () => runNetwork());
  proceed.addEventListener("click", () => {
    if (!media || proceed.getAttribute("aria-disabled") === "true") return;
    networkAbort?.abort();
    stopLevel();
    echoVideo.srcObject = null;
    preview.srcObject = null;
    onContinue(media);
  });
  signal.addEventListener("abort", () => {
    stopLevel();
    networkAbort?.abort();
  });

  startDevices();

  const element = h(
    "div",
    { class: "devcheck" },
    h(
      "div",
      { class: "devcheck__media" },
      h("figure", { class: "devcheck__figure" }, h("div", { class: "devcheck__frame" }, preview, previewNote), h("figcaption", { class: "devcheck__caption", text: "Your camera" })),
      echoFigure,
    ),
    h(
      "ul",
      { class: "checks" },
      check("Camera", cameraBadge, cameraStatus),
      check("Microphone", micBadge, micStatus, level),
      check("Connection", netBadge, netStatus, netDetail),
    ),
    h("div", { class: "form__actions" }, proceed, retryDevices, retryNetwork),
  );
  return {
    element,
    /** The media, if the person leaves this step some other way (stopped by the page). */
    get media() {
      return media;
    },
  };
}

/** @param {string} title @param {HTMLElement} state @param {...(Node | null)} body */
function check(title, state, ...body) {
  return h("li", { class: "check" }, h("div", { class: "check__head" }, h("h3", { class: "check__title", text: title }), state), ...body);
}

/** @param {string} text @param {"ok" | "off" | "plain" | "attention"} tone */
function badge(text, tone) {
  return h("span", { class: `badge badge--${tone}`, text });
}

/** @param {HTMLElement} el @param {string} text @param {"ok" | "off" | "plain" | "attention"} tone */
function setBadge(el, text, tone) {
  el.className = `badge badge--${tone}`;
  el.textContent = text;
}

