// The signed-in home page: a greeting and the sections of the user's role. Sections whose
// feature has not shipped say in a sentence what will appear there.

import { refreshAnswersToRead } from "../curbside/awaiting.js";
import { CurbsideSocket } from "../curbside/socket.js";
import { h } from "../dom.js";
import { HOME_SECTIONS, roleLabel } from "../roles.js";
import { todaysVisits } from "../visit/today.js";

// Roles whose "visits" section lists today's video visits (the visits API is theirs).
const VISIT_ROLES = new Set(["psychiatrist", "pcp", "therapist", "care_manager"]);

/** @type {import('../app.js').Page} */
export const homePage = {
  title: "Home",
  access: "user",
  layout: "frame",
  render(ctx) {
    const user = /** @type {import('../session.js').User} */ (ctx.session.user);
    const sections = HOME_SECTIONS[user.role] ?? [];
    const today = new Intl.DateTimeFormat(undefined, {
      weekday: "long",
      day: "numeric",
      month: "long",
    }).format(new Date());
    const links = /** @type {Record<string, {href: string, text: string}>} */ (
      user.role === "admin"
        ? {
            accounts: { href: "/admin#accounts", text: "Manage accounts" },
            rules: { href: "/admin#sign-in-rules", text: "Change sign-in rules" },
          }
        : {
            // Clinics and the registry (issue 6).
            clinics: { href: "/clinics", text: "Clinic sessions" },
            caseload: { href: "/registry", text: "Open the caseload registry" },
            // Curbside consults (issue 5).
            curbside: { href: "/curbside", text: "Open the on-call dashboard" },
            ask: { href: "/curbside/new", text: "Ask a psychiatrist" },
          }
    );
    return h(
      "div",
      { class: "page" },
      ctx.flash ? h("div", { class: `notice notice--${ctx.flash.kind}`, role: "status" }, h("p", { text: ctx.flash.text })) : null,
      h(
        "div",
        { class: "page__head" },
        h("p", { class: "page__eyebrow", text: roleLabel(user.role) }),
        h("h1", { text: `Welcome, ${user.display_name}` }),
        h("p", { class: "page__lede", text: today }),
      ),
      user.role === "patient"
        ? h(
            "div",
            { class: "notice notice--info" },
            h("p", {
              text: "Liaison is not for emergencies. If you are in danger or thinking about harming yourself, call your local emergency number now.",
            }),
          )
        : null,
      h(
        "div",
        { class: "sections" },
        sections.map((section) =>
          section.id === "visits" && VISIT_ROLES.has(user.role)
            ? todaysVisits(ctx, section)
            : h(
            "section",
            { class: "card section", "aria-labelledby": `section-${section.id}` },
            h("h2", { id: `section-${section.id}`, class: "section__title", text: section.title }),
            h("p", { class: "section__empty", text: section.empty }),
            section.id === "ask" && user.role === "pcp" ? answersToRead(ctx) : null,
            links[section.id]
              ? h("a", { class: "button button--secondary", href: links[section.id].href, text: links[section.id].text })
              : null,
          ),
        ),
      ),
    );
  },
};

/**
 * "N answers to read", linking to the PCP's requests; hidden at 0. The header reads the count
 * for every page (src/frame.js); here it is kept live: a curbside:status event (an answer
 * written, one acknowledged in another tab) reads it again, as does every connect, since events
 * sent before the subscription or while the connection was down are lost.
 * @param {import('../app.js').PageContext} ctx
 */
function answersToRead(ctx) {
  const socket = new CurbsideSocket(ctx.signal);
  socket.on("status", () => refreshAnswersToRead(ctx));
  // Read each time the connection comes up: an answer written between the header's read and
  // the subscription, or while the connection was down, would otherwise be missed.
  socket.on("online", (online) => online && refreshAnswersToRead(ctx));
  return h("a", { class: "button button--primary", href: "/curbside", dataset: { answersToRead: "sentence" }, hidden: true });
}
