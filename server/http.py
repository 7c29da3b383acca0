"""HTTP plumbing shared by every route: request ids, error mapping, body limits, headers.

Every error a client sees is ``{"error": {"code", "message"}}``; the server-only detail of a
LiaisonError and the traceback of an unexpected one go to the log with the request id.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from server.errors import LiaisonError, PayloadTooLarge
from server.logs import request_id_var

log = logging.getLogger("liaison.http")
access_log = logging.getLogger("liaison.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID_KEY = web.RequestKey("request_id", str)
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "too_many_requests",
}

# The web client is served from this origin only; media and sockets stay on it too.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; connect-src 'self' ws: wss:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)


def error_response(status: int, code: str, message: str, **extra: Any) -> web.Response:
    response = web.json_response(
        {"error": {"code": code, "message": message, **extra}}, status=status
    )
    if "retry_after" in extra:
        response.headers["Retry-After"] = str(extra["retry_after"])
    return response


def set_private_cookie(
    response: web.StreamResponse, name: str, value: str, max_age: int, secure: bool
) -> None:
    """A cookie only this origin's requests carry and no script can read."""
    response.set_cookie(
        name, value, max_age=max_age, path="/", httponly=True, secure=secure, samesite="Strict"
    )


def make_middlewares(max_body_bytes: int) -> list[Any]:
    @web.middleware
    async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
        incoming = request.headers.get("X-Request-Id", "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else secrets.token_hex(8)
        request[REQUEST_ID_KEY] = request_id
        token = request_id_var.set(request_id)
        try:
            response = await _handle_errors(request, handler)
        finally:
            request_id_var.reset(token)
        response.headers["X-Request-Id"] = request_id
        _secure_headers(request, response)
        return response

    @web.middleware
    async def body_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        # Refuse on the declared length, before a byte of the body is read.
        if request.content_length is not None and request.content_length > max_body_bytes:
            raise PayloadTooLarge(f"request body is larger than {max_body_bytes} bytes")
        return await handler(request)

    return [request_context, body_limit]


async def _handle_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except LiaisonError as exc:
        if exc.detail:
            log.info("request refused", extra={"code": exc.code, "detail": exc.detail})
        response = error_response(exc.status, exc.code, exc.message, **exc.extra)
        if exc.status >= 500:
            log.error("service unavailable", extra={"code": exc.code})
        return response
    except web.HTTPException as exc:
        if exc.status < 400 or not _wants_json(request, exc):
            raise
        code = _STATUS_CODES.get(exc.status, "http_error")
        return error_response(exc.status, code, exc.reason)
    except Exception:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "Something went wrong on our side.")


def _wants_json(request: web.Request, exc: web.HTTPException) -> bool:
    return request.path.startswith("/api/") or exc.status == 413


def _secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault(
        "Permissions-Policy", "camera=(self), microphone=(self), display-capture=(self)"
    )
    if request.path.startswith("/api/"):
        headers.setdefault("Cache-Control", "no-store")
    if request.secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")


class AccessLogger(AbstractAccessLogger):
    """One line per request: method, route path (never the query string), status, duration."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status,
            extra={
                "request_id": request.get(REQUEST_ID_KEY),
                "status": response.status,
                "duration_ms": round(time * 1000, 1),
            },
        )
