"""``/api/auth/register``, ``/api/auth/login``, ``/api/me``, ``/api/users`` (PROTOCOL §1)."""
from __future__ import annotations

from server.accounts.wire import parse_login, parse_registration, session_wire
from server.http.base import BaseHandler
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


class UsersHandler(BaseHandler):
    async def get(self) -> None:
        actor = await self.authenticate()
        q = self.get_query_argument("q", "")
        limit = self.query_int("limit", 10, 1, 50)
        users = await self.deps.accounts.search(actor, q[:64], limit)
        self.send_json({"users": [user_wire(u) for u in users]})
