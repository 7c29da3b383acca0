// A few helpers for building DOM without innerHTML: text always goes in as text, so nothing a
// user or the server typed can become markup. The one exception, trustedSvg(), is for the SVG
// the server draws (the TOTP QR code) and still strips anything active from it.

/**
 * @typedef {string | number | Node | null | undefined | false} Child
 * @typedef {Record<string, unknown>} Props
 */

/**
 * Create an element. Props: `class`, `text`, `dataset`, `on` ({event: handler}), booleans
 * (`disabled: true`), `aria-*` / other attributes as strings; null/undefined/false are skipped.
 *
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Props} [props]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = String(value);
    else if (key === "text") el.textContent = String(value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "on") {
      for (const [event, handler] of Object.entries(/** @type {object} */ (value))) {
        el.addEventListener(event, handler);
      }
    } else if (key === "style") {
      throw new Error("set styles in styles.css: the Content-Security-Policy forbids inline styles");
    } else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

/**
 * @param {Node} parent
 * @param {(Child | Child[])[]} children
 */
export function append(parent, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace everything inside `parent`. @param {Node} parent @param {...(Child | Child[])} children */
export function replaceChildren(parent, ...children) {
  while (parent.firstChild) parent.removeChild(parent.firstChild);
  append(parent, children);
}

/**
 * Make these the children of `parent`, in this order, leaving alone the ones already there in
 * that order. For live pages: a form kept across renders stays in place, so what is being typed
 * in it keeps its text, caret and focus (taking a focused element out of the page drops focus).
 *
 * @param {Node} parent
 * @param {...(Child | Child[])} children
 */
export function keepChildren(parent, ...children) {
  const wanted = children.flat().filter((c) => c !== null && c !== undefined && c !== false);
  const nodes = wanted.map((c) => (c instanceof Node ? c : document.createTextNode(String(c))));
  const keep = new Set(nodes);
  for (const child of [...parent.childNodes]) if (!keep.has(child)) parent.removeChild(child);
  nodes.forEach((node, index) => {
    if (parent.childNodes[index] !== node) parent.insertBefore(node, parent.childNodes[index] ?? null);
  });
}

/**
 * Run `render`, which rebuilds part of `container` from fresh data; if the focus was on a link
 * or button in it, put it on the rebuilt one that matches (same keyed item, same target and
 * words), so a live update doesn't throw a keyboard user back to the top of the page. Items
 * are keyed with a `data-key` attribute.
 *
 * @param {HTMLElement} container
 * @param {() => void} render
 */
export function keepFocus(container, render) {
  const before = document.activeElement;
  const key = before instanceof HTMLElement && container.contains(before) ? focusKey(before) : null;
  render();
  if (key === null || (before && container.contains(before))) return;
  const again = [...container.querySelectorAll("a, button, input, select, textarea, [tabindex]")].find(
    (el) => el instanceof HTMLElement && focusKey(el) === key,
  );
  /** @type {HTMLElement | undefined} */ (again)?.focus({ preventScroll: true });
}

/** @param {HTMLElement} el */
function focusKey(el) {
  const item = /** @type {HTMLElement | null} */ (el.closest("[data-key]"));
  return [item?.dataset.key ?? "", el.tagName, el.getAttribute("href") ?? "", el.textContent ?? ""].join("|");
}

let nextId = 0;
/** A document-unique id for label/aria wiring. @param {string} prefix */
export function uid(prefix) {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/**
 * Turn SVG markup the server generated into an element. Parsed as HTML so that an <svg> without
 * an xmlns still lands in the SVG namespace; scripts, foreign content, event handlers, inline
 * styles and links are removed on the way in.
 *
 * @param {string} markup
 * @returns {SVGSVGElement}
 */
export function trustedSvg(markup) {
  const template = document.createElement("template");
  template.innerHTML = markup;
  const svg = template.content.firstElementChild;
  if (!(svg instanceof SVGSVGElement)) throw new Error("expected an <svg> element");
  for (const el of svg.querySelectorAll("script, foreignObject, a, use, image, style")) el.remove();
  for (const el of [svg, ...svg.querySelectorAll("*")]) {
    for (const attr of [...el.attributes]) {
      const name = attr.name.toLowerCase();
      if (name.startsWith("on") || name === "style" || name.endsWith("href")) {
        el.removeAttribute(attr.name);
      }
    }
  }
  // Without a viewBox the drawing would be cropped, not scaled, when CSS sizes it.
  const width = svg.getAttribute("width");
  const height = svg.getAttribute("height");
  if (!svg.hasAttribute("viewBox") && width && height) {
    svg.setAttribute("viewBox", `0 0 ${parseFloat(width)} ${parseFloat(height)}`);
  }
  return /** @type {SVGSVGElement} */ (document.importNode(svg, true));
}
