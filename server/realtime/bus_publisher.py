"""The bus's publishing side (docs/SCALING.md): ``PUBLISH`` without replies, losses found by
the canary.

Every notice used to be awaited: a queue, a task woken per batch, a future and a timer per
reply. On a connection of its own with ``CLIENT REPLY OFF`` a notice is bytes added to one
write per loop turn, which cost the soak (bench/scaleout) ~5 % less CPU per process.

What a reply told, the canary tells now. The bus publishes its canary on this connection
(``marker``); Redis handles one connection's commands in order and pushes them to a
subscription in order, so when this process's subscription sees canary *n* come back, every
notice written before it reached Redis. The rooms named by notices not yet confirmed so are
kept; when the connection is lost (or the canary is late, ``suspect``) they count as lost,
and the first thing published after reconnecting is a ``RoomsGap`` naming them, so the other
processes read what they may have missed from SQL. While disconnected, notices wait in a
bounded buffer (past it they are dropped and their rooms count as lost); reconnecting backs
off from 0.2 s to 5 s. A Redis that refuses ``CLIENT REPLY OFF`` still works: its replies are
read and dropped.
"""
from __future__ import annotations

import asyncio
import collections
import logging
from typing import Callable

from server.realtime.resp import Address, encode
from server.realtime.resp_client import connect, RespProtocol

log = logging.getLogger("podium.bus")

BUFFER_MAX = 10_000  # notices held while disconnected
WRITE_BUFFER_MAX = 16 * 1024 * 1024  # bytes Redis has not read yet: past this, the connection is dropped
BACKOFF_MIN_S, BACKOFF_MAX_S = 0.2, 5.0


class _Discarding(RespProtocol):
    """A connection whose replies nobody waits for: with ``CLIENT REPLY OFF`` there are none;
    otherwise they are read and dropped (counted, errors too)."""

    def __init__(self) -> None:
        super().__init__()
        self.replies = self.errors = 0
        self.discarding = False  # set once connected (the AUTH and SELECT replies are awaited)

    def handle(self, replies: list) -> None:
        if not self.discarding:
            super().handle(replies)
            return
        self.replies += len(replies)
        for r in replies:
            if isinstance(r, Exception):
                self.errors += 1
                if self.errors == 1:
                    log.warning("Redis answered a publish with an error: %s", r)


class Publisher:
    def __init__(self, address: Address, channel: str, gap: Callable[[list[int]], bytes], *,
                 verify_tls: bool = True, connect_timeout: float = 2.0):
        """``gap(rooms)`` encodes the ``RoomsGap`` notice published first after a loss."""
        self.address, self.channel, self.gap = address, channel, gap
        self.verify_tls, self.connect_timeout = verify_tls, connect_timeout
        self._proto: _Discarding | None = None
        self._out: list[bytes] = []  # this turn's commands, written together
        self._flush_at: asyncio.Handle | None = None
        self._held: collections.deque[tuple[bytes, int | None]] = collections.deque()  # while disconnected
        self._window: set[int] = set()  # rooms of notices written since the last marker
        self._unconfirmed: collections.deque[tuple[int, set[int]]] = collections.deque()  # (marker, its rooms)
        self.lost_rooms: set[int] = set()
        self._reconnecting: asyncio.Task | None = None
        self._delay = BACKOFF_MIN_S
        self._closing = False
        self.stats = {"published": 0, "dropped": 0}

    # -- publishing ------------------------------------------------------------------------
    def publish(self, data: bytes, room: int | None) -> None:
        """Write ``data`` (an encoded notice about ``room``, or none) in this loop turn; never blocks."""
        proto = self._proto
        if proto is None or not proto.alive:
            self._hold(data, room)
            return
        if room is not None:
            self._window.add(room)
        self._out.append(encode("PUBLISH", self.channel, data))
        self.stats["published"] += 1
        if self._flush_at is None:
            self._flush_at = asyncio.get_running_loop().call_soon(self._flush)

    def marker(self, n: int, data: bytes) -> None:
        """Publish the canary numbered ``n``: its return confirms what was written before it."""
        if self._proto is None or not self._proto.alive:
            return
        self._unconfirmed.append((n, self._window))
        self._window = set()
        self.publish(data, None)

    def confirmed(self, n: int) -> None:
        """Canary ``n`` came back through the subscription."""
        while self._unconfirmed and self._unconfirmed[0][0] <= n:
            self._unconfirmed.popleft()

    def suspect(self) -> None:
        """The canary is late: what it should have confirmed may be lost; start over."""
        if self._proto is not None:
            self._proto.abort(ConnectionError("no canary back from Redis"))

    def _flush(self) -> None:
        self._flush_at = None
        out, self._out = self._out, []
        proto = self._proto
        if not out or proto is None or not proto.alive:
            return  # the loss handler already counted these rooms
        proto.transport.write(b"".join(out))
        if proto.transport.get_write_buffer_size() > WRITE_BUFFER_MAX:
            proto.abort(ConnectionError("Redis is not reading what is published"))

    def _hold(self, data: bytes, room: int | None) -> None:
        if len(self._held) >= BUFFER_MAX:
            self.stats["dropped"] += 1
            if room is not None:
                self.lost_rooms.add(room)
            return
        self._held.append((data, room))
        self._reconnect_soon()

    # -- the connection --------------------------------------------------------------------
    async def start(self) -> None:
        self._reconnect_soon()

    def _reconnect_soon(self) -> None:
        if self._reconnecting is None and not self._closing:
            self._reconnecting = asyncio.ensure_future(self._reconnect())

    async def _reconnect(self) -> None:
        try:
            while not self._closing:
                try:
                    proto = await connect(self.address, verify_tls=self.verify_tls, timeout=self.connect_timeout,
                                           protocol=_Discarding)
                except Exception as e:  # noqa: BLE001 - Redis down: retry with backoff
                    if self._delay == BACKOFF_MIN_S:
                        log.warning("publishing to Redis failed: %s (retrying with backoff)", e)
                    await asyncio.sleep(self._delay)
                    self._delay = min(BACKOFF_MAX_S, self._delay * 2)
                    continue
                if self._delay > BACKOFF_MIN_S:
                    log.info("publishing to Redis works again")
                self._delay = BACKOFF_MIN_S
                self._connected(proto)
                return
        finally:
            self._reconnecting = None

    def _connected(self, proto: _Discarding) -> None:
        proto.discarding = True
        proto.transport.write(encode("CLIENT", "REPLY", "OFF"))
        proto.lost.add_done_callback(lambda f: self._lost(proto))
        self._proto = proto
        if self.lost_rooms:  # first: tell the others what to read from SQL
            lost, self.lost_rooms = sorted(self.lost_rooms), set()
            self.publish(self.gap(lost), None)
        held, self._held = self._held, collections.deque()
        for data, room in held:
            self.publish(data, room)

    def _lost(self, proto: _Discarding) -> None:
        if proto is not self._proto:
            return
        self._proto = None
        for _, rooms in self._unconfirmed:
            self.lost_rooms.update(rooms)
        self.lost_rooms.update(self._window)
        self._unconfirmed.clear()
        self._window = set()
        self._out = []
        if not self._closing:
            log.warning("Redis connection for publishing lost (%s); reconnecting", proto.lost.result())
            self._reconnect_soon()

    async def close(self) -> None:
        self._closing = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        if self._proto is not None:
            self._flush()
            self._proto.abort(ConnectionError("publisher closed"))
            self._proto = None
