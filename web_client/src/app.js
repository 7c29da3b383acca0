// The application shell: the session, the API client and the router, and the one place that
// decides what to show for a location. Pages are plain objects (see `Page` below) that build
// their DOM from a PageContext; they never touch the router or the session hooks directly.

import { Api } from "./api.js";
import { announce } from "./announce.js";
import { h, replaceChildren } from "./dom.js";
import { frame } from "./frame.js";
import { messageFor } from "./messages.js";
import { Router } from "./router.js";
import { Session } from "./session.js";

/** @typedef {import('./session.js').Role} Role */
/** @typedef {import('./session.js').SessionBody} SessionBody */

/**
 * @typedef {object} Flash  a message carried to the next page shown
 * @property {"info" | "success" | "warning" | "error"} kind
 * @property {string} text
 */

/**
 * @typedef {object} PageContext
 * @property {Api} api
 * @property {Session} session
 * @property {Record<string, string>} params   from the route's :names
 * @property {URL} url                          the full location (query, fragment)
 * @property {Flash | null} flash               a message left by the previous page
 * @property {AbortSignal} signal   aborted when the page is left: pass it to fetches, use it
 *                                  to remove listeners, close sockets and stop media
 * @property {(path: string, options?: {replace?: boolean, flash?: Flash}) => void} navigate
 * @property {(body: SessionBody, flash?: Flash) => void} signedIn  after login or TOTP set-up
 * @property {() => Promise<void>} signOut
 * @property {(text: string) => void} announce        polite status for screen readers
 * @property {(title: string) => void} setTitle       for titles known only after loading
 */

/**
 * @typedef {object} Page
 * @property {string} title          document title (" · Liaison" is added)
 * @property {"guest" | "public" | "user"} access
 *   guest: only when signed out (sign-in); public: anyone (patient join links);
 *   user: signed in (and second factor set up where required)
 * @property {Role[]} [roles]         only these roles may open it
 * @property {"frame" | "bare"} layout  frame: header with user and sign-out; bare: centred
 * @property {(ctx: PageContext) => Node} render
 */

const APP_NAME = "Liaison";
const SECURITY_PATH = "/settings/security";
// After this many seconds past the server's idle timeout with no request, check the session;
// if it has expired, leave the page so nothing stays on screen.
const IDLE_CHECK_GRACE_S = 5;

export class App {
  /**
   * @param {HTMLElement} root
   * @param {{path: string, page: Page}[]} routes
   * @param {{notFound: Page, forbidden: Page}} fallbacks
   */
  constructor(root, routes, fallbacks) {
    this.root = root;
    this.fallbacks = fallbacks;
    this.session = new Session();
    this.api = new Api({
      csrfToken: () => this.session.csrfToken,
      onSessionLost: (error) => this.sessionLost(messageFor(error)),
      onEnrolmentRequired: () => {
        this.session.enrolmentRequired = true;
        this.router.navigate(SECURITY_PATH, { replace: true });
      },
      onActivity: () => this.watchIdle(),
    });
    this.router = new Router(
      routes.map((r) => ({ path: r.path, value: r.page })),
      (match, url) => this.show(match?.value ?? null, match?.params ?? {}, url),
    );
    /** @type {Flash | null} */
    this.flash = null;
    /** Where to go after signing in, when sign-in interrupted the way there. */
    this.returnTo = "";
    /** @type {AbortController | null} */
    this.leave = null;
    this.firstRender = true;
    /** @type {number | undefined} */
    this.idleTimer = undefined;
    // Signing out in one tab signs out the others (standard API; absent in very old browsers).
    this.tabs = "BroadcastChannel" in window ? new BroadcastChannel("liaison-session") : null;
    this.tabs?.addEventListener("message", (event) => {
      if (event.data === "signed-out" && this.session.signedIn) {
        this.session.clear();
        this.navigate("/login", {
          replace: true,
          flash: { kind: "info", text: "You signed out in another window." },
        });
      }
    });
  }

  async start() {
    try {
      this.session.set(await this.api.get("/auth/session", { quiet: true }));
      this.watchIdle();
    } catch (error) {
      const code = /** @type {{code?: string}} */ (error).code;
      if (code === "session_expired" || code === "session_ended") {
        this.flash = { kind: "warning", text: messageFor(error) };
      } else if (code !== "not_signed_in") {
        this.flash = { kind: "error", text: messageFor(error) };
      }
    }
    this.router.start();
  }

  /**
   * @param {string} path
   * @param {{replace?: boolean, flash?: Flash}} [options]
   */
  navigate(path, { replace = false, flash } = {}) {
    if (flash) this.flash = flash;
    this.router.navigate(path, { replace });
  }

  /**
   * Decide what the location shows: redirects for sign-in, second-factor set-up and roles,
   * then render the page into the root.
   *
   * @param {Page | null} page
   * @param {Record<string, string>} params
   * @param {URL} url
   */
  show(page, params, url) {
    const { session } = this;
    const here = url.pathname + url.search;
    if (url.pathname === "/") {
      this.navigate(session.signedIn ? "/home" : "/login", { replace: true });
      return;
    }
    if (page?.access === "user" && !session.signedIn) {
      this.returnTo = here;
      this.navigate("/login", { replace: true });
      return;
    }
    if (page?.access === "guest" && session.signedIn) {
      this.navigate(this.takeReturnTo(), { replace: true });
      return;
    }
    if (page?.access === "user" && session.enrolmentRequired && url.pathname !== SECURITY_PATH) {
      if (url.pathname !== "/home") this.returnTo = here;
      this.navigate(SECURITY_PATH, { replace: true });
      return;
    }
    if (page?.roles && !(session.user && page.roles.includes(session.user.role))) {
      page = this.fallbacks.forbidden;
    }
    this.render(page ?? this.fallbacks.notFound, params, url);
  }

