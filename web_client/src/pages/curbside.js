// Curbside consults (issue 5): /curbside is the psychiatrist's on-call dashboard or the PCP's
// requests; /curbside/new is the PCP's request form; /curbside/requests/{id} follows one
// consult (status, the call, the note, the written answer). The parts are in src/curbside/.

import { h } from "../dom.js";
import { askPage } from "../curbside/ask.js";
import { consultPage } from "../curbside/consult.js";
import { dashboardPage } from "../curbside/dashboard.js";
import { requestsPage } from "../curbside/requests.js";
import { notFoundPage } from "./fallbacks.js";

/** @type {import('../app.js').Page} */
export const curbsidePage = {
  title: "Curbside consults",
  access: "user",
  roles: ["pcp", "psychiatrist"],
  layout: "frame",
  render(ctx) {
    const role = ctx.session.user?.role;
    const rest = ctx.params.rest ?? "";
    const request = /^requests\/(\d+)$/.exec(rest);
    if (rest === "" && role === "psychiatrist") {
      ctx.setTitle("On-call dashboard");
      return dashboardPage(ctx);
    }
    if (rest === "") return requestsPage(ctx);
    if (rest === "new" && role === "pcp") {
      ctx.setTitle("Ask a psychiatrist");
      return askPage(ctx);
    }
    if (request) return consultPage(ctx, Number(request[1]));
    if (rest === "new") {
      return h("div", { class: "page" }, h("h1", { text: "Only primary care clinicians ask for curbside consults" }), h("p", {}, h("a", { href: "/curbside", text: "Back to your on-call dashboard" })));
    }
    return notFoundPage.render(ctx);
  },
};
