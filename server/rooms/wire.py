"""Wire shapes of rooms, their members and their messages (PROTOCOL §2.1, §3), and the
parsing of room requests."""
from __future__ import annotations

from server.kernel.actor import parse_id
from server.kernel.clock import iso
from server.kernel.errors import BadRequest
from server.kernel.wire import avatar_wire, user_wire


ATTACHMENT_KINDS = ("image", "file", "audio", "video")
ATTACHMENT_PREVIEW = "\N{PAPERCLIP} file"
PREVIEW_CHARS = 120


def room_wire(room, my_role: str | None = None, my_read_seq: int = 0, members_count: int | None = None,
              last_message: dict | None = None) -> dict:
    """A room; ``last_message`` is ``last_message_wire`` of its newest message not deleted."""
    return {"id": str(room.id), "kind": room.kind, "name": room.name,
            "created_by": str(room.created_by), "created_at": iso(room.created_at),
            "last_seq": room.last_seq, "my_role": my_role, "my_read_seq": my_read_seq,
            "members_count": members_count, "last_message": last_message,
            # the chat's moderation (rooms/moderation.py)
            "chat_locked": bool(getattr(room, "chat_locked", False)),
            "slow_mode_s": int(getattr(room, "slow_mode_s", 0) or 0),
            # a group or course room's picture (accounts/avatar_store.py)
            "avatar": avatar_wire(getattr(room, "avatar", None)),
            # archived by an instructor (read-only; the room list hides it by default)
            "archived_at": iso(getattr(room, "archived_at", None))}


def preview_text(kind: str, content: str, file_id: str | None) -> str:
    """The room list's one-line preview of a message: "📎 file" for an attachment, otherwise
    its text with every run of whitespace (newlines too) made one space, at most
    PREVIEW_CHARS characters (cut with "…")."""
    if file_id is not None or kind in ATTACHMENT_KINDS:
        return ATTACHMENT_PREVIEW
    line = " ".join(content.split())
    return line if len(line) <= PREVIEW_CHARS else line[:PREVIEW_CHARS - 1].rstrip() + "\N{HORIZONTAL ELLIPSIS}"


def last_message_wire(row: tuple | None) -> dict | None:
    """A room's last message as the room list shows it, from a ``db.messages.last_messages``
    row: ``{id, seq, sender:{id, display_name}, kind, preview, created_at, edited_at}``
    (``sender.id`` is null for system messages)."""
    if row is None:
        return None
    mid, seq, sender_id, sender_name, kind, content, file_id, created_at, edited_at = row
    return {"id": str(mid), "seq": seq,
            "sender": {"id": str(sender_id) if sender_id is not None else None,
                       "display_name": sender_name or ""},
            "kind": kind, "preview": preview_text(kind, content or "", file_id),
            "created_at": iso(created_at), "edited_at": iso(edited_at)}


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


def parse_room_update(body: dict) -> tuple[str | None, bool | None]:
    """``{name?, archived?}`` of ``PATCH /api/rooms/{id}``: the new name (stripped, 1–200
    characters) and whether the room is archived; None for what is not given."""
    if not isinstance(body, dict) or not ({"name", "archived"} & set(body)):
        raise BadRequest("send name (a string) and/or archived (a boolean)")
    name = body.get("name")
    if name is not None:
        if not isinstance(name, str) or not name.strip():
            raise BadRequest("name must be a non-empty string")
        name = name.strip()
        if len(name) > 200:
            raise BadRequest("name must be at most 200 characters")
    archived = body.get("archived")
    if archived is not None and not isinstance(archived, bool):
        raise BadRequest("archived must be a boolean")
    return name, archived
