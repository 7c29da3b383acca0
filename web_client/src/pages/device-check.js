// "Check your camera and connection" for signed-in staff: the same check patients take before
// their waiting room (visit/device-check.js), run against the server's echo peer.

import { h } from "../dom.js";
import { deviceCheck } from "../visit/device-check.js";

/** @type {import('../app.js').Page} */
export const deviceCheckPage = {
  title: "Check your camera and connection",
  access: "user",
  layout: "frame",
  render(ctx) {
    const check = deviceCheck({
      post: (offer) => ctx.api.post("/device-check/offer", offer, { signal: ctx.signal }),
      continueLabel: "Done",
      signal: ctx.signal,
      onContinue: (media) => {
        media.stop();
        ctx.navigate("/home");
      },
    });
    ctx.signal.addEventListener("abort", () => check.media?.stop());
    return h(
      "div",
      { class: "page page--narrow" },
      h(
        "div",
        { class: "page__head" },
        h("h1", { text: "Check your camera and connection" }),
        h("p", { class: "page__lede", text: "Before your visits: see yourself, check your microphone, and test the connection to Liaison." }),
      ),
      h("div", { class: "card" }, check.element),
    );
  },
};
