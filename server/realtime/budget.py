"""Per-user budgets (docs/SECURITY.md): how many chat frames, uploads or signed links a user
may spend per second, shared by all of the user's sockets and requests.

A budget is a token bucket: ``rate`` tokens a second up to ``burst``. It is kept until it has
refilled, not forgotten when the user's last socket closes, so reconnecting does not buy a
fresh burst.

Without ``REDIS_URL`` (one process) ``LocalBudget`` is the whole truth. With it,
``SharedBudget`` keeps the bucket in Redis as a GCRA (one key per user: the theoretical
arrival time, with Redis's own clock, so the processes' clocks need not agree) and takes
tokens from it in small leases: a frame is checked against the local lease (no I/O), and
only when that is spent does the process ask Redis for the next lease (one script call per
``lease`` frames). A user on two processes can therefore get at most ``lease - 1`` tokens
per process more than the budget in a burst; the long-run rate is the budget's (every token
spent was charged in Redis once). A lease is spent for up to ``LEASE_S``: long enough that a
student who sends a message every twenty seconds or so (typing on, the message, typing off:
three frames) costs one script call per ``lease`` frames rather than one per message — the
soak's script calls halved with leases of 10 for 120 s instead of 5 for 30 s — short enough
that tokens leased by a process the user left are soon lost, not banked (at most
``lease - 1`` of them meanwhile, against a burst of 60 by default).
"""
from __future__ import annotations

import hashlib
import logging
import time
from typing import Any, Callable

from server.kernel.errors import RateLimited
from server.realtime.resp import RedisReplyError

log = logging.getLogger("podium.budget")

LEASE_S = 120.0
PRUNE_EVERY = 1024  # takes between sweeps of refilled buckets


class LocalBudget:
    """Token buckets per key in this process."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: dict[Any, list[float]] = {}  # key → [tokens, stamp]
        self._takes = 0

    def try_take(self, key, cost: float = 1.0) -> float:
        """Take ``cost`` tokens: 0.0 when allowed, else the seconds until they would be."""
        now = self.clock()
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = [float(self.burst), now]
        tokens = min(self.burst, b[0] + (now - b[1]) * self.rate)
        b[1] = now
        self._takes += 1
        if self._takes >= PRUNE_EVERY:
            self._prune(now)
        if tokens >= cost:
            b[0] = tokens - cost
            return 0.0
        b[0] = tokens
        return (cost - tokens) / self.rate

    async def take(self, key, cost: float = 1.0) -> float:
        return self.try_take(key, cost)

    def _prune(self, now: float) -> None:
        """Drop buckets that have refilled (a fresh bucket is the same)."""
        self._takes = 0
        self._buckets = {k: b for k, b in self._buckets.items()
                         if b[0] + (now - b[1]) * self.rate < self.burst}

    def __len__(self) -> int:
        return len(self._buckets)


# GCRA with Redis's clock. KEYS[1]: the key; ARGV: emission interval (µs), burst, cost.
# Returns {allowed (0/1), seconds to wait (string, when refused)}.
GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval * cost
local allow_at = new_tat - interval * burst
if allow_at > now then
  return {0, tostring((allow_at - now) / 1000000)}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, '0'}
"""
GCRA_SHA = hashlib.sha1(GCRA.encode()).hexdigest()


class SharedBudget:
    """A budget per key shared by every process through Redis, spent locally in leases.
    ``redis`` is the bus's :class:`~server.realtime.resp_client.RespClient` (one script call
    per lease costs redis-py more CPU than the frame it pays for)."""

    def __init__(self, redis, key_prefix: str, rate: float, burst: int, lease: int = 10,
                 clock: Callable[[], float] = time.monotonic):
        self.redis, self.key_prefix, self.rate, self.burst = redis, key_prefix, rate, burst
        self.lease = max(1, min(lease, burst))
        self.clock = clock
        self._leases: dict[Any, list[float]] = {}  # key → [tokens left, expires at]
        self._interval_us = int(1_000_000 / rate)

    async def _gcra(self, key: str, cost: float) -> tuple[int, str]:
        args = (1, key, self._interval_us, self.burst, cost)
        try:
            allowed, wait = await self.redis.execute("EVALSHA", GCRA_SHA, *args)
        except RedisReplyError as e:
            if not str(e).startswith("NOSCRIPT"):
                raise
            allowed, wait = await self.redis.execute("EVAL", GCRA, *args)  # loads it for the next EVALSHA
        return int(allowed), wait.decode()

    def try_take(self, key, cost: float = 1.0) -> float | None:
        """From the local lease: 0.0 when it covers ``cost``, None when Redis must be asked."""
        held = self._leases.get(key)
        if held is not None and held[0] >= cost and held[1] > self.clock():
            held[0] -= cost
            return 0.0
        return None

    async def take(self, key, cost: float = 1.0) -> float:
        """Take ``cost`` tokens: 0.0 when allowed, else the seconds until they would be. Takes
        a lease of ``lease`` tokens when the budget has them, else just ``cost``. When Redis
        cannot be reached, falls back to allowing (availability over a rate limit)."""
        quick = self.try_take(key, cost)
        if quick is not None:
            return quick
        k = f"{self.key_prefix}:{key}"
        try:
            for want in ((self.lease, cost) if self.lease > cost else (cost,)):
                allowed, wait = await self._gcra(k, want)
                if allowed:
                    self._leases[key] = [want - cost, self.clock() + LEASE_S]
                    return 0.0
            return max(float(wait), 0.001)
        except Exception as e:  # Redis down: the bus logs and recovers; do not refuse every frame meanwhile
            log.warning("budget %s: Redis unavailable (%s); allowing", self.key_prefix, e)
            return 0.0


Budget = LocalBudget | SharedBudget


async def spend(budget: Budget, key, reason: str, cost: float = 1.0) -> None:
    """Take from ``budget`` or raise RateLimited (with the seconds to wait)."""
    wait = budget.try_take(key, cost)
    if wait is None:
        wait = await budget.take(key, cost)
    if wait > 0:
        raise RateLimited(reason, wait)
