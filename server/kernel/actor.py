"""The authenticated caller, and the parsing of ids and bounded integers from the wire."""
from __future__ import annotations

from dataclasses import dataclass

from server.kernel.errors import BadRequest


@dataclass(frozen=True)
class Actor:
    """The authenticated caller."""

    id: int
    display_name: str
    role: str  # global role: instructor | student | admin | recorder
    token_version: int = 0  # the user row's token version when this actor was read

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def parse_id(value, what: str = "id") -> int:
    """Wire ids are strings of digits; anything else is a bad request."""
    if isinstance(value, bool) or value is None:
        raise BadRequest(f"{what} is required")
    if isinstance(value, int) and 0 < value < 2**62:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19:
        return int(value)
    raise BadRequest(f"{what} must be an id string")


def bounded_int(value, what: str, lo: int, hi: int, default: int | None = None) -> int:
    """``value`` as an int in ``lo..hi`` (``default`` when absent); BadRequest otherwise."""
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise BadRequest(f"{what} must be an integer in {lo}..{hi}")
    return value
