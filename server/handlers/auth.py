"""``/api/auth/register``, ``/api/auth/login``, ``/api/me`` (PROTOCOL §1)."""
from __future__ import annotations

import asyncio
import re

from sqlalchemy.exc import IntegrityError

from server import codec
from server.auth import hash_password, issue_token, verify_password
from server.db import users as uq
from server.kernel.errors import BadRequest, Conflict, Forbidden, Unauthorized
from server.handlers.base import BaseHandler

USERNAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{1,31}")  # fullmatch: "$" would allow a trailing newline
# A verified-password dummy so unknown usernames cost as much as known ones (no user probing).
_DUMMY_HASH = hash_password("podium-timing-equaliser")


def check_credentials(username, password) -> tuple[str, str]:
    if not isinstance(username, str) or not USERNAME_RE.fullmatch(username.lower()):
        raise BadRequest("username must be 2-32 characters: letters, digits, . _ -")
    if not isinstance(password, str) or not 8 <= len(password) <= 256:
        raise BadRequest("password must be 8-256 characters")
    return username.lower(), password


class RegisterHandler(BaseHandler):
    async def post(self) -> None:
        if not self.deps.config.allow_signup:
            raise Forbidden("sign-up is disabled on this server")
        body = self.json_body()
        username, password = check_credentials(body.get("username"), body.get("password"))
        display = body.get("display_name") or username
        if not isinstance(display, str) or not display.strip() or len(display) > 128:
            raise BadRequest("display_name must be 1-128 characters")
        pw_hash = await asyncio.get_running_loop().run_in_executor(None, hash_password, password)
        try:
            async with self.deps.db.write() as s:
                # Sign-up picks the global role: student (default) or instructor, so a teacher
                # can start on their own. admin and recorder come only from the CLI or an LMS.
                role = body.get("role", "student")
                if role not in ("student", "instructor"):
                    raise BadRequest("role must be student or instructor")
                user = await uq.create_user(s, username, display.strip(), pw_hash, role)
        except IntegrityError:
            raise Conflict("that username is taken") from None
        token = issue_token(self.deps.config, user.id, user.display_name, user.role)
        self.send_json({"token": token, "user": codec.user_wire(user)}, 201)


class LoginHandler(BaseHandler):
    async def post(self) -> None:
        body = self.json_body()
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not isinstance(password, str) or len(password) > 256:
            raise BadRequest("username and password are required")
        async with self.deps.db.read() as s:
            user = await uq.get_user_by_username(s, username)
        stored = user.password_hash if user else _DUMMY_HASH
        ok = await asyncio.get_running_loop().run_in_executor(None, verify_password, password, stored)
        if user is None or not ok:
            raise Unauthorized("wrong username or password")
        token = issue_token(self.deps.config, user.id, user.display_name, user.role)
        self.send_json({"token": token, "user": codec.user_wire(user)})


class MeHandler(BaseHandler):
    async def get(self) -> None:
        actor = await self.authenticate()
        async with self.deps.db.read() as s:
            user = await uq.get_user(s, actor.id)
        self.send_json({"user": codec.user_wire(user)})


class UsersHandler(BaseHandler):
    async def get(self) -> None:
        await self.authenticate()
        q = self.get_query_argument("q", "")
        limit = self.query_int("limit", 10, 1, 50)
        async with self.deps.db.read() as s:
            users = await uq.search_users(s, q[:64], limit)
        self.send_json({"users": [codec.user_wire(u) for u in users]})
