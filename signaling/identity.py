"""Who is on the other end of a socket: a signed-in user, or the holder of a visit link."""

from __future__ import annotations

from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any


@dataclass(frozen=True)
class Identity:
    participant_id: str  # "user:12" or "link:34": the room's name for this identity
    display_name: str
    role: str  # a user's role, or "patient" / "guest" for link holders
    user_id: int | None = None
    session_id: int | None = None  # the login session, touched while the call lasts
    link_id: int | None = None
    visit_id: int | None = None  # link holders are bound to exactly one visit

    @property
    def is_user(self) -> bool:
        return self.user_id is not None


def cookies_from_environ(environ: dict[str, Any]) -> dict[str, str]:
    raw = environ.get("HTTP_COOKIE", "")
    if not raw:
        return {}
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}
