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
