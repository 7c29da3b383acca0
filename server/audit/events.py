"""What an audit event says: who did what to which patient's information, from where, and how
it ended. Pure values, validated on construction so that nothing oversized or free-text reaches
the chain, which can never be edited afterwards."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final, Protocol, TypeGuard

# A detail value: a scalar, or a short list of scalars (e.g. the resource types of an export).
Scalar = str | int | bool | None
DetailValue = Scalar | Sequence[str | int]

# Bytes of canonical JSON a detail may take. Events are written on hot paths and kept forever.
MAX_DETAIL_BYTES: Final = 1024
# Detail strings are codes and ids ("credentials", "Patient"), never prose: a free-text reason
# (break the glass) may name a diagnosis and belongs in its own table, not in the trail.
MAX_DETAIL_STRING: Final = 64
# Keys that would invite personal information or secrets into a trail nobody can edit later.
# A denylist cannot be complete; it catches the likely slips (the review catches the rest).
FORBIDDEN_DETAIL_KEYS: Final = frozenset(
    {
        "password", "token", "secret", "totp_code", "username", "name", "display_name",
        "given_name", "family_name", "date_of_birth", "dob", "email", "phone", "address", "mrn",
        "text", "body", "content", "note",
    }
)  # fmt: skip


class Action(StrEnum):
    """The known actions. The column is a plain string, so adding one needs no migration."""

    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    TOTP_ENROL = "totp.enrol"
    TOTP_RESET = "totp.reset"
    USER_CREATE = "user.create"
    USER_DISABLE = "user.disable"
    USER_ENABLE = "user.enable"
    ROLE_POLICY_CHANGE = "role_policy.change"
    CURBSIDE_POLICY_CHANGE = "curbside_policy.change"
    RECORD_READ = "record.read"
    RECORD_WRITE = "record.write"
    CARE_TEAM_CHANGE = "care_team.change"
    SCREENING_WRITE = "screening.write"
    SAFETY_FLAG_ADDRESS = "safety_flag.address"
    NOTE_READ = "note.read"
    NOTE_WRITE = "note.write"
    NOTE_SIGN = "note.sign"
    NOTE_ADDENDUM = "note.addendum"
    EXPORT_FHIR = "export.fhir"
    EXPORT_CURBSIDE_REPORT = "export.curbside_report"
    BREAK_GLASS = "break_glass"
    VISIT_CREATE = "visit.create"
    VISIT_LINK_CREATE = "visit.link_create"
    VISIT_JOIN = "visit.join"
    VISIT_ADMIT = "visit.admit"
    VISIT_END = "visit.end"
    CURBSIDE_ACCEPT = "curbside.accept"
    KEYS_ADD = "keys.add"
    KEYS_ROTATE = "keys.rotate"


class Outcome(StrEnum):
    OK = "ok"
    DENIED = "denied"
    ERROR = "error"


class LoginFailure(StrEnum):
    """``detail["reason"]`` of a ``login_failed`` event."""

    CREDENTIALS = "credentials"
    TOTP = "totp"
    THROTTLED = "throttled"
    DISABLED = "disabled"


class SignedIn(Protocol):
    """A signed-in user (server.auth.principal.Principal) as far as the trail needs one."""

    @property
    def user_id(self) -> int: ...

    @property
    def role(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: ``id`` is "user:<id>", "link:<id>", "system" or "anonymous"."""

    id: str
    role: str

    @classmethod
    def user(cls, user_id: int, role: str) -> Actor:
        return cls(f"user:{user_id}", str(role))

    @classmethod
    def of(cls, principal: SignedIn) -> Actor:
        return cls.user(principal.user_id, principal.role)

    @classmethod
    def link(cls, link_id: int, role: str) -> Actor:
        """A visit-link holder (patient or guest) who has no account."""
        return cls(f"link:{link_id}", str(role))

    @classmethod
    def system(cls) -> Actor:
        return cls("system", "system")

    @classmethod
    def anonymous(cls) -> Actor:
        """Someone not (yet) identified, e.g. a sign-in for an account that does not exist."""
        return cls("anonymous", "anonymous")


@dataclass(frozen=True, slots=True)
class Event:
    """One audit event as a service states it. ``at``, ``request_id`` and ``client_address``
    are filled in by the audit log when left out (the log's clock; the current request's id and
    client address)."""

    action: Action
    actor: Actor
    outcome: Outcome = Outcome.OK
    patient_id: int | None = None
    target: str | None = None  # "note:5", "visit:9", "session:3"
    client_address: str | None = None
    request_id: str | None = None
    detail: Mapping[str, DetailValue] = field(default_factory=dict)
    at: datetime | None = None
    # The detail as stored and hashed, fixed when the event is made (a later change to the
    # mapping passed in changes nothing).
    detail_json: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Programming errors, raised where the event is built rather than in the flusher.
        _check_length("actor", self.actor.id, 64)
        _check_length("actor role", self.actor.role, 32)
        _check_length("target", self.target, 128)
        _check_length("client_address", self.client_address, 64)
        _check_length("request_id", self.request_id, 64)
        if self.at is not None and self.at.tzinfo is None:
            raise ValueError("an audit event's time must be timezone-aware")
        object.__setattr__(self, "detail_json", canonical_detail(self.detail))


def canonical_detail(detail: Mapping[str, DetailValue]) -> str:
    """The detail as the canonical JSON text that is stored and hashed; refuses what does not
    belong in an audit trail."""
    for key, value in detail.items():
        if key.lower() in FORBIDDEN_DETAIL_KEYS:
            raise ValueError(f"audit detail key {key!r} could carry personal data or a secret")
        if not _is_detail_value(value):
            raise ValueError(
                f"audit detail {key!r} must be a short string, an int, a bool, None or a list "
                f"of short strings and ints"
            )
    text = json.dumps(
        {k: list(v) if _is_list(v) else v for k, v in detail.items()},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
    )
    if len(text) > MAX_DETAIL_BYTES:
        raise ValueError(f"audit detail is {len(text)} bytes; at most {MAX_DETAIL_BYTES}")
    return text


def _is_list(value: object) -> TypeGuard[Sequence[object]]:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _is_detail_value(value: object) -> bool:
    # Floats are refused: their text form is the one part of JSON that is not canonical.
    if isinstance(value, str):
        return len(value) <= MAX_DETAIL_STRING
    if value is None or isinstance(value, int):
        return True
    if _is_list(value):
        return all(_is_detail_value(v) and v is not None and not _is_list(v) for v in value)
    return False


def _check_length(what: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise ValueError(f"audit {what} is longer than {limit} characters")
