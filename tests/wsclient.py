"""A real WebSocket test client speaking the Podium protocol (tornado's client)."""
from __future__ import annotations

import asyncio
import itertools
import json
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

    async def next_event(self, type_: str | None = None, timeout: float = 5, **match: Any) -> dict:
        """The next queued event of ``type_`` (others of other types are discarded)."""
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
