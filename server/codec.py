"""Wire shapes (PROTOCOL.md): the one place that turns rows into JSON-ready dicts."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from server.errors import BadRequest


def utcnow() -> datetime:
    """Naive UTC now with millisecond precision (what the database stores)."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def iso(dt: datetime | None) -> str | None:
    """ISO-8601 UTC with milliseconds: ``2026-11-21T10:20:30.123Z``."""
    if dt is None:
        return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def user_wire(user) -> dict:
    return {"id": str(user.id), "username": user.username, "display_name": user.display_name,
            "role": user.role}


def room_wire(room, my_role: str | None = None, my_read_seq: int = 0, members_count: int | None = None) -> dict:
    return {"id": str(room.id), "kind": room.kind, "name": room.name,
            "created_by": str(room.created_by), "created_at": iso(room.created_at),
            "last_seq": room.last_seq, "my_role": my_role, "my_read_seq": my_read_seq,
            "members_count": members_count}


def member_wire(user, membership) -> dict:
    return {"user": user_wire(user), "role": membership.role, "joined_at": iso(membership.joined_at)}


def message_wire(msg, sender_name: str | None, reactions: dict[str, list[str]] | None = None) -> dict:
    return {
        "id": str(msg.id),
        "room": str(msg.room_id),
        "seq": msg.seq,
        "sender": {"id": str(msg.sender_id) if msg.sender_id is not None else None,
                   "display_name": sender_name or ""},
        "kind": msg.kind,
        "content": "" if msg.deleted_at else msg.content,
        "file_id": msg.file_id,
        "reply_to": str(msg.reply_to) if msg.reply_to is not None else None,
        "client_msg_id": msg.client_msg_id,
        "created_at": iso(msg.created_at),
        "edited_at": iso(msg.edited_at),
        "deleted_at": iso(msg.deleted_at),
        "reactions": reactions or {},
    }


def decode_json_object(raw: str | bytes) -> dict:
    """Parse a client JSON object; raise BadRequest for anything the database or UTF-8 could
    not hold (NUL characters, lone surrogates) as well as for malformed JSON."""
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("not valid JSON") from None
    except RecursionError:
        raise BadRequest("JSON nested too deeply") from None
    if not isinstance(obj, dict):
        raise BadRequest("must be a JSON object")
    text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
    lowered = text.lower()
    # Escapes are the only way NULs and lone surrogates get in; only then walk the object.
    if "\\u0000" in lowered or "\\ud" in lowered:
        try:
            _check_strings(obj)
        except RecursionError:
            raise BadRequest("JSON nested too deeply") from None
    return obj


def _check_strings(value) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise BadRequest("NUL characters are not allowed")
        try:
            value.encode()
        except UnicodeEncodeError:
            raise BadRequest("strings must be valid Unicode (no lone surrogates)") from None
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_strings(k)
            _check_strings(v)
    elif isinstance(value, list):
        for v in value:
            _check_strings(v)
