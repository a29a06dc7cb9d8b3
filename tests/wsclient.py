"""WebSocket test clients speaking the Podium protocol: ``WsClient`` (Tornado's client) and
``RawWs`` (a hand-made one that reads only when told to, for slow readers and heartbeats)."""
from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import socket
import struct
import time
from typing import Any

from tornado.websocket import WebSocketClientConnection, websocket_connect

_ids = itertools.count(1)


class LoopbackUrls:
    """``base_url`` / ``ws_url`` of a test server listening on 127.0.0.1:``port``."""

    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


class ProtocolError(Exception):
    def __init__(self, frame: dict):
        super().__init__(f"{frame.get('code')}: {frame.get('reason')}")
        self.code = frame.get("code")
        self.frame = frame


class WsClient:
    """Reads frames in the background: acks/errors resolve requests; everything else is
    queued as an event."""

    def __init__(self, conn: WebSocketClientConnection):
        self.conn = conn
        self.events: asyncio.Queue[dict] = asyncio.Queue()
        self.pending: dict[str, asyncio.Future] = {}
        self.hello: dict | None = None
        self.close_code: int | None = None
        self.closed = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, url: str, token: str | None = None, *, first_frame_auth: bool = False,
                      wait_hello: bool = True, **kw: Any) -> "WsClient":
        full = f"{url}?token={token}" if token and not first_frame_auth else url
        conn = await websocket_connect(full, **kw)
        client = cls(conn)
        if token and first_frame_auth:
            client.send({"type": "auth", "token": token})
        if wait_hello and token:
            client.hello = await client.next_event("hello")
        return client

    async def _read(self) -> None:
        while True:
            raw = await self.conn.read_message()
            if raw is None:
                self.close_code = self.conn.close_code
                self.closed.set()
                for fut in self.pending.values():
                    if not fut.done():
                        fut.set_exception(ConnectionError(f"closed {self.close_code}"))
                return
            frame = json.loads(raw)
            fid = frame.get("id")
            if frame.get("type") in ("ack", "error") and fid in self.pending:
                fut = self.pending.pop(fid)
                if not fut.done():
                    fut.set_result(frame)
            else:
                self.events.put_nowait(frame)

    def send(self, frame: dict | str) -> None:
        self.conn.write_message(frame if isinstance(frame, str) else json.dumps(frame))

    async def request(self, type_: str, timeout: float = 10, **fields: Any) -> dict:
        """Send a request and return the ack's ``data``; raise ProtocolError on ``error``."""
        frame = await self.request_raw(type_, timeout=timeout, **fields)
        if frame["type"] == "error":
            raise ProtocolError(frame)
        return frame["data"]

    async def request_raw(self, type_: str, timeout: float = 10, **fields: Any) -> dict:
        rid = f"r{next(_ids)}"
        fut = asyncio.get_running_loop().create_future()
        self.pending[rid] = fut
        self.send({"type": type_, "id": rid, **fields})
        return await asyncio.wait_for(fut, timeout)

    async def next_event(self, type_: str | None = None, timeout: float = 15, **match: Any) -> dict:
        """The next queued event of ``type_`` (others of other types are discarded). The wait is
        generous: on the 2-core CI machine the other pass's browsers and media can starve this
        process for seconds (a 5 s wait once ran out there)."""
        async def find() -> dict:
            while True:
                ev = await self.events.get()
                if type_ is None or ev.get("type") == type_:
                    if all(ev.get(k) == v for k, v in match.items()):
                        return ev
        return await asyncio.wait_for(find(), timeout)

    async def no_event(self, type_: str, within: float = 0.3) -> bool:
        """True when no event of ``type_`` arrives within ``within`` seconds."""
        try:
            await self.next_event(type_, timeout=within)
        except asyncio.TimeoutError:
            return True
        return False

    async def wait_closed(self, timeout: float = 10) -> int | None:
        await asyncio.wait_for(self.closed.wait(), timeout)
        return self.close_code

    def close(self) -> None:
        self.conn.close()
        self._reader.cancel()


class RawWs:
    """A WebSocket client on a plain non-blocking socket: the HTTP upgrade is done by hand and
    nothing is read unless the test asks, and pings are never answered."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""

    @classmethod
    async def connect(cls, port: int, token: str, rcvbuf: int | None = None) -> "RawWs":
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connect, so the advertised window stays small
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET /ws?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        await loop.sock_sendall(sock, req.encode())
        ws = cls(sock)
        while b"\r\n\r\n" not in ws.buf:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)
            assert chunk, "server closed during the handshake"
            ws.buf += chunk
        head, ws.buf = ws.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        return ws

    async def send_frame(self, payload: bytes, opcode: int = 0x1) -> None:
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n <= 0xFFFF:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        await asyncio.get_running_loop().sock_sendall(self.sock, header + mask + masked)

    async def send_json(self, obj: dict) -> None:
        await self.send_frame(json.dumps(obj).encode())

    async def _fill(self, n: int, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        while len(self.buf) < n:
            chunk = await asyncio.wait_for(loop.sock_recv(self.sock, 65536), timeout)
            if not chunk:
                return False
            self.buf += chunk
        return True

    async def read_frame(self, timeout: float = 5) -> tuple[int, bytes] | None:
        """``(opcode, payload)`` of the next frame, or None at EOF."""
        if not await self._fill(2, timeout):
            return None
        b0, b1 = self.buf[0], self.buf[1]
        n, off = b1 & 0x7F, 2
        if n == 126:
            if not await self._fill(4, timeout):
                return None
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            if not await self._fill(10, timeout):
                return None
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        if not await self._fill(off + n, timeout):
            return None
        payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
        return b0 & 0x0F, payload

    async def read_event(self, type_: str, timeout: float = 15) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.read_frame(max(0.01, deadline - time.monotonic()))
            assert frame is not None, "closed"
            if frame[0] == 0x1:
                ev = json.loads(frame[1])
                if ev.get("type") == type_:
                    return ev

    def close(self) -> None:
        self.sock.close()
