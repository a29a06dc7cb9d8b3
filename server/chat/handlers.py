"""Messages over REST (PROTOCOL §3 "Rooms and messages"): history, send, search, statistics,
edit and delete."""
from __future__ import annotations

from server.chat.wire import MAX_SEQ, MAX_SYNC, parse_send
from server.http.base import BaseHandler
from server.realtime.budget import spend


class MessagesHandler(BaseHandler):
    async def get(self, room_id: str) -> None:
        actor = await self.authenticate()
        before = self.query_int("before", None, 1, MAX_SEQ)
        after = self.query_int("after", None, 0, MAX_SEQ)
        limit = self.query_int("limit", 50, 1, MAX_SYNC)
        kind = self.get_query_argument("kind", None) or None
        self.send_json(await self.deps.messages.history(actor, self.path_id(room_id), before, after, limit, kind))

    async def post(self, room_id: str) -> None:
        actor = await self.authenticate()
        req = parse_send(actor, self.path_id(room_id), self.json_body(), self.deps.config.max_content_bytes)
        # The same budget as the user's WebSocket frames, in every process.
        await spend(self.deps.chat_budget, actor.id, "slow down: too many messages")
        check = self.deps.moderation.gate(req)  # a locked chat, slow mode (rooms/moderation.py)
        if check is not None:
            await check
        message, created = await self.deps.messages.send(req)
        self.send_json({"message": message}, 201 if created else 200)


class SearchHandler(BaseHandler):
    async def get(self, room_id: str) -> None:
        actor = await self.authenticate()
        limit = self.query_int("limit", 20, 1, 100)
        self.send_json(await self.deps.search.search(actor, self.path_id(room_id),
                                                     self.get_query_argument("q", ""), limit))


class StatisticsHandler(BaseHandler):
    async def get(self, room_id: str) -> None:
        actor = await self.authenticate()
        self.send_json(await self.deps.search.statistics(actor, self.path_id(room_id)))


class MessageHandler(BaseHandler):
    async def patch(self, message_id: str) -> None:
        actor = await self.authenticate()
        msg = await self.deps.messages.edit(actor, self.path_id(message_id), self.json_body().get("content"))
        self.send_json({"message": msg})

    async def delete(self, message_id: str) -> None:
        actor = await self.authenticate()
        self.send_json({"message": await self.deps.messages.delete(actor, self.path_id(message_id))})
