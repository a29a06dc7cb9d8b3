"""Wire shapes of rooms, their members and their messages (PROTOCOL §2.1, §3), and the
parsing of room requests."""
from __future__ import annotations

from server.kernel.actor import parse_id
from server.kernel.clock import iso
from server.kernel.errors import BadRequest
from server.kernel.wire import user_wire


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


def id_list(value, what: str) -> list[int]:
    """An optional JSON list of id strings (at most 1,000)."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 1000:
        raise BadRequest(f"{what} must be a list")
    return [parse_id(v, what) for v in value]


def username_list(value) -> list[str]:
    names = value or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise BadRequest("member_usernames must be a list of strings")
    return names
