// Entry point: the routes of the app and the shell that shows them.
//
// To add a page: write src/pages/<name>.js exporting a Page ({title, access, roles?, layout,
// render(ctx)}; see app.js), then list its path here. The server must also serve index.html
// for that path (server/web.py APP_PAGES).

import { App } from "./app.js";
import { adminPage } from "./pages/admin.js";
import { chartPage } from "./pages/chart.js";
import { clinicBoardPage } from "./pages/clinic-board.js";
import { clinicsPage } from "./pages/clinics.js";
import { curbsideAdminPage } from "./pages/curbside-admin.js";
import { curbsidePage } from "./pages/curbside.js";
import { deviceCheckPage } from "./pages/device-check.js";
import { forbiddenPage, notFoundPage } from "./pages/fallbacks.js";
import { homePage } from "./pages/home.js";
import { joinPage } from "./pages/join.js";
import { loginPage } from "./pages/login.js";
import { registryPage } from "./pages/registry.js";
import { registryReviewPage } from "./pages/registry-review.js";
import { securityPage } from "./pages/security.js";
import { visitPage } from "./pages/visit.js";

/** @type {{path: string, page: import('./app.js').Page}[]} */
const ROUTES = [
  { path: "/login", page: loginPage },
  { path: "/home", page: homePage },
  { path: "/admin", page: adminPage },
  { path: "/settings/security", page: securityPage },
  { path: "/join", page: joinPage },
  { path: "/device-check", page: deviceCheckPage },
  { path: "/visit/:visitId", page: visitPage },
  { path: "/patients/:patientId", page: chartPage },
  // Curbside consults (issue 5): the PCP's requests and the psychiatrist's on-call dashboard.
  { path: "/curbside", page: curbsidePage },
  { path: "/curbside/*", page: curbsidePage },
  { path: "/admin/curbside", page: curbsideAdminPage },
  // Remote clinics and the collaborative-care registry (issue 6).
  { path: "/clinics", page: clinicsPage },
  { path: "/clinics/:sessionId", page: clinicBoardPage },
  { path: "/registry", page: registryPage },
  // The systematic caseload review (before /registry/*, which would take it for a patient id).
  { path: "/registry/review", page: registryReviewPage },
  { path: "/registry/*", page: registryPage },
  // "/" is redirected by the app (to /home or /login); listed so links to it stay in the app.
  { path: "/", page: notFoundPage },
];

const root = document.getElementById("app");
if (root) {
  new App(root, ROUTES, { notFound: notFoundPage, forbidden: forbiddenPage }).start();
}
