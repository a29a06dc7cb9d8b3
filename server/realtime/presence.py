"""Who is online in a room across web processes (docs/SCALING.md), kept in Redis with TTLs.

One hash per room, ``<prefix>:presence:<room>``, with a field ``<user>:<process>`` per user a
process has a socket for in that room, whose value is an expiry time. Each process refreshes
its own fields every ``REFRESH_S`` (expiry ``TTL_S`` ahead), removes them when the user's last
local socket leaves, and a process that dies stops refreshing, so its users drop out within
``TTL_S``. ``presence.joined``/``presence.left`` are sent only when a user comes online in the
first process / goes offline in the last one. Without ``REDIS_URL`` the registry's local
counts are the whole truth and none of this runs.

A user's status (``presence.status``: away, busy) lives in ``<prefix>:user:<user>``, field
``status``, next to a field per process that has a socket of the user (an expiry time, like
the room fields). The status is cleared when the user's last socket anywhere closes, as in
one process.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

log = logging.getLogger("podium.presence")

TTL_S = 30.0
REFRESH_S = 10.0
_CHUNK = 500  # user keys per call of the refresh script
# KEYS: user keys; ARGV: process, expiry, key TTL (s). Sets the process's field in each.
_TOUCH = """
for _, k in ipairs(KEYS) do
  redis.call('HSET', k, ARGV[1], ARGV[2])
  redis.call('EXPIRE', k, ARGV[3])
end
return #KEYS
"""


class RedisPresence:
    def __init__(self, redis: Any, prefix: str, registry, origin: str):
        self.redis, self.prefix, self.registry, self.origin = redis, prefix, registry, origin
        self._task: asyncio.Task | None = None
        self._touch = redis.register_script(_TOUCH)

    async def refresh(self) -> None:
        """Push this process's fields ``TTL_S`` ahead: one HSET per room (every local user of
        it as one mapping) and one script call per ``_CHUNK`` users for their user keys —
        a few dozen commands for a thousand sockets instead of three per user and room."""
        expiry, ttl = time.time() + TTL_S, int(TTL_S * 2)
        users = list(self.registry.by_user)
        async with self.redis.pipeline(transaction=False) as pipe:
            for room, members in list(self.registry.room_users.items()):
                if members:
                    pipe.hset(self._key(room), mapping={f"{u}:{self.origin}": expiry for u in members})
                    pipe.expire(self._key(room), ttl)
            for i in range(0, len(users), _CHUNK):
                keys = [self._user_key(u) for u in users[i:i + _CHUNK]]
                # A script object in a pipeline: redis-py loads it first if Redis lacks it.
                await self._touch(keys=keys, args=[self.origin, expiry, ttl], client=pipe)
            await pipe.execute()

    def _key(self, room: int) -> str:
        return f"{self.prefix}:presence:{room}"

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._refresh_loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=2)

    async def _users(self, room: int) -> dict[int, set[str]]:
        """user → processes where the user is online in ``room`` (unexpired fields)."""
        now = time.time()
        raw = await self.redis.hgetall(self._key(room))
        out: dict[int, set[str]] = {}
        for field, expiry in raw.items():
            user, _, origin = field.decode().partition(":")
            if float(expiry) > now:
                out.setdefault(int(user), set()).add(origin)
        return out

    async def online(self, room: int) -> list[str]:
        users = set(self.registry.room_users.get(room, ()))
        try:
            users |= set(await self._users(room))
        except Exception as e:  # Redis down: this process's view is still right for its sockets
            log.warning("presence of room %s from Redis failed: %s", room, e)
        return [str(u) for u in sorted(users)]

    async def came_online(self, room: int, user: int) -> bool:
        """Record the user here; True when no other process had them online in the room."""
        try:
            others = (await self._users(room)).get(user, set()) - {self.origin}
            await self.redis.hset(self._key(room), f"{user}:{self.origin}", time.time() + TTL_S)
            await self.redis.expire(self._key(room), int(TTL_S * 2))
            return not others
        except Exception as e:
            log.warning("presence update in Redis failed: %s", e)
            return True

    async def went_offline(self, room: int, user: int) -> bool:
        """Forget the user here; True when no other process has them online in the room."""
        try:
            await self.redis.hdel(self._key(room), f"{user}:{self.origin}")
            return not ((await self._users(room)).get(user, set()) - {self.origin})
        except Exception as e:
            log.warning("presence update in Redis failed: %s", e)
            return True

    def _user_key(self, user: int) -> str:
        return f"{self.prefix}:user:{user}"

    async def user_here(self, user: int) -> None:
        """The user's first socket in this process."""
        try:
            await self._touch_user(user)
        except Exception as e:
            log.warning("presence update in Redis failed: %s", e)

    async def _touch_user(self, user: int) -> None:
        await self.redis.hset(self._user_key(user), self.origin, time.time() + TTL_S)
        await self.redis.expire(self._user_key(user), int(TTL_S * 2))

    async def user_gone(self, user: int) -> None:
        """The user's last socket in this process closed: clear their status if it was their
        last socket anywhere."""
        key = self._user_key(user)
        try:
            await self.redis.hdel(key, self.origin)
            now = time.time()
            fields = await self.redis.hgetall(key)
            if not any(f != b"status" and float(v) > now for f, v in fields.items()):
                await self.redis.delete(key)
        except Exception as e:
            log.warning("presence update in Redis failed: %s", e)

    async def set_status(self, user: int, status: str) -> None:
        key = self._user_key(user)
        if status == "online":
            await self.redis.hdel(key, "status")
        else:
            await self.redis.hset(key, "status", status)
            await self._touch_user(user)

    async def statuses(self, users: list[str]) -> dict[str, str]:
        """user id → status (``online`` unless set) for these users, whichever process set it."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for u in users:
                    pipe.hget(self._user_key(int(u)), "status")
                found = await pipe.execute()
        except Exception as e:
            log.warning("statuses from Redis failed: %s", e)
            found = [None] * len(users)
        return {u: (v.decode() if v else "online") for u, v in zip(users, found)}

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("refreshing presence in Redis failed: %s", e)
