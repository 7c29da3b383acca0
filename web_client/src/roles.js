// Role names as people read them, and what each role's home page will hold.

/** @typedef {import('./session.js').Role} Role */

/** @type {Record<Role, {label: string, plural: string}>} */
export const ROLE_NAMES = {
  patient: { label: "Patient", plural: "Patients" },
  pcp: { label: "Primary care clinician", plural: "Primary care clinicians" },
  psychiatrist: { label: "Psychiatrist", plural: "Psychiatrists" },
  therapist: { label: "Therapist", plural: "Therapists" },
  care_manager: { label: "Care manager", plural: "Care managers" },
  admin: { label: "Administrator", plural: "Administrators" },
};

/** @type {Role[]} */
export const ROLES = ["patient", "pcp", "psychiatrist", "therapist", "care_manager", "admin"];

/** @param {string} role */
export function roleLabel(role) {
  return ROLE_NAMES[/** @type {Role} */ (role)]?.label ?? role;
}

/**
 * The sections of each role's home page. Until a feature ships, its section says in a plain
 * sentence what will appear there.
 *
 * @typedef {{id: string, title: string, empty: string}} HomeSection
 * @type {Record<Role, HomeSection[]>}
 */
export const HOME_SECTIONS = {
  psychiatrist: [
    {
      id: "visits",
      title: "Today's visits",
      empty:
        "Your video visits for today will appear here, and you'll see when a patient is waiting to be let in.",
    },
    {
      id: "curbside",
      title: "Curbside requests",
      empty:
        "When you're on call, keep the on-call dashboard open: questions from primary care clinicians ring there, and the written queue waits for answers.",
    },
    {
      id: "notes",
      title: "Notes to sign",
      empty: "Consult notes you have started but not yet signed will be listed here.",
    },
    {
      id: "clinics",
      title: "Clinics",
      empty:
        "Your remote clinic sessions, each with a live board: who is waiting, their pre-visit PHQ-9 and GAD-7, and safety flags first.",
    },
  ],
  pcp: [
    {
      id: "visits",
      title: "Today's visits",
      empty: "Your video visits for today will appear here, with who is in the waiting room.",
    },
    {
      id: "ask",
      title: "Ask a psychiatrist",
      empty:
        "Reach the on-call psychiatrist for a quick curbside consult about a patient, by video now or in writing.",
    },
    {
      id: "patients",
      title: "My patients",
      empty:
        "Patients whose care team you are on will be listed here, with their latest recommendations.",
    },
  ],
  therapist: [
    {
      id: "visits",
      title: "Today's sessions",
      empty: "Your video sessions for today will appear here, with who is in the waiting room.",
    },
    {
      id: "patients",
      title: "My patients",
      empty: "Patients whose care team you are on will be listed here.",
    },
  ],
  care_manager: [
    {
      id: "visits",
      title: "Today's visits",
      empty: "Video visits you take part in today will appear here.",
    },
    {
      id: "caseload",
      title: "Caseload",
      empty:
        "The registry of the patients you follow: baseline and latest PHQ-9 and GAD-7, contacts and minutes, with safety, not improving and overdue contacts flagged.",
    },
    {
      id: "clinics",
      title: "Clinics",
      empty: "Create psychiatrists' clinic sessions and book patients into their slots; each booking sends the patient an invitation.",
    },
    {
      id: "follow-ups",
      title: "Follow-ups due",
      empty: "Patients due for a check-in or a repeat screening will be listed here.",
    },
  ],
  patient: [
    {
      id: "visits",
      title: "Your visits",
      empty:
        "When your care team schedules a video visit, it will appear here with a button to join.",
    },
    {
      id: "care-team",
      title: "Your care team",
      empty: "The people looking after you will be listed here.",
    },
  ],
  admin: [
    {
      id: "accounts",
      title: "Accounts",
      empty: "Create accounts, disable them, and reset a lost second factor.",
    },
    {
      id: "rules",
      title: "Sign-in rules",
      empty: "Choose which roles must use a second factor (an authenticator app) to sign in.",
    },
  ],
};
