"""Rooms and members over REST (PROTOCOL §3 "Rooms and messages")."""
from __future__ import annotations

from server.kernel.actor import parse_id
from server.kernel.errors import BadRequest
from server.http.base import BaseHandler
from server.rooms.wire import id_list, username_list


class RoomsHandler(BaseHandler):
    async def get(self) -> None:
        actor = await self.authenticate()
        self.send_json({"rooms": await self.deps.rooms.list_rooms(actor)})

    async def post(self) -> None:
        actor = await self.authenticate()
        body = self.json_body()
        room = await self.deps.rooms.create_room(actor, body.get("kind"), body.get("name", ""),
                                                 id_list(body.get("members"), "members"),
                                                 username_list(body.get("member_usernames")))
        self.send_json({"room": room}, 201)


class RoomHandler(BaseHandler):
    async def get(self, room_id: str) -> None:
        actor = await self.authenticate()
        self.send_json(await self.deps.rooms.get_room(actor, self.path_id(room_id)))

    async def patch(self, room_id: str) -> None:
        """``{name?, archived?}``: rename, archive or unarchive (instructors)."""
        actor = await self.authenticate()
        self.send_json(await self.deps.rooms.update_room(actor, self.path_id(room_id), self.json_body()))


class MembersHandler(BaseHandler):
    async def post(self, room_id: str) -> None:
        actor = await self.authenticate()
        body = self.json_body()
        user_id = parse_id(body["user_id"], "user_id") if body.get("user_id") is not None else None
        username = body.get("username")
        if user_id is None and not isinstance(username, str):
            raise BadRequest("user_id or username is required")
        member = await self.deps.rooms.add_member(actor, self.path_id(room_id), user_id, username,
                                                  body.get("role"))
        self.send_json({"member": member}, 201)


class MemberHandler(BaseHandler):
    async def delete(self, room_id: str, user_id: str) -> None:
        actor = await self.authenticate()
        await self.deps.rooms.remove_member(actor, self.path_id(room_id), self.path_id(user_id))
        self.send_json({})


class ModerationHandler(BaseHandler):
    """``PUT /api/rooms/{id}/moderation {chat_locked?, slow_mode_s?}`` (rooms/moderation.py)."""

    async def put(self, room_id: str) -> None:
        actor = await self.authenticate()
        self.send_json(await self.deps.moderation.set_rules(actor, self.path_id(room_id), self.json_body()))


class BansHandler(BaseHandler):
    """``GET /api/rooms/{id}/bans``; ``POST`` ``{user_id}`` bans (and removes) a user."""

    async def get(self, room_id: str) -> None:
        actor = await self.authenticate()
        self.send_json(await self.deps.moderation.bans(actor, self.path_id(room_id)))

    async def post(self, room_id: str) -> None:
        actor = await self.authenticate()
        user_id = parse_id(self.json_body().get("user_id"), "user_id")
        await self.deps.moderation.ban(actor, self.path_id(room_id), user_id, self.deps.rooms.remove_member)
        self.send_json({}, 201)


class BanHandler(BaseHandler):
    """``DELETE /api/rooms/{id}/bans/{user}``: the ban is lifted (they may be added again)."""

    async def delete(self, room_id: str, user_id: str) -> None:
        actor = await self.authenticate()
        await self.deps.moderation.unban(actor, self.path_id(room_id), self.path_id(user_id))
        self.send_json({})
