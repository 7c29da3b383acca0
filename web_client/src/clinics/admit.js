// "Admit" on the clinic board opens the visit page with ?admit=patient: that page joins the
// room as any clinician does, and lets the patient in as soon as the lobby lists them. Admitting
// from the visit page (not from the board's own socket) means the psychiatrist is in the call,
// camera on, the moment the patient arrives in it, and never leaves a patient alone there.

/** @typedef {import('../rtc/call.js').Call} Call */

export const ADMIT_PARAM = "admit";

/** The visit page's address that admits the waiting patient. @param {number} visitId */
export function admitPath(visitId) {
  return `/visit/${visitId}?${ADMIT_PARAM}=patient`;
}

/**
 * If the page was opened to admit the patient, do it once they are listed; take the request
 * out of the address bar so a reload does not repeat it.
 * @param {Call} call
 * @param {URL} url
 * @param {(text: string) => void} announce
 * @returns {() => void} stop waiting
 */
export function admitOnArrival(call, url, announce) {
  if (url.searchParams.get(ADMIT_PARAM) !== "patient") return () => {};
  window.history.replaceState(window.history.state, "", url.pathname);
  let done = false;
  /** @param {import('../rtc/events.js').LobbyEntry[]} waiting */
  const check = (waiting) => {
    const patient = waiting.find((w) => w.kind === "patient");
    if (done || !patient) return;
    done = true;
    stop();
    call.admit(patient.participant_id).then(
      () => announce(`${patient.display_name} is joining the call.`),
      () => {}, // already admitted elsewhere, or gone: the lobby panel shows where things stand
    );
  };
  const stop = call.on("lobby", check);
  check(call.lobby);
  return stop;
}
