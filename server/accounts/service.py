"""Accounts: who a token speaks for, sign-up, login, the current user and user search.

A token says **who** (its subject); the database says **what they may do**: the actor's role is
the user row's, never the token's ``role`` claim, for Podium's own tokens and for an LMS's
alike. HTTP reads the row on every request, so a demoted admin's token loses admin rights at
once and a deleted user's token stops at once. An open WebSocket keeps the actor it
authenticated with and calls ``refresh`` before handling a frame once that actor is older
than ``role_recheck_s`` (15 s); ``refresh`` answers from a per-user cache of the same age,
so a socket acts on a role at most 2 × 15 = 30 s old (docs/SECURITY.md). ``keep_fresh``
re-reads the rows of every connected user together, one query per 500 users every quarter
bound, so those sockets' re-checks are cache hits: one read per socket and bound cost a
class that chats more CPU than its messages (bench/scaleout soak).

A token also carries the user's token version (``tv``): changing the password bumps the row's,
so every other token stops at once on HTTP, and open sockets of an older version are closed
(4401) through the ``signed_out`` hooks — at once in the process that made the change, within
``keep_fresh``'s turn (at most ¾ of ``role_recheck_s``) in the others, and in any case at their next
frame after the role bound.

Logins and sign-ups are throttled (``server/accounts/throttle.py``). Password hashing runs in
the default executor (scrypt is slow on purpose) so the loop keeps serving while a login is
checked; an unknown username costs as much as a known one.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from sqlalchemy.exc import IntegrityError

from server.accounts.external import ExternalTokens
from server.accounts.jwks import JwksCache
from server.accounts.passwords import hash_password, verify_password
from server.accounts.throttle import LoginThrottle
from server.accounts.password_rules import check_new_password
from server.accounts.tokens import (
    SERVICE_CREDENTIAL_PREFIX, WORKER_USER_ID, issue_token, token_version, verify_token,
)
from server.accounts.wire import Credentials, PasswordChange, Registration
from server.config import Config
from server.db import users as uq
from server.db.engine import Database
from server.db.models import User
from server.kernel.actor import Actor
from server.kernel.errors import Conflict, Forbidden, NotFound, Unauthorized
from server.kernel.wire import user_wire

log = logging.getLogger("podium.accounts")

# A verified-password dummy so unknown usernames cost as much as known ones (no user probing).
_DUMMY_HASH = hash_password("podium-timing-equaliser")
_CACHE_MAX = 10_000  # users whose row a process remembers before it drops the stale ones
_FRESH_CHUNK = 500  # user ids per query of ``refresh_many``
SIGNED_OUT = "signed out: the password was changed"

SignedOutHook = Callable[[int, int], None]


class Accounts:
    def __init__(self, config: Config, db: Database, throttle: LoginThrottle, jwks: JwksCache | None = None):
        self.config, self.db, self.throttle = config, db, throttle
        # An external identity provider's tokens (JWT_JWKS_URL): accounts/external.py.
        self.external = ExternalTokens(config, db, jwks or JwksCache.from_config(config))
        self._rows: dict[int, tuple[float, Actor | None]] = {}  # user id → (read at, actor or gone)
        self._signed_out: list[SignedOutHook] = []

    def on_signed_out(self, hook: SignedOutHook) -> None:
        """Register ``hook(user_id, version)``: tokens of that user below ``version`` no longer
        work (the password changed); run in this process when it sees the change."""
        self._signed_out.append(hook)

    def _run_signed_out(self, user_id: int, version: int) -> None:
        for hook in self._signed_out:
            try:
                hook(user_id, version)
            except Exception:  # one hook's failure must not keep the others from acting
                log.exception("user %s: a signed-out hook failed", user_id)

    # -- who a token speaks for ----------------------------------------------------------------
    async def authenticate(self, token) -> tuple[Actor, dict]:
        """The actor and user wire ``token`` speaks for, with the role stored for the user; a
        media worker's token (no user row) is the virtual recorder user 0. Unauthorized when
        the token does not verify, its user no longer exists, or the user row is a recorder
        account (workers sign in with WORKER_SECRET, never with a user token). A token of the
        external identity provider (JWT_JWKS_URL) speaks for the user linked to its (iss, sub);
        it has no token version (no Podium password signs it out)."""
        if isinstance(token, str) and token.startswith(SERVICE_CREDENTIAL_PREFIX):
            raise Unauthorized("a service credential is accepted on /api/provision/ only, not as a user's token")
        if self.external.handles(token):
            row = await self.external.user(token)
            return self._remember(row.id, row), user_wire(row)
        ident = verify_token(self.config, token)
        if ident.user_id == WORKER_USER_ID and ident.role == "recorder":
            return Actor(WORKER_USER_ID, ident.name, "recorder"), _worker_wire(ident.name)
        async with self.db.read() as s:
            row = await uq.get_user(s, ident.user_id)
        actor = self._remember(ident.user_id, row)
        if token_version(ident) != actor.token_version:
            raise Unauthorized(SIGNED_OUT)
        return actor, user_wire(row)

    async def refresh(self, actor: Actor) -> Actor:
        """``actor`` as the database has it now, or as it had it at most ``role_recheck_s`` ago
        (a per-user cache); Unauthorized when the user is gone. The worker's actor is its own."""
        if actor.id == WORKER_USER_ID:
            return actor
        now = time.monotonic()
        hit = self._rows.get(actor.id)
        if hit is not None and now - hit[0] < self.config.role_recheck_s:
            if hit[1] is None:
                raise Unauthorized("unknown user")
            fresh = hit[1]
        else:
            async with self.db.read() as s:
                row = await uq.get_user(s, actor.id)
            fresh = self._remember(actor.id, row)
        if fresh.token_version != actor.token_version:
            raise Unauthorized(SIGNED_OUT)
        return fresh

    async def refresh_many(self, user_ids: list[int]) -> None:
        """Re-read these users' rows into the cache (one query per ``_FRESH_CHUNK`` ids); a
        user without a row is cached as gone."""
        for i in range(0, len(user_ids), _FRESH_CHUNK):
            chunk = user_ids[i:i + _FRESH_CHUNK]
            async with self.db.engine.connect() as conn:  # Core: no ORM session for a plain read
                rows = {row.id: row for row in await uq.role_rows(conn, chunk)}
            for uid in chunk:
                before = self._rows.get(uid, (0.0, None))[1]
                now = self._cache(uid, rows.get(uid))
                if before is not None and now is not None and now.token_version > before.token_version:
                    self._run_signed_out(uid, now.token_version)  # changed through another process

    async def keep_fresh(self, connected: Callable[[], Iterable[int]]) -> None:
        """Forever: every quarter of ``role_recheck_s``, re-read together the users of
        ``connected()`` whose cached row is older than half of it, so an open socket's
        re-check (``refresh``) finds its row in the cache. A failed read is logged and retried
        at the next turn; the sockets then read their rows themselves."""
        bound = self.config.role_recheck_s
        while True:
            await asyncio.sleep(bound / 4)
            now = time.monotonic()
            due = [uid for uid in connected() if uid != WORKER_USER_ID
                   and now - self._rows.get(uid, (-bound, None))[0] >= bound / 2]
            try:
                await self.refresh_many(due)
            except Exception:  # noqa: BLE001 - the database is down: sockets fall back to their own reads
                log.exception("re-reading %d connected users' roles failed", len(due))

    def _remember(self, user_id: int, row: User | None) -> Actor:
        """Cache what the row says (a fresh read) and return the actor; Unauthorized when it
        stands for no one who may use a user token."""
        actor = self._cache(user_id, row)
        if row is None:
            raise Unauthorized("unknown user")
        if actor is None:
            raise Unauthorized("recorder accounts cannot use user tokens; media workers sign in with WORKER_SECRET")
        return actor

    def _cache(self, user_id: int, row) -> Actor | None:
        """Cache the actor ``row`` stands for (None: gone, or a recorder account) as read now."""
        now = time.monotonic()
        if len(self._rows) >= _CACHE_MAX:
            bound = self.config.role_recheck_s
            self._rows = {k: v for k, v in self._rows.items() if now - v[0] < bound}
        actor = (None if row is None or row.role == "recorder"
                 else Actor(row.id, row.display_name, row.role, row.token_version))
        self._rows[user_id] = (now, actor)
        return actor

    # -- sign-up and login ---------------------------------------------------------------------
    async def register(self, reg: Registration, address: str) -> tuple[str, User]:
        """Create the user; ``(token, user)``. RateLimited past the address's sign-up budget;
        Conflict when the username is taken."""
        await self.throttle.signup(address)
        pw_hash = await asyncio.get_running_loop().run_in_executor(None, hash_password, reg.password)
        try:
            async with self.db.write() as s:
                # The first account of a fresh install is the site's admin (issue 15.8).
                role = "admin" if not await uq.any_person(s) else reg.role
                user = await uq.create_user(s, reg.username, reg.display_name, pw_hash, role)
        except IntegrityError:
            raise Conflict("that username is taken") from None
        return issue_token(self.config, user.id, user.display_name, user.role, version=user.token_version), user

    async def login(self, cred: Credentials, address: str) -> tuple[str, User]:
        """``(token, user)`` for a right password. RateLimited, before the password is checked,
        when a failed-login budget of this username or ``address`` is spent; Unauthorized for
        a wrong password (same answer and cost for an unknown username), which spends one
        failure of each budget; Forbidden for a recorder account's right password."""
        attempt = await self.throttle.begin(cred.username, address)
        try:
            async with self.db.read() as s:
                user = await uq.get_user_by_username(s, cred.username)
            stored = user.password_hash if user else _DUMMY_HASH
            ok = await asyncio.get_running_loop().run_in_executor(None, verify_password, cred.password, stored)
        except BaseException:
            await self.throttle.abandoned(attempt)
            raise
        if user is None or not ok:
            raise Unauthorized("wrong username or password")
        await self.throttle.succeeded(attempt)
        if user.role == "recorder":
            raise Forbidden("recorder accounts cannot sign in; media workers use WORKER_SECRET")
        return issue_token(self.config, user.id, user.display_name, user.role, version=user.token_version), user

    # -- the profile: display name and password -------------------------------------------------
    async def rename(self, actor: Actor, display_name: str) -> dict:
        """Set the caller's display name (already parsed); their user wire. Every message and
        member list shows the new name from now on (they read it from the row)."""
        async with self.db.write() as s:
            row = await self._own_row(s, actor)
            row.display_name = display_name
            await s.flush()
            wire = user_wire(row)
        self._rows.pop(actor.id, None)  # this process's sockets act under the new name at once
        return wire

    async def change_password(self, actor: Actor, change: PasswordChange, address: str) -> tuple[str, User]:
        """Check the old password (throttled like a login: RateLimited past the budgets,
        Forbidden when wrong), check the new one by the sign-up rules (BadRequest), store it and
        bump the token version: every other token of the user stops working and their open
        sockets are closed. Returns a fresh ``(token, user)`` for the caller."""
        async with self.db.read() as s:
            row = await self._own_row(s, actor)
        if row.password_hash is None:
            raise Forbidden("this account has no password: it signs in through the LMS")
        attempt = await self.throttle.begin(row.username, address)
        loop = asyncio.get_running_loop()
        try:
            ok = await loop.run_in_executor(None, verify_password, change.old_password, row.password_hash)
        except BaseException:
            await self.throttle.abandoned(attempt)
            raise
        if not ok:
            raise Forbidden("the current password is wrong")
        await self.throttle.succeeded(attempt)
        check_new_password(change.new_password, row.username, row.display_name, self.config.password_min_score)
        pw_hash = await loop.run_in_executor(None, hash_password, change.new_password)
        async with self.db.write() as s:
            row = await self._own_row(s, actor)
            row.password_hash = pw_hash
            row.token_version += 1
            await s.flush()
        self._rows.pop(actor.id, None)
        self._run_signed_out(row.id, row.token_version)
        log.info("user %s changed their password; tokens before version %s signed out", row.id, row.token_version)
        return issue_token(self.config, row.id, row.display_name, row.role, version=row.token_version), row

    async def _own_row(self, s, actor: Actor) -> User:
        if actor.id == WORKER_USER_ID:
            raise Forbidden("media workers have no profile")
        row = await uq.get_user(s, actor.id)
        if row is None:
            raise NotFound("unknown user")
        return row

    # -- the current user and user search -------------------------------------------------------
    async def me(self, actor: Actor) -> dict:
        """The caller's user wire: the worker's virtual user for a media worker's token, else
        the stored user (Unauthorized when it was deleted meanwhile)."""
        if actor.id == WORKER_USER_ID:
            return _worker_wire(actor.display_name)
        async with self.db.read() as s:
            row = await uq.get_user(s, actor.id)
        if row is None:
            raise Unauthorized("unknown user")
        return user_wire(row)

    async def user(self, user_id: int) -> User | None:
        async with self.db.read() as s:
            return await uq.get_user(s, user_id)

    async def search(self, actor: Actor, query: str, limit: int) -> list[User]:
        """Users ``actor`` may find for ``query`` (docs/SECURITY.md): the one whose username is
        exactly ``query`` (case-insensitively) wherever they are, so anyone can be added by
        username; and those whose username or display name starts with it among people who
        share a room with ``actor``. Site admins (instructors in every room) find everyone by
        prefix. Recorders are never found; a media worker may not search (Forbidden)."""
        if actor.role == "recorder":
            raise Forbidden("media workers do not search users")
        async with self.db.read() as s:
            return await uq.search_users(s, query, limit, sharing_with=None if actor.is_admin else actor.id)


def _worker_wire(name: str) -> dict:
    """The virtual user a media worker's token stands for (no user row)."""
    return {"id": str(WORKER_USER_ID), "username": "recorder", "display_name": name, "role": "recorder"}
