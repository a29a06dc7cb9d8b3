"""An instructor's rules for a room's chat (issue 16.4; docs/PROTOCOL-ADDITIONS.md
"Moderation"): lock the chat (students read-only), slow mode (one message per N seconds per
student), and bans (removed from the room and not added back until the ban is lifted).

Enforced on every send, over the WebSocket and REST alike (``gate``/``check``), without
costing unmoderated rooms anything: each process keeps every room's rules it has seen in
memory (loaded on a room's first send, dropped on a change here or — a ``RoomModerated``
notice — in another process, and re-read at most ``TTL_S`` later in any case: for the rooms
with sockets here, all together in one query every ``TTL_S / 2`` by ``keep_fresh``). Instructors are
exempt. Slow mode's "one per N seconds" is a Redis key per student and room (``SET NX PX``:
exact across processes), or a clock in memory without Redis; a resend of a message already
stored (same ``client_msg_id``) is never refused, so a reconnecting client loses nothing.
Sends of one user in one moderated room pass the gate in order (a FIFO lock), so their
sequence numbers keep the order they were sent in.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from sqlalchemy import select, update

from server.db import rooms as rq
from server.db.engine import Database
from server.db.models import Message, Room, RoomBan
from server.kernel.actor import Actor
from server.kernel.clock import iso, utcnow
from server.kernel.errors import BadRequest, Conflict, Forbidden, NotFound, RateLimited
from server.realtime.notices import NoticeRouter, RoomModerated
from server.realtime.registry import Registry
from server.rooms.membership import require_instructor, require_open, room_role, system_message

log = logging.getLogger("podium.rooms")
TTL_S = 30.0
MAX_SLOW_MODE_S = 3600


@dataclass(frozen=True)
class ChatRules:
    chat_locked: bool = False
    slow_mode_s: int = 0
    archived: bool = False  # the room is archived: nobody sends (rooms/service.py update_room)

    @property
    def moderated(self) -> bool:
        return self.chat_locked or self.slow_mode_s > 0 or self.archived

    def wire(self) -> dict:
        return {"chat_locked": self.chat_locked, "slow_mode_s": self.slow_mode_s}


def _rules_of(chat_locked, slow_mode_s, archived_at) -> ChatRules:
    """The rules a ``rooms`` row's three columns hold."""
    return ChatRules(bool(chat_locked), int(slow_mode_s or 0), archived_at is not None)


def parse_rules(body: dict, current: ChatRules) -> ChatRules:
    """``{chat_locked?, slow_mode_s?}`` over the room's current rules; BadRequest otherwise."""
    if not isinstance(body, dict) or not ({"chat_locked", "slow_mode_s"} & set(body)):
        raise BadRequest("send chat_locked (boolean) and/or slow_mode_s (seconds, 0 to turn it off)")
    locked = body.get("chat_locked", current.chat_locked)
    slow = body.get("slow_mode_s", current.slow_mode_s)
    if not isinstance(locked, bool):
        raise BadRequest("chat_locked must be a boolean")
    if isinstance(slow, bool) or not isinstance(slow, int) or not 0 <= slow <= MAX_SLOW_MODE_S:
        raise BadRequest(f"slow_mode_s must be a whole number of seconds from 0 to {MAX_SLOW_MODE_S}")
    return ChatRules(locked, slow)


def describe(actor_name: str, before: ChatRules, after: ChatRules) -> list[str]:
    """The system messages that tell the room what changed."""
    notes = []
    if after.chat_locked != before.chat_locked:
        notes.append(f"{actor_name} locked the chat: only instructors can send messages"
                     if after.chat_locked else f"{actor_name} unlocked the chat")
    if after.slow_mode_s != before.slow_mode_s:
        notes.append(f"{actor_name} turned slow mode on: one message every {after.slow_mode_s} s per student"
                     if after.slow_mode_s else f"{actor_name} turned slow mode off")
    return notes