  /** @param {Page} page @param {Record<string, string>} params @param {URL} url */
  render(page, params, url) {
    this.leave?.abort();
    const leave = new AbortController();
    this.leave = leave;
    const flash = this.flash;
    this.flash = null;
    /** @type {PageContext} */
    const ctx = {
      api: this.api,
      session: this.session,
      params,
      url,
      flash,
      signal: leave.signal,
      navigate: (path, options) => this.navigate(path, options),
      signedIn: (body, flash) => this.signedIn(body, flash),
      signOut: () => this.signOut(),
      announce,
      setTitle: (title) => {
        if (!leave.signal.aborted) document.title = `${title} · ${APP_NAME}`;
      },
    };
    ctx.setTitle(page.title); // a page may set a more precise one while rendering
    const main = h("main", { id: "main", class: "main", tabindex: "-1" });
    let content;
    try {
      content = page.render(ctx);
    } catch (error) {
      console.error(error);
      content = h(
        "div",
        { class: "page" },
        h("h1", { text: "Something went wrong" }),
        h("p", { text: "This page could not be shown. Reload the page to try again." }),
      );
    }
    main.append(content);
    const view = page.layout === "frame" && this.session.signedIn ? frame(ctx, main) : bare(main);
    replaceChildren(this.root, view);
    window.scrollTo(0, 0);
    this.moveFocus(main, url.hash);
  }

  /**
   * Put keyboard and screen-reader focus at the start of the new page: an element the page
   * marked with data-autofocus (the first field of a sign-in form), else the page's heading.
   * A fragment (/admin#accounts) goes to that part of the page instead. On the very first load
   * a heading is not focused, so the browser's own starting point applies.
   *
   * @param {HTMLElement} main
   * @param {string} hash
   */
  moveFocus(main, hash) {
    const first = this.firstRender;
    this.firstRender = false;
    const section = hash.length > 1 ? document.getElementById(decodeURIComponent(hash.slice(1))) : null;
    const preferred = /** @type {HTMLElement | null} */ (main.querySelector("[data-autofocus]"));
    if (preferred && !section) {
      preferred.focus();
      return;
    }
    if (first && !section) return;
    const heading = /** @type {HTMLElement | null} */ (main.querySelector("h1"));
    const target = section ?? heading ?? main;
    if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
    target.focus();
  }

  /** @param {SessionBody} body @param {Flash} [flash] shown on the page that follows */
  signedIn(body, flash) {
    this.session.set(body);
    if (flash) this.flash = flash;
    this.watchIdle();
    if (body.enrolment_required) {
      this.navigate(SECURITY_PATH, { replace: true });
      return;
    }
    this.navigate(this.takeReturnTo(), { replace: true });
  }

  async signOut() {
    try {
      await this.api.post("/auth/logout");
    } catch (error) {
      // A session the server no longer knows is as good as signed out; anything else is not.
      const code = /** @type {{code?: string}} */ (error).code ?? "";
      if (!["not_signed_in", "session_expired", "session_ended"].includes(code)) throw error;
    }
    this.session.clear();
    this.returnTo = "";
    window.clearTimeout(this.idleTimer);
    this.tabs?.postMessage("signed-out");
    this.navigate("/login", { replace: true, flash: { kind: "success", text: "You have signed out." } });
  }

  /** Any request found the session gone: go to sign-in and say why. @param {string} text */
  sessionLost(text) {
    if (!this.session.signedIn) return;
    this.session.clear();
    window.clearTimeout(this.idleTimer);
    const here = window.location.pathname + window.location.search;
    if (here !== "/login") this.returnTo = here;
    this.navigate("/login", { replace: true, flash: { kind: "warning", text } });
  }

  takeReturnTo() {
    const target = this.returnTo;
    this.returnTo = "";
    const safe = target.startsWith("/") && !target.startsWith("//") && target !== "/login";
    return safe && this.router.match(new URL(target, window.location.origin).pathname)
      ? target
      : "/home";
  }

  /** Re-arm the idle check after any contact with the server. */
  watchIdle() {
    window.clearTimeout(this.idleTimer);
    if (!this.session.signedIn || this.session.idleTimeoutS <= 0) return;
    const delay = (this.session.idleTimeoutS + IDLE_CHECK_GRACE_S) * 1000;
    this.idleTimer = window.setTimeout(() => {
      // On success onActivity re-arms the timer; a 401 leads to sessionLost.
      this.api.get("/auth/session").then(
        (body) => this.session.set(body),
        () => {},
      );
    }, delay);
  }
}

/** The layout of signed-out pages: the page alone, centred. @param {HTMLElement} main */
function bare(main) {
  main.classList.add("main--bare");
  return h("div", { class: "bare" }, main);
}
