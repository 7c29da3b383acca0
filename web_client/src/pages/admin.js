// Administration: the list of accounts (disable, enable, reset a lost second factor), a form
// to create an account, and the per-role rule "require a second factor".

import { h, replaceChildren } from "../dom.js";
import { field, focusFirstInvalid, messageSlot, submitButton } from "../forms.js";
import { messageFor } from "../messages.js";
import { ROLE_NAMES, ROLES, roleLabel } from "../roles.js";

/**
 * @typedef {{id: number, username: string, display_name: string, role: import('../session.js').Role,
 *   disabled: boolean, totp_enrolled: boolean, created_at: string}} AdminUser
 * @typedef {import('../app.js').PageContext} PageContext
 */

const USERNAME = /^[a-z0-9][a-z0-9._-]{1,62}$/;
const MIN_PASSWORD = 12;

/** @type {import('../app.js').Page} */
export const adminPage = {
  title: "Administration",
  access: "user",
  roles: ["admin"],
  layout: "frame",
  render(ctx) {
    const accounts = accountsSection(ctx);
    const create = createSection(ctx, accounts.reload);
    const rules = rulesSection(ctx);
    accounts.reload();
    rules.reload();
    return h(
      "div",
      { class: "page" },
      h(
        "div",
        { class: "page__head" },
        h("h1", { text: "Administration" }),
        h("p", { class: "page__lede", text: "Accounts and sign-in rules for this Liaison server." }),
        h("p", { class: "visit__links" }, h("a", { href: "/admin/curbside", text: "Curbside consults: on-call rota, metrics and licence rule" })),
      ),
      accounts.element,
      h("div", { class: "columns" }, create, rules.element),
    );
  },
};

/** @param {PageContext} ctx */
function accountsSection(ctx) {
  const messages = messageSlot();
  const status = h("p", { class: "muted", text: "Loading accounts…" });
  const tableSlot = h("div", { class: "section__body" });
  const me = ctx.session.user?.id;

  async function reload() {
    try {
      const { users } = await ctx.api.get("/admin/users", { signal: ctx.signal });
      status.textContent = `${users.length} account${users.length === 1 ? "" : "s"}`;
      replaceChildren(tableSlot, table(users));
    } catch (error) {
      if (ctx.signal.aborted) return;
      status.textContent = "";
      messages.show("error", `The accounts could not be loaded. ${messageFor(error)}`);
    }
  }

  /** @param {AdminUser[]} users */
  function table(users) {
    return h(
      "table",
      { class: "table" },
      h("caption", { class: "visually-hidden", text: "Accounts" }),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Name", "Role", "Second factor", "Status", "Actions"].map((title) =>
            h("th", { scope: "col", text: title }),
          ),
        ),
      ),
      h("tbody", {}, users.map(row)),
    );
  }

  /** @param {AdminUser} user */
  function row(user) {
    const actions = h("div", { class: "table__actions" });
    const tr = h(
      "tr",
      { class: user.disabled ? "is-disabled" : null },
      h(
        "td",
        { "data-label": "Name" },
        h(
          "div",
          {},
          h("span", { class: "table__name", text: user.display_name }),
          h("span", { class: "table__sub", text: user.username }),
        ),
      ),
      h("td", { "data-label": "Role", text: roleLabel(user.role) }),
      h(
        "td",
        { "data-label": "Second factor" },
        h("span", {
          class: `badge ${user.totp_enrolled ? "badge--ok" : "badge--plain"}`,
          text: user.totp_enrolled ? "Set up" : "Not set up",
        }),
      ),
      h(
        "td",
        { "data-label": "Status" },
        h("span", {
          class: `badge ${user.disabled ? "badge--off" : "badge--ok"}`,
          text: user.disabled ? "Disabled" : "Active",
        }),
      ),
      h("td", { "data-label": "Actions" }, actions),
    );
    if (user.id === me) {
      actions.append(h("span", { class: "muted", text: "This is you" }));
      return tr;
    }
    actions.append(
      action(user.disabled ? "Enable" : "Disable", user, async () => {
        const verb = user.disabled ? "enable" : "disable";
        await ctx.api.post(`/admin/users/${user.id}/${verb}`, undefined, { signal: ctx.signal });
        return user.disabled
          ? `${user.display_name}'s account is enabled.`
          : `${user.display_name}'s account is disabled and they have been signed out.`;
      }),
    );
    if (user.totp_enrolled) {
      actions.append(
        action("Reset second factor", user, async () => {
          const sure = window.confirm(
            `Reset ${user.display_name}'s second factor? They will be signed out and must set up their authenticator app again when they next sign in.`,
          );
          if (!sure) return null;
          await ctx.api.post(`/admin/users/${user.id}/totp/reset`, undefined, { signal: ctx.signal });
          return `${user.display_name}'s second factor was reset.`;
        }),
      );
    }
    return tr;
  }

  /**
   * A row button whose accessible name says whose account it acts on.
   * @param {string} label
   * @param {AdminUser} user
   * @param {() => Promise<string | null>} run  returns what to announce (null: cancelled)
   */
  function action(label, user, run) {
    const button = h(
      "button",
      { type: "button", class: "button button--secondary button--small" },
      label,
      h("span", { class: "visually-hidden", text: ` (${user.display_name})` }),
    );
    button.addEventListener("click", async () => {
      if (button.getAttribute("aria-disabled") === "true") return;
      button.setAttribute("aria-disabled", "true");
      messages.clear();
      try {
        const done = await run();
        if (done) {
          messages.show("success", done);
          await reload();
        }
      } catch (error) {
        if (ctx.signal.aborted) return;
        messages.show("error", messageFor(error));
      } finally {
        button.removeAttribute("aria-disabled");
      }
    });
    return button;
  }

  const element = h(
    "section",
    { class: "card section", id: "accounts", "aria-labelledby": "accounts-heading" },
    h(
      "div",
      { class: "section__head" },
      h("h2", { id: "accounts-heading", class: "section__title", text: "Accounts" }),
      status,
    ),
    messages.element,
    tableSlot,
  );
  return { element, reload };
}

