// The call screen, the same for patients, guests and clinicians: remote videos in a grid (up
// to three: a mesh of four), the local video (muted, mirrored) in a corner, the controls (mute,
// camera off, screen share, leave or end the visit) and the in-call chat. Everything people
// typed (names, messages) goes in as text, never as markup.

import { h, replaceChildren } from "../dom.js";
import { messageSlot } from "../forms.js";
import { messageFor } from "../messages.js";
import { CHAT_MAX_CHARS } from "../rtc/events.js";
import { DEVICE_ADVICE, play } from "../rtc/media.js";
import { PEER_KINDS, timeOfDay } from "./format.js";

/** @typedef {import('../rtc/call.js').Call} Call */
/** @typedef {import('../rtc/call.js').Remote} Remote */
/** @typedef {import('../rtc/call.js').ChatLine} ChatLine */
/** @typedef {import('../rtc/media.js').LocalMedia} LocalMedia */

/**
 * @typedef {object} CallScreenOptions
 * @property {Call} call
 * @property {LocalMedia} media
 * @property {"clinician" | "patient" | "guest"} role
 * @property {() => void} [onLeave]   after a clinician leaves the call (the visit goes on)
 * @property {{label: string, question: string, confirm: string, empty: string, run: () => Promise<unknown>}} [hangUp]
 *   a two-party call (a curbside consult): its end button runs `run` instead of visit:end,
 *   with these words, and there is no separate "Leave"
 */

/**
 * @param {CallScreenOptions} options
 * @returns {{element: HTMLElement, destroy: () => void}}
 */
