"""``/api/auth/register``, ``/api/auth/login``, ``/api/me``, ``/api/users`` (PROTOCOL §1)."""
from __future__ import annotations

from server.accounts import avatar_store
from server.accounts.avatars import CONTENT_TYPE as AVATAR_TYPE, MAX_AVATAR_BYTES
from server.accounts.wire import (parse_display_name, parse_login, parse_password_change, parse_registration,
                                  session_wire)
from server.http.base import BaseHandler
from server.realtime.budget import spend
from server.kernel.errors import Forbidden
from server.kernel.wire import user_wire


class RegisterHandler(BaseHandler):
    async def post(self) -> None:
        if not self.deps.config.allow_signup:
            raise Forbidden("sign-up is disabled on this server")
        reg = parse_registration(self.json_body(), self.deps.config.password_min_score)
        token, user = await self.deps.accounts.register(reg, self.request.remote_ip)
        self.send_json(session_wire(token, user), 201)


class LoginHandler(BaseHandler):
    async def post(self) -> None:
        token, user = await self.deps.accounts.login(parse_login(self.json_body()), self.request.remote_ip)
        self.send_json(session_wire(token, user))


class MeHandler(BaseHandler):
    async def get(self) -> None:
        actor = await self.authenticate()
        self.send_json({"user": await self.deps.accounts.me(actor)})

    async def patch(self) -> None:
        actor = await self.authenticate()
        user = await self.deps.accounts.rename(actor, parse_display_name(self.json_body()))
        await self.deps.rooms.user_changed(user)
        self.send_json({"user": user})


class PasswordHandler(BaseHandler):
    async def post(self) -> None:
        actor = await self.authenticate()
        token, user = await self.deps.accounts.change_password(actor, parse_password_change(self.json_body()),
                                                               self.request.remote_ip)
        self.send_json(session_wire(token, user))


class AvatarHandler(BaseHandler):
    """``PUT /api/me/avatar`` with the image as the body (any Content-Type: the bytes are
    checked), ``DELETE /api/me/avatar``; both answer ``{user}``."""

    def body_limit(self) -> int:
        return MAX_AVATAR_BYTES

    async def put(self) -> None:
        actor = await self.authenticate()
        await spend(self.deps.upload_budget, actor.id, "slow down: too many uploads")
        user = await avatar_store.set_avatar(self.deps.db, self.deps.storage, actor, bytes(self.request.body))
        await self.deps.rooms.user_changed(user)
        self.send_json({"user": user})

    async def delete(self) -> None:
        actor = await self.authenticate()
        user = await avatar_store.remove_avatar(self.deps.db, self.deps.storage, actor)
        await self.deps.rooms.user_changed(user)
        self.send_json({"user": user})


class AvatarImageHandler(BaseHandler):
    """``GET /avatars/<token>/<side>``: a current avatar image, no credentials (accounts/avatar_store.py)."""

    async def get(self, token: str, side: str) -> None:
        token, size = avatar_store.parse_avatar_path(token, side)
        data = await avatar_store.read_avatar(self.deps.db, self.deps.storage, token, size)
        self.set_header("Content-Type", AVATAR_TYPE)
        # The URL changes with the avatar: a browser may keep this copy.
        self.set_header("Cache-Control", "private, max-age=86400")
        self.set_header("Content-Security-Policy", "default-src 'none'")
        self.finish(data)


class UsersHandler(BaseHandler):
    async def get(self) -> None:
        actor = await self.authenticate()
        q = self.get_query_argument("q", "")
        limit = self.query_int("limit", 10, 1, 50)
        users = await self.deps.accounts.search(actor, q[:64], limit)
        self.send_json({"users": [user_wire(u) for u in users]})


class RoomAvatarHandler(BaseHandler):
    """``PUT /api/rooms/{id}/avatar`` (the image as the body) and ``DELETE``: a group or course
    room's picture, by its instructors; both answer ``{avatar}`` and tell the room
    ``room.updated {room: {id, avatar}}``."""

    def body_limit(self) -> int:
        return MAX_AVATAR_BYTES

    async def put(self, room_id: str) -> None:
        actor = await self.authenticate()
        await spend(self.deps.upload_budget, actor.id, "slow down: too many uploads")
        await self._set(actor, self.path_id(room_id), bytes(self.request.body))

    async def delete(self, room_id: str) -> None:
        await self._set(await self.authenticate(), self.path_id(room_id), None)

    async def _set(self, actor, room_id: int, data: bytes | None) -> None:
        avatar = await avatar_store.set_room_avatar(self.deps.db, self.deps.storage, actor, room_id, data)
        self.deps.registry.broadcast(room_id, {"type": "room.updated", "room": {"id": str(room_id), "avatar": avatar}})
        self.send_json({"avatar": avatar})
