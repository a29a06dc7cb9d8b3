"""A small asyncio Redis client for the hot paths of several web processes: the bus's
publishing and subscription and the budgets' GCRA script (docs/SCALING.md). Everything
else (presence, directories, placements) uses redis-py.

Why not redis-py here: each awaited command costs it a pool checkout, retry and timeout
wrappers and a Python RESP3 parser (about 49 µs of CPU per ``PUBLISH`` on the bench machine;
a subscription message costs a task wake-up and a ``get_message`` round of its own). Here a
command is a ``transport.write`` of pre-encoded bytes and a future resolved from
``data_received``; every caller shares one connection (Redis answers in order, so commands
written together are a pipeline), and a subscription hands each message to a callback
straight from ``data_received``.

Contracts: :meth:`RespClient.execute_many` returns every reply in order, error replies as
:class:`~server.realtime.resp.RedisReplyError` instances; a connection that fails, closes or
does not answer within ``timeout`` fails every command waiting on it
(:class:`ConnectionError`/``TimeoutError``) and is replaced at the next command.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import socket
import ssl
from typing import Callable

from server.realtime.resp import Address, Parser, RedisReplyError, encode

log = logging.getLogger("podium.bus")


class RespProtocol(asyncio.Protocol):
    """One connection: replies go to the waiting futures in order; with ``on_message``
    (subscribed), ``message`` pushes go to it instead."""

    def __init__(self, on_message: Callable[[bytes], None] | None = None):
        self.on_message = on_message
        self.parser = Parser()
        self.waiting: collections.deque[asyncio.Future] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)

    def data_received(self, data: bytes) -> None:
        self.parser.feed(data)
        try:
            replies = self.parser.replies()
        except (ValueError, IndexError) as e:  # not RESP: nothing after this can be trusted
            self.abort(ConnectionError(f"unreadable reply from Redis: {e}"))
            return
        self.handle(replies)

    def handle(self, replies: list) -> None:
        """Pushes to ``on_message``, replies to the waiting futures in order."""
        on_message, waiting = self.on_message, self.waiting
        for r in replies:
            if on_message is not None and type(r) is list and len(r) == 3 and r[0] == b"message":
                try:
                    on_message(r[2])
                except Exception:  # a bug in one notice's handling must not end the subscription
                    log.exception("handling a bus message failed")
                continue
            if not waiting:
                log.warning("unexpected reply from Redis: %r", r)
                continue
            fut = waiting.popleft()
            if not fut.done():  # a caller that timed out left its future cancelled
                fut.set_result(r)

    def connection_lost(self, exc: Exception | None) -> None:
        err = exc if isinstance(exc, Exception) else ConnectionError("Redis closed the connection")
        if not isinstance(err, ConnectionError):
            err = ConnectionError(f"Redis connection lost: {err!r}")
        self._fail(err)

    def _fail(self, err: Exception) -> None:
        while self.waiting:
            fut = self.waiting.popleft()
            if not fut.done():
                fut.set_exception(err)
        if not self.lost.done():
            self.lost.set_result(err)

    def abort(self, err: Exception) -> None:
        self._fail(err)
        if self.transport is not None:
            self.transport.abort()

    @property
    def alive(self) -> bool:
        return not self.lost.done()

    def send(self, data: bytes, replies: int) -> list[asyncio.Future]:
        if self.lost.done():
            raise ConnectionError("Redis connection closed")
        loop = asyncio.get_running_loop()
        futs = [loop.create_future() for _ in range(replies)]
        self.waiting.extend(futs)
        self.transport.write(data)
        return futs


async def connect(address: Address, *, verify_tls: bool, timeout: float,
                   on_message: Callable[[bytes], None] | None = None,
                   protocol: Callable[[], RespProtocol] | None = None) -> RespProtocol:
    """A connection, authenticated and on ``address.db`` (``protocol()`` builds it, when given)."""
    loop = asyncio.get_running_loop()
    ctx = None
    if address.tls:
        ctx = ssl.create_default_context()
        if not verify_tls:  # Heroku Redis presents a self-signed certificate
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
    _, proto = await asyncio.wait_for(
        loop.create_connection(protocol or (lambda: RespProtocol(on_message)), address.host, address.port, ssl=ctx,
                               server_hostname=address.host if ctx else None), timeout)
    hello = []
    if address.password is not None:
        hello.append(encode("AUTH", address.username, address.password) if address.username
                     else encode("AUTH", address.password))
    if address.db:
        hello.append(encode("SELECT", address.db))
    if hello:
        try:
            futs = proto.send(b"".join(hello), len(hello))
            for r in await asyncio.wait_for(asyncio.gather(*futs), timeout):
                if isinstance(r, RedisReplyError):
                    raise ConnectionError(f"Redis refused the connection setup: {r}")
        except BaseException:
            proto.abort(ConnectionError("connection setup failed"))
            raise
    return proto


class RespClient:
    """One pipelined connection shared by every caller, opened at the first command and
    again after it failed."""

    def __init__(self, address: Address, *, verify_tls: bool = True, timeout: float = 5.0,
                 connect_timeout: float = 2.0):
        self.address, self.verify_tls = address, verify_tls
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self._proto: RespProtocol | None = None
        self._connecting: asyncio.Future | None = None

    async def _connection(self) -> RespProtocol:
        proto = self._proto
        if proto is not None and proto.alive:
            return proto
        if self._connecting is None:  # one connect at a time; concurrent callers wait for it
            self._connecting = asyncio.ensure_future(
                connect(self.address, verify_tls=self.verify_tls, timeout=self.connect_timeout))
        connecting = self._connecting
        try:
            self._proto = await asyncio.shield(connecting)
        finally:
            if self._connecting is connecting and connecting.done():
                self._connecting = None
        return self._proto

    async def execute_raw(self, data: bytes, replies: int) -> list:
        """Write pre-encoded commands (``replies`` of them) and return their replies in order."""
        proto = await self._connection()
        futs = proto.send(data, replies)
        try:
            await asyncio.wait_for(futs[-1], self.timeout)  # replies come in order: the last is last
        except BaseException as e:
            if isinstance(e, asyncio.TimeoutError):
                proto.abort(ConnectionError(f"no reply from Redis within {self.timeout} s"))
            for f in futs:  # the connection's error is the caller's now; mark it seen
                if f.done() and not f.cancelled():
                    f.exception()
            raise
        return [f.result() for f in futs]

    async def execute_many(self, commands: list[tuple]) -> list:
        return await self.execute_raw(b"".join(encode(*c) for c in commands), len(commands))

    async def execute(self, *args):
        """One command's reply; an error reply is raised."""
        (reply,) = await self.execute_raw(encode(*args), 1)
        if isinstance(reply, RedisReplyError):
            raise reply
        return reply

    async def close(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
        if self._proto is not None:
            self._proto.abort(ConnectionError("client closed"))
            self._proto = None


class Subscription:
    """``channel``'s messages, each handed to ``on_message(data)`` as it is read. ``lost``
    completes (with the error) when the connection ends."""

    def __init__(self, proto: RespProtocol):
        self._proto = proto
        self.lost = proto.lost

    @classmethod
    async def open(cls, address: Address, channel: str, on_message: Callable[[bytes], None], *,
                   verify_tls: bool = True, timeout: float = 5.0) -> "Subscription":
        proto = await connect(address, verify_tls=verify_tls, timeout=timeout, on_message=on_message)
        try:
            (fut,) = proto.send(encode("SUBSCRIBE", channel), 1)
            reply = await asyncio.wait_for(fut, timeout)
            if not (type(reply) is list and reply and reply[0] == b"subscribe"):
                raise ConnectionError(f"SUBSCRIBE answered {reply!r}")
        except BaseException:
            proto.abort(ConnectionError("subscribing failed"))
            raise
        return cls(proto)

    @property
    def local_address(self) -> tuple:
        """This end's (host, port) of the connection."""
        return self._proto.transport.get_extra_info("sockname")

    def close(self) -> None:
        self._proto.abort(ConnectionError("subscription closed"))
