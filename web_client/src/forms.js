// Form building blocks with the accessibility wiring done once: every input has a <label>,
// hints and errors are tied to it with aria-describedby, an invalid field says so with
// aria-invalid, and messages appear in a live region that exists before they do.

import { h, replaceChildren, uid } from "./dom.js";

/**
 * @typedef {object} FieldOptions
 * @property {import('./dom.js').Child | import('./dom.js').Child[]} label  text, or nodes (e.g. a marker)
 * @property {string} name
 * @property {string} [type]          input type (default "text"); "select" makes a <select>,
 *                                    "textarea" a <textarea>
 * @property {string} [idPrefix]      the start of the input's id (default "field-<name>")
 * @property {string} [hint]          shown under the label, read with the field
 * @property {boolean} [required]     said to assistive technology (aria-required); the label
 *                                    says it to everyone else in the caller's words
 * @property {string} [autocomplete]
 * @property {string} [inputmode]
 * @property {string} [placeholder]
 * @property {number} [maxlength]
 * @property {number} [rows]          for type "textarea"
 * @property {string} [value]
 * @property {{value: string, label: string}[]} [options]  for type "select"
 * @property {Record<string, string | boolean>} [attrs]    any other attributes
 */

/**
 * @typedef {object} Field
 * @property {HTMLElement} element   the wrapper to put in the form
 * @property {HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement} input
 * @property {(message: string | null) => void} setError
 */

/**
 * A labelled input, select or textarea with an optional hint and an error slot.
 * @param {FieldOptions} o
 * @returns {Field}
 */
export function field(o) {
  const id = uid(o.idPrefix ?? `field-${o.name}`);
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  // aria-required rather than required: our forms check themselves (novalidate) and say what
  // is missing in words next to the field, where the browser's own bubble would not.
  const common = {
    id,
    name: o.name,
    class: "input",
    "aria-required": o.required ? "true" : null,
    placeholder: o.placeholder,
    maxlength: o.maxlength === undefined ? null : String(o.maxlength),
  };
  /** @type {HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement} */
  let input;
  if (o.type === "select") {
    input = h(
      "select",
      { ...common, ...o.attrs },
      (o.options ?? []).map((opt) => h("option", { value: opt.value, text: opt.label })),
    );
    if (o.value !== undefined) input.value = o.value;
  } else if (o.type === "textarea") {
    // Long answers share one look, styled under .note-editor__text, where it began.
    input = h("textarea", {
      ...common,
      class: "input note-editor__text",
      rows: o.rows === undefined ? null : String(o.rows),
      autocomplete: o.autocomplete,
      inputmode: o.inputmode,
      ...o.attrs,
    });
    // A textarea's text is its content, not a value attribute.
    if (o.value !== undefined) input.value = o.value;
  } else {
    input = h("input", {
      ...common,
      type: o.type ?? "text",
      autocomplete: o.autocomplete,
      inputmode: o.inputmode,
      value: o.value,
      ...o.attrs,
    });
  }
  const error = h("p", { id: errorId, class: "field__error", hidden: true });
  const describedBy = [o.hint ? hintId : null, errorId].filter(Boolean).join(" ");
  input.setAttribute("aria-describedby", describedBy);
  const element = h(
    "div",
    { class: "field" },
    h("label", { class: "field__label", for: id }, o.label),
    o.hint ? h("p", { id: hintId, class: "field__hint", text: o.hint }) : null,
    error,
    input,
  );
  return {
    element,
    input,
    setError: fieldError(element, input, error),
  };
}

/**
 * How a field shows its error: the message in its error slot (read with the input, through
 * aria-describedby), the input marked aria-invalid and the field styled invalid; null clears.
 *
 * @param {HTMLElement} element  the field's wrapper
 * @param {HTMLElement} input
 * @param {HTMLElement} error    the field's error slot
 * @returns {(message: string | null) => void}
 */
export function fieldError(element, input, error) {
  return (message) => {
    error.textContent = message ?? "";
    error.hidden = !message;
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
    element.classList.toggle("field--invalid", Boolean(message));
  };
}

/**
 * A live region for a form's or a page's messages. It is always in the page (empty when
 * there is nothing to say) so that screen readers announce what is put into it.
 *
 * @param {"alert" | "status"} [role]
 */
export function messageSlot(role = "alert") {
  const element = h("div", { class: "message-slot", role });
  return {
    element,
    /**
     * @param {"error" | "success" | "info" | "warning"} kind
     * @param {string} text
     * @param {...(Node | string)} more  extra content, e.g. a link saying what to do next
     */
    show(kind, text, ...more) {
      replaceChildren(
        element,
        h("div", { class: `notice notice--${kind}` }, h("p", { text }), ...more),
      );
    },
    clear() {
      replaceChildren(element);
    },
  };
}

/**
 * A submit button that shows progress without losing focus: while busy it is marked
 * aria-disabled (a disabled button would drop keyboard focus) and the form ignores submits.
 *
 * @param {string} label
 * @param {string} busyLabel
 * @param {string} [variant]  "primary" (default), "secondary", "danger"
 */
export function submitButton(label, busyLabel, variant = "primary") {
  const button = h("button", { type: "submit", class: `button button--${variant}`, text: label });
  return {
    button,
    get busy() {
      return button.getAttribute("aria-disabled") === "true";
    },
    /** @param {boolean} busy */
    setBusy(busy) {
      button.textContent = busy ? busyLabel : label;
      if (busy) button.setAttribute("aria-disabled", "true");
      else button.removeAttribute("aria-disabled");
    },
  };
}

/** Move focus to the first invalid field. @param {Field[]} fields */
export function focusFirstInvalid(fields) {
  const invalid = fields.find((f) => f.input.getAttribute("aria-invalid") === "true");
  invalid?.input.focus();
  return Boolean(invalid);
}
