"""Named errors, mapped once to protocol error codes and HTTP statuses."""
from __future__ import annotations

HTTP_STATUS = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "room_archived": 409,
    "gone": 410,
    "too_large": 413,
    "unsupported_media_type": 415,
    "rate_limited": 429,
    "unavailable": 503,
    "internal": 500,
}


class PodiumError(Exception):
    """An error with a protocol code (PROTOCOL §2) and a human reason."""

    code = "internal"

    def __init__(self, reason: str, code: str | None = None):
        super().__init__(reason)
        self.reason = reason
        if code:
            self.code = code

    @property
    def status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)


class BadRequest(PodiumError):
    code = "bad_request"


class Unauthorized(PodiumError):
    code = "unauthorized"


class Forbidden(PodiumError):
    code = "forbidden"


class NotFound(PodiumError):
    code = "not_found"


class Conflict(PodiumError):
    code = "conflict"


class TooLarge(PodiumError):
    code = "too_large"


class RateLimited(PodiumError):
    """Over a budget; ``retry_after`` says in how many seconds the request would pass."""

    code = "rate_limited"

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after
