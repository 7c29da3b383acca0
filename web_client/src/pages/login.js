// Sign-in: username and password, then (when the account has one) the 6-digit code from the
// authenticator app. The password is kept in this page's memory only until the code is sent.

import { h, replaceChildren } from "../dom.js";
import { field, messageSlot, submitButton } from "../forms.js";
import { duration, messageFor } from "../messages.js";

/** @type {import('../app.js').Page} */
export const loginPage = {
  title: "Sign in",
  access: "guest",
  layout: "bare",
  render(ctx) {
    const messages = messageSlot();
    if (ctx.flash) messages.show(ctx.flash.kind, ctx.flash.text);
    const step = h("div", { class: "auth__step" });
    /** @type {{username: string, password: string} | null} */
    let credentials = null;
    let throttledUntil = 0;

    /**
     * Send the credentials (and the code, on the second step); on success the app moves on.
     * @param {string | undefined} totpCode
     * @returns {Promise<import('../api.js').ApiError | null>} the refusal, if any
     */
    async function attempt(totpCode) {
      try {
        const body = await ctx.api.post(
          "/auth/login",
          { ...credentials, ...(totpCode ? { totp_code: totpCode } : {}) },
          { signal: ctx.signal },
        );
        credentials = null;
        ctx.signedIn(body);
        return null;
      } catch (error) {
        if (ctx.signal.aborted) return null;
        const apiError = /** @type {import('../api.js').ApiError} */ (error);
        if (apiError.code === "login_throttled") {
          throttledUntil = Date.now() + (apiError.retryAfter ?? 60) * 1000;
        }
        return apiError;
      }
    }

    function throttled() {
      const left = (throttledUntil - Date.now()) / 1000;
      if (left <= 0) return false;
      messages.show(
        "error",
        `Sign-in is paused for your security. Please wait ${duration(left)} before trying again.`,
      );
      return true;
    }

    function passwordStep() {
      const username = field({
        label: "Username",
        name: "username",
        autocomplete: "username",
        value: credentials?.username ?? "",
        attrs: { autocapitalize: "none", spellcheck: "false", "data-autofocus": true },
      });
      const password = field({
        label: "Password",
        name: "password",
        type: "password",
        autocomplete: "current-password",
      });
      const show = h("input", { type: "checkbox", id: "show-password", class: "checkbox__input" });
      show.addEventListener("change", () => {
        password.input.setAttribute("type", show.checked ? "text" : "password");
      });
      const submit = submitButton("Sign in", "Signing in…");
      const form = h(
        "form",
        { class: "form", novalidate: true, "aria-labelledby": "signin-heading" },
        username.element,
        password.element,
        h(
          "div",
          { class: "checkbox" },
          show,
          h("label", { for: "show-password", class: "checkbox__label", text: "Show password" }),
        ),
        h("div", { class: "form__actions" }, submit.button),
      );
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        if (submit.busy) return;
        const name = username.input.value.trim();
        const secret = password.input.value;
        username.setError(name ? null : "Enter your username.");
        password.setError(secret ? null : "Enter your password.");
        if (!name || !secret) {
          messages.clear();
          (name ? password : username).input.focus();
          return;
        }
        if (throttled()) return;
        credentials = { username: name, password: secret };
        submit.setBusy(true);
        messages.clear();
        const error = await attempt(undefined);
        submit.setBusy(false);
        if (!error) return;
        if (error.code === "totp_required") {
          codeStep();
          return;
        }
        credentials = null;
        messages.show("error", messageFor(error));
        if (error.code === "invalid_credentials") {
          password.input.value = "";
          password.input.focus();
        }
      });
      replaceChildren(
        step,
        h("h1", { id: "signin-heading", text: "Sign in" }),
        h("p", { class: "auth__lede", text: "Use the account your clinic gave you." }),
        messages.element,
        form,
      );
    }

    function codeStep() {
      const code = field({
        label: "6-digit code",
        name: "totp_code",
        autocomplete: "one-time-code",
        inputmode: "numeric",
        hint: "Open your authenticator app and enter the code it shows for Liaison.",
        attrs: { class: "input input--code", spellcheck: "false", maxlength: "10" },
      });
      const submit = submitButton("Verify and sign in", "Checking…");
      const back = h("button", {
        type: "button",
        class: "button button--secondary",
        text: "Use a different account",
      });
      back.addEventListener("click", () => {
        credentials = null;
        messages.clear();
        passwordStep();
        /** @type {HTMLElement | null} */ (step.querySelector("[data-autofocus]"))?.focus();
      });
      const form = h(
        "form",
        { class: "form", novalidate: true, "aria-labelledby": "code-heading" },
        code.element,
        h("div", { class: "form__actions" }, submit.button, back),
      );
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
        if (throttled()) return;
        submit.setBusy(true);
        messages.clear();
        const error = await attempt(value);
        submit.setBusy(false);
        if (!error) return;
        if (error.code === "invalid_totp") {
          code.input.value = "";
          code.setError(messageFor(error));
          code.input.focus();
          ctx.announce(messageFor(error)); // focus did not move: say it
          return;
        }
        messages.show("error", messageFor(error));
      });
      replaceChildren(
        step,
        h("h1", { id: "code-heading", text: "Enter your code" }),
        h("p", {
          class: "auth__lede",
          text: `Signing in as ${credentials?.username ?? ""}. Your account is protected with a second step.`,
        }),
        messages.element,
        form,
      );
      code.input.focus();
    }

    passwordStep();
    return h(
      "div",
      { class: "auth" },
      h(
        "div",
        { class: "auth__brand" },
        h("span", { class: "brand__mark brand__mark--large", "aria-hidden": "true" }),
        h("p", { class: "auth__name", text: "Liaison" }),
        h("p", { class: "auth__tagline", text: "Video visits and consultations for your care team" }),
      ),
      h("div", { class: "card auth__card" }, step),
      h(
        "section",
        { class: "auth__help", "aria-labelledby": "help-heading" },
        h("h2", { id: "help-heading", class: "auth__help-title", text: "Need help?" }),
        h("p", {
          text: "Forgot your password or lost your authenticator app? Your clinic's Liaison administrator can help.",
        }),
        h("p", {
          text: "Joining a video visit as a patient? Open the link your care team sent you. You don't need an account.",
        }),
      ),
    );
  },
};
