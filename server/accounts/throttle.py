"""Login and sign-up throttling (docs/SECURITY.md), on the ``limits`` library.

What is counted is **failed** logins, in fixed windows of ``LOGIN_WINDOW_S`` (15 min), in three
budgets; an attempt is answered 429 with ``Retry-After`` (seconds until the spent budget's
window ends) before its password is checked when any budget that applies is spent:

=========================  =======  ==========================================================
budget                     default  against
=========================  =======  ==========================================================
username + client address       10  one attacker guessing one account. 10 typos in 15 min is
                                     far more than a person makes; 40 guesses an hour cannot
                                     find a password that zxcvbn scores ≥ 3 (≥ 10⁸ guesses).
client address                 100  one address spraying a few common passwords over many
                                     usernames. Only failures count, so a school behind one
                                     NAT address with a class signing in at 9:00 does not
                                     come near it.
username (any address)          50  guessing one account from many addresses (a botnet). It
                                     is larger than the first budget so one address cannot
                                     spend it alone, and it is **not applied from an address
                                     the user signed in from successfully in the last 30
                                     days**: a distributed attack on an account slows the
                                     attacker, not its owner at their usual address.
=========================  =======  ==========================================================

A user under attack from elsewhere is therefore slowed only by their own (username, address)
budget, which an attacker at another address cannot spend: their address is not the user's,
and the username budget does not apply where the user is known. A successful login spends
nothing: it clears its (username, address) budget, gives back what it reserved of the other
two and marks the address as known for the user.

Each attempt reserves one failure from every budget that applies *before* the password is
checked (and gives it back if the password was right), so concurrent guesses cannot all pass
a check made before any of them failed. IPv6 clients are counted by their /64 (what one
subscriber is usually given), IPv4 by the address.

Sign-ups are counted per client address (``SIGNUPS_PER_ADDRESS_PER_HOUR``, 100: a whole class
signing up behind one NAT address fits).

Without ``REDIS_URL`` the counters live in this process (``limits``' memory storage); with it
in Redis through ``limits``' Redis storage on redis-py's asyncio client, sharing the bus's
connection pool, so every web process spends the same budgets. If Redis cannot be reached the
throttle lets the attempt through and logs it (the bus recovers; logins keep working).
"""
from __future__ import annotations

import ipaddress
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError

from server.config import Config
from server.kernel.errors import RateLimited

log = logging.getLogger("podium.accounts")

KNOWN_ADDRESS_S = 30 * 24 * 3600
_Budget = tuple[RateLimitItem, tuple[str, ...]]


def limits_storage(config: Config, redis: Any = None) -> Storage:
    """``limits``' memory storage, or with ``redis`` (the bus's redis-py asyncio client) its Redis
    storage on that client's connection pool, keys under ``<REDIS_PREFIX>:limits``."""
    if redis is None:
        return MemoryStorage()
    return RedisStorage(f"async+{config.redis_url}", implementation="redispy", wrap_exceptions=True,
                        key_prefix=f"{config.redis_prefix}:limits", connection_pool=redis.connection_pool)


def address_key(address: str) -> str:
    """The client address a budget is kept for: IPv4 as is, IPv6 by its /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return quote(address[:64], safe="")
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _username_key(username: str) -> str:
    # Lower-cased as the login looks it up; real usernames are ≤ 32 characters of [a-z0-9._-],
    # anything else is cut and quoted so it cannot reach into another key.
    return quote(username.lower()[:64], safe="")


@dataclass
class Attempt:
    """One login attempt's reservation (``LoginThrottle.begin``)."""

    user: str
    address: str
    spent: list[_Budget] = field(default_factory=list)


class LoginThrottle:
    """Failed-login budgets and the sign-up budget, in a ``limits`` storage."""

    def __init__(self, config: Config, storage: Storage):
        self.storage = storage
        self.limiter = FixedWindowRateLimiter(storage)
        w = config.login_window_s
        self.pair = RateLimitItemPerSecond(config.login_failures_per_user_address, w, namespace="login-pair")
        self.per_address = RateLimitItemPerSecond(config.login_failures_per_address, w, namespace="login-addr")
        self.per_user = RateLimitItemPerSecond(config.login_failures_per_user, w, namespace="login-user")
        self.known = RateLimitItemPerSecond(1, KNOWN_ADDRESS_S, namespace="login-known")
        self.signups = RateLimitItemPerSecond(config.signups_per_address_per_hour, 3600, namespace="signup-addr")

    async def begin(self, username: str, address: str) -> Attempt:
        """Reserve one failure from every budget that applies to ``username`` at ``address``;
        RateLimited (with the seconds until it would pass) when one is spent. Follow with
        ``succeeded`` or ``abandoned``; a failed attempt keeps what it reserved."""
        attempt = Attempt(_username_key(username), address_key(address))
        try:
            budgets = [(self.pair, (attempt.user, attempt.address)), (self.per_address, (attempt.address,))]
            if await self.limiter.test(self.known, attempt.user, attempt.address):
                budgets.append((self.per_user, (attempt.user,)))  # not known here: the username budget applies
            for item, ids in budgets:  # a refused attempt writes nothing
                if not await self.limiter.test(item, *ids):
                    raise await self._refused(item, ids)
            for item, ids in budgets:
                attempt.spent.append((item, ids))
                if not await self.limiter.hit(item, *ids):  # concurrent attempts spent it meanwhile
                    await self._give_back(attempt.spent)
                    raise await self._refused(item, ids)
        except StorageError as e:
            log.warning("login throttle: storage unavailable (%s); allowing the attempt", e.storage_error)
            attempt.spent = []
        return attempt

    async def succeeded(self, attempt: Attempt) -> None:
        """The password was right: clear the (username, address) budget, give back the rest and
        mark the address as known for the user."""
        try:
            await self.limiter.clear(self.pair, attempt.user, attempt.address)
            await self._give_back([b for b in attempt.spent if b[0] is not self.pair])
            await self.limiter.clear(self.known, attempt.user, attempt.address)
            await self.limiter.hit(self.known, attempt.user, attempt.address)
        except StorageError as e:
            log.warning("login throttle: storage unavailable (%s)", e.storage_error)

    async def abandoned(self, attempt: Attempt) -> None:
        """The attempt ended without a verdict on the password (an error): give it back."""
        try:
            await self._give_back(attempt.spent)
        except StorageError as e:
            log.warning("login throttle: storage unavailable (%s)", e.storage_error)

    async def signup(self, address: str) -> None:
        """Spend one sign-up of ``address``'s budget; RateLimited when it is spent."""
        addr = address_key(address)
        try:
            if not await self.limiter.hit(self.signups, addr):
                raise await self._refused(self.signups, (addr,), "too many sign-ups from this address")
        except StorageError as e:
            log.warning("sign-up throttle: storage unavailable (%s); allowing", e.storage_error)

    async def _give_back(self, spent: list[_Budget]) -> None:
        for item, ids in spent:
            await self.storage.incr(item.key_for(*ids), item.get_expiry(), amount=-1)

    async def _refused(self, item: RateLimitItem, ids: tuple[str, ...],
                       what: str = "too many failed sign-in attempts") -> RateLimited:
        reset_at = (await self.limiter.get_window_stats(item, *ids)).reset_time
        wait = max(1, math.ceil(reset_at - time.time()))
        when = f"{wait} seconds" if wait < 120 else f"{math.ceil(wait / 60)} minutes"
        return RateLimited(f"{what}; try again in {when}", wait)