/**
 * @param {PageContext} ctx
 * @param {() => Promise<void>} reloadAccounts
 */
function createSection(ctx, reloadAccounts) {
  const messages = messageSlot();
  const name = field({ label: "Full name", name: "display_name", autocomplete: "off", hint: "As colleagues and patients should see it, e.g. Dr. Sofia Rivera." });
  const username = field({
    label: "Username",
    name: "username",
    autocomplete: "off",
    hint: "Lower-case letters, digits, dots, dashes or underscores; 2 to 63 characters.",
    attrs: { autocapitalize: "none", spellcheck: "false" },
  });
  const role = field({
    label: "Role",
    name: "role",
    type: "select",
    value: "",
    options: [{ value: "", label: "Choose a role" }, ...ROLES.map((r) => ({ value: r, label: ROLE_NAMES[r].label }))],
  });
  const password = field({
    label: "Temporary password",
    name: "password",
    type: "text",
    autocomplete: "new-password",
    hint: `At least ${MIN_PASSWORD} characters. Give it to the person in a safe way, not by email.`,
    attrs: { spellcheck: "false", autocapitalize: "none" },
  });
  const suggest = h("button", { type: "button", class: "button button--quiet button--small", text: "Suggest a strong password" });
  suggest.addEventListener("click", () => {
    password.input.value = strongPassword();
    password.setError(null);
    password.input.focus();
  });
  const fields = [name, username, role, password];
  const submit = submitButton("Create account", "Creating…");
  const form = h(
    "form",
    { class: "form", novalidate: true, "aria-labelledby": "create-heading" },
    name.element,
    username.element,
    role.element,
    password.element,
    h("div", { class: "form__inline" }, suggest),
    h("div", { class: "form__actions" }, submit.button),
  );
  /** @type {Record<string, import('../forms.js').Field>} */
  const byName = { display_name: name, username, role, password };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (submit.busy) return;
    messages.clear();
    const values = {
      display_name: name.input.value.trim(),
      username: username.input.value.trim().toLowerCase(),
      role: role.input.value,
      password: password.input.value,
    };
    name.setError(values.display_name ? null : "Enter the person's full name.");
    username.setError(
      USERNAME.test(values.username)
        ? null
        : "Use 2 to 63 lower-case letters, digits, dots, dashes or underscores, starting with a letter or digit.",
    );
    role.setError(values.role ? null : "Choose a role.");
    password.setError(
      values.password.length >= MIN_PASSWORD ? null : `Use at least ${MIN_PASSWORD} characters.`,
    );
    if (focusFirstInvalid(fields)) return;
    submit.setBusy(true);
    try {
      const user = await ctx.api.post("/admin/users", values, { signal: ctx.signal });
      form.reset();
      messages.show(
        "success",
        `Account created for ${user.display_name} (username ${user.username}) as ${roleLabel(user.role)}.`,
      );
      name.input.focus();
      await reloadAccounts();
    } catch (error) {
      if (ctx.signal.aborted) return;
      const apiError = /** @type {import('../api.js').ApiError} */ (error);
      const target = {
        username_taken: username,
        invalid_username: username,
        weak_password: password,
      }[apiError.code];
      if (target) {
        target.setError(messageFor(error));
      } else if (apiError.fields.length) {
        for (const problem of apiError.fields) byName[problem.field]?.setError(problem.message);
        messages.show("error", "Some fields need attention.");
      } else {
        messages.show("error", messageFor(error));
      }
      focusFirstInvalid(fields);
    } finally {
      submit.setBusy(false);
    }
  });

  return h(
    "section",
    { class: "card section", id: "create-account", "aria-labelledby": "create-heading" },
    h("h2", { id: "create-heading", class: "section__title", text: "Create an account" }),
    messages.element,
    form,
  );
}

