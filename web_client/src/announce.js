// Status messages for screen readers: one polite live region (in index.html) for things that
// happened elsewhere on the page ("Saved", "Signed out"). Errors tied to a form are shown in
// that form's own role="alert" box instead.

/** @param {string} text */
export function announce(text) {
  const region = document.getElementById("announcer");
  if (!region) return;
  // Clearing first makes a repeated message ("Saved", "Saved") be read again.
  region.textContent = "";
  window.setTimeout(() => {
    region.textContent = text;
  }, 50);
}
