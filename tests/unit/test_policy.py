"""The access policy as a matrix: every role x relation to the patient x action.

The table below is the expected outcome, written out once. Columns are the relation of a
patient (P/...) and of a clinician (C/...: each of pcp, psychiatrist, therapist, care_manager
is checked against it), and the admin (A, checked under all four relations). Upper case allows,
lower case denies; the abbreviations are the reason codes:

    OWN own_record    TEAM care_team    BTG break_glass    ADMIN admin    EMERG emergency_access
    own not_own_record    team not_on_care_team    clin not_a_clinician
    noclin admin_no_clinical_access    priv note_private    onteam already_on_care_team
    log access_log_restricted    admin admin_only
"""

from __future__ import annotations

import pytest

from server.auth.roles import CLINICIAN_ROLES, Role
from server.record.policy import (
    ALLOWING,
    Action,
    Reason,
    Relation,
    decide,
    decide_addendum,
    decide_read_note,
)

# fmt: off
EXPECTED = """
action                   P/self  P/team  P/btg   P/none  C/self  C/team  C/btg   C/none  A
read_demographics        OWN     own     own     own     team    TEAM    BTG     team    ADMIN
read_record              OWN     own     own     own     team    TEAM    BTG     team    noclin
write_record             clin    clin    clin    clin    team    TEAM    team    team    clin
enter_screening          OWN     own     own     own     team    TEAM    team    team    clin
manage_visits            clin    clin    clin    clin    team    TEAM    team    team    ADMIN
read_note                OWN     own     own     own     team    TEAM    BTG     team    noclin
write_note               clin    clin    clin    clin    team    TEAM    team    team    clin
sign_note                clin    clin    clin    clin    team    TEAM    team    team    clin
add_addendum             clin    clin    clin    clin    team    TEAM    team    team    clin
read_psychotherapy_note  priv    priv    priv    priv    priv    priv    priv    priv    priv
export_fhir              OWN     own     own     own     team    TEAM    team    team    noclin
manage_care_team         clin    clin    clin    clin    team    TEAM    team    team    ADMIN
break_glass              clin    clin    clin    clin    EMERG   onteam  BTG     EMERG   clin
read_access_log          OWN     own     own     own     log     log     log     log     ADMIN
review_break_glass       admin   admin   admin   admin   admin   admin   admin   admin   ADMIN
"""
# fmt: on

CODES = {
    "OWN": Reason.OWN_RECORD,
    "TEAM": Reason.CARE_TEAM,
    "BTG": Reason.BREAK_GLASS,
    "ADMIN": Reason.ADMIN,
    "EMERG": Reason.EMERGENCY_ACCESS,
    "own": Reason.NOT_OWN_RECORD,
    "team": Reason.NOT_ON_CARE_TEAM,
    "clin": Reason.NOT_A_CLINICIAN,
    "noclin": Reason.ADMIN_NO_CLINICAL_ACCESS,
    "priv": Reason.NOTE_PRIVATE,
    "onteam": Reason.ALREADY_ON_CARE_TEAM,
    "log": Reason.ACCESS_LOG_RESTRICTED,
    "admin": Reason.ADMIN_ONLY,
}
RELATION_OF = {
    "self": Relation.SELF,
    "team": Relation.CARE_TEAM,
    "btg": Relation.BREAK_GLASS,
    "none": Relation.NONE,
}


def _parse() -> dict[tuple[Role, Relation, Action], str]:
    lines = [line.split() for line in EXPECTED.strip().splitlines()]
    header, rows = lines[0][1:], lines[1:]
    table: dict[tuple[Role, Relation, Action], str] = {}
    for action_name, *cells in rows:
        action = Action(action_name)
        assert len(cells) == len(header), action_name
        for column, cell in zip(header, cells, strict=True):
            if column == "A":
                for relation in Relation:
                    table[Role.ADMIN, relation, action] = cell
                continue
            who, relation_name = column.split("/")
            roles = [Role.PATIENT] if who == "P" else sorted(CLINICIAN_ROLES)
            for role in roles:
                table[role, RELATION_OF[relation_name], action] = cell
    return table


TABLE = _parse()
CASES = sorted(TABLE.items(), key=lambda item: (item[0][2], item[0][0], item[0][1]))


def test_the_table_covers_every_role_relation_and_action() -> None:
    assert set(TABLE) == {(r, rel, a) for r in Role for rel in Relation for a in Action}
    assert len(CASES) == len(Role) * len(Relation) * len(Action)


