"""Fan-out between web processes over Redis pub/sub (docs/SCALING.md, ARCHITECTURE principle 1).

Without ``REDIS_URL`` nothing here runs: a process delivers to its own sockets only. With it,
every frame a process delivers to a room's or a user's local sockets is also published on one
channel, and every other process delivers it to *its* local sockets. Redis carries notices and
payloads only; SQL stays the record:

- ``message.new`` frames carry their seqs; each process passes them through
  :class:`~server.realtime.room_order.RoomOrder`, which drops duplicates and fills gaps from SQL,
  so a dropped notice delays a message but never loses it;
- the subscriber reconnects with backoff (0.2 s doubling to 10 s) and then catches every
  room with local subscribers up from SQL;
- a canary published every ``CANARY_S`` must come back within ``CANARY_TIMEOUT_S``, or the
  subscriber is considered silently dead and is reconnected (then catches up).

Publishing never blocks a broadcast: notices are written without replies on a connection of
their own (:mod:`~server.realtime.bus_publisher`, in this process's order, one write per loop
turn); what may have been lost when that connection fails — or the canary is late — is named
in a ``RoomsGap`` published first after reconnecting, and the other processes read it from SQL.

Publishing and the subscription use ``resp_client``/``bus_publisher`` (messages handed over
from ``data_received``), not redis-py: per notice, redis-py's command machinery cost more CPU
than delivering the frame. A process recognises its own notices by their
header's last bytes (``notices.is_from``) and skips them without decoding. ``self.redis``
(redis-py) serves everything else: presence, the directories, login throttling.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

from server.kernel.frames import split_frames
from server.realtime import notices, resp
from server.realtime.bus_publisher import Publisher
from server.realtime.notices import (BadNotice, Canary, Noop, Notice, NoticeRouter, RoomFrame, RoomsGap,
                                     UserFrame)
from server.realtime.resp_client import RespClient, Subscription

log = logging.getLogger("podium.bus")

CHANNEL = "podium:events"
CANARY_S = 2.0
CANARY_TIMEOUT_S = 6.0
BACKOFF_MIN_S, BACKOFF_MAX_S = 0.2, 10.0


class RedisBus:
    """One per process. ``registry`` delivers locally; ``order`` sequences ``message.new``."""

    def __init__(self, url: str, registry, order, *, channel: str = CHANNEL, router: NoticeRouter | None = None,
                 verify_tls: bool = True, max_connections: int = 16):
        self.url, self.registry, self.order, self.channel = url, registry, order, channel
        self.router = router or NoticeRouter()  # features' notices (calls, recordings, rooms)
        self.verify_tls, self.max_connections = verify_tls, max_connections
        self.origin = secrets.token_hex(6)
        self._own = notices.origin_tail(self.origin)
        self._held: list[bytes] | None = None  # messages read while catching up, handled after
        self._canary_n = 0
        self._tasks: list[asyncio.Task] = []
        self.started = False
        self._canary_seen = time.monotonic()
        self._resubscribe = asyncio.Event()
        self._closing = False
        self.connected = asyncio.Event()
        self._stats = {"received": 0, "reconnects": 0, "canary_misses": 0}
        import redis.asyncio as aioredis

        kw: dict = {}
        if self.url.startswith("rediss://") and not self.verify_tls:
            kw["ssl_cert_reqs"] = None  # Heroku Redis presents a self-signed certificate
        # A bounded pool whose callers wait for a free connection (up to 5 s) instead of failing
        # with "Too many connections" when a thousand sockets close at once (presence updates).
        # One connection is held by the subscription; every other use returns it at once.
        # Nothing connects before the first command.
        self._pool = aioredis.BlockingConnectionPool.from_url(
            self.url, max_connections=self.max_connections, timeout=5, socket_connect_timeout=2,
            socket_timeout=5, socket_keepalive=True, health_check_interval=10, **kw)
        self.redis: Any = aioredis.Redis(connection_pool=self._pool)
        self.address = resp.parse_url(self.url)
        # The budgets' script (and anything else awaiting a reply) shares one pipelined connection.
        self.raw = RespClient(self.address, verify_tls=self.verify_tls)
        self.publisher = Publisher(self.address, self.channel,
                                   lambda rooms: notices.encode(RoomsGap(rooms, self.origin)), verify_tls=self.verify_tls)

    @property
    def stats(self) -> dict:
        return {**self.publisher.stats, **self._stats}

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        self.started = True
        await self.publisher.start()
        self._tasks = [asyncio.ensure_future(self._subscriber()), asyncio.ensure_future(self._canary())]

    async def close(self) -> None:
        # redis-py can turn a cancellation inside a command into a connection error, so the
        # loops also check a flag, and every wait here is bounded.
        self._closing = True
        for t in self._tasks:
            t.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=3)
        try:
            await self.publisher.close()
            await self.raw.close()
            await asyncio.wait_for(self.redis.aclose(), 3)
            await asyncio.wait_for(self._pool.disconnect(), 3)
        except Exception as e:  # closing anyway: a dead Redis must not hold up shutdown
            log.debug("closing the Redis connections: %r", e)

    # -- publishing --------------------------------------------------------------------------
    def publish(self, notice: Notice, frame: bytes = b"") -> None:
        """Publish ``notice`` (and the frame it carries) for the other processes; never blocks."""
        notice.origin = self.origin
        self.publisher.publish(notices.encode(notice, frame), notice.room if type(notice) is RoomFrame else None)

    def room(self, room: int, frame: bytes, droppable: bool, exclude_user: int | None,
             seqs: list[tuple[int, int]] | None, change: int | None = None) -> None:
        self.publish(RoomFrame(room, droppable, exclude_user, seqs or None, change), frame)

    def user(self, user_id: int, frame: bytes) -> None:
        self.publish(UserFrame(user_id), frame)

    # -- subscribing -------------------------------------------------------------------------
    async def _subscriber(self) -> None:
        delay = BACKOFF_MIN_S
        first = True
        while not self._closing:
            sub: Subscription | None = None
            try:
                sub = await Subscription.open(self.address, self.channel, self._receive, verify_tls=self.verify_tls)
                self._canary_seen = time.monotonic()
                self._resubscribe.clear()
                self.connected.set()
                if not first:
                    log.info("Redis subscription back; catching up from SQL")
                    self._held = []  # what arrives meanwhile is handled after the catch-up, in order
                    try:
                        await self.order.catch_up_all()
                        await self.registry.changes.catch_up_all()
                    finally:
                        held, self._held = self._held, None
                        for data in held:
                            self._on_message(data)
                first = False
                delay = BACKOFF_MIN_S
                while not self._resubscribe.is_set() and not sub.lost.done():
                    await asyncio.wait([sub.lost], timeout=0.5)
                if not self._resubscribe.is_set():
                    raise sub.lost.result()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                if self._closing:
                    return
                log.warning("Redis subscriber lost (%s); reconnecting in %.1f s", e, delay)
            finally:
                self.connected.clear()
                if sub is not None:
                    sub.close()
            self._stats["reconnects"] += 1
            await asyncio.sleep(delay)
            delay = min(BACKOFF_MAX_S, delay * 2)

    def _receive(self, data: bytes) -> None:
        """A message from the subscription (called from the connection's ``data_received``)."""
        if self._held is not None:
            self._held.append(data)
        else:
            self._on_message(data)

    def _on_message(self, data: bytes) -> None:
        if notices.is_from(data, self._own):  # our own: delivered locally already
            if notices.is_canary(data):
                self._canary_back(data)
            return
        try:
            notice, frame = notices.decode(data)
        except BadNotice as e:
            log.warning("%s", e)
            return
        kind = type(notice)
        if kind is Canary:
            return
        if notice.origin == self.origin:
            return  # our own: delivered locally already
        self._stats["received"] += 1
        if kind is Noop:
            return
        if kind is RoomsGap:
            for room in notice.rooms:
                if self.registry.by_room.get(room):
                    asyncio.ensure_future(self.order.catch_up(room))
                    asyncio.ensure_future(self.registry.changes.catch_up(room))
            return
        if kind is RoomFrame:
            room = notice.room
            if not self.registry.by_room.get(room):
                return
            if notice.change is not None:
                self.registry.changes.offer(room, notice.change, frame)
            elif notice.seqs:
                self.order.offer(room, split_frames(frame, notice.seqs))
            else:
                self.registry.local_room(room, frame, droppable=notice.droppable, exclude_user=notice.exclude_user)
        elif kind is UserFrame:
            self.registry.local_user(notice.user, frame)
        elif not self.router.route(notice, frame):
            log.debug("no handler for %s", kind.__name__)

    def _canary_back(self, data: bytes) -> None:
        self._canary_seen = time.monotonic()
        try:
            notice, _ = notices.decode(data)
        except BadNotice:
            return
        self.publisher.confirmed(notice.n)

    async def _canary(self) -> None:
        while not self._closing:
            await asyncio.sleep(CANARY_S)
            if not self.connected.is_set():
                continue
            self._canary_n += 1
            self.publisher.marker(self._canary_n, notices.encode(Canary(self._canary_n, self.origin)))
            if time.monotonic() - self._canary_seen > CANARY_TIMEOUT_S:
                self._stats["canary_misses"] += 1
                log.warning("no canary back from Redis for %.0f s: resubscribing", time.monotonic() - self._canary_seen)
                self._resubscribe.set()
                self.publisher.suspect()
