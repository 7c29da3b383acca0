// The curbside call: the video-visit call (rtc/call.js, visit/call-screen.js) in the room of the
// visit the accepted request carries. Both clinicians join it with no further step (a room with
// two clinicians is driven by the curbside service, not by admitting anyone). Hanging up is
// curbside:end, which ends the call for both and moves the consult on to documenting.

import { h, replaceChildren } from "../dom.js";
import { messageFor } from "../messages.js";
import { Call } from "../rtc/call.js";
import { acquireCameraAndMic, LocalMedia } from "../rtc/media.js";
import { callScreen } from "../visit/call-screen.js";

/**
 * @param {object} o
 * @param {number} o.requestId
 * @param {number} o.visitId
 * @param {string} o.otherName    who is at the other end, for the words on screen
 * @param {import('./socket.js').CurbsideSocket} o.socket
 * @param {AbortSignal} o.signal
 * @param {() => void} o.onConnected  the other side's media is connected
 * @param {(code: string) => void} o.onEnded   the call's room closed (hung up, or cancelled)
 */
export function callPanel(o) {
  const element = h("div", { class: "curbside__call" }, h("div", { class: "card" }, h("p", { class: "muted", role: "status", text: "Starting your camera and microphone…" })));
  /** @type {LocalMedia | null} */
  let media = null;
  /** @type {Call | null} */
  let call = null;
  /** @type {ReturnType<typeof callScreen> | null} */
  let screen = null;
  let closed = false;
  let connected = false;

  function destroy() {
    if (closed) return;
    closed = true;
    screen?.destroy();
    call?.close({ leave: true });
    media?.stop();
  }
  o.signal.addEventListener("abort", destroy);

  acquireCameraAndMic().then((acquired) => {
    if (closed || o.signal.aborted) {
      acquired.stream.getTracks().forEach((t) => t.stop());
      return;
    }
    media = new LocalMedia(acquired);
    call = new Call({ visitId: o.visitId, media });
    const current = call;
    screen = callScreen({
      call: current,
      media,
      role: "clinician",
      hangUp: {
        label: "Hang up",
        question: `Hang up? The call ends for you and ${o.otherName}.`,
        confirm: "Hang up for both",
        empty: `Connecting you to ${o.otherName}…`,
        run: () => o.socket.end(o.requestId),
      },
    });
    replaceChildren(element, screen.element);
    current.on("remotes", (remotes) => {
      if (!connected && remotes.some((r) => r.connection === "connected")) {
        connected = true;
        o.onConnected();
      }
    });
    current.on("state", (detail) => {
      if (detail.state === "ended") {
        const code = detail.code ?? "completed";
        destroy();
        o.onEnded(code);
      } else if (detail.state === "refused" || detail.state === "signed_out") {
        destroy();
        replaceChildren(element, h("div", { class: "notice notice--error" }, h("p", { text: messageFor({ code: detail.code ?? "", name: "SignalError", message: detail.message ?? "The call could not be joined." }) })));
      } else if (detail.state === "replaced") {
        const again = h("button", { type: "button", class: "button button--primary", text: "Use this window instead" });
        again.addEventListener("click", () => {
          if (screen) replaceChildren(element, screen.element);
          current.rejoin();
        });
        replaceChildren(element, h("div", { class: "card stack" }, h("h2", { text: "This call is open in another window" }), h("p", { text: "You opened it in another tab, window or device, so this one has stopped." }), again));
      }
    });
    current.start();
  });

  return { element, destroy };
}
