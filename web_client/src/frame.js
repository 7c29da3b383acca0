// The frame around every signed-in page: a header with the app name, the main navigation,
// who is signed in and a sign-out button; the page's <main> below it.

import { refreshAnswersToRead } from "./curbside/awaiting.js";
import { h } from "./dom.js";
import { messageFor } from "./messages.js";
import { roleLabel } from "./roles.js";

/** @typedef {import('./app.js').PageContext} PageContext */

/** The workflows each role reaches from the header, besides Home and Security. */
const ROLE_LINKS = /** @type {Record<string, {href: string, text: string}[]>} */ ({
  admin: [
    { href: "/admin", text: "Administration" },
    { href: "/clinics", text: "Clinics" },
  ],
  psychiatrist: [
    { href: "/curbside", text: "Curbside" },
    { href: "/clinics", text: "Clinics" },
    { href: "/registry", text: "Registry" },
  ],
  pcp: [{ href: "/curbside", text: "Curbside" }],
  care_manager: [
    { href: "/registry", text: "Registry" },
    { href: "/clinics", text: "Clinics" },
  ],
});

/**
 * @param {PageContext} ctx
 * @param {HTMLElement} main
 */
export function frame(ctx, main) {
  const user = /** @type {import('./session.js').User} */ (ctx.session.user);
  const path = ctx.url.pathname;
  // Until a required second factor is set up, the server allows nothing else: no navigation.
  const links = ctx.session.enrolmentRequired
    ? []
    : [
        { href: "/home", text: "Home" },
        ...(ROLE_LINKS[user.role] ?? []),
        { href: "/settings/security", text: "Security" },
      ];
  // A PCP's Curbside link counts the written answers they have not read (acknowledged) yet.
  const answersToRead = user.role === "pcp" && links.length > 0;
  if (answersToRead) refreshAnswersToRead(ctx);

  const signOut = h("button", { type: "button", class: "button button--quiet", text: "Sign out" });
  const signOutError = h("p", { class: "topbar__error", role: "alert" });
  signOut.addEventListener("click", async () => {
    if (signOut.getAttribute("aria-disabled") === "true") return;
    signOut.setAttribute("aria-disabled", "true");
    signOut.textContent = "Signing out…";
    signOutError.textContent = "";
    try {
      await ctx.signOut();
    } catch (error) {
      signOut.removeAttribute("aria-disabled");
      signOut.textContent = "Sign out";
      signOutError.textContent = `You are still signed in. ${messageFor(error)}`;
    }
  });

  const header = h(
    "header",
    { class: "topbar" },
    h(
      "div",
      { class: "topbar__inner" },
      h(
        "a",
        { class: "brand", href: "/home" },
        h("span", { class: "brand__mark", "aria-hidden": "true" }),
        h("span", { class: "brand__name", text: "Liaison" }),
      ),
      links.length
        ? h(
            "nav",
            { class: "nav", "aria-label": "Main" },
            h(
              "ul",
              { class: "nav__list" },
              links.map((link) =>
                h(
                  "li",
                  {},
                  h(
                    "a",
                    {
                      class: "nav__link",
                      href: link.href,
                      "aria-current": path === link.href || path.startsWith(`${link.href}/`) ? "page" : null,
                    },
                    link.text,
                    answersToRead && link.href === "/curbside"
                      ? h("span", { class: "badge badge--attention curbside__count", dataset: { answersToRead: "badge" }, hidden: true })
                      : null,
                  ),
                ),
              ),
            ),
          )
        : null,
      h(
        "div",
        { class: "account" },
        h(
          "p",
          { class: "account__who" },
          h("span", { class: "visually-hidden", text: "Signed in as " }),
          h("span", { class: "account__name", text: user.display_name }),
          h("span", { class: "account__role", text: roleLabel(user.role) }),
        ),
        signOut,
      ),
    ),
    signOutError,
  );
  return h("div", { class: "shell" }, header, main);
}
