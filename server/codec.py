"""Wire shapes (PROTOCOL.md) of rows every feature shows: users, rooms, members, messages."""
from __future__ import annotations

from server.kernel.clock import iso


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
