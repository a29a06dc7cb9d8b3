"""Rooms: listing, creating, reading, and adding or removing members (PROTOCOL §3).

Removing a member runs the ``member_removed`` hooks that features register when ``deps``
builds the app (their sockets stop receiving the room, they leave its call), here and — with
several processes — in every other process, through a ``MemberRemoved`` notice.
"""
from __future__ import annotations

import logging
from typing import Awaitable, Callable

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from server.db import messages as mq
from server.db import rooms as rq
from server.db import users as uq
from server.db.engine import Database
from server.db.models import ROOM_KINDS, ROOM_ROLES, Room, RoomBan
from server.kernel.actor import Actor
from server.kernel.clock import iso, utcnow
from server.kernel.errors import BadRequest, Conflict, Forbidden, NotFound
from server.kernel.frames import event_frame
from server.realtime.notices import MemberRemoved, NoticeRouter
from server.realtime.registry import Registry
from server.rooms.membership import require_instructor, require_open, room_role, system_message
from server.rooms.wire import last_message_wire, member_wire, parse_room_update, room_wire

log = logging.getLogger("podium.rooms")

MemberRemovedHook = Callable[[int, int], Awaitable[None]]


class Rooms:
    def __init__(self, db: Database, registry: Registry):
        self.db, self.registry = db, registry
        self._member_removed: list[MemberRemovedHook] = []
        self._archive_changed: list[Callable[[int], None]] = []

    def on_member_removed(self, hook: MemberRemovedHook) -> None:
        """Register ``hook(room_id, user_id)``, run after a member is removed (in every process)."""
        self._member_removed.append(hook)

    def register_notices(self, router: NoticeRouter, spawn: Callable) -> None:
        """A member removed through another process: run the hooks here too."""
        router.on(MemberRemoved, lambda n, frame: spawn(self._run_member_removed(n.room, n.user)))

    async def _run_member_removed(self, room_id: int, user_id: int) -> None:
        for hook in self._member_removed:
            try:
                await hook(room_id, user_id)
            except Exception:  # one feature's failure must not keep the others from acting
                log.exception("room %s: a member-removed hook failed for user %s", room_id, user_id)

    async def role(self, room_id: int, actor: Actor) -> str:
        """The caller's role in the room (the one rule: rooms.membership.room_role)."""
        async with self.db.read() as s:
            return (await room_role(s, room_id, actor))[1]

    async def user_changed(self, user: dict) -> None:
        """Tell every room of ``user`` (a user wire) that their name or avatar changed:
        ``user.updated {user}`` to the rooms' sockets, in every process."""
        async with self.db.read() as s:
            room_ids = await rq.room_ids_of(s, int(user["id"]))
        for room_id in room_ids:
            self.registry.broadcast(room_id, {"type": "user.updated", "user": user})

    def tell_user(self, user_id: int, event: dict) -> None:
        """Send an event to every socket of one user (in every process)."""
        self.registry.send_user(user_id, event_frame(event))

    # -- rooms -----------------------------------------------------------------------------
    async def list_rooms(self, actor: Actor) -> list[dict]:
        async with self.db.read() as s:
            rows = await rq.rooms_for_user(s, actor.id)
            last = await mq.last_messages(s, member=actor.id)
        return [room_wire(r, role, read, n, last_message_wire(last.get(r.id))) for r, role, read, n in rows]

    async def create_room(self, actor: Actor, kind, name, member_ids: list[int],
                          member_usernames: list[str]) -> dict:
        if actor.role == "recorder":
            raise Forbidden("recorders cannot create rooms")
        if kind not in ROOM_KINDS:
            raise BadRequest(f"kind must be one of {', '.join(ROOM_KINDS)}")
        name = (name or "").strip() if isinstance(name, str) else None
        if name is None or len(name) > 200:
            raise BadRequest("name must be a string of at most 200 characters")
        if kind in ("course", "group") and not name:
            raise BadRequest("name is required")
        try:
            async with self.db.write() as s:
                room, count = await self._create_room_in(s, actor, kind, name, member_ids, member_usernames)
        except IntegrityError:
            if kind != "direct":
                raise
            # The pair's other user created this direct room at the same moment and won the
            # unique direct_key (PostgreSQL; SQLite serialises writers): a second attempt finds
            # and returns that room.
            async with self.db.write() as s:
                room, count = await self._create_room_in(s, actor, kind, name, member_ids, member_usernames)
        async with self.db.read() as s:
            # A direct room that already existed may have messages.
            last = last_message_wire((await mq.last_messages(s, room=room.id)).get(room.id))
            wire = room_wire(room, "instructor", 0, count, last)
            for uid in await rq.member_ids(s, room.id):
                if uid != actor.id:
                    self.tell_user(uid, {"type": "room.added", "room": wire | {"my_role": None}})
        return wire

    async def _create_room_in(self, s, actor: Actor, kind: str, name: str, member_ids: list[int],
                              member_usernames: list[str]) -> tuple[object, int]:
        """Create the room inside ``s`` (or find the pair's direct room); return it and its
        member count."""
        others: set[int] = set()
        for uid in member_ids:
            if await uq.get_user(s, uid) is None:
                raise NotFound(f"no user with id {uid}")
            others.add(uid)
        for uname in member_usernames:
            u = await uq.get_user_by_username(s, uname)
            if u is None:
                raise NotFound(f"no user named {uname!r}")
            others.add(u.id)
        others.discard(actor.id)
        if kind == "direct":
            if len(others) != 1:
                raise BadRequest("a direct room has exactly one other member")
            other = next(iter(others))
            key = f"{min(actor.id, other)}:{max(actor.id, other)}"
            existing = await rq.get_direct_room(s, key)
            if existing is not None:
                room = existing
            else:
                other_user = await uq.get_user(s, other)
                room = await rq.create_room(
                    s, "direct", name or other_user.display_name, actor.id,
                    {actor.id: "instructor", other: "instructor"}, direct_key=key)
        else:
            members = {uid: "student" for uid in others}
            members[actor.id] = "instructor"
            room = await rq.create_room(s, kind, name, actor.id, members)
        return room, await rq.count_members(s, room.id)

    async def get_room(self, actor: Actor, room_id: int) -> dict:
        async with self.db.read() as s:
            room, role = await room_role(s, room_id, actor)
            mem = await rq.members(s, room_id)
            read = (await rq.reads(s, room_id)).get(str(actor.id), 0)
            last = last_message_wire((await mq.last_messages(s, room=room_id)).get(room_id))
        return {"room": room_wire(room, role, read, len(mem), last),
                "members": [member_wire(u, m) for u, m in mem]}

    async def update_room(self, actor: Actor, room_id: int, body: dict) -> dict:
        """``PATCH /api/rooms/{id} {name?, archived?}`` (the room's instructors; not direct
        rooms): rename it, archive it (read-only) or unarchive it. Each change leaves a system
        message, and ``room.updated {room: {id, name, archived_at}}`` goes to its members."""
        name, archived = parse_room_update(body)
        async with self.db.write() as s:
            room = await require_instructor(s, room_id, actor, "only room instructors rename or archive a room")
            if room.kind == "direct":
                raise Conflict("a direct room cannot be renamed or archived")
            notes = []
            values: dict = {}
            if name is not None and name != room.name:
                values["name"] = name
                notes.append(f"{actor.display_name} renamed the room to “{name}”")
            if archived is not None and archived != (room.archived_at is not None):
                values["archived_at"] = utcnow() if archived else None
                notes.append(f"{actor.display_name} archived the room: it is read-only now" if archived
                             else f"{actor.display_name} unarchived the room")
            if values:
                await s.execute(update(Room).where(Room.id == room_id).values(**values))
            notes = [await system_message(s, room_id, text) for text in notes]
            archived_at = values.get("archived_at", room.archived_at)
            patch = {"id": str(room_id), "name": values.get("name", room.name), "archived_at": iso(archived_at)}
        if "archived_at" in values:
            for hook in self._archive_changed:
                hook(room_id)  # the chat's rules cache (rooms/moderation.py), in every process
        if values:
            self.registry.broadcast(room_id, {"type": "room.updated", "room": patch})
            log.info("room %s: %s (by %s)", room_id, sorted(values), actor.id)
        for note in notes:
            self.registry.broadcast(room_id, {"type": "message.new", "message": note})
        return await self.get_room(actor, room_id)

    async def require_open(self, room_id: int) -> None:
        """RoomArchived when the room is archived (uploads into it are refused)."""
        async with self.db.read() as s:
            require_open(await rq.get_room(s, room_id))

    def on_archive_changed(self, hook: Callable[[int], None]) -> None:
        """Register ``hook(room_id)``, run when a room is archived or unarchived."""
        self._archive_changed.append(hook)

    async def count_changed(self, room_id: int, event: dict) -> None:
        """``member.added`` / ``member.removed`` to the room, with its new member count, so
        every member's people panel and count follow at once (also after an LMS roster sync)."""
        async with self.db.read() as s:
            count = await rq.count_members(s, room_id)
        self.registry.broadcast(room_id, {**event, "room": str(room_id), "members_count": count})

    # -- members ---------------------------------------------------------------------------
    async def add_member(self, actor: Actor, room_id: int, user_id: int | None,
                         username: str | None, role) -> dict:
        role = role or "student"
        if role not in ROOM_ROLES:
            raise BadRequest("role must be instructor or student")
        try:
            async with self.db.write() as s:
                user, m, system = await self._add_member_in(s, actor, room_id, user_id, username, role)
        except IntegrityError:
            # A concurrent add of the same user (a double click; PostgreSQL runs writes
            # concurrently) won the membership key: a second attempt finds the row and updates it.
            async with self.db.write() as s:
                user, m, system = await self._add_member_in(s, actor, room_id, user_id, username, role)
        wire = member_wire(user, m)
        if system:
            self.registry.broadcast(room_id, {"type": "message.new", "message": system})
            self.tell_user(user.id, {"type": "room.added", "room": {"id": str(room_id)}})
            await self.count_changed(room_id, {"type": "member.added", "member": wire})
        return wire

    async def _add_member_in(self, s, actor: Actor, room_id: int, user_id: int | None,
                             username: str | None, role: str) -> tuple[object, object, dict | None]:
        """Add or update the membership inside ``s``; return the user, the membership and the
        system message announcing a new member (None when the user was already a member)."""
        room = await require_instructor(s, room_id, actor, "only room instructors add members")
        if room.kind == "direct":
            raise Conflict("a direct room has exactly two members")
        user = (await uq.get_user(s, user_id) if user_id is not None
                else await uq.get_user_by_username(s, username or ""))
        if user is None:
            raise NotFound("no such user")
        if await s.get(RoomBan, (room_id, user.id)) is not None:
            raise Conflict(f"{user.display_name} is banned from this room: lift the ban first")
        m, new = await rq.upsert_member(s, room_id, user.id, role)
        system = None
        if new:
            system = await system_message(s, room_id, f"{actor.display_name} added {user.display_name}")
        return user, m, system

    async def remove_member(self, actor: Actor, room_id: int, user_id: int, banned: bool = False) -> None:
        """``banned``: removed by a ban (rooms/moderation.py): said so to the room and to them."""
        async with self.db.write() as s:
            room, my_role = await room_role(s, room_id, actor)
            if my_role != "instructor" and user_id != actor.id:
                raise Forbidden("only room instructors remove other members")
            if room.kind == "direct":
                raise Conflict("members cannot leave a direct room")
            user = await uq.get_user(s, user_id)
            if user is None or not await rq.remove_member(s, room_id, user_id):
                raise NotFound("no such member")
            system = await system_message(s, room_id, f"{user.display_name} left the room"
                                          if user_id == actor.id else
                                          f"{actor.display_name} {'banned' if banned else 'removed'} "
                                          f"{user.display_name}")
        self.registry.broadcast(room_id, {"type": "message.new", "message": system})
        await self.count_changed(room_id, {"type": "member.removed", "user_id": str(user_id)})
        await self.member_gone(room_id, user_id, "banned" if banned else None)

    async def member_gone(self, room_id: int, user_id: int, reason: str | None = None) -> None:
        """After a membership was deleted (by an instructor, a ban or an LMS roster sync):
        ``room.removed`` to the user; their calls end and their sockets stop receiving the
        room at once, in every process."""
        self.tell_user(user_id, {"type": "room.removed", "room": {"id": str(room_id)},
                                 **({"reason": reason} if reason else {})})
        await self._run_member_removed(room_id, user_id)
        if self.registry.bus is not None:
            self.registry.bus.publish(MemberRemoved(room_id, user_id))
