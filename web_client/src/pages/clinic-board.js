// Placeholder: being written (see main.js ROUTES).

import { h } from "../dom.js";

/** @type {import('../app.js').Page} */
export const clinicBoardPage = {
  title: "Clinic board",
  access: "user",
  layout: "frame",
  render() {
    return h("div", { class: "page" }, h("h1", { text: "Clinic board" }));
  },
};
