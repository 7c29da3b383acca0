// Words and times for visits: status labels, times of day in the person's own time zone, and
// how long someone has been waiting.

/** @type {Record<string, string>} */
export const VISIT_STATUS = {
  scheduled: "Scheduled",
  waiting: "Patient waiting",
  in_progress: "In progress",
  completed: "Completed",
  no_show: "No-show",
  cancelled: "Cancelled",
};

/** Badge style per status (classes in styles.css). @type {Record<string, string>} */
export const STATUS_BADGE = {
  scheduled: "badge--plain",
  waiting: "badge--attention",
  in_progress: "badge--ok",
  completed: "badge--plain",
  no_show: "badge--off",
  cancelled: "badge--off",
};

/** @type {Record<string, string>} */
export const GUEST_ROLES = {
  interpreter: "Interpreter",
  family: "Family member or carer",
  pcp: "Primary care clinician",
  other: "Other guest",
};

/** @type {Record<string, string>} */
export const LINK_STATES = {
  active: "Not opened yet",
  opened: "Opened",
  expired: "Expired",
  revoked: "Withdrawn",
  locked: "Locked",
};

/** @type {Record<string, string>} */
export const PEER_KINDS = { clinician: "Clinician", patient: "Patient", guest: "Guest" };

const TIME = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const DAY = new Intl.DateTimeFormat(undefined, { weekday: "long", day: "numeric", month: "long" });

/** "10:05 AM" in the viewer's time zone. @param {string | Date} when */
export function timeOfDay(when) {
  return TIME.format(new Date(when));
}

/** "Monday, January 5". @param {string | Date} when */
export function dayOf(when) {
  return DAY.format(new Date(when));
}

/** How long since a moment: "less than a minute", "3 minutes", "1 hour 5 minutes". @param {string} since @param {number} [now] */
export function waitedFor(since, now = Date.now()) {
  const minutes = Math.floor(Math.max(0, now - new Date(since).getTime()) / 60_000);
  if (minutes < 1) return "less than a minute";
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  const mins = `${m} minute${m === 1 ? "" : "s"}`;
  if (h === 0) return mins;
  const hours = `${h} hour${h === 1 ? "" : "s"}`;
  return m ? `${hours} ${mins}` : hours;
}

/** The language's name in English, e.g. "es" -> "Spanish". @param {string} tag */
export function languageName(tag) {
  try {
    return new Intl.DisplayNames(["en"], { type: "language" }).of(tag) ?? tag;
  } catch {
    return tag;
  }
}

/** The viewer's local calendar day as YYYY-MM-DD and their IANA time zone. */
export function localDay(now = new Date()) {
  const pad = (/** @type {number} */ n) => String(n).padStart(2, "0");
  const date = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  return { date, zone };
}

/** YYYY-MM-DD from the three parts, or null if they are not a real date. @param {string} y @param {string} m @param {string} d */
export function isoDate(y, m, d) {
  const [year, month, day] = [y, m, d].map((v) => Number.parseInt(v.trim(), 10));
  if (!(year >= 1900 && year <= 9999 && month >= 1 && month <= 12 && day >= 1 && day <= 31)) return null;
  const date = new Date(Date.UTC(year, month - 1, day));
  if (date.getUTCMonth() !== month - 1) return null; // e.g. February 30
  return `${String(year).padStart(4, "0")}-${String(month).padStart(2, "0")}-${String(day).padStart(2, "0")}`;
}
