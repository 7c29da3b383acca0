"""Reading path and query parameters the same way in every resource's handlers."""

from __future__ import annotations

from aiohttp import web

from server.errors import NotFound


def path_id(request: web.Request, name: str, *, code: str, message: str) -> int:
    """A numeric id from the path; anything else names nothing, so it is a 404."""
    raw = request.match_info[name]
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound(message, code=code)
    return int(raw)
