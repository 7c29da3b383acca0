"""Who is making a request, as resolved from their session."""

from __future__ import annotations

from dataclasses import dataclass

from server.auth.roles import Role


@dataclass(frozen=True)
class Principal:
    user_id: int
    username: str
    display_name: str
    role: Role
    session_id: int
    enrolment_pending: bool
    totp_enrolled: bool
    csrf_token: str