/** @param {PageContext} ctx */
function rulesSection(ctx) {
  const messages = messageSlot("status");
  const list = h("div", { class: "toggles" }, h("p", { class: "muted", text: "Loading…" }));

  async function reload() {
    try {
      const { roles } = await ctx.api.get("/admin/roles", { signal: ctx.signal });
      replaceChildren(list, roles.map(toggle));
    } catch (error) {
      if (ctx.signal.aborted) return;
      messages.show("error", `The sign-in rules could not be loaded. ${messageFor(error)}`);
    }
  }

  /** @param {{role: import('../session.js').Role, totp_required: boolean}} policy */
  function toggle(policy) {
    const id = `totp-required-${policy.role}`;
    const plural = ROLE_NAMES[policy.role]?.plural ?? policy.role;
    const box = h("input", {
      type: "checkbox",
      id,
      class: "checkbox__input",
      checked: policy.totp_required,
    });
    let saving = false;
    box.addEventListener("change", async () => {
      if (saving) return;
      saving = true;
      const wanted = box.checked;
      box.setAttribute("aria-busy", "true");
      try {
        const saved = await ctx.api.put(`/admin/roles/${policy.role}`, { totp_required: wanted }, { signal: ctx.signal });
        box.checked = saved.totp_required;
        if (saved.totp_required !== wanted) {
          messages.show("warning", `The server's configuration requires a second factor for ${plural.toLowerCase()}; it can't be turned off here.`);
        } else {
          messages.show(
            "success",
            wanted
              ? `${plural} must now use a second factor. Those without one will set it up at their next sign-in.`
              : `${plural} no longer need a second factor.`,
          );
        }
      } catch (error) {
        if (ctx.signal.aborted) return;
        box.checked = !wanted;
        messages.show("error", `The change was not saved. ${messageFor(error)}`);
      } finally {
        saving = false;
        box.removeAttribute("aria-busy");
      }
    });
    return h(
      "div",
      { class: "checkbox checkbox--row" },
      box,
      h("label", { for: id, class: "checkbox__label", text: plural }),
    );
  }

  const element = h(
    "section",
    { class: "card section", id: "sign-in-rules", "aria-labelledby": "rules-heading" },
    h("h2", { id: "rules-heading", class: "section__title", text: "Sign-in rules" }),
    h(
      "fieldset",
      { class: "fieldset", "aria-describedby": "rules-hint" },
      h("legend", { class: "fieldset__legend", text: "Require a second factor (authenticator app) for" }),
      h("p", {
        id: "rules-hint",
        class: "field__hint",
        text: "People in a checked role must enter a code from an authenticator app each time they sign in. Anyone without one is asked to set it up first.",
      }),
      list,
    ),
    messages.element,
  );
  return { element, reload };
}

/** 20 random characters from an alphabet without look-alikes (0/O, 1/l/I), in groups of 5. */
function strongPassword() {
  const alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  const limit = 256 - (256 % alphabet.length); // reject bytes above it: no modulo bias
  const chars = [];
  while (chars.length < 20) {
    for (const byte of crypto.getRandomValues(new Uint8Array(32))) {
      if (byte < limit && chars.length < 20) chars.push(alphabet[byte % alphabet.length]);
    }
  }
  return chars.join("").replace(/(.{5})(?=.)/g, "$1-");
}
