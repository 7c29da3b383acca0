"""Join links: their kinds, where they point, when they expire, and why one is refused.

The token is 32 random bytes (server.auth.tokens), stored only as its sha256. It travels in the
URL's fragment (``/join#<token>``), which browsers never send to a server, so it appears in no
request line, Referer header or access log; the join page posts it once to exchange it for a
visit session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from server.errors import Gone
from server.visits.status import VisitStatus, closed_error


class LinkKind(StrEnum):
    PATIENT = "patient"
    GUEST = "guest"


class GuestRole(StrEnum):
    INTERPRETER = "interpreter"
    FAMILY = "family"
    PCP = "pcp"
    OTHER = "other"


class RevokedReason(StrEnum):
    REVOKED = "revoked"  # a clinician withdrew it
    REISSUED = "reissued"  # a newer patient link replaced it
    IDENTITY_LOCKOUT = "identity_lockout"  # too many wrong dates of birth


class LinkState(StrEnum):
    ACTIVE = "active"  # issued, not yet opened
    OPENED = "opened"  # exchanged for a visit session
    EXPIRED = "expired"
    REVOKED = "revoked"
    LOCKED = "locked"


def join_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/join#{token}"


def link_expiry(start: datetime, duration_minutes: int, grace: timedelta) -> datetime:
    return start + timedelta(minutes=duration_minutes) + grace


@dataclass(frozen=True)
class LinkFacts:
    """What decides whether a link may still be used, as plain values."""

    expires_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None
    used_at: datetime | None
    visit_status: VisitStatus


class _LinkRow(Protocol):
    @property
    def expires_at(self) -> datetime: ...
    @property
    def revoked_at(self) -> datetime | None: ...
    @property
    def revoked_reason(self) -> str | None: ...
    @property
    def used_at(self) -> datetime | None: ...


def facts_of(link: _LinkRow, visit_status: str) -> LinkFacts:
    """The facts of a stored link (a VisitLink row) and its visit's status."""
    return LinkFacts(
        expires_at=link.expires_at,
        revoked_at=link.revoked_at,
        revoked_reason=link.revoked_reason,
        used_at=link.used_at,
        visit_status=VisitStatus(visit_status),
    )


def link_state(link: LinkFacts, now: datetime) -> LinkState:
    if link.revoked_at is not None:
        if link.revoked_reason == RevokedReason.IDENTITY_LOCKOUT:
            return LinkState.LOCKED
        return LinkState.REVOKED
    if now >= link.expires_at:
        return LinkState.EXPIRED
    return LinkState.OPENED if link.used_at is not None else LinkState.ACTIVE


def link_refusal(link: LinkFacts, now: datetime, *, first_use: bool) -> Gone | None:
    """Why the link cannot be used now, most useful reason first, or None.

    ``first_use``: the link is being exchanged, so having been opened before refuses it too.
    """
    state = link_state(link, now)
    if state is LinkState.LOCKED:
        return Gone(
            "This link was locked after too many attempts to confirm the date of birth. "
            "Contact the clinic for a new link.",
            code="link_locked",
        )
    if state is LinkState.REVOKED:
        return Gone(
            "This link has been withdrawn or replaced. Use the newest link the clinic sent "
            "you, or contact the clinic.",
            code="link_revoked",
        )
    if link.visit_status.is_terminal:
        return closed_error(link.visit_status)
    if state is LinkState.EXPIRED:
        return Gone(
            "This link has expired. Contact the clinic for a new link.", code="link_expired"
        )
    if first_use and state is LinkState.OPENED:
        return Gone(
            "This link has already been opened, and it works only once. Go back to the browser "
            "where you first opened it, or contact the clinic for a new link.",
            code="link_used",
        )
    return None
