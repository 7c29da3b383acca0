// Pages for locations the app cannot serve: unknown paths and pages the user's role may not
// open.

import { h } from "../dom.js";

/**
 * @param {string} title
 * @param {string} text
 * @param {{href: string, text: string}} [link]
 */
function simple(title, text, link) {
  return h(
    "div",
    { class: "page page--narrow" },
    h("div", { class: "page__head" }, h("h1", { text: title })),
    h(
      "div",
      { class: "card stack" },
      h("p", { text }),
      link ? h("p", {}, h("a", { href: link.href, text: link.text })) : null,
    ),
  );
}

/** @type {import('../app.js').Page} */
export const notFoundPage = {
  title: "Page not found",
  access: "public",
  layout: "frame",
  render(ctx) {
    return simple(
      "Page not found",
      "There is no page at this address. Check the address, or start again from your home page.",
      ctx.session.signedIn ? { href: "/home", text: "Go to your home page" } : { href: "/login", text: "Go to sign-in" },
    );
  },
};

/** @type {import('../app.js').Page} */
export const forbiddenPage = {
  title: "Not available",
  access: "user",
  layout: "frame",
  render() {
    return simple(
      "This page isn't available to you",
      "Your account's role doesn't include this page. If you need it, ask your Liaison administrator.",
      { href: "/home", text: "Go to your home page" },
    );
  },
};
