// Placeholder: being written (see main.js ROUTES).

import { h } from "../dom.js";

/** @type {import('../app.js').Page} */
export const curbsideAdminPage = {
  title: "Curbside metrics",
  access: "user",
  layout: "frame",
  render() {
    return h("div", { class: "page" }, h("h1", { text: "Curbside metrics" }));
  },
};
