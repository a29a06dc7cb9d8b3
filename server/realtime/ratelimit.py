"""Per-user token buckets (shared by all of a user's sockets in this process)."""
from __future__ import annotations

import time
from typing import Callable


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; ``take()`` is True when a token was available."""

    __slots__ = ("rate", "burst", "tokens", "stamp", "_clock")

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self._clock = rate, burst, clock
        self.tokens = float(burst)
        self.stamp = clock()

    def take(self, n: float = 1.0) -> bool:
        now = self._clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= n:
            self.tokens -= n
            return True
        return False


class RateLimiter:
    """One bucket per user id; buckets of users with no sockets left are forgotten."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: dict[int, TokenBucket] = {}

    def allow(self, user_id: int) -> bool:
        bucket = self._buckets.get(user_id)
        if bucket is None:
            bucket = self._buckets[user_id] = TokenBucket(self.rate, self.burst, self.clock)
        return bucket.take()

    def forget(self, user_id: int) -> None:
        self._buckets.pop(user_id, None)
