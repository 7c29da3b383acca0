"""Join links: where they point, when they expire, what state they are in, and which reason
a refused link is given (the most useful first)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from server.visits.links import (
    LinkFacts,
    LinkState,
    RevokedReason,
    join_url,
    link_expiry,
    link_refusal,
    link_state,
)
from server.visits.status import VisitStatus

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
FRESH = LinkFacts(
    expires_at=NOW + timedelta(hours=1),
    revoked_at=None,
    revoked_reason=None,
    used_at=None,
    visit_status=VisitStatus.SCHEDULED,
)


def test_the_token_travels_in_the_fragment() -> None:
    assert join_url("https://liaison.example.org/", "abc") == "https://liaison.example.org/join#abc"


def test_a_link_expires_at_the_visits_end_plus_the_grace() -> None:
    assert link_expiry(NOW, 45, timedelta(minutes=60)) == NOW + timedelta(minutes=105)


@pytest.mark.parametrize(
    ("change", "state"),
    [
        ({}, LinkState.ACTIVE),
        ({"used_at": NOW}, LinkState.OPENED),
        ({"expires_at": NOW}, LinkState.EXPIRED),
        ({"revoked_at": NOW, "revoked_reason": RevokedReason.REVOKED.value}, LinkState.REVOKED),
        ({"revoked_at": NOW, "revoked_reason": RevokedReason.REISSUED.value}, LinkState.REVOKED),
        (
            {"revoked_at": NOW, "revoked_reason": RevokedReason.IDENTITY_LOCKOUT.value},
            LinkState.LOCKED,
        ),
    ],
)
def test_a_links_state(change: dict[str, object], state: LinkState) -> None:
    assert link_state(replace(FRESH, **change), NOW) is state  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "first_use", "code"),
    [
        ({}, True, None),
        ({"used_at": NOW}, False, None),  # an opened link's session carries on
        ({"used_at": NOW}, True, "link_used"),
        ({"expires_at": NOW, "used_at": NOW}, True, "link_expired"),
        ({"visit_status": VisitStatus.WAITING}, True, None),
        ({"visit_status": VisitStatus.IN_PROGRESS}, True, None),
        ({"visit_status": VisitStatus.CANCELLED, "expires_at": NOW}, True, "visit_cancelled"),
        ({"visit_status": VisitStatus.COMPLETED, "used_at": NOW}, False, "visit_ended"),
        ({"visit_status": VisitStatus.NO_SHOW}, True, "visit_ended"),
        (
            {"revoked_at": NOW, "revoked_reason": "revoked", "visit_status": VisitStatus.CANCELLED},
            True,
            "link_revoked",
        ),
        ({"revoked_at": NOW, "revoked_reason": "identity_lockout"}, False, "link_locked"),
    ],
)
def test_a_refused_link_gets_the_most_useful_reason(
    change: dict[str, object], first_use: bool, code: str | None
) -> None:
    problem = link_refusal(replace(FRESH, **change), NOW, first_use=first_use)  # type: ignore[arg-type]
    assert (problem.code if problem else None) == code
    if problem is not None:
        assert problem.status == 410 and "clinic" in problem.message
