// The consult note editor: choose a template, write one textarea per section, autosave after a
// pause in typing (PUT with base_version; 409 stale_draft means another tab changed it), sign
// (the server's per-section refusals shown beside each section), and read signed notes with
// their addenda. Used by the chart page and beside the call screen on the visit page.

import { h, replaceChildren, uid } from "../dom.js";
import { field } from "../forms.js";
import { messageFor } from "../messages.js";

/**
 * @typedef {{key: string, label: string, required: boolean, help: string, type: string, group: string | null}} Section
 * @typedef {{id: string, title: string, kind: string, private: boolean, sections: Section[], authors: string[] | null, can_author: boolean}} Template
 * @typedef {{id: number, patient_id: number, kind: string, template_id: string | null, title: string,
 *   state: string, version: number, author_id: number, author_name: string, created_at: string,
 *   updated_at: string, signed_at: string | null, body: Record<string, unknown>, addenda: Note[]}} Note
 */

export const AUTOSAVE_DELAY_MS = 1500;

/** @type {Template[] | null} */
let templateCache = null;

/** The note templates (fetched once per page load). @param {import('../api.js').Api} api @param {AbortSignal} signal */
export async function loadTemplates(api, signal) {
  if (!templateCache) {
    const body = await api.get("/note-templates", { signal });
    templateCache = /** @type {Template[]} */ (body.templates);
  }
  return templateCache;
}

/**
 * @param {{api: import('../api.js').Api, signal: AbortSignal, patientId: number, userId: number,
 *   encounterId?: number | null, announce?: (text: string) => void, onChange?: () => void,
 *   templateId?: string, onSigned?: (note: Note) => void}} o
 *   templateId: chosen in the picker to begin with; onSigned: after a note (not an addendum) is signed
 */
