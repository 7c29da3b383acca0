// Placeholder: being written (see main.js ROUTES).

import { h } from "../dom.js";

/** @type {import('../app.js').Page} */
export const clinicsPage = {
  title: "Clinic sessions",
  access: "user",
  layout: "frame",
  render() {
    return h("div", { class: "page" }, h("h1", { text: "Clinic sessions" }));
  },
};
