// A visit's invitation list: who has a link (the patient, guests), each link's state, and
// issuing new ones. A link's URL exists only in the answer that issued it (the server keeps a
// hash), so it is shown once, here, with a copy button, and never again.

import { h, keepChildren, keepFocus, replaceChildren } from "../dom.js";
import { field, messageSlot, submitButton } from "../forms.js";
import { messageFor } from "../messages.js";
import { GUEST_ROLES, languageName, LINK_STATES, timeOfDay } from "./format.js";

/**
 * @typedef {{id: number, kind: "patient" | "guest", guest_role: string | null, display_name: string,
 *   state: string, expires_at: string, created_at: string, used_at: string | null, revoked_at: string | null}} Link
 * @typedef {{id: number, patient: {given_name: string, family_name: string}, status: string, links: Link[],
 *   interpreter_suggested: boolean, preferred_language: string, clinic_language: string}} Visit
 */

const CLOSED = new Set(["completed", "cancelled", "no_show"]);

/**
 * @param {object} options
 * @param {import('../app.js').PageContext} options.ctx
 * @param {Visit} options.visit
 * @param {() => Promise<Visit>} options.reload   fetch the visit again
 */
export function invitationsPanel({ ctx, visit, reload }) {
  const messages = messageSlot("status");
  const list = h("ul", { class: "links" });
  const issued = h("div", { class: "issued", hidden: true, tabindex: "-1" });
  const suggestion = h("div", { class: "notice notice--info", hidden: true });
  const actions = h("div", { class: "form__actions" });
  let current = visit;

  const role = field({
    label: "Who are you inviting?",
    name: "guest_role",
    type: "select",
    value: "",
    options: [{ value: "", label: "Choose" }, ...Object.entries(GUEST_ROLES).map(([value, label]) => ({ value, label }))],
  });
  const name = field({
    label: "Their name",
    name: "display_name",
    autocomplete: "off",
    hint: "As the others in the call will see it, e.g. \"Ana (Spanish interpreter)\".",
  });
  const submit = submitButton("Create a guest link", "Creating…", "secondary");
  const form = h(
    "form",
    { class: "form form--compact", novalidate: true, "aria-labelledby": "invite-heading" },
    h("h3", { id: "invite-heading", class: "subsection__title", text: "Invite a guest" }),
    role.element,
    name.element,
    h("div", { class: "form__actions" }, submit.button),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (submit.busy) return;
    messages.clear();
    const values = { guest_role: role.input.value, display_name: name.input.value.trim() };
    role.setError(values.guest_role ? null : "Choose who you are inviting.");
    name.setError(values.display_name ? null : "Enter the guest's name.");
    if (!values.guest_role || !values.display_name) {
      (values.guest_role ? name : role).input.focus();
      return;
    }
    submit.setBusy(true);
    try {
      const body = await ctx.api.post(`/visits/${current.id}/links`, values, { signal: ctx.signal });
      form.reset();
      showIssued(body.url, `A link for ${body.link.display_name}`);
      await refresh();
    } catch (error) {
      if (ctx.signal.aborted) return;
      messages.show("error", messageFor(error));
    } finally {
      submit.setBusy(false);
    }
  });

  /** @param {string} url @param {string} title */
  function showIssued(url, title) {
    const input = h("input", { id: "issued-url", class: "input input--url", readonly: true, value: url, "aria-describedby": "issued-note" });
    const copy = h("button", { type: "button", class: "button button--primary button--small", text: "Copy link" });
    const copied = h("span", { class: "muted", role: "status" });
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(url);
        copied.textContent = "Copied.";
      } catch {
        input.select();
        copied.textContent = "Copying isn't allowed here: the link is selected, copy it yourself.";
      }
    });
    input.addEventListener("focus", () => input.select());
    replaceChildren(
      issued,
      h("h3", { class: "subsection__title", text: title }),
      h("label", { class: "field__label", for: "issued-url", text: "Join link" }),
      h("div", { class: "issued__row" }, input, copy),
      copied,
      h("p", {
        id: "issued-note",
        class: "field__hint",
        text: "Copy it now and send it by your clinic's secure messaging. Liaison keeps only a fingerprint of it, so it can't be shown again. It works once, in one browser.",
      }),
    );
    issued.hidden = false;
    issued.focus();
  }

  /** @param {Link} link */
  function row(link) {
    const who = link.kind === "patient" ? "Patient" : GUEST_ROLES[link.guest_role ?? "other"] ?? "Guest";
    const live = link.state === "active" || link.state === "opened";
    const withdraw = live && !CLOSED.has(current.status)
      ? h("button", { type: "button", class: "button button--quiet button--small" }, "Withdraw", h("span", { class: "visually-hidden", text: ` ${link.display_name}'s link` }))
      : null;
    withdraw?.addEventListener("click", async () => {
      if (withdraw.getAttribute("aria-disabled") === "true") return;
      withdraw.setAttribute("aria-disabled", "true");
      try {
        await ctx.api.post(`/links/${link.id}/revoke`, undefined, { signal: ctx.signal });
        messages.show("success", `${link.display_name}'s link no longer works.`);
        await refresh();
      } catch (error) {
        if (ctx.signal.aborted) return;
        messages.show("error", messageFor(error));
        withdraw.removeAttribute("aria-disabled");
      }
    });
    return h(
      "li",
      { class: "links__item", dataset: { key: String(link.id) } },
      h(
        "div",
        {},
        h("p", { class: "links__name", text: link.display_name }),
        h("p", { class: "links__meta", text: `${who} · ${live ? `expires ${timeOfDay(link.expires_at)}` : "no longer works"}` }),
      ),
      h("span", { class: `badge ${link.state === "opened" ? "badge--ok" : "badge--plain"}`, text: LINK_STATES[link.state] ?? link.state }),
      withdraw,
    );
  }

  // Built once: every lobby update refreshes this panel, and must not close the confirmation
  // someone has open or take the focus off a button.
  const invite = h("button", { type: "button", class: "button button--secondary button--small", text: "Invite an interpreter" });
  invite.addEventListener("click", () => {
    role.input.value = "interpreter";
    name.input.value = `${languageName(current.preferred_language)} interpreter`;
    name.input.focus();
    /** @type {HTMLInputElement} */ (name.input).select();
  });
  const suggestionText = h("p");
  suggestion.append(suggestionText, invite);
  const patientLink = newPatientLink();

  function render() {
    const open = !CLOSED.has(current.status);
    keepFocus(list, () => replaceChildren(list, current.links.length ? current.links.map(row) : h("li", { class: "muted", text: "No links yet." })));
    suggestion.hidden = !(open && current.interpreter_suggested);
    suggestionText.textContent = `${current.patient.given_name} prefers ${languageName(current.preferred_language)}; your clinic works in ${languageName(current.clinic_language)}. Invite an interpreter to the visit?`;
    form.hidden = !open;
    keepChildren(actions, open ? patientLink : null);
  }

  function newPatientLink() {
    const button = h("button", { type: "button", class: "button button--secondary button--small", text: "New patient link" });
    const confirm = h("div", { class: "lobby__confirm", hidden: true });
    button.addEventListener("click", () => {
      const yes = h("button", { type: "button", class: "button button--primary button--small", text: "Issue a new link" });
      const no = h("button", { type: "button", class: "button button--secondary button--small", text: "Cancel" });
      replaceChildren(
        confirm,
        h("p", { text: "The patient's current link will stop working. Issue a new one?" }),
        h("div", { class: "form__actions" }, yes, no),
      );
      confirm.hidden = false;
      yes.focus();
      no.addEventListener("click", () => {
        confirm.hidden = true;
        button.focus();
      });
      yes.addEventListener("click", async () => {
        if (yes.getAttribute("aria-disabled") === "true") return;
        yes.setAttribute("aria-disabled", "true");
        try {
          const body = await ctx.api.post(`/visits/${current.id}/patient-link`, undefined, { signal: ctx.signal });
          confirm.hidden = true;
          showIssued(body.url, `A new link for ${body.link.display_name}`);
          await refresh();
        } catch (error) {
          if (ctx.signal.aborted) return;
          messages.show("error", messageFor(error));
          yes.removeAttribute("aria-disabled");
        }
      });
    });
    return h("div", { class: "stack-small" }, button, confirm);
  }

  async function refresh() {
    try {
      current = await reload();
      render();
    } catch (error) {
      if (!ctx.signal.aborted) messages.show("error", `The list could not be refreshed. ${messageFor(error)}`);
    }
  }

  render();
  const element = h(
    "section",
    { class: "card section invitations", "aria-labelledby": "invitations-heading" },
    h("h2", { id: "invitations-heading", class: "section__title", text: "Invitations" }),
    messages.element,
    suggestion,
    list,
    issued,
    actions,
    form,
  );
  return {
    element,
    /** Fetch the links again (someone opened theirs, the visit ended). */
    refresh,
    /** @param {Visit} visit */
    update(visit) {
      current = visit;
      render();
    },
  };
}
