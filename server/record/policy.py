"""Who may do what with a patient's record: the one access policy. Pure: no I/O, no clock.

A decision depends on three things: the actor's **role**, how the actor **stands** to the
patient (:class:`Relation`, worked out from the database by ``server.record.access``), and the
**action**. It is an allow or a deny, each with a :class:`Reason` whose value is a client-safe
error code (``not_on_care_team``...), so a service raises exactly what the policy said.

The table (``P`` = the patient role; ``C`` = any clinician role: pcp, psychiatrist, therapist,
care_manager, which behave alike here). A relation that does not fit the role (a patient "on
a care team", a clinician "self") counts as ``none``; an admin's relation does not matter.
Upper case allows, lower case denies::

    action                   P/self      P/other     C/care_team C/brk_glass C/none      admin
    read_demographics        OWN_RECORD  not_own     CARE_TEAM   BREAK_GLASS not_on      ADMIN
    read_record              OWN_RECORD  not_own     CARE_TEAM   BREAK_GLASS not_on      no_clin
    write_record             not_clin    not_clin    CARE_TEAM   not_on      not_on      not_clin
    enter_screening          OWN_RECORD  not_own     CARE_TEAM   not_on      not_on      not_clin
    manage_visits            not_clin    not_clin    CARE_TEAM   not_on      not_on      ADMIN
    read_note                OWN_RECORD  not_own     CARE_TEAM   BREAK_GLASS not_on      no_clin
    write_note               not_clin    not_clin    CARE_TEAM   not_on      not_on      not_clin
    sign_note                not_clin    not_clin    CARE_TEAM   not_on      not_on      not_clin
    add_addendum             not_clin    not_clin    CARE_TEAM   not_on      not_on      not_clin
    read_psychotherapy_note  private     private     private     private     private     private
    export_fhir              OWN_RECORD  not_own     CARE_TEAM   not_on      not_on      no_clin
    manage_care_team         not_clin    not_clin    CARE_TEAM   not_on      not_on      ADMIN
    break_glass              not_clin    not_clin    on_team     BREAK_GLASS EMERGENCY   not_clin
    read_access_log          OWN_RECORD  not_own     restricted  restricted  restricted  ADMIN
    review_break_glass       admin_only  admin_only  admin_only  admin_only  admin_only  ADMIN

Codes: OWN_RECORD ``own_record``, CARE_TEAM ``care_team``, BREAK_GLASS ``break_glass``, ADMIN
``admin``, EMERGENCY ``emergency_access``; not_own ``not_own_record``, not_on
``not_on_care_team``, not_clin ``not_a_clinician``, no_clin ``admin_no_clinical_access``,
private ``note_private``, on_team ``already_on_care_team``, restricted ``access_log_restricted``,
admin_only ``admin_only``. ``tests/unit/test_policy.py`` holds the same table and checks every
cell.

In words:

- A clinician acts on a record only while on the patient's care team. Break the glass (a stated
  reason, time-limited, audited, reviewed) lets a clinician off the team *read*: demographics,
  the record and signed notes. Writing, exporting and running the team need the care team.
- A patient reads their own record and signed notes, enters their own screenings, exports
  their record (their right of access) and sees who accessed it.
- An admin runs the clinic (patients' demographics, care teams, visits; break-the-glass review;
  access logs) but reads no clinical content and writes none.
- Note actions in the table are about a *shared* note written by someone else (``read_note``,
  ``add_addendum``: a signed one) or one's own draft (``write_note``: start or save one;
  ``sign_note``). A psychotherapy note is readable only by its author, whoever else asks
  (``read_psychotherapy_note`` is about someone else's); its author reads it whatever their
  relation, as they read all their own notes and drafts. :func:`decide_read_note` and
  :func:`decide_addendum` add those note facts to the table; ``consult_notes.lifecycle`` calls
  them, so the note rules live here once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from server.auth.roles import Role


class Relation(StrEnum):
    """How a user stands to the patient whose record they act on."""

    SELF = "self"  # the user is the patient
    CARE_TEAM = "care_team"  # a clinician on the patient's care team
    BREAK_GLASS = "break_glass"  # a clinician with a current break-the-glass grant
    NONE = "none"


class Action(StrEnum):
    READ_DEMOGRAPHICS = "read_demographics"  # identity, contact details, care team
    READ_RECORD = "read_record"  # problems, medications, allergies, screenings, encounters...
    WRITE_RECORD = "write_record"
    ENTER_SCREENING = "enter_screening"  # answer a PHQ-9 / GAD-7
    MANAGE_VISITS = "manage_visits"  # schedule visits, issue links, run the waiting room
    READ_NOTE = "read_note"
    WRITE_NOTE = "write_note"  # start a note, or save one's own draft
    SIGN_NOTE = "sign_note"
    ADD_ADDENDUM = "add_addendum"
    READ_PSYCHOTHERAPY_NOTE = "read_psychotherapy_note"
    EXPORT_FHIR = "export_fhir"
    MANAGE_CARE_TEAM = "manage_care_team"
    BREAK_GLASS = "break_glass"
    READ_ACCESS_LOG = "read_access_log"
    REVIEW_BREAK_GLASS = "review_break_glass"  # list grants, mark them reviewed (any patient)


class Reason(StrEnum):
    # allowed
    OWN_RECORD = "own_record"
    CARE_TEAM = "care_team"
    BREAK_GLASS = "break_glass"
    ADMIN = "admin"
    AUTHOR = "author"
    EMERGENCY_ACCESS = "emergency_access"
    # denied
    NOT_OWN_RECORD = "not_own_record"
    NOT_ON_CARE_TEAM = "not_on_care_team"
    NOT_A_CLINICIAN = "not_a_clinician"
    ADMIN_NO_CLINICAL_ACCESS = "admin_no_clinical_access"
    NOTE_PRIVATE = "note_private"
    NOTE_NOT_READABLE = "note_not_readable"
    ALREADY_ON_CARE_TEAM = "already_on_care_team"
    ACCESS_LOG_RESTRICTED = "access_log_restricted"
    ADMIN_ONLY = "admin_only"


ALLOWING = frozenset(
    {
        Reason.OWN_RECORD,
        Reason.CARE_TEAM,
        Reason.BREAK_GLASS,
        Reason.ADMIN,
        Reason.AUTHOR,
        Reason.EMERGENCY_ACCESS,
    }
)

# Messages for the person refused; the code is the reason itself.
MESSAGES: dict[Reason, str] = {
    Reason.NOT_OWN_RECORD: "You can see only your own record.",
    Reason.NOT_ON_CARE_TEAM: "You are not on this patient's care team.",
    Reason.NOT_A_CLINICIAN: "Only clinicians can do this.",
    Reason.ADMIN_NO_CLINICAL_ACCESS: "Administrators do not see clinical information.",
    Reason.NOTE_PRIVATE: "Only its author can read or add to a psychotherapy note.",
    Reason.NOTE_NOT_READABLE: "You may not read this note.",
    Reason.ALREADY_ON_CARE_TEAM: "You are on this patient's care team already.",
    Reason.ACCESS_LOG_RESTRICTED: "Only the patient and administrators see the access log.",
    Reason.ADMIN_ONLY: "Only administrators can do this.",
}


@dataclass(frozen=True, slots=True)
class Decision:
    reason: Reason

    @property
    def allowed(self) -> bool:
        return self.reason in ALLOWING

    @property
    def code(self) -> str:
        return self.reason.value

    @property
    def message(self) -> str:
        return MESSAGES.get(self.reason, "Allowed.")


_A = Action
_R = Reason

# What a clinician may do, by relation. Absent: not on the care team.
_CLINICIAN: dict[Relation, dict[Action, Reason]] = {
    Relation.CARE_TEAM: {
        **{a: _R.CARE_TEAM for a in _A},
        _A.READ_PSYCHOTHERAPY_NOTE: _R.NOTE_PRIVATE,
        _A.BREAK_GLASS: _R.ALREADY_ON_CARE_TEAM,
        _A.READ_ACCESS_LOG: _R.ACCESS_LOG_RESTRICTED,
        _A.REVIEW_BREAK_GLASS: _R.ADMIN_ONLY,
    },
    # Break the glass opens the record for reading, and renews itself; nothing else.
    Relation.BREAK_GLASS: {
        _A.READ_DEMOGRAPHICS: _R.BREAK_GLASS,
        _A.READ_RECORD: _R.BREAK_GLASS,
        _A.READ_NOTE: _R.BREAK_GLASS,
        _A.BREAK_GLASS: _R.BREAK_GLASS,
    },
    Relation.NONE: {_A.BREAK_GLASS: _R.EMERGENCY_ACCESS},
}
_CLINICIAN_ANYWHERE: dict[Action, Reason] = {
    _A.READ_PSYCHOTHERAPY_NOTE: _R.NOTE_PRIVATE,
    _A.READ_ACCESS_LOG: _R.ACCESS_LOG_RESTRICTED,
    _A.REVIEW_BREAK_GLASS: _R.ADMIN_ONLY,
}

# What a patient may do with their own record; any other patient's is refused the same way.
_PATIENT_OWN = frozenset(
    {
        _A.READ_DEMOGRAPHICS,
        _A.READ_RECORD,
        _A.ENTER_SCREENING,
        _A.READ_NOTE,
        _A.EXPORT_FHIR,
        _A.READ_ACCESS_LOG,
    }
)

_ADMIN: dict[Action, Reason] = {
    _A.READ_DEMOGRAPHICS: _R.ADMIN,
    _A.MANAGE_VISITS: _R.ADMIN,
    _A.MANAGE_CARE_TEAM: _R.ADMIN,
    _A.READ_ACCESS_LOG: _R.ADMIN,
    _A.REVIEW_BREAK_GLASS: _R.ADMIN,
    _A.READ_RECORD: _R.ADMIN_NO_CLINICAL_ACCESS,
    _A.READ_NOTE: _R.ADMIN_NO_CLINICAL_ACCESS,
    _A.EXPORT_FHIR: _R.ADMIN_NO_CLINICAL_ACCESS,
    _A.READ_PSYCHOTHERAPY_NOTE: _R.NOTE_PRIVATE,
}


def decide(role: Role, relation: Relation, action: Action) -> Decision:
    """The table above: may ``role``, standing ``relation`` to a patient, do ``action``?"""
    if role is Role.ADMIN:
        return Decision(_ADMIN.get(action, _R.NOT_A_CLINICIAN))
    if role is Role.PATIENT:
        if action is _A.READ_PSYCHOTHERAPY_NOTE:
            return Decision(_R.NOTE_PRIVATE)
        if action is _A.REVIEW_BREAK_GLASS:
            return Decision(_R.ADMIN_ONLY)
        if action not in _PATIENT_OWN:
            return Decision(_R.NOT_A_CLINICIAN)
        return Decision(_R.OWN_RECORD if relation is Relation.SELF else _R.NOT_OWN_RECORD)
    assert role.is_clinician, role
    if relation is Relation.SELF:
        relation = Relation.NONE  # a clinician is never "self" to a record they act on
    if action in _CLINICIAN_ANYWHERE:
        return Decision(_CLINICIAN_ANYWHERE[action])
    return Decision(_CLINICIAN[relation].get(action, _R.NOT_ON_CARE_TEAM))


def decide_read_note(
    role: Role, relation: Relation, *, is_author: bool, private: bool, signed: bool
) -> Decision:
    """Reading one note or addendum: its author always may; nobody else reads a psychotherapy
    note or a draft; otherwise the table's ``read_note``."""
    if is_author:
        return Decision(_R.AUTHOR)
    if private:
        return decide(role, relation, _A.READ_PSYCHOTHERAPY_NOTE)
    if not signed:
        return Decision(_R.NOTE_NOT_READABLE)
    return decide(role, relation, _A.READ_NOTE)


def decide_addendum(
    role: Role, relation: Relation, *, is_author_of_note: bool, private: bool
) -> Decision:
    """Adding to a signed note: a clinician on the care team; to a psychotherapy note, its
    author only (and still on the care team)."""
    if not role.is_clinician:
        return Decision(_R.NOT_A_CLINICIAN)
    if private and not is_author_of_note:
        return Decision(_R.NOTE_PRIVATE)
    return decide(role, relation, _A.ADD_ADDENDUM)
