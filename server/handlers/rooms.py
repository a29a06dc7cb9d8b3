"""Rooms, members and messages over REST (PROTOCOL §3 "Rooms and messages")."""
from __future__ import annotations

from server.kernel.actor import parse_id
from server.kernel.errors import BadRequest
from server.handlers.base import BaseHandler


def _ids(value, what: str) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 1000:
        raise BadRequest(f"{what} must be a list")
    return [parse_id(v, what) for v in value]


class RoomsHandler(BaseHandler):
    async def get(self) -> None:
        actor = await self.authenticate()
        self.send_json({"rooms": await self.deps.chat.list_rooms(actor)})

    async def post(self) -> None:
        actor = await self.authenticate()
        body = self.json_body()
        names = body.get("member_usernames") or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise BadRequest("member_usernames must be a list of strings")
        room = await self.deps.chat.create_room(actor, body.get("kind"), body.get("name", ""),
                                                _ids(body.get("members"), "members"), names)
        self.send_json({"room": room}, 201)


class RoomHandler(BaseHandler):
    async def get(self, room_id: str) -> None:
        actor = await self.authenticate()
        self.send_json(await self.deps.chat.get_room(actor, self.path_id(room_id)))


class MembersHandler(BaseHandler):
    async def post(self, room_id: str) -> None:
        actor = await self.authenticate()
        body = self.json_body()
        user_id = parse_id(body["user_id"], "user_id") if body.get("user_id") is not None else None
        username = body.get("username")
        if user_id is None and not isinstance(username, str):
            raise BadRequest("user_id or username is required")
        member = await self.deps.chat.add_member(actor, self.path_id(room_id), user_id, username,
                                                 body.get("role"))
        self.send_json({"member": member}, 201)


class MemberHandler(BaseHandler):
    async def delete(self, room_id: str, user_id: str) -> None:
        actor = await self.authenticate()
        await self.deps.chat.remove_member(actor, self.path_id(room_id), self.path_id(user_id))
        self.send_json({})


class MessagesHandler(BaseHandler):
    async def get(self, room_id: str) -> None:
        actor = await self.authenticate()
        before = self.query_int("before", None, 1, 2**62)
        after = self.query_int("after", None, 0, 2**62)
        limit = self.query_int("limit", 50, 1, 500)
        kind = self.get_query_argument("kind", None) or None
        self.send_json(await self.deps.chat.history(actor, self.path_id(room_id), before, after, limit, kind))

    async def post(self, room_id: str) -> None:
        actor = await self.authenticate()
        message, created = await self.deps.chat.send(actor, self.path_id(room_id), self.json_body())
        self.send_json({"message": message}, 201 if created else 200)


class SearchHandler(BaseHandler):
    async def get(self, room_id: str) -> None:
        actor = await self.authenticate()
        limit = self.query_int("limit", 20, 1, 100)
        self.send_json(await self.deps.chat.search(actor, self.path_id(room_id),
                                                   self.get_query_argument("q", ""), limit))


class StatisticsHandler(BaseHandler):
    async def get(self, room_id: str) -> None:
        actor = await self.authenticate()
        self.send_json(await self.deps.chat.statistics(actor, self.path_id(room_id)))


class MessageHandler(BaseHandler):
    async def patch(self, message_id: str) -> None:
        actor = await self.authenticate()
        body = self.json_body()
        msg = await self.deps.chat.edit(actor, self.path_id(message_id), body.get("content"))
        self.send_json({"message": msg})

    async def delete(self, message_id: str) -> None:
        actor = await self.authenticate()
        self.send_json({"message": await self.deps.chat.delete(actor, self.path_id(message_id))})