class Moderation:
    def __init__(self, db: Database, registry: Registry, redis=None, prefix: str = "podium"):
        self.db, self.registry, self.redis, self.prefix = db, registry, redis, prefix
        self._rules: dict[int, tuple[ChatRules, float]] = {}
        self._slow: dict[tuple[int, int], float] = {}  # without Redis: (room, user) → next allowed
        self._locks: dict[tuple[int, int], asyncio.Lock] = {}

    def register_notices(self, router: NoticeRouter) -> None:
        router.on(RoomModerated, lambda n, frame: self._rules.pop(n.room, None))

    # -- the rules -----------------------------------------------------------------------------
    def cached(self, room_id: int) -> ChatRules | None:
        entry = self._rules.get(room_id)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    async def rules(self, room_id: int) -> ChatRules:
        found = self.cached(room_id)
        if found is not None:
            return found
        async with self.db.read() as s:
            row = (await s.execute(select(Room.chat_locked, Room.slow_mode_s, Room.archived_at)
                                   .where(Room.id == room_id))).first()
        found = _rules_of(*row) if row is not None else ChatRules()
        self._rules[room_id] = (found, time.monotonic() + TTL_S)
        return found

    async def keep_fresh(self) -> None:
        """Forever: every ``TTL_S / 2``, re-read together the rules of the cached rooms that
        have sockets in this process, so their sends find them cached (one query, where each
        room's expiry cost a read of its own). A failed read is logged; those rooms' sends
        then read their rules themselves."""
        while True:
            await asyncio.sleep(TTL_S / 2)
            rooms = self.due()
            try:
                await self.refresh(rooms)
            except Exception:  # noqa: BLE001 - the database is down: sends fall back to their own reads
                log.exception("re-reading the chat rules of %d rooms failed", len(rooms))

    def due(self) -> list[int]:
        """The cached rooms ``keep_fresh`` re-reads: those with sockets in this process (the
        others' entries expire, and a send there reads them again)."""
        return [room for room in self._rules if room in self.registry.by_room]

    async def refresh(self, room_ids: list[int]) -> None:
        """Read these rooms' rules again (500 a query); a room that is gone is dropped."""
        for i in range(0, len(room_ids), 500):
            chunk = room_ids[i:i + 500]
            async with self.db.read() as s:
                rows = (await s.execute(select(Room.id, Room.chat_locked, Room.slow_mode_s, Room.archived_at)
                                        .where(Room.id.in_(chunk)))).all()
            until = time.monotonic() + TTL_S
            found = {row[0] for row in rows}
            for room_id, locked, slow, archived in rows:
                self._rules[room_id] = (_rules_of(locked, slow, archived), until)
            for room_id in chunk:
                if room_id not in found:
                    self._rules.pop(room_id, None)

    def forget(self, room_id: int) -> None:
        """The room's rules changed elsewhere (archived or unarchived): read them again, in
        every process."""
        self._rules.pop(room_id, None)
        if self.registry.bus is not None:
            self.registry.bus.publish(RoomModerated(room_id))

    async def set_rules(self, actor: Actor, room_id: int, body: dict) -> dict:
        """``PUT /api/rooms/{id}/moderation`` (room instructors) → ``{moderation}``."""
        async with self.db.write() as s:
            room = await require_instructor(s, room_id, actor, "only room instructors moderate the chat")
            before = ChatRules(bool(room.chat_locked), int(room.slow_mode_s or 0))
            after = parse_rules(body, before)
            await s.execute(update(Room).where(Room.id == room_id)
                            .values(chat_locked=after.chat_locked, slow_mode_s=after.slow_mode_s))
            notes = [await system_message(s, room_id, text) for text in describe(actor.display_name, before, after)]
        self._rules.pop(room_id, None)
        if self.registry.bus is not None:
            self.registry.bus.publish(RoomModerated(room_id))
        for note in notes:
            self.registry.broadcast(room_id, {"type": "message.new", "message": note})
        self.registry.broadcast(room_id, {"type": "room.moderation_changed", "room": str(room_id),
                                          **after.wire(), "by": str(actor.id)})
        log.info("room %s: chat locked %s, slow mode %ss (by %s)", room_id, after.chat_locked,
                 after.slow_mode_s, actor.id)
        return {"moderation": after.wire()}

    # -- enforcement on every send ---------------------------------------------------------------
    def gate(self, req):
        """None when nothing needs checking (the room's rules are known and it is not
        moderated, and no earlier send of this user there waits at the gate); else a
        coroutine that raises like ``check`` or returns once the send may go on."""
        rules = self.cached(req.room_id)
        key = (req.room_id, req.actor.id)
        if rules is not None and not rules.moderated and key not in self._locks:
            return None
        return self._in_order(key, req)

    async def _in_order(self, key, req) -> None:
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                await self.check(req)
        finally:
            if not lock.locked() and not getattr(lock, "_waiters", None):
                self._locks.pop(key, None)

    async def check(self, req) -> None:
        """RoomArchived in an archived room (for everyone); Forbidden while the chat is
        locked, RateLimited within a student's slow-mode interval (not for the resend of a
        stored message); instructors always pass those two."""
        rules = await self.rules(req.room_id)
        if not rules.moderated:
            return
        if rules.archived:
            require_open(rules)
        async with self.db.read() as s:
            _, role = await room_role(s, req.room_id, req.actor)
        if role == "instructor":
            return
        if rules.chat_locked:
            raise Forbidden("the chat is locked: only instructors can send messages now")
        wait = await self._slow_slot(req.room_id, req.actor.id, rules.slow_mode_s)
        if wait and not await self._stored(req):
            raise RateLimited(f"slow mode: one message every {rules.slow_mode_s} s", wait)

    async def _slow_slot(self, room_id: int, user_id: int, interval_s: int) -> float:
        """0 when this send takes the user's next slot in the room, else seconds to wait."""
        if self.redis is not None:
            key = f"{self.prefix}:slow:{room_id}:{user_id}"
            if await self.redis.set(key, 1, nx=True, px=int(interval_s * 1000)):
                return 0.0
            return max(0.001, (await self.redis.pttl(key)) / 1000)
        now = time.monotonic()
        until = self._slow.get((room_id, user_id), 0.0)
        if until > now:
            return until - now
        self._slow[(room_id, user_id)] = now + interval_s
        if len(self._slow) > 10_000:  # bounded: forget slots that have passed
            self._slow = {k: v for k, v in self._slow.items() if v > now}
        return 0.0

    async def _stored(self, req) -> bool:
        if not getattr(req, "client_msg_id", None):
            return False
        async with self.db.read() as s:
            found = await s.execute(select(Message.id).where(
                Message.room_id == req.room_id, Message.sender_id == req.actor.id,
                Message.client_msg_id == req.client_msg_id).limit(1))
            return found.first() is not None

    # -- bans ------------------------------------------------------------------------------------
    async def bans(self, actor: Actor, room_id: int) -> dict:
        async with self.db.read() as s:
            await require_instructor(s, room_id, actor, "only room instructors see the bans")
            rows = (await s.execute(select(RoomBan).where(RoomBan.room_id == room_id)
                                    .order_by(RoomBan.banned_at))).scalars().all()
        return {"bans": [{"user_id": str(b.user_id), "banned_by": str(b.banned_by) if b.banned_by else None,
                          "banned_at": iso(b.banned_at)} for b in rows]}

    async def is_banned(self, s, room_id: int, user_id: int) -> bool:
        return (await s.get(RoomBan, (room_id, user_id))) is not None

    async def ban(self, actor: Actor, room_id: int, user_id: int, remove) -> None:
        """Ban ``user_id`` (a member or not): stored first, then removed from the room if a
        member (``remove``: ``Rooms.remove_member``'s effects: they leave its call and stop
        receiving it, in every process)."""
        async with self.db.write() as s:
            room = await require_instructor(s, room_id, actor, "only room instructors ban members")
            if room.kind == "direct":
                raise Conflict("nobody is banned from a direct room")
            if user_id == actor.id:
                raise BadRequest("you cannot ban yourself")
            member = await rq.get_membership(s, room_id, user_id)
            if member is not None and member.role == "instructor":
                raise Conflict("an instructor cannot be banned: make them a student first")
            if await self.is_banned(s, room_id, user_id):
                return
            s.add(RoomBan(room_id=room_id, user_id=user_id, banned_by=actor.id, banned_at=utcnow()))
        if member is not None:
            await remove(actor, room_id, user_id, banned=True)

    async def unban(self, actor: Actor, room_id: int, user_id: int) -> None:
        async with self.db.write() as s:
            await require_instructor(s, room_id, actor, "only room instructors lift bans")
            ban = await s.get(RoomBan, (room_id, user_id))
            if ban is None:
                raise NotFound("this user is not banned from this room")
            await s.delete(ban)