@pytest.mark.parametrize(
    ("key", "cell"), CASES, ids=[f"{a.value}-{r.value}-{rel.value}" for (r, rel, a), _ in CASES]
)
def test_the_policy_matrix(key: tuple[Role, Relation, Action], cell: str) -> None:
    role, relation, action = key
    decision = decide(role, relation, action)
    assert decision.reason is CODES[cell]
    assert decision.allowed is cell.isupper()
    assert decision.code == CODES[cell].value
    if not decision.allowed:
        assert decision.message and decision.message != "Allowed."


def test_allowing_reasons_are_exactly_the_upper_case_ones() -> None:
    # "author" allows too, but only with a note's facts (below), never in the table.
    assert {CODES[c] for c in CODES if c.isupper()} == ALLOWING - {Reason.AUTHOR}


# --- with the facts of one note ----------------------------------------------------------------

NOTE_READS = [
    # role, relation, is_author, private, signed -> reason
    (Role.PSYCHIATRIST, Relation.CARE_TEAM, True, False, False, Reason.AUTHOR),  # own draft
    (Role.PSYCHIATRIST, Relation.NONE, True, False, True, Reason.AUTHOR),  # left the team
    (Role.THERAPIST, Relation.NONE, True, True, True, Reason.AUTHOR),  # own psychotherapy note
    (Role.THERAPIST, Relation.CARE_TEAM, False, True, True, Reason.NOTE_PRIVATE),
    (Role.PATIENT, Relation.SELF, False, True, True, Reason.NOTE_PRIVATE),
    (Role.ADMIN, Relation.NONE, False, True, True, Reason.NOTE_PRIVATE),
    (Role.PCP, Relation.CARE_TEAM, False, False, False, Reason.NOTE_NOT_READABLE),  # a draft
    (Role.PATIENT, Relation.SELF, False, False, False, Reason.NOTE_NOT_READABLE),
    (Role.PCP, Relation.CARE_TEAM, False, False, True, Reason.CARE_TEAM),
    (Role.PSYCHIATRIST, Relation.BREAK_GLASS, False, False, True, Reason.BREAK_GLASS),
    (Role.PATIENT, Relation.SELF, False, False, True, Reason.OWN_RECORD),
    (Role.PATIENT, Relation.NONE, False, False, True, Reason.NOT_OWN_RECORD),
    (Role.CARE_MANAGER, Relation.NONE, False, False, True, Reason.NOT_ON_CARE_TEAM),
    (Role.ADMIN, Relation.NONE, False, False, True, Reason.ADMIN_NO_CLINICAL_ACCESS),
]


@pytest.mark.parametrize(
    ("role", "relation", "is_author", "private", "signed", "reason"), NOTE_READS
)
def test_reading_one_note(
    role: Role, relation: Relation, is_author: bool, private: bool, signed: bool, reason: Reason
) -> None:
    decision = decide_read_note(role, relation, is_author=is_author, private=private, signed=signed)
    assert decision.reason is reason


ADDENDA = [
    # role, relation, author of the note, private -> reason
    (Role.PCP, Relation.CARE_TEAM, False, False, Reason.CARE_TEAM),
    (Role.PCP, Relation.CARE_TEAM, False, True, Reason.NOTE_PRIVATE),
    (Role.THERAPIST, Relation.CARE_TEAM, True, True, Reason.CARE_TEAM),
    (Role.THERAPIST, Relation.NONE, True, True, Reason.NOT_ON_CARE_TEAM),
    (Role.PSYCHIATRIST, Relation.BREAK_GLASS, False, False, Reason.NOT_ON_CARE_TEAM),
    (Role.PSYCHIATRIST, Relation.BREAK_GLASS, False, True, Reason.NOTE_PRIVATE),
    (Role.PATIENT, Relation.SELF, False, True, Reason.NOT_A_CLINICIAN),
    (Role.ADMIN, Relation.CARE_TEAM, False, False, Reason.NOT_A_CLINICIAN),
]


@pytest.mark.parametrize(("role", "relation", "author", "private", "reason"), ADDENDA)
def test_adding_to_one_note(
    role: Role, relation: Relation, author: bool, private: bool, reason: Reason
) -> None:
    decision = decide_addendum(role, relation, is_author_of_note=author, private=private)
    assert decision.reason is reason
