"""Bodies and path values of /api/provision/ parsed into typed values (BadRequest with the
reason otherwise), and the answers' shapes."""
from __future__ import annotations

import re
from dataclasses import dataclass

from server.kernel.actor import bounded_int
from server.kernel.errors import BadRequest
from server.kernel.wire import user_wire

MAX_EXTERNAL_ID = 255
EMAIL_RE = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")
_UNSET = object()


@dataclass(frozen=True)
class UserSpec:
    display_name: str
    email: object  # a string, None (cleared) or _UNSET (kept)
    role: str | None  # None: kept (student for a new user)


@dataclass(frozen=True)
class RoomSpec:
    name: str
    kind: str | None  # None: course for a new room, kept for an existing one


def external_id(raw: str, what: str) -> str:
    """A path's external id (already URL-decoded): 1-255 characters, no control characters."""
    if not raw or len(raw) > MAX_EXTERNAL_ID or any(ord(ch) < 32 or ord(ch) == 127 for ch in raw):
        raise BadRequest(f"the {what} external id must be 1-{MAX_EXTERNAL_ID} characters without control characters")
    return raw


def _only(body: dict, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)} (allowed: {', '.join(allowed)})")


def parse_user(body: dict) -> UserSpec:
    """``{display_name, email?, role?}``; role is student or instructor (admin is given in
    Podium, never by the LMS)."""
    _only(body, ("display_name", "email", "role"))
    name = body.get("display_name")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 128:
        raise BadRequest("display_name must be 1-128 characters")
    email = body.get("email", _UNSET)
    if email is not _UNSET and email is not None:
        if not isinstance(email, str) or len(email) > 254 or not EMAIL_RE.fullmatch(email):
            raise BadRequest("email must be an e-mail address (or null)")
    role = body.get("role")
    if role is not None and role not in ("student", "instructor"):
        raise BadRequest("role must be student or instructor (site admins are made in Podium)")
    return UserSpec(name.strip(), email, role)


def email_given(spec: UserSpec) -> bool:
    return spec.email is not _UNSET


def parse_room(body: dict) -> RoomSpec:
    """``{name, kind?}``: kind course (default) or group."""
    _only(body, ("name", "kind"))
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 200:
        raise BadRequest("name must be 1-200 characters")
    kind = body.get("kind")
    if kind is not None and kind not in ("course", "group"):
        raise BadRequest("kind must be course or group")
    return RoomSpec(name.strip(), kind)


def parse_member(body: dict) -> str:
    """``{role?}``: instructor or student (default)."""
    _only(body, ("role",))
    role = body.get("role", "student")
    if role not in ("instructor", "student"):
        raise BadRequest("role must be instructor or student")
    return role


def parse_sign_in(body: dict, max_ttl_s: int) -> tuple[str | None, int]:
    """``{room?, ttl_s?}``: the room's external id to land in, the token's lifetime."""
    _only(body, ("room", "ttl_s"))
    room = body.get("room")
    if room is not None:
        if not isinstance(room, str):
            raise BadRequest("room must be a room's external id (a string)")
        external_id(room, "room")
    return room, bounded_int(body.get("ttl_s"), "ttl_s", 60, max_ttl_s, default=max_ttl_s)


def provisioned_user_wire(external: str, user, email: str | None) -> dict:
    return {"external_id": external, "email": email, "user": user_wire(user)}


def provisioned_room_wire(external: str, room) -> dict:
    return {"external_id": external, "room": {"id": str(room.id), "kind": room.kind, "name": room.name}}