export function callScreen({ call, media, role, onLeave, hangUp }) {
  const clinician = role === "clinician";
  const cleanups = /** @type {(() => void)[]} */ ([]);
  const status = h("p", { class: "call__status", role: "status" });
  const notices = messageSlot("status");

  // --- videos ------------------------------------------------------------------------------

  const grid = h("ul", { class: "call__grid", "aria-label": "People in the call" });
  const empty = h("p", {
    class: "call__empty",
    text: hangUp
      ? hangUp.empty
      : clinician
      ? "Nobody else is in the call yet. Let people in from the waiting room."
      : "Connecting you to the others in the visit…",
  });
  const selfVideo = h("video", {
    class: "tile__video",
    muted: true,
    playsinline: true,
    autoplay: true,
    "aria-label": "Your video",
  });
  selfVideo.muted = true; // the attribute alone does not mute in every browser
  const selfOverlay = h("p", { class: "tile__overlay", hidden: true });
  // The local video is the list's last item: a corner overlay while there is one other
  // person (or none), a tile like the others from two on (styles.css).
  const selfTile = h(
    "li",
    { class: "tile tile--self" },
    selfVideo,
    selfOverlay,
    h("p", { class: "tile__name", text: "You" }),
  );
  grid.append(selfTile);
  const stage = h("div", { class: "call__stage" }, grid, empty);

  /** @type {Map<Remote, {li: HTMLLIElement, video: HTMLVideoElement, name: HTMLElement, state: HTMLElement, overlay: HTMLElement, actions: HTMLElement, sound: HTMLButtonElement, resume: HTMLButtonElement, back: HTMLButtonElement | null, backWho: HTMLElement, watched: WeakSet<MediaStreamTrack>}>} */
  const tiles = new Map();

  /** @param {Remote} remote */
  function makeTile(remote) {
    const video = h("video", { class: "tile__video", playsinline: true, autoplay: true });
    const name = h("p", { class: "tile__name" });
    const state = h("p", { class: "tile__state" });
    const overlay = h("p", { class: "tile__overlay", hidden: true });
    const sound = h("button", { type: "button", class: "button button--small button--onvideo", text: "Turn sound on", hidden: true });
    sound.addEventListener("click", async () => {
      video.muted = false;
      sound.hidden = await play(video, /** @type {MediaStream | null} */ (video.srcObject));
    });
    const resume = h("button", { type: "button", class: "button button--small button--onvideo", text: "Try video again", hidden: true });
    resume.addEventListener("click", () => call.resumeVideo(remote));
    let back = null;
    const backWho = h("span", { class: "visually-hidden" });
    if (clinician) {
      back = h("button", { type: "button", class: "button button--small button--onvideo" }, "Send to waiting room", backWho);
      back.addEventListener("click", async () => {
        if (!remote.participantId) return;
        try {
          await call.sendBack(remote.participantId);
          notices.show("info", `${remote.name} is back in the waiting room. Let them in again when you're ready.`);
        } catch (error) {
          notices.show("error", messageFor(error));
        }
      });
    }
    const actions = h("div", { class: "tile__actions" }, sound, resume, back);
    const li = h("li", { class: "tile tile--remote" }, video, overlay, h("div", { class: "tile__bar" }, name, state), actions);
    const tile = { li, video, name, state, overlay, actions, sound, resume, back, backWho, watched: new WeakSet() };
    tiles.set(remote, tile);
    return tile;
  }

  /** @param {Remote} remote */
  function updateTile(remote) {
    const tile = tiles.get(remote) ?? makeTile(remote);
    const name = remote.name || "Someone joining";
    // Clinicians see who is the patient and who is a guest; everyone else sees names.
    tile.name.textContent = clinician && remote.kind && remote.kind !== "clinician" ? `${name} (${PEER_KINDS[remote.kind].toLowerCase()})` : name;
    tile.video.setAttribute("aria-label", `Video of ${name}`);
    tile.state.textContent = connectionWords(remote);
    const stream = remote.link?.remoteStream ?? null;
    if (stream && tile.video.srcObject !== stream) {
      play(tile.video, stream).then((withSound) => {
        tile.sound.hidden = withSound;
      });
    }
    const videoTrack = stream?.getVideoTracks()[0];
    if (videoTrack && !tile.watched.has(videoTrack)) {
      tile.watched.add(videoTrack);
      videoTrack.addEventListener("mute", () => updateTile(remote));
      videoTrack.addEventListener("unmute", () => updateTile(remote));
    }
    let overlay = "";
    if (remote.videoPaused) overlay = "Video paused: the connection is weak. Sound continues.";
    else if (remote.connection !== "connected") overlay = "";
    else if (!videoTrack || videoTrack.muted) overlay = `No video from ${name}: sound only.`;
    tile.overlay.textContent = overlay;
    tile.overlay.hidden = !overlay;
    tile.resume.hidden = !remote.videoPaused;
    if (tile.back) tile.back.hidden = !(remote.kind === "patient" || remote.kind === "guest");
    tile.backWho.textContent = ` (${name})`;
  }

  /** @param {Remote[]} remotes */
  function renderRemotes(remotes) {
    for (const [remote, tile] of tiles) {
      if (!remotes.includes(remote)) {
        tile.video.srcObject = null;
        tile.li.remove();
        tiles.delete(remote);
      }
    }
    for (const remote of remotes) {
      updateTile(remote);
      const tile = /** @type {{li: HTMLLIElement}} */ (tiles.get(remote));
      if (tile.li.parentNode !== grid) grid.insertBefore(tile.li, selfTile);
    }
    grid.dataset.count = String(remotes.length);
    empty.hidden = remotes.length > 0;
    renderStatus();
  }

  /** @param {Remote} remote */
  function connectionWords(remote) {
    switch (remote.connection) {
      case "new":
      case "connecting":
        return "Connecting…";
      case "reconnecting":
        return "Reconnecting…";
      case "disconnected":
        return "Connection interrupted, trying again…";
      case "failed":
        return "Connection lost, trying again…";
      case "closed":
        return "Left";
      default:
        return remote.quality === "poor" ? "Weak connection" : "";
    }
  }

  function renderStatus() {
    if (!call.online) {
      status.textContent = "Reconnecting to Liaison… The call continues as soon as the connection is back.";
      status.className = "call__status call__status--warning";
      return;
    }
    status.className = "call__status";
    const names = [...tiles.keys()].filter((r) => r.connection === "connected").map((r) => r.name || "someone");
    const list = names.join(", ");
    status.textContent = names.length
      ? `In the call with ${list}${list.endsWith(".") ? "" : "."}`
      : clinician
        ? "You're in the visit room."
        : "Joining the call…";
  }

  // --- local video and controls ------------------------------------------------------------

  function renderSelf() {
    const screen = media.screen;
    play(selfVideo, screen ? new MediaStream([screen]) : media.hasCamera ? media.stream : null);
    selfTile.classList.toggle("tile--mirror", !screen);
    let overlay = "";
    if (!screen && !media.hasCamera) overlay = "No camera";
    else if (!screen && media.cameraOff) overlay = "Camera off";
    selfOverlay.textContent = overlay;
    selfOverlay.hidden = !overlay;
    mute.setAttribute("aria-pressed", String(media.muted));
    mute.hidden = !media.hasMicrophone;
    cameraOff.setAttribute("aria-pressed", String(media.cameraOff));
    cameraOff.hidden = !media.hasCamera;
    retry.hidden = media.hasCamera && media.hasMicrophone;
    share.setAttribute("aria-pressed", String(media.sharing));
    share.textContent = media.sharing ? "Stop sharing" : "Share screen";
  }

  function showDeviceProblems() {
    const camera = media.hasCamera ? null : media.cameraProblem;
    const microphone = media.hasMicrophone ? null : media.microphoneProblem;
    let text = "";
    if (camera && microphone) {
      text = "Your camera and microphone aren't available, so the others can't see or hear you. You can still see and hear them, and type in the chat.";
    } else if (camera) {
      text = "Your camera isn't available, so the call carries on with sound only: the others hear you but can't see you.";
    } else if (microphone) {
      text = "Your microphone isn't available, so the others can't hear you. You can type in the chat.";
    }
    if (!text) return;
    const advice = DEVICE_ADVICE[camera ?? microphone ?? "other"];
    notices.show("warning", text, h("p", { text: advice }));
  }

  const mute = h("button", { type: "button", class: "control", "aria-pressed": "false", text: "Mute" });
  mute.addEventListener("click", () => {
    media.setMuted(!media.muted);
    renderSelf();
  });
  const cameraOff = h("button", { type: "button", class: "control", "aria-pressed": "false", text: "Camera off" });
  cameraOff.addEventListener("click", () => {
    media.setCameraOff(!media.cameraOff);
    renderSelf();
  });
  const retry = h("button", { type: "button", class: "control", text: "Try camera and microphone again" });
  retry.addEventListener("click", async () => {
    await media.retry();
    renderSelf();
    notices.clear();
    showDeviceProblems();
  });
  const share = h("button", { type: "button", class: "control", "aria-pressed": "false", text: "Share screen" });
  share.hidden = !navigator.mediaDevices?.getDisplayMedia;
  share.addEventListener("click", async () => {
    try {
      if (media.sharing) media.stopScreenShare();
      else await media.startScreenShare();
    } catch {
      notices.show("warning", "Your screen couldn't be shared. Your browser may not allow it here.");
    }
    renderSelf();
  });
  cleanups.push(media.onTrackChange(() => renderSelf()));

  const leaveButton = h("button", { type: "button", class: clinician ? "control" : "control control--danger", text: clinician ? "Leave" : "Leave visit" });
  leaveButton.addEventListener("click", async () => {
    try {
      await call.leave();
    } catch {
      // Left locally either way: the server lets go of the seat when the socket closes.
    }
    onLeave?.();
  });
  leaveButton.hidden = Boolean(hangUp);
  const endButton = clinician ? h("button", { type: "button", class: "control control--danger", text: hangUp?.label ?? "End visit" }) : null;
  const confirmEnd = h("div", { class: "call__confirm", hidden: true });
  if (endButton) {
    const yes = h("button", { type: "button", class: "button button--danger", text: hangUp?.confirm ?? "End visit for everyone" });
    const no = h("button", { type: "button", class: "button button--secondary", text: "Keep going" });
    replaceChildren(confirmEnd, h("p", { text: hangUp?.question ?? "End the visit for everyone? Everyone leaves the call and the visit is marked completed." }), h("div", { class: "form__actions" }, yes, no));
    endButton.addEventListener("click", () => {
      confirmEnd.hidden = false;
      yes.focus();
    });
    no.addEventListener("click", () => {
      confirmEnd.hidden = true;
      endButton.focus();
    });
    yes.addEventListener("click", async () => {
      if (yes.getAttribute("aria-disabled") === "true") return;
      yes.setAttribute("aria-disabled", "true");
      try {
        await (hangUp ? hangUp.run() : call.end());
      } catch (error) {
        confirmEnd.hidden = true;
        notices.show("error", messageFor(error));
      } finally {
        yes.removeAttribute("aria-disabled");
      }
    });
  }
  const controls = h(
    "div",
    { class: "call__controls", role: "group", "aria-label": "Call controls" },
    mute,
    cameraOff,
    retry,
    share,
    leaveButton,
    endButton,
  );

  // --- chat --------------------------------------------------------------------------------

  const log = h("ol", { class: "chat__log", role: "log", "aria-live": "polite", "aria-labelledby": "chat-heading" });
  const chatEmpty = h("p", { class: "chat__empty muted", text: "Messages you send here are seen by everyone in the call, and are not kept after the visit." });
  const input = h("input", {
    id: "chat-input",
    class: "input",
    name: "message",
    autocomplete: "off",
    maxlength: String(CHAT_MAX_CHARS),
  });
  const chatError = h("p", { class: "field__error", role: "alert" });
  const send = h("button", { type: "submit", class: "button button--primary", text: "Send" });
  const form = h(
    "form",
    { class: "chat__form", novalidate: true },
    h("label", { class: "visually-hidden", for: "chat-input", text: "Message" }),
    input,
    send,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    chatError.textContent = "";
    send.setAttribute("aria-disabled", "true");
    try {
      await call.sendChat(text);
      input.value = "";
    } catch (error) {
      chatError.textContent = `Not sent. ${messageFor(error)}`;
    } finally {
      send.removeAttribute("aria-disabled");
      input.focus();
    }
  });
  /** @param {ChatLine} line */
  function addChat(line) {
    chatEmpty.hidden = true;
    log.append(
      h(
        "li",
        { class: `chat__line${line.mine ? " chat__line--mine" : ""}` },
        h(
          "p",
          { class: "chat__meta" },
          h("span", { class: "chat__name", text: line.mine ? "You" : line.name }),
          " ",
          h("time", { datetime: line.at, text: timeOfDay(line.at) }),
        ),
        h("p", { class: "chat__text", text: line.text }),
      ),
    );
    log.scrollTop = log.scrollHeight;
  }
  const chat = h(
    "section",
    { class: "chat", "aria-labelledby": "chat-heading" },
    h("h2", { id: "chat-heading", class: "chat__title", text: "Chat" }),
    chatEmpty,
    log,
    chatError,
    form,
  );

  // --- wiring ------------------------------------------------------------------------------

  for (const line of call.chatLines) addChat(line);
  /** @type {ChildNode | null} a notice true only until the connection is back */
  let offlineNotice = null;
  cleanups.push(
    call.on("remotes", renderRemotes),
    call.on("chat", addChat),
    call.on("online", (online) => {
      if (online && offlineNotice?.parentNode === notices.element) notices.clear();
      if (online) offlineNotice = null;
      renderStatus();
    }),
    call.on("notice", (n) => {
      notices.show(n.kind, n.text);
      offlineNotice = n.whileOffline ? notices.element.firstChild : null;
    }),
  );
  renderSelf();
  renderRemotes([...call.remotes.values()]);
  showDeviceProblems();

  const element = h(
    "section",
    { class: "call", "aria-label": "Video call" },
    h("div", { class: "call__main" }, status, notices.element, stage, controls, confirmEnd),
    chat,
  );
  return {
    element,
    destroy() {
      for (const cleanup of cleanups) cleanup();
      for (const tile of tiles.values()) tile.video.srcObject = null;
      selfVideo.srcObject = null;
    },
  };
}
