// How many written answers a PCP has not acknowledged yet: a count from
// GET /curbside/awaiting-acknowledgement (no patient in it), shown in the header's Curbside link
// and on the home page. Every element marked `data-answers-to-read` shows the latest count.

/** @typedef {import('../app.js').PageContext} PageContext */

/** "1 answer to read", "2 answers to read". @param {number} n */
export function answersToRead(n) {
  return `${n} answer${n === 1 ? "" : "s"} to read`;
}

/**
 * Show `n` in one marked element: "badge" elements the number (the rest of the sentence for
 * screen readers only), others the sentence; hidden at 0.
 * @param {HTMLElement} element
 * @param {number} n
 */
export function showAnswersToRead(element, n) {
  element.hidden = n === 0;
  if (element.dataset.answersToRead === "badge") {
    element.replaceChildren(String(n));
    const rest = document.createElement("span");
    rest.className = "visually-hidden";
    rest.textContent = ` ${answersToRead(n).slice(String(n).length + 1)}`;
    element.append(rest);
  } else {
    element.textContent = answersToRead(n);
  }
}

/**
 * Read the count and show it in every marked element of the page (a failure leaves them as
 * they were: the list on /curbside says the same).
 * @param {PageContext} ctx
 */
export async function refreshAnswersToRead(ctx) {
  let count;
  try {
    ({ count } = await ctx.api.get("/curbside/awaiting-acknowledgement", { signal: ctx.signal }));
  } catch {
    return;
  }
  if (ctx.signal.aborted) return;
  for (const element of document.querySelectorAll("[data-answers-to-read]")) {
    showAnswersToRead(/** @type {HTMLElement} */ (element), count);
  }
}
