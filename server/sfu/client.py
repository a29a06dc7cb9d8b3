"""One long-lived WebSocket connection to one Janus, with its sessions and plugin handles.

``JanusConnection(url, api_secret)`` connects on ``start()`` and keeps connecting until
``close()``: a lost socket is reopened with exponential backoff (``backoff_s`` doubling up to
``max_backoff_s``). Every request carries a transaction id and waits for its answer (see
``protocol.py``) at most ``request_timeout_s``. Every session gets a ``keepalive`` each
``keepalive_s`` (Janus destroys a silent session after its ``session_timeout``). The socket
is pinged every ``ping_s`` and closed when no pong comes back within ``ping_s``, so a hung or
unreachable Janus (a host gone, no TCP reset) counts as disconnected within seconds
(``sfu/service.py`` fails it over).

After a reconnect each session is ``claim``ed on the new socket (Janus keeps a session whose
socket closed for ``reclaim_session_timeout``); a session Janus no longer knows (it restarted,
or the reclaim window passed) is *lost*: its handles stop receiving events and every
``on_session_lost`` hook runs with it. Then every ``on_reconnected`` hook runs with the list
of lost sessions (empty after a clean reclaim) — ``rooms.py`` recreates its rooms there.
``claim_session(id)`` takes over a session by id, e.g. one a previous Podium process created.

Unsolicited events go to the handle they name (``Handle.on_event`` hooks); hooks run on the
event loop and must not block. Requests on a closed connection raise ``JanusClosed``; Janus's
refusals raise ``JanusError``.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, WebSocketClosedError, websocket_connect

from server.sfu.protocol import (NO_SUCH_HANDLE, NO_SUCH_SESSION, JanusClosed, JanusError, Reply,
                                 Transactions, request)

log = logging.getLogger("podium.sfu")
SUBPROTOCOL = "janus-protocol"
MAX_MESSAGE_BYTES = 1024 * 1024  # an SDP with many streams is tens of KB


class Handle:
    """A plugin handle in a session: plugin messages, trickle, and its unsolicited events."""

    def __init__(self, session: "JanusSession", handle_id: int, plugin: str):
        self.session, self.id, self.plugin = session, handle_id, plugin
        self.on_event: list[Callable[[dict], None]] = []

    async def message(self, body: dict, jsep: dict | None = None, timeout: float | None = None) -> Reply:
        return await self.session.connection.request(
            "message", session_id=self.session.id, handle_id=self.id, body=body, jsep=jsep, timeout=timeout)

    async def trickle(self, candidate: dict | None) -> None:
        """One ICE candidate (RTCIceCandidateInit); None: end of candidates."""
        await self.session.connection.request(
            "trickle", session_id=self.session.id, handle_id=self.id,
            candidate=candidate if candidate is not None else {"completed": True})

    async def hangup(self) -> None:
        await self.session.connection.request("hangup", session_id=self.session.id, handle_id=self.id)

    async def detach(self) -> None:
        self.session.handles.pop(self.id, None)
        try:
            await self.session.connection.request("detach", session_id=self.session.id, handle_id=self.id)
        except JanusError as e:
            if e.code not in (NO_SUCH_SESSION, NO_SUCH_HANDLE):
                raise

    def deliver(self, msg: dict) -> None:
        for hook in list(self.on_event):  # a hook may remove itself
            try:
                hook(msg)
            except Exception:  # one broken hook must not stop the reader
                log.exception("sfu: event hook failed on handle %s", self.id)


class JanusSession:
    """A Janus session on one connection; its handles receive their events while it lives."""

    def __init__(self, connection: "JanusConnection", session_id: int):
        self.connection, self.id = connection, session_id
        self.handles: dict[int, Handle] = {}
        self.lost = False

    async def attach(self, plugin: str) -> Handle:
        reply = await self.connection.request("attach", session_id=self.id, plugin=plugin)
        handle = Handle(self, int(reply.data["id"]), plugin)
        self.handles[handle.id] = handle
        return handle

    async def destroy(self) -> None:
        self.connection.sessions.pop(self.id, None)
        try:
            await self.connection.request("destroy", session_id=self.id)
        except JanusError as e:
            if e.code != NO_SUCH_SESSION:
                raise


class JanusConnection:
    """The connection to one Janus (module docstring)."""

    def __init__(self, url: str, api_secret: str | None, *, keepalive_s: float = 25.0,
                 request_timeout_s: float = 10.0, backoff_s: float = 0.5, max_backoff_s: float = 10.0,
                 connect_timeout_s: float = 5.0, ping_s: float = 2.0):
        self.url, self.api_secret = url, api_secret
        self.keepalive_s, self.request_timeout_s = keepalive_s, request_timeout_s
        self.backoff_s, self.max_backoff_s, self.connect_timeout_s = backoff_s, max_backoff_s, connect_timeout_s
        self.ping_s = ping_s
        self.transactions = Transactions()
        self.sessions: dict[int, JanusSession] = {}
        self.connected = asyncio.Event()
        self.on_session_lost: list[Callable[[JanusSession], None]] = []
        self.on_reconnected: list[Callable[[list[JanusSession]], Awaitable[None]]] = []
        self.connects = 0  # sockets opened so far (1 after the first connect)
        self._ws: WebSocketClientConnection | None = None
        self._futures: dict[str, asyncio.Future] = {}
        self._tasks: list[asyncio.Task] = []
        self._hook_tasks: set[asyncio.Task] = set()  # kept so they are not collected mid-run
        self._closing = False

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(), name=f"janus:{self.url}"),
                       asyncio.create_task(self._keepalives(), name=f"janus-keepalive:{self.url}")]

    async def close(self) -> None:
        """Close the socket (Janus then destroys our sessions after its reclaim window)."""
        self._closing = True
        if self._ws is not None:
            self._ws.close()
        for t in self._tasks:
            t.cancel()
        # Python 3.11's wait_for can swallow a cancel that lands as its inner future completes;
        # the loops also stop on ``_closing``, and the wait is bounded either way.
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        self._fail_pending()

    async def wait_connected(self, timeout: float) -> None:
        await asyncio.wait_for(self.connected.wait(), timeout)

    # -- requests --------------------------------------------------------------------------
    async def request(self, janus: str, *, session_id: int | None = None, timeout: float | None = None,
                      wait: bool = True, **fields: Any) -> Reply:
        """Send one request and wait for its answer. ``wait``: first wait (within the timeout)
        for the connection to be up; False sends only on the socket open now (reclaim)."""
        timeout = self.request_timeout_s if timeout is None else timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if wait and not self.connected.is_set():
            try:
                await asyncio.wait_for(self.connected.wait(), timeout)
            except asyncio.TimeoutError:
                raise JanusClosed(f"janus {self.url} not connected") from None
        ws = self._ws
        if ws is None:
            raise JanusClosed(f"janus {self.url} not connected")
        tid = self.transactions.new(janus, session_id)
        fut = loop.create_future()
        self._futures[tid] = fut
        msg = request(janus, tid, self.api_secret, session_id=session_id, **fields)
        try:
            await ws.write_message(json.dumps(msg))
            return await asyncio.wait_for(fut, max(0.0, deadline - loop.time()))
        except WebSocketClosedError:
            raise JanusClosed(f"janus {self.url} closed") from None
        except asyncio.TimeoutError:
            raise JanusClosed(f"janus {self.url}: no answer to {janus} within {timeout}s") from None
        finally:
            self.transactions.forget(tid)
            self._futures.pop(tid, None)

    async def info(self) -> dict:
        return (await self.request("info")).raw

    async def create_session(self) -> JanusSession:
        reply = await self.request("create")
        session = JanusSession(self, int(reply.data["id"]))
        self.sessions[session.id] = session
        return session

    async def claim_session(self, session_id: int, handles: dict[int, str] | None = None) -> JanusSession:
        """Take over an existing session (and its ``handles``: id → plugin) on this socket."""
        await self.request("claim", session_id=session_id)
        return self.adopt_session(session_id, handles)

    def adopt_session(self, session_id: int, handles: dict[int, str] | None = None) -> JanusSession:
        """New objects for a session this socket already holds (and its ``handles``), in place
        of the old ones: the old objects' event hooks no longer receive anything."""
        session = JanusSession(self, session_id)
        for hid, plugin in (handles or {}).items():
            session.handles[hid] = Handle(session, hid, plugin)
        self.sessions[session_id] = session
        return session

    # -- the socket ------------------------------------------------------------------------
    async def _run(self) -> None:
        delay = self.backoff_s
        while not self._closing:
            try:
                ws = await websocket_connect(
                    HTTPRequest(self.url, connect_timeout=self.connect_timeout_s, request_timeout=self.connect_timeout_s),
                    subprotocols=[SUBPROTOCOL], max_message_size=MAX_MESSAGE_BYTES,
                    ping_interval=self.ping_s, ping_timeout=self.ping_s)
            except Exception as e:  # refused, reset, DNS, TLS, a refused handshake: all retried
                # Podium's calls fall back to the mesh while no Janus is connected: say so.
                log.warning("sfu: cannot connect to janus %s (%s); again in %.1fs; calls use the "
                            "browser mesh meanwhile", self.url, e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)
                continue
            delay = self.backoff_s
            self._ws = ws
            self.connects += 1
            reader = asyncio.create_task(self._read(ws))
            try:
                if self.connects > 1:
                    await self._reclaim()
                log.info("sfu: connected to janus %s", self.url)
                self.connected.set()
                await reader
            finally:
                self.connected.clear()
                self._ws = None
                reader.cancel()
                self._fail_pending()
            if not self._closing:
                log.warning("sfu: connection to janus %s lost; reconnecting", self.url)

    async def _read(self, ws: WebSocketClientConnection) -> None:
        while True:
            raw = await ws.read_message()
            if raw is None:
                return
            try:
                msg = json.loads(raw)
            except ValueError:
                log.warning("sfu: janus %s sent a frame that is not JSON (%d bytes)", self.url, len(raw))
                continue
            if isinstance(msg, dict):
                self._dispatch(msg)

    def _dispatch(self, msg: dict) -> None:
        routed = self.transactions.receive(msg)
        if routed is None:
            return
        if routed.transaction is not None:
            fut = self._futures.get(routed.transaction)
            if fut is not None and not fut.done():
                if routed.error is not None:
                    fut.set_exception(routed.error)
                else:
                    fut.set_result(routed.reply)
            return
        event = routed.event or {}
        session = self.sessions.get(routed.session_id) if routed.session_id is not None else None
        if session is None:
            return
        if event.get("janus") == "timeout":
            self._lose(session, "timed out")
            return
        handle = session.handles.get(routed.sender) if routed.sender is not None else None
        if handle is not None:
            if event.get("janus") == "detached":
                session.handles.pop(handle.id, None)
            handle.deliver(event)

    def _fail_pending(self) -> None:
        self.transactions.drain()
        for fut in self._futures.values():
            if not fut.done():
                fut.set_exception(JanusClosed(f"janus {self.url} closed"))

    def _lose(self, session: JanusSession, why: str) -> None:
        if self.sessions.pop(session.id, None) is None:
            return
        session.lost = True
        log.warning("sfu: janus %s session %s lost (%s)", self.url, session.id, why)
        for hook in list(self.on_session_lost):
            try:
                hook(session)
            except Exception:
                log.exception("sfu: session-lost hook failed")

    async def _reclaim(self) -> None:
        lost = []
        for session in list(self.sessions.values()):
            try:
                await self.request("claim", session_id=session.id, wait=False)
            except JanusError as e:
                if e.code != NO_SUCH_SESSION:
                    log.warning("sfu: claim of session %s refused: %s", session.id, e)
                lost.append(session)
                self._lose(session, "not reclaimed")
        if lost:
            log.warning("sfu: janus %s lost %d session(s) (restarted?)", self.url, len(lost))
        for hook in list(self.on_reconnected):
            task = asyncio.create_task(self._run_hook(hook, lost))
            self._hook_tasks.add(task)
            task.add_done_callback(self._hook_tasks.discard)

    async def _run_hook(self, hook, lost) -> None:
        try:
            await self.connected.wait()
            await hook(lost)
        except Exception:
            log.exception("sfu: reconnect hook failed for janus %s", self.url)

    async def _keepalives(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.keepalive_s)
            if not self.connected.is_set():
                continue
            for session in list(self.sessions.values()):
                if self._closing:
                    return
                try:
                    await self.request("keepalive", session_id=session.id, wait=False)
                except JanusError as e:
                    if e.code == NO_SUCH_SESSION:
                        self._lose(session, "unknown to janus at keepalive")
                except JanusClosed:
                    break
