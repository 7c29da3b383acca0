"""The append-only, hash-chained audit trail.

Services state what happened as an ``Event`` and write it with ``AuditLog.record`` (group
commit: returns once durable) or, for a change to health information, ``AuditLog.record_in``
(inside the change's own transaction). ``verify_chain`` checks the chain; ``liaison audit
verify`` runs it.

    events.py   Action, Outcome, Actor, Event: what is said, validated (no PHI, no prose)
    chain.py    the canonical encoding and the sha256 link (pure)
    log.py      AuditLog: the group-commit writer, record_in, accesses_for_patient
    verify.py   verify_chain -> VerifyReport of changed / removed / inserted rows

Errors: ``AuditUnavailable`` (a LiaisonError, 503) when an event cannot be made durable; the
action it records must then fail too.
"""

from server.audit.chain import GENESIS_HASH
from server.audit.events import Action, Actor, Event, LoginFailure, Outcome
from server.audit.log import Access, AuditLog, AuditUnavailable
from server.audit.verify import Problem, ProblemKind, VerifyReport, verify_chain

__all__ = [
    "GENESIS_HASH",
    "Access",
    "Action",
    "Actor",
    "AuditLog",
    "AuditUnavailable",
    "Event",
    "LoginFailure",
    "Outcome",
    "Problem",
    "ProblemKind",
    "VerifyReport",
    "verify_chain",
]
