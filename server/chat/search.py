"""Searching a room's messages and its statistics (PROTOCOL §3)."""
from __future__ import annotations

from typing import Awaitable, Callable

from server.chat.wire import parse_search
from server.db import messages as mq
from server.db.engine import Database
from server.kernel.actor import Actor
from server.kernel.clock import iso
from server.rooms.membership import room_role


class Search:
    def __init__(self, db: Database, wires: Callable[[object, list], Awaitable[list[dict]]]):
        """``wires(session, rows)``: the messages' wire shapes (``Messages.wires``: a poll's
        carries its ``poll`` field, as everywhere messages are read)."""
        self.db, self.wires = db, wires

    async def search(self, actor: Actor, room_id: int, q, limit: int) -> dict:
        q = parse_search(q)
        async with self.db.read() as s:
            await room_role(s, room_id, actor)
            rows = await mq.search(s, room_id, q, limit)
            return {"messages": await self.wires(s, rows)}

    async def statistics(self, actor: Actor, room_id: int) -> dict:
        async with self.db.read() as s:
            await room_role(s, room_id, actor)
            stats = await mq.statistics(s, room_id)
        stats["first"] = iso(stats["first"]) if stats["first"] else None
        stats["last"] = iso(stats["last"]) if stats["last"] else None
        stats["room"] = str(room_id)
        return stats
