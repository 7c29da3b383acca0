"""Errors that reach a client.

    LiaisonError(message, code=, detail=)   client-safe code and message; `detail` stays server-side
    ├── BadRequest            400  malformed request (e.g. body is not JSON)
    ├── Unauthenticated       401  no valid session, wrong credentials, second factor missing
    ├── Forbidden             403  authenticated but not allowed (role, CSRF, care team)
    ├── NotFound              404
    ├── Conflict              409  state does not allow the change (already signed, taken)
    ├── Gone                  410  expired or revoked link
    ├── PayloadTooLarge       413
    ├── UnsupportedMediaType  415
    ├── ValidationFailed      422  body parsed but fields are invalid; `fields` lists them
    └── TooManyRequests       429  throttled; `retry_after` seconds

One middleware (server.http) turns these into ``{"error": {"code", "message"}}`` responses;
socket handlers turn them into ``{ok: false, error}`` acks.
"""

from __future__ import annotations

from typing import Any, ClassVar


class LiaisonError(Exception):
    status: ClassVar[int] = 400
    default_code: ClassVar[str] = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        detail: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.message = message
        # Server-only context for logs; never sent to the client.
        self.detail = detail
        self.extra = extra or {}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.extra}


class BadRequest(LiaisonError):
    status = 400
    default_code = "bad_request"


class Unauthenticated(LiaisonError):
    status = 401
    default_code = "unauthenticated"


class Forbidden(LiaisonError):
    status = 403
    default_code = "forbidden"


class NotFound(LiaisonError):
    status = 404
    default_code = "not_found"


class Conflict(LiaisonError):
    status = 409
    default_code = "conflict"


class Gone(LiaisonError):
    status = 410
    default_code = "gone"


class PayloadTooLarge(LiaisonError):
    status = 413
    default_code = "payload_too_large"


class UnsupportedMediaType(LiaisonError):
    status = 415
    default_code = "unsupported_media_type"


class ValidationFailed(LiaisonError):
    status = 422
    default_code = "validation_failed"


class TooManyRequests(LiaisonError):
    status = 429
    default_code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code, extra={"retry_after": retry_after})
        self.retry_after = retry_after