export function noteEditor(o) {
  const element = h("section", { class: "card section note-editor", "aria-label": "Note editor" });
  /** @type {ReturnType<typeof setTimeout> | null} */
  let timer = null;
  let destroyed = false;
  o.signal.addEventListener("abort", () => destroy());

  // The open draft's last-chance save, for when the page goes while an autosave is pending.
  /** @type {(() => void) | null} */
  let flushDraft = null;

  function destroy() {
    if (destroyed) return;
    destroyed = true;
    if (timer) clearTimeout(timer);
    timer = null;
    flushDraft?.();
    flushDraft = null;
  }

  const templates = () => loadTemplates(o.api, o.signal);

  /** The template picker: the start of a new note. */
  function showPicker() {
    flushDraft = null;
    if (timer) clearTimeout(timer);
    const error = h("div", { class: "message-slot", role: "alert" });
    const selectId = uid("note-template");
    const select = h("select", { id: selectId, class: "input", name: "template" });
    const start = h("button", { type: "submit", class: "button button--primary", text: "Start note" });
    const form = h(
      "form",
      { class: "form form--compact stack-small" },
      h("div", { class: "field" }, h("label", { class: "field__label", for: selectId, text: "Template" }), select),
      error,
      h("div", { class: "form__actions" }, start),
    );
    replaceChildren(element, h("h2", { class: "section__title", text: "New note" }), form);
    templates().then(
      (all) => {
        // Offer only what the server will let this user start (a caseload review: the
        // psychiatrist's); the full list is still needed to show others' notes.
        const list = authorable(all);
        replaceChildren(select, list.map((t) => h("option", { value: t.id, text: t.title })));
        if (o.templateId && list.some((t) => t.id === o.templateId)) select.value = o.templateId;
        if (!list.length) {
          select.disabled = true;
          start.setAttribute("aria-disabled", "true");
          replaceChildren(error, notice("info", "There is no note template you can start."));
        }
      },
      (e) => !o.signal.aborted && replaceChildren(error, notice("error", messageFor(e))),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (start.getAttribute("aria-disabled") === "true" || !select.value) return;
      start.setAttribute("aria-disabled", "true");
      start.textContent = "Starting…";
      const payload = { template_id: select.value, body: {}, encounter_id: o.encounterId ?? undefined };
      o.api.post(`/patients/${o.patientId}/notes`, payload, { signal: o.signal }).then(
        (note) => {
          o.onChange?.();
          show(note);
        },
        (e) => {
          if (o.signal.aborted) return;
          start.removeAttribute("aria-disabled");
          start.textContent = "Start note";
          replaceChildren(error, notice("error", messageFor(e)));
        },
      );
    });
  }

  /** Load a note by id and show it. @param {number} id */
  async function open(id) {
    if (timer) clearTimeout(timer);
    replaceChildren(element, h("p", { class: "muted", role: "status", text: "Opening the note…" }));
    try {
      await show(await o.api.get(`/notes/${id}`, { signal: o.signal }));
    } catch (e) {
      if (o.signal.aborted) return;
      replaceChildren(element, notice("error", messageFor(e)), newNoteButton());
    }
  }

  function newNoteButton() {
    const button = h("button", { type: "button", class: "button button--secondary", text: "New note" });
    button.addEventListener("click", () => showPicker());
    return button;
  }

  /** @param {Note} note */
  async function show(note) {
    if (destroyed) return;
    const list = await templates().catch(() => /** @type {Template[]} */ ([]));
    const template = list.find((t) => t.id === note.template_id);
    if (note.state === "draft" && note.author_id === o.userId && template) showDraft(note, template);
    else showReadOnly(note, template);
  }

  /** @param {Note} note @param {Template} template */
  function showDraft(note, template) {
    let version = note.version;
    let dirty = false;
    /** @type {Promise<void> | null} */
    let saving = null;
    let stale = false;

    const status = h("p", { class: "note-editor__status", role: "status", "aria-live": "polite", text: "Saved" });
    const staleSlot = h("div", { class: "message-slot", role: "alert" });
    const signSlot = h("div", { class: "message-slot", role: "alert" });
    /** @type {Map<string, import('../forms.js').Field>} */
    const inputs = new Map();
    /** @type {HTMLElement[]} */
    const blocks = [];
    /** @type {HTMLElement | null} */
    let group = null;
    /** @type {string | null} */
    let groupName = null;
    for (const section of template.sections) {
      const f = sectionField(section, note.body[section.key]);
      inputs.set(section.key, f);
      f.input.addEventListener("input", changed);
      f.input.addEventListener("change", changed);
      if (section.group) {
        if (section.group !== groupName) {
          groupName = section.group;
          group = h("fieldset", { class: "fieldset note-editor__group" }, h("legend", { class: "fieldset__legend", text: section.group }));
          blocks.push(group);
        }
        group?.append(f.element);
      } else {
        groupName = null;
        group = null;
        blocks.push(f.element);
      }
    }

    const sign = h("button", { type: "submit", class: "button button--primary", text: "Sign note" });
    const discard = h("button", { type: "button", class: "button button--quiet", text: "Discard draft" });
    const form = h(
      "form",
      { class: "form stack", novalidate: true },
      h("p", { class: "muted", text: "Sections marked * are required to sign. Your draft saves itself as you type." }),
      ...blocks,
      signSlot,
      h("div", { class: "form__actions" }, sign, discard),
    );
    replaceChildren(
      element,
      h(
        "div",
        { class: "note-editor__head" },
        h("h2", { class: "section__title", text: note.title }),
        h("span", { class: "badge badge--attention", text: "Draft" }),
      ),
      status,
      staleSlot,
      form,
      newNoteButton(),
    );

    function body() {
      /** @type {Record<string, unknown>} */
      const out = {};
      for (const [key, f] of inputs) {
        const value = f.input.value;
        if (f.input instanceof HTMLSelectElement) {
          if (value) out[key] = value === "yes";
        } else if (value.trim()) out[key] = value;
      }
      return out;
    }

    flushDraft = () => {
      if (!dirty || stale) return;
      dirty = false;
      // Up to AUTOSAVE_DELAY_MS of typing would be lost otherwise. Not tied to the page's
      // signal, which is aborting now; keepalive lets it outlive a closing tab (up to the
      // browser's 64 KiB, past which a plain request still completes on a move within the app).
      // After a save in flight, so that it goes on that save's version.
      const send = () => {
        const payload = { body: body(), base_version: version };
        const keepalive = JSON.stringify(payload).length < 60_000;
        return o.api.put(`/notes/${note.id}`, payload, { keepalive }).catch(() => {});
      };
      void (saving ? saving.then(send) : send());
    };

    function changed() {
      if (stale || destroyed) return;
      dirty = true;
      status.textContent = "Not saved yet";
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => void save(), AUTOSAVE_DELAY_MS);
    }

    /** Save now (waiting for a save in flight first). @returns {Promise<boolean>} saved */
    async function save() {
      if (timer) clearTimeout(timer);
      timer = null;
      while (saving) await saving;
      if (!dirty) return !stale;
      if (stale) return false;
      dirty = false;
      status.textContent = "Saving…";
      let ok = false;
      // Not cancelled with the page (no signal): leaving must not cut off a save in flight.
      saving = o.api.put(`/notes/${note.id}`, { body: body(), base_version: version }).then(
        (saved) => {
          version = saved.version;
          ok = true;
          if (!dirty) status.textContent = "Saved";
        },
        (e) => {
          if (o.signal.aborted) return;
          if (e.code === "stale_draft") {
            stale = true;
            status.textContent = "Not saved: changed in another tab";
            const reload = h("button", { type: "button", class: "button button--secondary", text: "Reload the note" });
            reload.addEventListener("click", () => void open(note.id));
            replaceChildren(
              staleSlot,
              h(
                "div",
                { class: "notice notice--warning" },
                h("p", { text: "This note was changed in another tab or window, so your latest changes were not saved. Reload it to continue from the saved version (copy anything you want to keep first)." }),
                reload,
              ),
            );
          } else {
            dirty = true;
            const fields = typeof e.fields === "object" ? e.fields : [];
            showFieldErrors(fields);
            status.textContent = `Not saved: ${messageFor(e)}`;
          }
        },
      );
      await saving;
      saving = null;
      return ok;
    }

    /** @param {{field: string, message: string}[]} fields */
    function showFieldErrors(fields) {
      for (const f of inputs.values()) f.setError(null);
      for (const problem of fields) inputs.get(problem.field)?.setError(problem.message);
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (sign.getAttribute("aria-disabled") === "true") return;
      sign.setAttribute("aria-disabled", "true");
      sign.textContent = "Signing…";
      replaceChildren(signSlot);
      try {
        if (!(await save())) {
          if (!stale) replaceChildren(signSlot, notice("error", "The draft could not be saved, so it was not signed."));
          return;
        }
        const signed = await o.api.post(`/notes/${note.id}/sign`, { version }, { signal: o.signal });
        o.announce?.("The note is signed.");
        o.onChange?.();
        o.onSigned?.(signed);
        show(signed);
      } catch (e) {
        if (o.signal.aborted) return;
        const err = /** @type {import('../api.js').ApiError} */ (e);
        const fields = err.fields ?? [];
        showFieldErrors(fields);
        const labels = fields.map((f) => template.sections.find((s) => s.key === f.field)?.label ?? f.field);
        replaceChildren(
          signSlot,
          h(
            "div",
            { class: "notice notice--error" },
            h("p", { text: fields.length ? "The note can't be signed yet. Fill in these sections:" : messageFor(err) }),
            fields.length ? h("ul", {}, labels.map((label) => h("li", { text: label }))) : null,
          ),
        );
        const first = fields.map((f) => inputs.get(f.field)).find(Boolean);
        first?.input.focus();
      } finally {
        sign.removeAttribute("aria-disabled");
        sign.textContent = "Sign note";
      }
    });

    discard.addEventListener("click", async () => {
      if (!window.confirm("Discard this draft? Its text will be deleted.")) return;
      if (timer) clearTimeout(timer);
      stale = true; // stop autosaving
      try {
        await o.api.request("DELETE", `/notes/${note.id}`, undefined, { signal: o.signal });
        o.onChange?.();
        showPicker();
      } catch (e) {
        if (!o.signal.aborted) replaceChildren(signSlot, notice("error", messageFor(e)));
      }
    });
  }

  /** @param {Note} note @param {Template | undefined} template */
  function showReadOnly(note, template) {
    flushDraft = null;
    if (timer) clearTimeout(timer);
    const badge =
      note.state === "signed"
        ? h("span", { class: "badge badge--ok", text: "Signed" })
        : h("span", { class: "badge badge--attention", text: note.state === "draft" ? "Draft" : note.state });
    const byline =
      note.state === "signed" && note.signed_at
        ? `Signed by ${note.author_name}, ${formatWhen(note.signed_at)}. Signed notes can't be changed; add an addendum instead.`
        : `By ${note.author_name}, last saved ${formatWhen(note.updated_at)}.`;
    const addendaList = h(
      "div",
      { class: "stack-small" },
      note.addenda.map((a) =>
        h(
          "div",
          { class: "note-view__addendum" },
          h("p", { class: "muted", text: `Addendum by ${a.author_name}, ${formatWhen(a.signed_at ?? a.updated_at)}${a.state === "signed" ? "" : " (draft)"}` }),
          h("p", { class: "note-view__text", text: String(a.body.text ?? "") }),
        ),
      ),
    );
    const addSlot = h("div", {});
    if (note.state === "signed") {
      const add = h("button", { type: "button", class: "button button--secondary", text: "Add addendum" });
      add.addEventListener("click", () => replaceChildren(addSlot, addendumForm(note)));
      addSlot.append(add);
    }
    replaceChildren(
      element,
      h("div", { class: "note-editor__head" }, h("h2", { class: "section__title", text: note.title }), badge),
      h("p", { class: "muted", text: byline }),
      h("dl", { class: "note-view" }, sectionsOf(note, template).flatMap(([label, value]) => [h("dt", { text: label }), h("dd", { class: "note-view__text", text: value })])),
      note.addenda.length ? h("h3", { class: "subsection__title", text: "Addenda" }) : null,
      addendaList,
      addSlot,
      newNoteButton(),
    );
  }

  /** @param {Note} parent */
  function addendumForm(parent) {
    const text = field({ label: "Addendum", name: "addendum", idPrefix: "addendum", type: "textarea", rows: 4, hint: "What is added or corrected, and why." });
    const slot = h("div", { class: "message-slot", role: "alert" });
    const submit = h("button", { type: "submit", class: "button button--primary", text: "Sign addendum" });
    const form = h(
      "form",
      { class: "form stack-small" },
      text.element,
      slot,
      h("div", { class: "form__actions" }, submit),
    );
    // The draft addendum once made: if signing it fails, the next try signs this one (saving
    // the text first if it changed) rather than making another draft.
    /** @type {{id: number, version: number, text: string} | null} */
    let draft = null;
    text.input.addEventListener("input", () => text.setError(null));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (submit.getAttribute("aria-disabled") === "true") return;
      const value = text.input.value;
      if (!value.trim()) {
        text.setError("Write the addendum.");
        text.input.focus();
        return;
      }
      replaceChildren(slot);
      submit.setAttribute("aria-disabled", "true");
      try {
        if (!draft) {
          const made = await o.api.post(`/notes/${parent.id}/addenda`, { body: { text: value } }, { signal: o.signal });
          draft = { id: made.id, version: made.version, text: value };
        } else if (draft.text !== value) {
          const saved = await o.api.put(`/notes/${draft.id}`, { body: { text: value }, base_version: draft.version }, { signal: o.signal });
          draft = { id: draft.id, version: saved.version, text: value };
        }
        await o.api.post(`/notes/${draft.id}/sign`, {}, { signal: o.signal });
        o.onChange?.();
        await open(parent.id);
      } catch (e) {
        submit.removeAttribute("aria-disabled");
        if (!o.signal.aborted) replaceChildren(slot, notice("error", messageFor(e)));
      }
    });
    queueMicrotask(() => text.input.focus());
    return form;
  }

  showPicker();
  return { element, open, newNote: showPicker, destroy };
}

