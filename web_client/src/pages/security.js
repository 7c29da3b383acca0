// Security settings: setting up the authenticator app (TOTP second factor). When the user's
// role requires a second factor and none is set up yet, this is the only page they can open,
// and the set-up starts by itself.

import { h, replaceChildren, trustedSvg } from "../dom.js";
import { field, messageSlot, submitButton } from "../forms.js";
import { messageFor } from "../messages.js";

/** @typedef {{secret: string, otpauth_uri: string, qr_svg: string}} Enrolment */

/** @type {import('../app.js').Page} */
export const securityPage = {
  title: "Security",
  access: "user",
  layout: "frame",
  render(ctx) {
    const required = ctx.session.enrolmentRequired;
    const messages = messageSlot();
    if (ctx.flash) messages.show(ctx.flash.kind, ctx.flash.text);
    const body = h("div", { class: "stack" });

    async function begin() {
      replaceChildren(body, h("p", { class: "muted", role: "status", text: "Preparing your QR code…" }));
      messages.clear();
      try {
        /** @type {Enrolment} */
        const enrolment = await ctx.api.post("/auth/totp/enrol", undefined, { signal: ctx.signal });
        showEnrolment(enrolment);
      } catch (error) {
        if (ctx.signal.aborted) return;
        messages.show("error", messageFor(error));
        replaceChildren(body, startButton("Try again"));
      }
    }

    /** @param {string} label */
    function startButton(label) {
      const button = h("button", { type: "button", class: "button button--primary", text: label });
      button.addEventListener("click", begin);
      return button;
    }

    /** @param {Enrolment} enrolment */
    function showEnrolment(enrolment) {
      const qr = trustedSvg(enrolment.qr_svg);
      qr.setAttribute("role", "img");
      qr.setAttribute("aria-label", "QR code to add Liaison to your authenticator app");
      qr.classList.add("qr__image");
      const grouped = enrolment.secret.replace(/(.{4})(?=.)/g, "$1 ");
      const copy = h("button", { type: "button", class: "button button--secondary button--small", text: "Copy key" });
      const copied = h("span", { class: "muted", role: "status" });
      copy.addEventListener("click", async () => {
        try {
          await navigator.clipboard.writeText(enrolment.secret);
          copied.textContent = "Copied";
        } catch {
          copied.textContent = "Copying isn't allowed here: select the key and copy it yourself.";
        }
      });
      const code = field({
        label: "6-digit code from the app",
        name: "code",
        autocomplete: "one-time-code",
        inputmode: "numeric",
        attrs: { class: "input input--code", spellcheck: "false", maxlength: "10" },
      });
      const submit = submitButton("Confirm and finish", "Checking…");
      const form = h("form", { class: "form", novalidate: true }, code.element, h("div", { class: "form__actions" }, submit.button));
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        if (submit.busy) return;
        const value = code.input.value.replace(/\s+/g, "");
        if (!/^\d{6}$/.test(value)) {
          code.setError("Enter the 6 digits your authenticator app shows.");
          code.input.focus();
          return;
        }
        code.setError(null);
        messages.clear();
        submit.setBusy(true);
        try {
          const session = await ctx.api.post("/auth/totp/confirm", { code: value }, { signal: ctx.signal });
          ctx.signedIn(session, {
            kind: "success",
            text: "Your authenticator app is set up. Liaison will ask for a code each time you sign in.",
          });
        } catch (error) {
          if (ctx.signal.aborted) return;
          submit.setBusy(false);
          const apiError = /** @type {import('../api.js').ApiError} */ (error);
          if (apiError.code === "invalid_totp") {
            code.input.value = "";
            code.setError(messageFor(error));
            code.input.focus();
            ctx.announce(messageFor(error));
          } else if (apiError.code === "totp_not_started") {
            messages.show("error", messageFor(error), startButton("Start again"));
          } else {
            messages.show("error", messageFor(error));
          }
        }
      });

      replaceChildren(
        body,
        h(
          "ol",
          { class: "steps" },
          h(
            "li",
            { class: "steps__item" },
            h("h2", { class: "steps__title", text: "Get an authenticator app" }),
            h("p", {
              text: "On your phone, install an authenticator app if you don't have one yet, for example FreeOTP, Aegis, Google Authenticator or Microsoft Authenticator.",
            }),
          ),
          h(
            "li",
            { class: "steps__item" },
            h("h2", { class: "steps__title", text: "Add Liaison to the app" }),
            h("p", { text: "In the app, choose to add an account and scan this QR code." }),
            h("div", { class: "qr" }, qr),
            h(
              "div",
              { class: "secret" },
              h("p", { class: "secret__label", id: "secret-label", text: "Can't scan it? Enter this key instead:" }),
              h("p", { class: "secret__row" },
                h("code", { class: "totp-secret", text: grouped }),
                copy,
              ),
              copied,
            ),
          ),
          h(
            "li",
            { class: "steps__item" },
            h("h2", { class: "steps__title", text: "Enter the code the app shows" }),
            h("p", { text: "The app now shows a 6-digit code for Liaison that changes every 30 seconds." }),
            form,
          ),
        ),
      );
    }

    if (required) {
      ctx.setTitle("Set up your second factor");
      begin();
    } else {
      replaceChildren(
        body,
        h("h2", { text: "Second factor" }),
        h("p", {
          text: "A second factor protects your account even if someone learns your password: each time you sign in, you also enter a code from an app on your phone.",
        }),
        startButton("Set up an authenticator app"),
      );
    }

    return h(
      "div",
      { class: "page page--narrow" },
      h(
        "div",
        { class: "page__head" },
        h("h1", { text: required ? "Set up your second factor" : "Security" }),
        required
          ? h("p", {
              class: "page__lede",
              text: "Your clinic asks everyone in your role to confirm each sign-in with a code from an authenticator app. Setting it up takes about a minute; you can use Liaison as soon as it's done.",
            })
          : null,
      ),
      messages.element,
      h("div", { class: "card" }, body),
    );
  },
};
