// A small client-side router over the History API. It only maps a location to a route and
// keeps the address bar in step; what to show (and who may see it) is the app's business.

/**
 * @template T
 * @typedef {{path: string, value: T}} RouteDef
 *   path: "/home", "/visit/:id" (":name" matches one segment), or "/docs/*" (the rest)
 */

/**
 * @template T
 * @typedef {{value: T, params: Record<string, string>}} Match
 */

/** @template T */
export class Router {
  /**
   * @param {RouteDef<T>[]} routes
   * @param {(match: Match<T> | null, url: URL) => void} onChange  called for every location
   */
  constructor(routes, onChange) {
    this.routes = routes.map((route) => ({ ...route, pattern: compile(route.path) }));
    this.onChange = onChange;
  }

  start() {
    window.addEventListener("popstate", () => this.resolve());
    document.addEventListener("click", (event) => this.interceptLink(event));
    this.resolve();
  }

  /**
   * Go to an app path (e.g. "/home"); a path no route knows is loaded by the browser instead.
   * @param {string} path
   * @param {{replace?: boolean}} [options]
   */
  navigate(path, { replace = false } = {}) {
    const url = new URL(path, window.location.origin);
    if (url.origin !== window.location.origin || !this.match(url.pathname)) {
      window.location.assign(url.href);
      return;
    }
    if (replace) window.history.replaceState(null, "", url.href);
    else window.history.pushState(null, "", url.href);
    this.resolve();
  }

  resolve() {
    const url = new URL(window.location.href);
    this.onChange(this.match(url.pathname), url);
  }

  /** @param {string} pathname @returns {Match<T> | null} */
  match(pathname) {
    for (const route of this.routes) {
      const found = route.pattern.exec(pathname);
      if (found) return { value: route.value, params: { ...found.groups } };
    }
    return null;
  }

  /** Same-origin links to app pages navigate without a page load. @param {MouseEvent} event */
  interceptLink(event) {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const target = /** @type {Element | null} */ (event.target);
    const link = target?.closest?.("a[href]");
    if (!(link instanceof HTMLAnchorElement)) return;
    if (link.target && link.target !== "_self") return;
    if (link.hasAttribute("download") || link.origin !== window.location.origin) return;
    if (!this.match(link.pathname)) return;
    // A link to a fragment of the current page stays a normal in-page jump (the skip link).
    if (link.pathname === window.location.pathname && link.hash) return;
    event.preventDefault();
    this.navigate(link.pathname + link.search + link.hash);
  }
}

/** @param {string} path */
function compile(path) {
  const source = path
    .split("/")
    .map((segment) => {
      if (segment === "*") return "(?<rest>.*)";
      if (segment.startsWith(":")) return `(?<${segment.slice(1)}>[^/]+)`;
      return segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    })
    .join("/");
  return new RegExp(`^${source}/?$`);
}