/**
 * @param {Section} section
 * @param {unknown} value
 */
function sectionField(section, value) {
  const label = [
    section.label,
    section.required ? h("span", { class: "note-editor__required", "aria-hidden": "true", text: " *" }) : null,
    section.required ? h("span", { class: "visually-hidden", text: " (required)" }) : null,
  ];
  const common = { label, name: section.key, idPrefix: `note-${section.key}`, hint: section.help || undefined, required: section.required };
  if (section.type === "yes_no") {
    const options = [{ value: "", label: "Not answered" }, { value: "yes", label: "Yes" }, { value: "no", label: "No" }];
    return field({ ...common, type: "select", options, value: value === true ? "yes" : value === false ? "no" : "" });
  }
  return field({ ...common, type: "textarea", rows: 3, value: typeof value === "string" ? value : "" });
}

/** The templates the signed-in user may start a note from. @param {Template[]} templates */
export function authorable(templates) {
  return templates.filter((t) => t.can_author);
}

/** @param {Note} note @param {Template | undefined} template @returns {[string, string][]} */
export function sectionsOf(note, template) {
  const label = (/** @type {string} */ key) => template?.sections.find((s) => s.key === key)?.label ?? key;
  // The template's order, not the stored body's (which is canonical JSON, keys sorted).
  const order = (/** @type {string} */ key) => {
    const i = template?.sections.findIndex((s) => s.key === key) ?? -1;
    return i < 0 ? Number.MAX_SAFE_INTEGER : i;
  };
  return Object.entries(note.body)
    .sort(([a], [b]) => order(a) - order(b))
    .map(([key, value]) => [label(key), typeof value === "boolean" ? (value ? "Yes" : "No") : String(value)]);
}

/** @param {string} iso */
export function formatWhen(iso) {
  const date = new Date(iso);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** @param {"error" | "warning" | "info" | "success"} kind @param {string} text */
function notice(kind, text) {
  return h("div", { class: `notice notice--${kind}` }, h("p", { text }));
}
