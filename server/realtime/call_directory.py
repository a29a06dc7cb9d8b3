"""Live-call participants across web processes (docs/SCALING.md), in Redis.

Each process keeps its own participants in memory (``server.calls``); with ``REDIS_URL`` it
also lists them in one hash per session, ``<prefix>:call:<session>``, field ``peer_id`` →
``{"p": participant wire, "o": process}``. A process announces itself alive with a key that
expires after ``ALIVE_TTL_S`` and is refreshed every ``ALIVE_EVERY_S``; entries of a process
that is not alive are ignored (and removed), so a killed process's participants vanish from
every join ack within seconds. Frames for one participant go to the process that holds its
socket through the bus (``server.realtime.bus``).
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

log = logging.getLogger("podium.calls")

ALIVE_TTL_S = 15
ALIVE_EVERY_S = 5.0


class CallDirectory:
    def __init__(self, redis: Any, prefix: str, origin: str):
        self.redis, self.prefix, self.origin = redis, prefix, origin
        self._task: asyncio.Task | None = None

    def _key(self, session: int) -> str:
        return f"{self.prefix}:call:{session}"

    def _alive_key(self, origin: str) -> str:
        return f"{self.prefix}:alive:{origin}"

    async def start(self) -> None:
        await self.redis.set(self._alive_key(self.origin), 1, ex=ALIVE_TTL_S)
        self._task = asyncio.ensure_future(self._alive_loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=2)
        try:
            await asyncio.wait_for(self.redis.delete(self._alive_key(self.origin)), 2)
        except Exception as e:  # the key expires by itself within its TTL: stopping must not wait on Redis
            log.debug("removing this process's alive key failed: %r", e)

    async def _alive_loop(self) -> None:
        while True:
            await asyncio.sleep(ALIVE_EVERY_S)
            try:
                await self.redis.set(self._alive_key(self.origin), 1, ex=ALIVE_TTL_S)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("refreshing this process's liveness in Redis failed: %s", e)

    async def put(self, session: int, wire: dict) -> None:
        key = self._key(session)
        await self.redis.hset(key, wire["peer_id"], json.dumps({"p": wire, "o": self.origin}))
        await self.redis.expire(key, 24 * 3600)

    async def remove(self, session: int, peer_id: str) -> None:
        await self.redis.hdel(self._key(session), peer_id)

    async def clear(self, session: int) -> None:
        k = self._key(session)
        await self.redis.delete(k, f"{k}:banned", f"{k}:mutes", f"{k}:lobby", f"{k}:admitted")

    # -- the waiting room (calls/lobby.py) ------------------------------------------------------
    async def put_waiting(self, session: int, conn_id: str, wire: dict) -> None:
        key = f"{self._key(session)}:lobby"
        await self.redis.hset(key, conn_id, json.dumps({"w": wire, "o": self.origin}))
        await self.redis.expire(key, 24 * 3600)

    async def remove_waiting(self, session: int, conn_ids) -> None:
        if conn_ids:
            await self.redis.hdel(f"{self._key(session)}:lobby", *conn_ids)

    async def waiting(self, session: int) -> dict[str, dict]:
        """conn id → waiting wire, of live processes."""
        key = f"{self._key(session)}:lobby"
        items = {k.decode(): json.loads(v) for k, v in (await self.redis.hgetall(key)).items()}
        alive = await self.alive(e["o"] for e in items.values())
        dead = [c for c, e in items.items() if not alive.get(e["o"])]
        if dead:
            await self.redis.hdel(key, *dead)
        return {c: e["w"] for c, e in items.items() if alive.get(e["o"])}

    async def admit(self, session: int, users) -> None:
        key = f"{self._key(session)}:admitted"
        if users:
            await self.redis.sadd(key, *[str(u) for u in users])
            await self.redis.expire(key, 24 * 3600)

    async def admitted(self, session: int, user: int) -> bool:
        return bool(await self.redis.sismember(f"{self._key(session)}:admitted", str(user)))

    async def set_mutes(self, session: int, users, allow: bool) -> None:
        """An instructor's enforced mute of ``users`` (held unless ``allow``), for the whole
        session in every process — one that loads the session later too (calls/controls.py)."""
        key = f"{self._key(session)}:mutes"
        if users:
            await self.redis.hset(key, mapping={str(u): "1" if allow else "0" for u in users})
            await self.redis.expire(key, 24 * 3600)

    async def unmute(self, session: int, user: int) -> None:
        await self.redis.hdel(f"{self._key(session)}:mutes", str(user))

    async def mute_of(self, session: int, user: int) -> bool | None:
        """None: not muted by an instructor; else whether the user may unmute."""
        value = await self.redis.hget(f"{self._key(session)}:mutes", str(user))
        if value is None:
            return None
        return value in (b"1", "1")

    async def ban(self, session: int, user: int) -> None:
        """Someone removed from a call may not rejoin it through any process."""
        key = f"{self._key(session)}:banned"
        await self.redis.sadd(key, user)
        await self.redis.expire(key, 24 * 3600)

    async def banned(self, session: int, user: int) -> bool:
        return bool(await self.redis.sismember(f"{self._key(session)}:banned", user))

    async def alive(self, origins) -> dict[str, bool]:
        """Which of these processes are alive (refreshed their key within ``ALIVE_TTL_S``)."""
        origins = sorted(set(origins))
        if not origins:
            return {}
        flags = await self.redis.mget([self._alive_key(o) for o in origins])
        return {o: f is not None for o, f in zip(origins, flags)}

    async def entries(self, session: int) -> dict[str, tuple[dict, str]]:
        """peer_id → (participant wire, process) for participants of live processes."""
        raw = await self.redis.hgetall(self._key(session))
        items = {k.decode(): json.loads(v) for k, v in raw.items()}
        alive = await self.alive(e["o"] for e in items.values())
        out, dead = {}, []
        for peer_id, e in items.items():
            if alive.get(e["o"]):
                out[peer_id] = (e["p"], e["o"])
            else:
                dead.append(peer_id)
        if dead:
            await self.redis.hdel(self._key(session), *dead)
        return out
