"""Who is in a room right now: socket subscriptions (room.join/leave), online lists, typing
and statuses (PROTOCOL §2.1). With ``REDIS_URL`` the online state spans every process
(realtime.presence.RedisPresence); without it this process's registry is the whole truth.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable

from server.chat.typing import TypingRelay
from server.db import messages as mq
from server.db import rooms as rq
from server.db.engine import Database
from server.kernel.actor import Actor
from server.kernel.errors import BadRequest
from server.realtime.registry import Registry
from server.rooms.membership import room_role
from server.rooms.wire import last_message_wire, room_wire

log = logging.getLogger("podium.presence")

STATUSES = ("online", "away", "busy")


class Presence:
    def __init__(self, db: Database, registry: Registry, store=None):
        """``store``: the RedisPresence shared by every process, or None (one process)."""
        self.db, self.registry, self.store = db, registry, store
        # Each adds fields to a room.join answer: ``(room_id) -> dict`` (calls: the live session).
        self._join_extras: list[Callable[[int], dict]] = []
        self._tasks: set[asyncio.Task] = set()
        self.typing_relay = TypingRelay()

    def on_join(self, extra: Callable[[int], dict]) -> None:
        """Register ``extra(room_id) -> dict``, merged into every room.join answer."""
        self._join_extras.append(extra)

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- subscriptions ---------------------------------------------------------------------
    async def join(self, conn, actor: Actor, room_id: int) -> dict:
        async with self.db.read() as s:
            room, role = await room_role(s, room_id, actor)
            mem = await rq.member_users(s, room_id)
            reads = await rq.reads(s, room_id)
            last = last_message_wire((await mq.last_messages(s, room=room_id)).get(room_id))
        first = self.registry.subscribe(conn, room_id)
        if self.registry.changes is not None and len(self.registry.by_room.get(room_id, ())) == 1:
            # The room's first local socket: its next message.new and change are the ones after
            # these, even when a later one (sent through this process) overtakes them.
            self.registry.order.baseline(room_id, room.last_seq)
            self.registry.changes.baseline(room_id, room.last_change)
        if first and (self.store is None or await self.store.came_online(room_id, actor.id)):
            self.registry.broadcast(room_id, {"type": "presence.joined", "room": str(room_id),
                                              "user_id": str(actor.id)}, droppable=True,
                                    exclude_user=actor.id)
        data = {"room": room_wire(room, role, reads.get(str(actor.id), 0), len(mem), last),
                "last_seq": room.last_seq,
                "members": mem,
                "online": await self.online(room_id), "reads": reads, "my_role": role,
                "last_change": room.last_change}
        for extra in self._join_extras:
            data.update(extra(room_id))
        return data

    async def online(self, room_id: int) -> list[str]:
        if self.store is not None:
            return await self.store.online(room_id)
        return self.registry.online(room_id)

    def leave(self, conn, actor: Actor, room_id: int) -> None:
        if self.registry.unsubscribe(conn, room_id):
            self._went_offline(room_id, actor.id)

    def socket_closed(self, conn, rooms_left: list[int], user_gone: bool) -> None:
        """A socket closed: the rooms where its user has no socket left see them go offline;
        when it was the user's last socket here, the shared store hears it too."""
        for room_id in rooms_left:
            self._went_offline(room_id, conn.user_id)
        if user_gone and self.store is not None:
            self._spawn(self.store.user_gone(conn.user_id))

    def socket_authenticated(self, conn, first_of_user: bool) -> None:
        if first_of_user and self.store is not None:
            self._spawn(self.store.user_here(conn.user_id))

    async def member_removed(self, room_id: int, user_id: int) -> None:
        """The removed user's sockets in this process stop receiving the room at once."""
        for conn in tuple(self.registry.user_sockets(user_id)):
            if self.registry.unsubscribe(conn, room_id):
                self._went_offline(room_id, user_id)

    def _went_offline(self, room_id: int, user_id: int) -> None:
        """The user's last socket here left the room: tell the room, unless (with several
        processes) the user is still online through another one."""
        self.typing_relay.ended(room_id, user_id)  # receivers clear typing on presence.left
        event = {"type": "presence.left", "room": str(room_id), "user_id": str(user_id)}
        if self.store is None:
            self.registry.broadcast(room_id, event, droppable=True)
            return

        async def check() -> None:
            if await self.store.went_offline(room_id, user_id):
                self.registry.broadcast(room_id, event, droppable=True)

        self._spawn(check())

    # -- typing and statuses ---------------------------------------------------------------
    async def typing(self, actor: Actor, room_id: int, active) -> None:
        if not isinstance(active, bool):
            raise BadRequest("active must be a boolean")
        # Typing is only relayed from a user subscribed to the room (membership was checked
        # at room.join); anything else is checked against SQL.
        if actor.id not in self.registry.room_users.get(room_id, ()):
            async with self.db.read() as s:
                await room_role(s, room_id, actor)
            return
        if self.typing_relay.should_relay(room_id, actor.id, active):  # only what changes receivers' view
            self.registry.broadcast(room_id, {"type": "typing", "room": str(room_id), "user_id": str(actor.id),
                                              "active": active}, droppable=True, exclude_user=actor.id)

    def message_sent(self, room_id: int, user_id: int) -> None:
        """A message from the user is on its way: its ``message.new`` ends their typing."""
        self.typing_relay.ended(room_id, user_id)

    async def presence_list(self, actor: Actor, room_id: int) -> dict:
        async with self.db.read() as s:
            await room_role(s, room_id, actor)
        online = await self.online(room_id)
        if self.store is not None:
            return {"online": online, "status": await self.store.statuses(online)}
        return {"online": online,
                "status": {uid: self.registry.status.get(int(uid), "online") for uid in online}}

    async def presence_status(self, actor: Actor, status) -> dict:
        if status not in STATUSES:
            raise BadRequest("status must be online, away or busy")
        self.registry.status[actor.id] = status
        if self.store is not None:
            await self.store.set_status(actor.id, status)
        async with self.db.read() as s:
            rooms = [r.id for r, *_ in await rq.rooms_for_user(s, actor.id)]
        for room_id in rooms:
            self.registry.broadcast(room_id, {"type": "presence.status", "room": str(room_id),
                                              "user_id": str(actor.id), "status": status}, droppable=True)
        return {"status": status}

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(tuple(self._tasks), timeout=5)
