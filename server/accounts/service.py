"""Accounts: who a token speaks for, sign-up, login, the current user and user search.

Password hashing runs in the default executor (scrypt is slow on purpose) so the loop keeps
serving while a login is checked; an unknown username costs as much as a known one.
"""
from __future__ import annotations

import asyncio

from sqlalchemy.exc import IntegrityError

from server.accounts.passwords import hash_password, verify_password
from server.accounts.tokens import WORKER_USER_ID, issue_token, verify_token
from server.accounts.wire import Credentials, Registration
from server.kernel.wire import user_wire
from server.config import Config
from server.db import users as uq
from server.db.engine import Database
from server.db.models import User
from server.kernel.actor import Actor
from server.kernel.errors import Conflict, Unauthorized

# A verified-password dummy so unknown usernames cost as much as known ones (no user probing).
_DUMMY_HASH = hash_password("podium-timing-equaliser")


class Accounts:
    def __init__(self, config: Config, db: Database):
        self.config, self.db = config, db

    async def authenticate(self, token) -> tuple[Actor, dict]:
        """The actor and user wire ``token`` speaks for; a media worker's token (no user row)
        is the virtual recorder user 0. Unauthorized when the token does not verify or its
        user no longer exists."""
        ident = verify_token(self.config, token)
        if ident.user_id == WORKER_USER_ID and ident.role == "recorder":
            user = {"id": str(WORKER_USER_ID), "username": "recorder", "display_name": ident.name,
                    "role": "recorder"}
            return Actor(WORKER_USER_ID, ident.name, "recorder"), user
        async with self.db.read() as s:
            row = await uq.get_user(s, ident.user_id)
        if row is None:
            raise Unauthorized("unknown user")
        return Actor(row.id, row.display_name, ident.role), user_wire(row) | {"role": ident.role}

    async def register(self, reg: Registration) -> tuple[str, User]:
        """Create the user; ``(token, user)``. Conflict when the username is taken."""
        pw_hash = await asyncio.get_running_loop().run_in_executor(None, hash_password, reg.password)
        try:
            async with self.db.write() as s:
                user = await uq.create_user(s, reg.username, reg.display_name, pw_hash, reg.role)
        except IntegrityError:
            raise Conflict("that username is taken") from None
        return issue_token(self.config, user.id, user.display_name, user.role), user

    async def login(self, cred: Credentials) -> tuple[str, User]:
        """``(token, user)`` for a right password; Unauthorized otherwise (same answer and cost
        for an unknown username)."""
        async with self.db.read() as s:
            user = await uq.get_user_by_username(s, cred.username)
        stored = user.password_hash if user else _DUMMY_HASH
        ok = await asyncio.get_running_loop().run_in_executor(None, verify_password, cred.password, stored)
        if user is None or not ok:
            raise Unauthorized("wrong username or password")
        return issue_token(self.config, user.id, user.display_name, user.role), user

    async def user(self, user_id: int) -> User | None:
        async with self.db.read() as s:
            return await uq.get_user(s, user_id)

    async def search(self, prefix: str, limit: int) -> list[User]:
        """Users whose username or display name starts with ``prefix`` (recorders never)."""
        async with self.db.read() as s:
            return await uq.search_users(s, prefix, limit)
