"""The worker's connection to Podium (PROTOCOL §2.3): one ``/ws`` socket with a recorder token,
``worker.register``, jobs in, signaling routed to the job that owns the session.

The socket is kept up with exponential backoff (0.5 s doubling to 30 s, with jitter). Jobs do
not depend on it: media flows browser → worker directly, so a recording goes on while the
worker reconnects (a web-server restart, say); on reconnect the worker registers again,
listing the recordings it holds, and each job rejoins its call.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
from typing import Any

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from media_worker.config import WorkerConfig

log = logging.getLogger("podium.worker")

BACKOFF_MIN_S, BACKOFF_MAX_S = 0.5, 30.0


class NotConnected(ConnectionError):
    pass


class RequestFailed(RuntimeError):
    def __init__(self, frame: dict):
        super().__init__(f"{frame.get('code')}: {frame.get('reason')}")
        self.code = frame.get("code")


class WorkerClient:
    def __init__(self, config: WorkerConfig):
        self.config = config
        self.jobs: dict[str, Any] = {}  # recording id → media_worker.job.Job
        self.ws: WebSocketClientConnection | None = None
        self.connected = asyncio.Event()
        self._pending: dict[str, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self._stopping = False

    # -- sending ---------------------------------------------------------------------------
    def send(self, frame: dict) -> bool:
        """Best effort: False when not connected (progress, ICE); the caller decides."""
        if self.ws is None:
            return False
        try:
            self.ws.write_message(json.dumps(frame))
        except Exception:  # closed under us; the reader notices and reconnects
            return False
        return True

    async def request(self, type_: str, timeout: float = 15, **fields: Any) -> dict:
        if self.ws is None:
            raise NotConnected(f"{type_}: not connected")
        rid = f"w{next(self._ids)}"
        fut = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        if not self.send({"type": type_, "id": rid, **fields}):
            self._pending.pop(rid, None)
            raise NotConnected(f"{type_}: not connected")
        try:
            frame = await asyncio.wait_for(fut, timeout)
        finally:
            self._pending.pop(rid, None)
        if frame["type"] == "error":
            raise RequestFailed(frame)
        return frame.get("data") or {}

    # -- connection loop ---------------------------------------------------------------------
    async def run(self) -> None:
        """Stay connected until :meth:`close`."""
        delay = BACKOFF_MIN_S
        while not self._stopping:
            reader = None
            try:
                await self._open()
                reader = asyncio.ensure_future(self._read())
                await self._register()
                delay = BACKOFF_MIN_S
                await reader
            except Exception as e:
                if not self._stopping:
                    log.warning("connection to %s failed: %s", self.config.server_url, e)
            finally:
                if reader is not None:
                    reader.cancel()
                self._disconnected()
            if self._stopping:
                break
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(BACKOFF_MAX_S, delay * 2)

    async def _open(self) -> None:
        url = f"{self.config.ws_url}?token={self.config.current_token()}"
        self.ws = await websocket_connect(HTTPRequest(url, connect_timeout=10, request_timeout=10),
                                          max_message_size=1024 * 1024)
        hello = json.loads(await asyncio.wait_for(self.ws.read_message(), 10) or "{}")
        if hello.get("type") != "hello":
            raise ConnectionError(f"expected hello, got {hello}")

    async def _register(self) -> None:
        ack = await self.request("worker.register", capacity=self.config.capacity,
                                 worker_id=self.config.worker_id, recordings=list(self.jobs))
        kept = set(ack.get("recordings", []))
        log.info("registered with %s as %s (capacity %d, holding %s)", self.config.server_url,
                 self.config.worker_id, self.config.capacity, sorted(kept) or "nothing")
        self.connected.set()
        for rid, job in list(self.jobs.items()):
            job.reconnected(rid in kept)

    async def _read(self) -> None:
        while True:
            raw = await self.ws.read_message()
            if raw is None:
                log.warning("disconnected from %s (code %s)", self.config.server_url, self.ws.close_code)
                return
            try:
                frame = json.loads(raw)
            except ValueError:
                log.warning("ignoring a frame that is not JSON: %r", raw[:100])
                continue
            if frame.get("type") in ("ack", "error") and frame.get("id") in self._pending:
                fut = self._pending.pop(frame["id"])
                if not fut.done():
                    fut.set_result(frame)
                continue
            try:
                self._on_event(frame)
            except Exception:
                log.exception("handling %s failed", frame.get("type"))

    def _disconnected(self) -> None:
        self.connected.clear()
        ws, self.ws = self.ws, None
        if ws is not None:
            ws.close()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(NotConnected("disconnected"))
        self._pending.clear()
        for job in self.jobs.values():
            job.disconnected()

    # -- events ----------------------------------------------------------------------------
    def _on_event(self, ev: dict) -> None:
        kind = ev.get("type")
        if kind == "recording.job":
            from media_worker.job import Job

            rid = ev["recording"]["id"]
            if rid not in self.jobs:
                self.jobs[rid] = Job(self, ev["recording"], ev.get("session") or {})
                self.jobs[rid].begin()
            return
        if kind == "recording.stop":
            job = self.jobs.get(str(ev.get("recording")))
            if job is not None:
                job.request_stop(ev.get("reason") or "stop")
            return
        session = ev.get("session")
        session_id = session.get("id") if isinstance(session, dict) else session
        jobs = [job for job in self.jobs.values() if session_id is not None and job.session_id == str(session_id)]
        if not jobs:  # not for a call we record (chat and marks reach the manifest from SQL)
            log.debug("ignoring %s", kind)
        for job in jobs:
            job.on_event(ev)

    def job_done(self, recording_id: str) -> None:
        self.jobs.pop(recording_id, None)

    async def close(self) -> None:
        self._stopping = True
        if self.ws is not None:
            self.ws.close()
