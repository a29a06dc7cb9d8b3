"""RESP2, the Redis wire protocol, without I/O: encoding commands, parsing replies out of a
byte buffer, and reading a ``redis://`` / ``rediss://`` URL (the asyncio side is
``resp_client``). Just what the bus and the budgets send: commands of bulk strings, replies
of every RESP2 type (simple string, error, integer, bulk string, array, nil).
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit


class RedisReplyError(Exception):
    """Redis answered a command with an error reply (``-ERR ...``, ``-NOSCRIPT ...``)."""


class ProtocolError(ValueError):
    """The bytes from the server are not RESP2."""


def encode(*args: bytes | str | int | float) -> bytes:
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = b"%d" % a
        elif isinstance(a, float):
            a = repr(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Parser:
    """Complete replies out of the bytes fed so far (``feed``, then ``replies``); an incomplete
    reply waits for more bytes. Error replies come out as :class:`RedisReplyError` instances,
    not raised."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._need = 0  # the buffer length below which the pending reply cannot be complete

    def feed(self, data: bytes) -> None:
        self._buf += data

    def replies(self) -> list:
        buf = self._buf
        if len(buf) < self._need:
            return []
        out = []
        pos = 0
        n = len(buf)
        while pos < n:
            if buf.startswith(_MESSAGE, pos):  # a subscription's push, most of what it reads
                value, pos2 = _message(buf, pos)
                if value is not None:
                    out.append(value)
                    pos = pos2
                    continue
            try:
                value, pos2 = _parse(buf, pos)
            except _Incomplete as e:
                self._need = e.need - pos
                break
            out.append(value)
            pos = pos2
        else:
            self._need = 0
        if pos:
            del buf[:pos]
        return out


class _Incomplete(Exception):
    def __init__(self, need: int):
        self.need = need  # the buffer must be at least this long before trying again


_MESSAGE = b"*3\r\n$7\r\nmessage\r\n$"


def _message(buf: bytearray, pos: int):
    """A whole ``message`` push at ``pos`` as ``[b"message", channel, data]`` without the
    general parser's recursion; ``(None, pos)`` when it is not all there yet."""
    p = pos + len(_MESSAGE)
    end = buf.find(b"\r\n", p)
    if end < 0:
        return None, pos
    channel_at = end + 2
    channel_end = channel_at + int(buf[p:end])
    if len(buf) < channel_end + 3 or buf[channel_end + 2] != 36:  # "$": the data's length follows
        return None, pos
    end = buf.find(b"\r\n", channel_end + 3)
    if end < 0:
        return None, pos
    data_at = end + 2
    data_end = data_at + int(buf[channel_end + 3:end])
    if len(buf) < data_end + 2:
        return None, pos
    return [b"message", bytes(buf[channel_at:channel_end]), bytes(buf[data_at:data_end])], data_end + 2


def _parse(buf: bytearray, pos: int):
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete(len(buf) + 1)
    kind = buf[pos]
    if kind == 36:  # $ bulk string
        size = int(buf[pos + 1:end])
        if size < 0:
            return None, end + 2
        stop = end + 2 + size
        if len(buf) < stop + 2:
            raise _Incomplete(stop + 2)
        return bytes(buf[end + 2:stop]), stop + 2
    if kind == 42:  # * array
        size = int(buf[pos + 1:end])
        if size < 0:
            return None, end + 2
        items = []
        p = end + 2
        for _ in range(size):
            value, p = _parse(buf, p)
            items.append(value)
        return items, p
    if kind == 58:  # : integer
        return int(buf[pos + 1:end]), end + 2
    if kind == 43:  # + simple string
        return bytes(buf[pos + 1:end]), end + 2
    if kind == 45:  # - error
        return RedisReplyError(buf[pos + 1:end].decode(errors="replace")), end + 2
    raise ProtocolError(f"not a RESP2 reply: {bytes(buf[pos:pos + 20])!r}")


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False


def parse_url(url: str) -> Address:
    """``redis://[[user]:password@]host[:port][/db]`` or ``rediss://`` (TLS), as redis-py
    reads them (a ``?db=`` query works too); ValueError for anything else."""
    u = urlsplit(url)
    if u.scheme not in ("redis", "rediss"):
        raise ValueError(f"unsupported Redis URL scheme {u.scheme!r} (redis:// or rediss://)")
    db = 0
    path = (u.path or "").strip("/")
    if path:
        db = int(path)
    query = parse_qs(u.query)
    if "db" in query:
        db = int(query["db"][0])
    return Address(host=u.hostname or "localhost", port=u.port or 6379, db=db,
                   username=unquote(u.username) if u.username else None,
                   password=unquote(u.password) if u.password is not None else None,
                   tls=u.scheme == "rediss")
