"""Chat domain: rooms, membership rules, messages, reactions, reads, presence.

Handlers (WebSocket and REST) parse and authorise the caller, then call one method here.
Every room operation checks membership; every write commits before anything is acked or
broadcast (PROTOCOL §2.1, ARCHITECTURE principle 1).
"""
from __future__ import annotations

import asyncio

import logging
import uuid

from sqlalchemy.exc import IntegrityError

from server.kernel.actor import Actor, bounded_int, parse_id
from server.kernel.clock import iso, utcnow
from server import codec
from server.config import Config
from server.db import messages as mq
from server.db import rooms as rq
from server.db import users as uq
from server.db.engine import Database
from server.db.models import MESSAGE_KINDS, ROOM_KINDS, ROOM_ROLES
from server.kernel.errors import BadRequest, Conflict, Forbidden, NotFound, TooLarge
from server.message_writer import MessageWriter, SendRequest
from server.kernel.frames import event_frame
from server.realtime.notices import MemberRemoved
from server.realtime.registry import Registry

log = logging.getLogger("podium.chat")

CLIENT_KINDS = tuple(k for k in MESSAGE_KINDS if k != "system")
MAX_SYNC = 500
MAX_EMOJI_LEN = 32


class Chat:
    def __init__(self, db: Database, registry: Registry, config: Config):
        self.db, self.registry, self.config = db, registry, config
        self.writer = MessageWriter(db, self._broadcast_stored)
        # Called with (room_id, user_id) after a member is removed (live calls drop them).
        self.member_removed_hooks: list = []
        self.presence = None  # server.realtime.presence.RedisPresence with REDIS_URL

    def _broadcast_stored(self, stored: list[tuple[int, dict]]) -> None:
        """Broadcast a committed batch: per room, all its ``message.new`` frames in seq order
        as one buffer, so each subscriber costs one write per batch, not one per message."""
        by_room: dict[int, list[bytes]] = {}
        seqs: dict[int, list[tuple[int, int]]] = {}
        for room_id, wire in stored:
            frame = event_frame({"type": "message.new", "message": wire})
            by_room.setdefault(room_id, []).append(frame)
            seqs.setdefault(room_id, []).append((wire["seq"], len(frame)))
        for room_id, frames in by_room.items():
            self.registry.broadcast_frame(room_id, b"".join(frames), seqs=seqs[room_id])

    async def frames_after(self, room_id: int, after: int, until: int | None) -> list[tuple[int, bytes]]:
        """``message.new`` frames for seqs in ``(after, until]`` from SQL (gap filling)."""
        out: list[tuple[int, bytes]] = []
        while until is None or after < until:
            async with self.db.read() as s:
                rows, complete = await mq.after(s, room_id, after, MAX_SYNC)
                wires = await self._wire(s, rows)
            for wire in wires:
                seq = int(wire["seq"])
                if until is not None and seq > until:
                    return out
                out.append((seq, event_frame({"type": "message.new", "message": wire})))
                after = seq
            if complete or not wires:
                break
        return out

    async def change_frames_after(self, room_id: int, since: int) -> tuple[list[bytes], int]:
        """The current state of every message of the room changed after change number
        ``since`` (``message.updated``/``message.deleted`` frames, in change order), and the
        change number that state covers (catching up after missed notices)."""
        frames: list[bytes] = []
        upto = since
        while True:
            async with self.db.read() as s:
                room = await rq.get_room(s, room_id)
                if room is None:
                    return frames, upto
                rows, complete = await mq.changed_since(s, room_id, since, room.last_seq, MAX_SYNC)
                wires = await self._wire(s, rows)
            upto = max(upto, room.last_change, *(m.change_seq for m, _ in rows))
            for wire in wires:
                kind = "message.deleted" if wire.get("deleted_at") else "message.updated"
                frames.append(event_frame({"type": kind, "message": wire}))
            if complete or not rows:
                return frames, upto
            since = rows[-1][0].change_seq

    # -- membership ----------------------------------------------------------------------
    async def _room_role(self, s, room_id: int, actor: Actor) -> tuple[object, str]:
        room = await rq.get_room(s, room_id)
        if room is None:
            raise NotFound("no such room")
        m = await rq.get_membership(s, room_id, actor.id)
        if m is not None:
            return room, m.role
        if actor.is_admin:
            return room, "instructor"
        raise Forbidden("you are not a member of this room")

    async def room_role(self, room_id: int, actor: Actor) -> str:
        async with self.db.read() as s:
            return (await self._room_role(s, room_id, actor))[1]

    # -- rooms (REST) --------------------------------------------------------------------
    async def list_rooms(self, actor: Actor) -> list[dict]:
        async with self.db.read() as s:
            rows = await rq.rooms_for_user(s, actor.id)
        return [codec.room_wire(r, role, read, n) for r, role, read, n in rows]

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
        wire = codec.room_wire(room, "instructor", 0, count)
        async with self.db.read() as s:
            for uid in await rq.member_ids(s, room.id):
                if uid != actor.id:
                    self._tell_user(uid, {"type": "room.added", "room": wire | {"my_role": None}})
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
            room, role = await self._room_role(s, room_id, actor)
            mem = await rq.members(s, room_id)
            read = (await rq.reads(s, room_id)).get(str(actor.id), 0)
        return {"room": codec.room_wire(room, role, read, len(mem)),
                "members": [codec.member_wire(u, m) for u, m in mem]}

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
        if system:
            self.registry.broadcast(room_id, {"type": "message.new", "message": system})
            self._tell_user(user.id, {"type": "room.added", "room": {"id": str(room_id)}})
        return codec.member_wire(user, m)

    def _tell_user(self, user_id: int, event: dict) -> None:
        """Send an event to every socket of one user (in every process)."""
        self.registry.send_user(user_id, event_frame(event))

    async def _add_member_in(self, s, actor: Actor, room_id: int, user_id: int | None,
                             username: str | None, role: str) -> tuple[object, object, dict | None]:
        """Add or update the membership inside ``s``; return the user, the membership and the
        system message announcing a new member (None when the user was already a member)."""
        room, my_role = await self._room_role(s, room_id, actor)
        if my_role != "instructor":
            raise Forbidden("only room instructors add members")
        if room.kind == "direct":
            raise Conflict("a direct room has exactly two members")
        user = (await uq.get_user(s, user_id) if user_id is not None
                else await uq.get_user_by_username(s, username or ""))
        if user is None:
            raise NotFound("no such user")
        m, new = await rq.upsert_member(s, room_id, user.id, role)
        system = None
        if new:
            system = await self._system_message(s, room_id, f"{actor.display_name} added {user.display_name}")
        return user, m, system

    async def remove_member(self, actor: Actor, room_id: int, user_id: int) -> None:
        async with self.db.write() as s:
            room, my_role = await self._room_role(s, room_id, actor)
            if my_role != "instructor" and user_id != actor.id:
                raise Forbidden("only room instructors remove other members")
            if room.kind == "direct":
                raise Conflict("members cannot leave a direct room")
            user = await uq.get_user(s, user_id)
            if user is None or not await rq.remove_member(s, room_id, user_id):
                raise NotFound("no such member")
            system = await self._system_message(s, room_id, f"{user.display_name} left the room"
                                                if user_id == actor.id else
                                                f"{actor.display_name} removed {user.display_name}")
        self.registry.broadcast(room_id, {"type": "message.new", "message": system})
        self._tell_user(user_id, {"type": "room.removed", "room": {"id": str(room_id)}})
        for hook in self.member_removed_hooks:
            await hook(room_id, user_id)
        # The removed user's sockets stop receiving the room at once (in every process).
        self.unsubscribe_user(room_id, user_id)
        if self.registry.bus is not None:
            self.registry.bus.publish(MemberRemoved(room_id, user_id))

    def unsubscribe_user(self, room_id: int, user_id: int) -> None:
        """Unsubscribe this process's sockets of ``user_id`` from ``room_id``."""
        for conn in tuple(self.registry.user_sockets(user_id)):
            if self.registry.unsubscribe(conn, room_id):
                self._went_offline(room_id, user_id)

    async def _system_message(self, s, room_id: int, text: str) -> dict:
        seq = await rq.next_seq(s, room_id)
        msg = await mq.insert_message(s, room_id=room_id, seq=seq, sender_id=None, kind="system",
                                      content=text, client_msg_id=f"sys-{uuid.uuid4().hex}",
                                      file_id=None, reply_to=None, created_at=utcnow())
        return codec.message_wire(msg, "Podium")

    # -- socket subscriptions -------------------------------------------------------------
    async def join(self, conn, actor: Actor, room_id: int) -> dict:
        async with self.db.read() as s:
            room, role = await self._room_role(s, room_id, actor)
            mem = await rq.member_users(s, room_id)
            reads = await rq.reads(s, room_id)
        first = self.registry.subscribe(conn, room_id)
        if self.registry.changes is not None and len(self.registry.by_room.get(room_id, ())) == 1:
            self.registry.changes.baseline(room_id, room.last_change)  # the room's first local socket
        if first and (self.presence is None or await self.presence.came_online(room_id, actor.id)):
            self.registry.broadcast(room_id, {"type": "presence.joined", "room": str(room_id),
                                              "user_id": str(actor.id)}, droppable=True,
                                    exclude_user=actor.id)
        return {"room": codec.room_wire(room, role, reads.get(str(actor.id), 0), len(mem)),
                "last_seq": room.last_seq,
                "members": mem,
                "online": await self.online(room_id), "reads": reads, "my_role": role,
                "last_change": room.last_change}

    async def online(self, room_id: int) -> list[str]:
        if self.presence is not None:
            return await self.presence.online(room_id)
        return self.registry.online(room_id)

    def leave(self, conn, actor: Actor, room_id: int) -> None:
        if self.registry.unsubscribe(conn, room_id):
            self._went_offline(room_id, actor.id)

    def user_gone(self, actor: Actor, rooms: list[int]) -> None:
        """Tell rooms where the user has no socket left that they went offline."""
        for room_id in rooms:
            self._went_offline(room_id, actor.id)

    def _went_offline(self, room_id: int, user_id: int) -> None:
        """The user's last socket here left the room: tell the room, unless (with several
        processes) the user is still online through another one."""
        event = {"type": "presence.left", "room": str(room_id), "user_id": str(user_id)}
        if self.presence is None:
            self.registry.broadcast(room_id, event, droppable=True)
            return

        async def check() -> None:
            if await self.presence.went_offline(room_id, user_id):
                self.registry.broadcast(room_id, event, droppable=True)

        asyncio.ensure_future(check())

    # -- messages ------------------------------------------------------------------------
    async def sync(self, actor: Actor, room_id: int, since, limit) -> dict:
        since = bounded_int(since, "since", 0, 2**62, default=0)
        limit = bounded_int(limit, "limit", 1, MAX_SYNC, default=100)
        async with self.db.read() as s:
            room, _ = await self._room_role(s, room_id, actor)
            rows, complete = await mq.after(s, room_id, since, limit)
            out = await self._wire(s, rows)
        return {"messages": out, "complete": complete, "last_seq": room.last_seq}

    async def changes(self, actor: Actor, room_id: int, since, upto, limit) -> dict:
        """Messages up to seq ``upto`` edited, deleted or re-reacted after change number
        ``since`` (what a reconnecting client missed besides new messages)."""
        since = bounded_int(since, "since", 0, 2**62, default=0)
        limit = bounded_int(limit, "limit", 1, MAX_SYNC, default=100)
        async with self.db.read() as s:
            room, _ = await self._room_role(s, room_id, actor)
            upto = bounded_int(upto, "upto", 0, 2**62, default=room.last_seq)
            rows, complete = await mq.changed_since(s, room_id, since, upto, limit)
            out = await self._wire(s, rows)
        last = rows[-1][0].change_seq if rows and not complete else room.last_change
        return {"messages": out, "complete": complete, "last_change": last}

    async def history(self, actor: Actor, room_id: int, before: int | None, after: int | None,
                      limit: int, kind: str | None) -> dict:
        if kind is not None and kind not in MESSAGE_KINDS:
            raise BadRequest("unknown kind")
        async with self.db.read() as s:
            await self._room_role(s, room_id, actor)
            rows, complete = await mq.page(s, room_id, before=before, after_seq=after, limit=limit, kind=kind)
            return {"messages": await self._wire(s, rows), "complete": complete}

    async def _wire(self, s, rows) -> list[dict]:
        reactions = await mq.reactions_for(s, [m.id for m, _ in rows])
        return [codec.message_wire(m, name, reactions.get(m.id)) for m, name in rows]

    async def send(self, actor: Actor, room_id: int, body: dict) -> tuple[dict, bool]:
        """Store a message (or find the stored copy of a resent ``client_msg_id``).

        Returns ``(message, created)``. A new message is broadcast as ``message.new`` after
        commit; a resend is only returned.
        """
        return await self.writer.enqueue(self.prepare_send(actor, room_id, body))

    def prepare_send(self, actor: Actor, room_id: int, body: dict) -> SendRequest:
        """Validate a send's fields (no I/O); raise BadRequest/TooLarge."""
        kind = body.get("kind", "text")
        content = body.get("content", "")
        cmid = body.get("client_msg_id")
        file_id = body.get("file_id")
        reply_to = body.get("reply_to")
        if kind not in CLIENT_KINDS:
            raise BadRequest(f"kind must be one of {', '.join(CLIENT_KINDS)}")
        if not isinstance(cmid, str) or not 0 < len(cmid) <= 64:
            raise BadRequest("client_msg_id must be a string of 1..64 characters")
        if not isinstance(content, str):
            raise BadRequest("content must be a string")
        if len(content.encode()) > self.config.max_content_bytes:
            raise TooLarge(f"content is larger than {self.config.max_content_bytes} bytes")
        if kind in ("text", "announcement") and not content.strip():
            raise BadRequest("content must not be empty")
        if file_id is not None and (not isinstance(file_id, str) or len(file_id) > 64):
            raise BadRequest("file_id must be an id string")
        if kind in ("image", "file", "audio", "video") and not file_id:
            raise BadRequest(f"a {kind} message needs a file_id")
        reply_id = parse_id(reply_to, "reply_to") if reply_to is not None else None
        return SendRequest(actor, room_id, kind, content, cmid, file_id, reply_id)

    async def _load_for_change(self, s, actor: Actor, message_id: int):
        row = await mq.get_message(s, message_id)
        if row is None:
            raise NotFound("no such message")
        msg, name = row
        _, role = await self._room_role(s, msg.room_id, actor)
        return msg, name, role

    async def edit(self, actor: Actor, message_id: int, content) -> dict:
        if not isinstance(content, str) or not content.strip():
            raise BadRequest("content must be a non-empty string")
        if len(content.encode()) > self.config.max_content_bytes:
            raise TooLarge(f"content is larger than {self.config.max_content_bytes} bytes")
        async with self.db.write() as s:
            msg, name, _ = await self._load_for_change(s, actor, message_id)
            if msg.sender_id != actor.id:
                raise Forbidden("only the author edits a message")
            if msg.deleted_at is not None:
                raise Conflict("the message is deleted")
            msg = await s.merge(msg)
            msg.content = content
            msg.edited_at = utcnow()
            msg.change_seq = await rq.next_change(s, msg.room_id)
            await s.flush()
            wire = (await self._wire(s, [(msg, name)]))[0]
        self.registry.broadcast(msg.room_id, {"type": "message.updated", "message": wire}, change=msg.change_seq)
        return wire

    async def delete(self, actor: Actor, message_id: int) -> dict:
        async with self.db.write() as s:
            msg, name, role = await self._load_for_change(s, actor, message_id)
            if msg.sender_id != actor.id and role != "instructor":
                raise Forbidden("only the author or a room instructor deletes a message")
            msg = await s.merge(msg)
            if msg.deleted_at is None:
                msg.deleted_at = utcnow()
                msg.content = ""
                msg.change_seq = await rq.next_change(s, msg.room_id)
                await s.flush()
            wire = (await self._wire(s, [(msg, name)]))[0]
        self.registry.broadcast(msg.room_id, {"type": "message.deleted", "message": wire}, change=msg.change_seq)
        return wire

    async def react(self, actor: Actor, message_id: int, emoji, on) -> dict:
        if not isinstance(emoji, str) or not 0 < len(emoji) <= MAX_EMOJI_LEN or emoji.isspace():
            raise BadRequest(f"emoji must be a string of 1..{MAX_EMOJI_LEN} characters")
        if not isinstance(on, bool):
            raise BadRequest("on must be a boolean")
        async with self.db.write() as s:
            msg, _, _ = await self._load_for_change(s, actor, message_id)
            if msg.deleted_at is not None:
                raise Conflict("the message is deleted")
            await mq.set_reaction(s, message_id, actor.id, emoji, on, utcnow())
            change = await rq.next_change(s, msg.room_id)
            await mq.mark_changed(s, message_id, change)
            reactions = (await mq.reactions_for(s, [message_id])).get(message_id, {})
        data = {"room": str(msg.room_id), "message_id": str(message_id), "reactions": reactions}
        self.registry.broadcast(msg.room_id, {"type": "message.reaction", **data}, change=change)
        return {"message_id": str(message_id), "reactions": reactions}

    async def read(self, actor: Actor, room_id: int, seq) -> dict:
        seq = bounded_int(seq, "seq", 0, 2**62)
        async with self.db.write() as s:
            room, _ = await self._room_role(s, room_id, actor)
            stored = await rq.set_read(s, room_id, actor.id, min(seq, room.last_seq))
        self.registry.broadcast(room_id, {"type": "read", "room": str(room_id), "user_id": str(actor.id),
                                          "seq": stored})
        return {"room": str(room_id), "seq": stored}

    async def typing(self, actor: Actor, room_id: int, active) -> None:
        if not isinstance(active, bool):
            raise BadRequest("active must be a boolean")
        # Typing is only relayed from a user subscribed to the room (membership was checked
        # at room.join); anything else is checked against SQL.
        if actor.id not in self.registry.room_users.get(room_id, ()):
            await self.room_role(room_id, actor)
            return
        self.registry.broadcast(room_id, {"type": "typing", "room": str(room_id), "user_id": str(actor.id),
                                          "active": active}, droppable=True, exclude_user=actor.id)

    async def presence_list(self, actor: Actor, room_id: int) -> dict:
        await self.room_role(room_id, actor)
        online = await self.online(room_id)
        if self.presence is not None:
            return {"online": online, "status": await self.presence.statuses(online)}
        return {"online": online,
                "status": {uid: self.registry.status.get(int(uid), "online") for uid in online}}

    async def presence_status(self, actor: Actor, status) -> dict:
        if status not in ("online", "away", "busy"):
            raise BadRequest("status must be online, away or busy")
        self.registry.status[actor.id] = status
        if self.presence is not None:
            await self.presence.set_status(actor.id, status)
        async with self.db.read() as s:
            rooms = [r.id for r, *_ in await rq.rooms_for_user(s, actor.id)]
        for room_id in rooms:
            self.registry.broadcast(room_id, {"type": "presence.status", "room": str(room_id),
                                              "user_id": str(actor.id), "status": status}, droppable=True)
        return {"status": status}

    # -- search & statistics -------------------------------------------------------------
    async def search(self, actor: Actor, room_id: int, q, limit: int) -> dict:
        if not isinstance(q, str) or not q.strip() or len(q) > 500:
            raise BadRequest("q must be a non-empty string of at most 500 characters")
        async with self.db.read() as s:
            await self._room_role(s, room_id, actor)
            rows = await mq.search(s, room_id, q, limit)
            return {"messages": await self._wire(s, rows)}

    async def statistics(self, actor: Actor, room_id: int) -> dict:
        async with self.db.read() as s:
            await self._room_role(s, room_id, actor)
            stats = await mq.statistics(s, room_id)
        stats["first"] = iso(stats["first"]) if stats["first"] else None
        stats["last"] = iso(stats["last"]) if stats["last"] else None
        stats["room"] = str(room_id)
        return stats
