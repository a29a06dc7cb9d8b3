"""The one room-role rule, and the system messages a room's changes leave in its history.

Every feature that acts in a room (chat, calls, files, recordings) asks here, inside its own
transaction, what the caller's role in the room is.
"""
from __future__ import annotations

import uuid

from server.db import messages as mq
from server.db import rooms as rq
from server.kernel.actor import Actor
from server.kernel.clock import utcnow
from server.kernel.errors import Forbidden, NotFound, PodiumError
from server.rooms.wire import message_wire


def effective_role(member_role: str | None, actor: Actor) -> str | None:
    """The caller's role in a room given their membership's role (None: not a member): site
    admins act as instructors in every room. None when the caller may not act in the room."""
    if member_role is not None:
        return member_role
    return "instructor" if actor.is_admin else None


class RoomArchived(PodiumError):
    """A write to an archived room (a send, a call): it is read-only until unarchived."""

    code = "room_archived"


def require_open(room) -> None:
    """RoomArchived when ``room`` (a row, or rules with ``archived``) is archived."""
    if getattr(room, "archived_at", None) is not None or getattr(room, "archived", False):
        raise RoomArchived("this room is archived: it is read-only until an instructor unarchives it")


async def room_role(s, room_id: int, actor: Actor) -> tuple[object, str]:
    """The room and the caller's role in it; NotFound without the room, Forbidden for a
    non-member."""
    room = await rq.get_room(s, room_id)
    if room is None:
        raise NotFound("no such room")
    m = await rq.get_membership(s, room_id, actor.id)
    role = effective_role(m.role if m is not None else None, actor)
    if role is None:
        raise Forbidden("you are not a member of this room")
    return room, role


async def require_instructor(s, room_id: int, actor: Actor, refusal: str):
    """The room, when ``actor`` is one of its instructors (``room_role``'s rule); NotFound
    without the room, Forbidden for a non-member, Forbidden(``refusal``) for anyone else."""
    room, role = await room_role(s, room_id, actor)
    if role != "instructor":
        raise Forbidden(refusal)
    return room


async def system_message(s, room_id: int, text: str) -> dict:
    """Store a ``system`` message (the next seq of the room) inside ``s``; return its wire."""
    seq = await rq.next_seq(s, room_id)
    msg = await mq.insert_message(s, room_id=room_id, seq=seq, sender_id=None, kind="system",
                                  content=text, client_msg_id=f"sys-{uuid.uuid4().hex}",
                                  file_id=None, reply_to=None, created_at=utcnow())
    return message_wire(msg, "Podium")
