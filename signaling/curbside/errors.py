"""What the routing machine refuses, each with a client-safe ``code`` (in brackets)::

    Conflict (409)
    └── CurbsideConflict       [invalid_state]     the status does not allow this step
        ├── AlreadyTaken       [already_taken]     another psychiatrist accepted first
        ├── RequestCancelled   [cancelled]         the PCP cancelled the request
        ├── NotRinging         [not_ringing]       the call-now phase is over (written queue)
        └── AlreadyAnswered    [already_answered]  another psychiatrist answered in writing
    ValidationFailed (422)
    └── ImplausibleMinutes     [invalid_minutes]   attested minutes out of range or impossible
    Forbidden (403)
    ├── NotRung                [not_rung]          never rung, or declined or dropped since
    └── NotParticipant         [not_participant]   not the requesting PCP / accepting psychiatrist

A ``now`` that is not timezone-aware is a programming error (``ValueError``), not one of these.
"""

from __future__ import annotations

from server.errors import Conflict, Forbidden, ValidationFailed


class CurbsideConflict(Conflict):
    default_code = "invalid_state"


class AlreadyTaken(CurbsideConflict):
    default_code = "already_taken"


class RequestCancelled(CurbsideConflict):
    default_code = "cancelled"


class NotRinging(CurbsideConflict):
    default_code = "not_ringing"


class AlreadyAnswered(CurbsideConflict):
    default_code = "already_answered"


class ImplausibleMinutes(ValidationFailed):
    default_code = "invalid_minutes"


class NotRung(Forbidden):
    default_code = "not_rung"


class NotParticipant(Forbidden):
    default_code = "not_participant"
