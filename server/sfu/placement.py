"""Which Janus carries which call session (several ``JANUS_URLS``; docs/CALLS.md).

The rule (``choose``): a session without a Janus goes to the *least-loaded live* one — load is
the number of call sessions Podium has placed on it — ties broken by a hash of (URL, session)
so that processes placing different sessions at the same moment spread them instead of all
picking the first URL. No live Janus: None (the call is a browser mesh).

The placement is *sticky*: once set it is kept until the session ends (``forget``) or its Janus
fails over (``move``: only from the node it is still on), so a Janus that comes back does not
pull sessions back, and two processes moving the same session agree on the first move.

Where it is kept: ``LocalPlacements`` (this process's memory) without Redis;
``RedisPlacements`` with ``REDIS_URL``: one hash ``<prefix>:sfu:placement``, field session id →
Janus URL, set once (set-if-absent / compare-and-set in one script), removed when the call ends,
so every web process finds the same Janus for a session.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any


def choose(session_id: int, live_urls: Iterable[str], loads: Mapping[str, int]) -> str | None:
    """The least-loaded of ``live_urls`` (ties: the highest hash of URL and session); None
    when none is live."""
    def key(url: str):
        tie = hashlib.sha256(f"{url}|{session_id}".encode()).digest()
        return (loads.get(url, 0), bytes(255 - b for b in tie))
    return min(live_urls, key=key, default=None)


def loads_of(placements: Mapping[int, str]) -> Counter:
    """URL → number of sessions placed on it."""
    return Counter(placements.values())


class LocalPlacements:
    """Placements in this process's memory (one web process, no Redis)."""

    def __init__(self) -> None:
        self.by_session: dict[int, str] = {}

    async def all(self) -> dict[int, str]:
        return dict(self.by_session)

    async def get(self, session_id: int) -> str | None:
        return self.by_session.get(session_id)

    async def set_if(self, session_id: int, url: str, expected: str | None) -> str:
        """Set ``url`` if the session's placement is ``expected`` (None: absent); the placement
        after the call either way."""
        if self.by_session.get(session_id) == expected:
            self.by_session[session_id] = url
        return self.by_session[session_id]

    async def forget(self, session_id: int) -> None:
        self.by_session.pop(session_id, None)


_SET_IF = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if (not cur and ARGV[3] == '') or cur == ARGV[3] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return ARGV[2]
end
return cur
"""


class RedisPlacements:
    """Placements shared by every web process, in one Redis hash (module docstring)."""

    def __init__(self, redis: Any, prefix: str) -> None:
        self.redis, self.key = redis, f"{prefix}:sfu:placement"
        self._set_if = redis.register_script(_SET_IF)

    async def all(self) -> dict[int, str]:
        return {int(k): v.decode() for k, v in (await self.redis.hgetall(self.key)).items()}

    async def get(self, session_id: int) -> str | None:
        raw = await self.redis.hget(self.key, str(session_id))
        return raw.decode() if raw is not None else None

    async def set_if(self, session_id: int, url: str, expected: str | None) -> str:
        out = await self._set_if(keys=[self.key], args=[str(session_id), url, expected or ""])
        return out.decode() if isinstance(out, bytes) else out

    async def forget(self, session_id: int) -> None:
        await self.redis.hdel(self.key, str(session_id))


class Placement:
    """The placement rule over a store, with this process's last view of it (``known``)."""

    def __init__(self, store: LocalPlacements | RedisPlacements):
        self.store = store
        self.known: dict[int, str] = {}  # session → URL, as this process last saw it

    async def place(self, session_id: int, live: list[str], waiting: set[str]) -> str | None:
        """The session's Janus URL: its placement if that one is live; None while that one is
        down but still within its grace (``waiting``: a restart within the grace keeps the
        session there); else (none yet, or its Janus failed over or is no longer configured)
        the least-loaded live one, set once for every process. None when no Janus is live."""
        current = await self.store.get(session_id)
        if current is not None and (current in live or current in waiting):
            self.known[session_id] = current
            return current if current in live else None
        return await self._set(session_id, live, current)

    async def move(self, session_id: int, dead: str, live: list[str]) -> str | None:
        """Re-place a session of the ``dead`` Janus on the least-loaded live one (if no other
        process did first): its URL now, None when no Janus is live."""
        return await self._set(session_id, live, dead)

    async def on(self, url: str) -> list[int]:
        """The sessions placed on ``url``."""
        return sorted(s for s, u in (await self.store.all()).items() if u == url)

    async def _set(self, session_id: int, live: list[str], expected: str | None) -> str | None:
        url = choose(session_id, live, loads_of(await self.store.all()))
        if url is None:
            return None
        url = await self.store.set_if(session_id, url, expected)
        self.known[session_id] = url
        return url if url in live else None

    async def forget(self, session_id: int) -> None:
        self.known.pop(session_id, None)
        await self.store.forget(session_id)
