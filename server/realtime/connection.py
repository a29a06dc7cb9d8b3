"""``GET /ws``: the socket transport, one per browser tab (PROTOCOL §2) — handshake and
authentication, heartbeat, the bounded outgoing buffer and pipelined answers. What a frame
means is the dispatcher's business (realtime.dispatch) and the features' ops.

Frames from one socket are handled in order (Tornado awaits ``on_message`` before reading the
next frame). Everything this socket sends goes through ``send_frame``, which bounds the
socket's outgoing buffer: droppable events (typing, presence) are dropped past a soft limit,
and past the hard limit the socket is closed with 4008 (slow consumer).
"""
from __future__ import annotations

import asyncio
import json
import logging
import secrets
import socket
import time
from typing import Any

import tornado.httputil
import tornado.websocket
from tornado.iostream import SSLIOStream, StreamClosedError

from server.kernel.actor import Actor
from server.kernel.clock import iso, utcnow
from server.kernel.errors import BadRequest, PodiumError, Unauthorized
from server.kernel.frames import event_frame
from server.kernel.jsonbody import decode_json_object
from server.realtime.close_codes import CLOSE_NORMAL, CLOSE_SLOW_CONSUMER, CLOSE_UNAUTHORIZED
from server.realtime.frame_reader import FrameReader
from server.realtime.tornado_stream import pending_write_bytes

log = logging.getLogger("podium.ws")

_NO_HEADERS = tornado.httputil.HTTPHeaders()
_NO_ARGS: dict = {}

# Sends one socket may have queued but not yet stored; past this the socket stops reading
# frames until the oldest is stored (back-pressure instead of an unbounded queue).
MAX_PIPELINED_SENDS = 64


class ChatSocket(tornado.websocket.WebSocketHandler):
    """An authenticated client socket; implements the registry's Connection protocol."""

    def initialize(self, deps) -> None:
        self.deps = deps
        self.connection_id = secrets.token_hex(8)
        self.actor: Actor | None = None
        self.user_id = 0
        self.rooms: set[int] = set()
        self.busy = 0
        self._auth_timer: asyncio.TimerHandle | None = None
        self.limited_in_a_row = 0  # frames refused by the rate limit in a row (dispatcher)
        self.pipelined: list[asyncio.Future] = []
        self._direct = False
        self._ping_at = 0.0
        self._seen_at = time.monotonic()
        self._actor_at = 0.0  # when self.actor was last read from the database (Accounts.refresh)
        self._rechecking: asyncio.Future | None = None

    @property
    def log(self) -> logging.LoggerAdapter:
        """A logger whose lines name this connection and its user (built only when logging,
        so idle sockets carry no adapter)."""
        return logging.LoggerAdapter(log, {"conn": self.connection_id, "user": self.user_id or "-"})

    def _forget_handshake(self) -> None:
        """Drop what only the upgrade request needed: an idle socket then keeps no headers
        or query arguments (about 1 KB each; this is what keeps 5,000 idle sockets small)."""
        self.request.headers = _NO_HEADERS
        self.request.arguments = self.request.query_arguments = self.request.body_arguments = _NO_ARGS
        self._headers = _NO_HEADERS

    # -- handshake -------------------------------------------------------------------------
    def check_origin(self, origin: str) -> bool:
        return self.deps.config.origin_allowed(origin, self.request.host)

    def get_compression_options(self) -> None:
        return None  # frames are encoded once and shared by every recipient

    def get_websocket_protocol(self):
        """Tornado's protocol with our receive loop (realtime.frame_reader: fewer futures and
        no task per frame)."""
        proto = super().get_websocket_protocol()
        if type(proto) is tornado.websocket.WebSocketProtocol13:
            proto.__class__ = FrameReader
        return proto

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if self.deps.shutting_down:
            self.set_status(503)
            self.finish({"error": {"code": "unavailable", "reason": "server is shutting down"}})
            return
        await super().get(*args, **kwargs)

    async def open(self) -> None:
        self.deps.sockets.add(self)
        stream = self.ws_connection.stream  # type: ignore[union-attr]
        if stream.socket is not None:
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.deps.config.socket_sndbuf_bytes)
        # Small frames must not wait for the peer's delayed ACK (Nagle): an ack, an event and a
        # signal are each worth sending at once. Plain TCP streams may be written directly.
        self.set_nodelay(True)
        self._direct = not isinstance(stream, SSLIOStream)
        self.deps.heartbeat.ensure_started()
        token = self.get_query_argument("token", None)
        self._forget_handshake()
        if token is not None:
            await self._authenticate(token, None)
        else:
            loop = asyncio.get_running_loop()
            self._auth_timer = loop.call_later(self.deps.config.auth_timeout_s, self._auth_timeout)

    def _auth_timeout(self) -> None:
        if self.actor is None:
            self.log.info("auth timeout")
            self.close(CLOSE_UNAUTHORIZED, "authentication timeout")

    async def _authenticate(self, token: Any, req_id: str | None) -> None:
        try:
            actor, user = await self.deps.accounts.authenticate(token)
        except Unauthorized as e:
            self.log.info("auth failed: %s", e.reason)
            self.close(CLOSE_UNAUTHORIZED, e.reason[:120])
            return
        if self._auth_timer is not None:
            self._auth_timer.cancel()
        if self.ws_connection is None or self.ws_connection.is_closing():
            return
        self.actor = actor
        self._actor_at = time.monotonic()
        self.user_id = actor.id
        self.deps.dispatcher.authenticated(self, self.deps.registry.add(self))
        self.log.info("connected (%s, role %s)", user["username"], actor.role)
        hello = {"type": "hello", "user": user,
                 "connection_id": self.connection_id, "server_time": iso(utcnow()),
                 "heartbeat_s": self.deps.config.heartbeat_s}
        self.send_frame(event_frame(hello))
        if req_id is not None:
            self.reply(req_id, {"user": hello["user"], "connection_id": self.connection_id})

    async def _recheck_in_background(self) -> None:
        try:
            await self._recheck_actor()
        except Exception:  # a failed read leaves the actor as it was; the next frame tries again
            self.log.exception("re-reading the user's role failed")
        finally:
            self._rechecking = None

    async def _recheck_actor(self) -> bool:
        """Read the user's role again (roles come from the database, and a socket acts on one at
        most 2 × ``role_recheck_s`` old: docs/SECURITY.md); close with 4401 and return False when
        the user is gone."""
        try:
            actor = await self.deps.accounts.refresh(self.actor)
        except Unauthorized as e:
            self.log.info("closing: %s", e.reason)
            self.close(CLOSE_UNAUTHORIZED, e.reason[:120])
            return False
        self._actor_at = time.monotonic()
        if actor != self.actor:
            self.log.info("role now %s (was %s)", actor.role, self.actor.role)
            self.actor = actor
        return True

    # -- inbound ---------------------------------------------------------------------------
    # -- heartbeat (server/realtime/heartbeat.py) -------------------------------------------
    def on_pong(self, data: bytes) -> None:
        self._seen_at = time.monotonic()

    def heartbeat(self, now: float, interval: float, timeout: float) -> None:
        """Ping when silent for ``interval``; close when a ping went unanswered for ``timeout``."""
        conn = self.ws_connection
        if conn is None or conn.is_closing():
            return
        if self._ping_at > self._seen_at:
            if now - self._ping_at >= timeout:
                self.log.info("closing: no answer to a ping for %.1f s", now - self._ping_at)
                self.close(CLOSE_NORMAL, "ping timed out")
            return
        if now - max(self._ping_at, self._seen_at) >= interval:
            self._ping_at = now
            try:
                self.ping()
            except tornado.websocket.WebSocketClosedError:
                pass  # closing already: on_close does the clean-up

    async def on_message(self, raw: str | bytes) -> None:
        self._seen_at = time.monotonic()
        req_id = None
        self.busy += 1
        try:
            try:
                msg = self._parse(raw)
            except BadRequest:
                req_id = _readable_id(raw)  # answer with the id when one can be read (§2)
                raise
            req_id = msg.get("id")
            kind = msg.get("type")
            if not isinstance(kind, str):  # checked after the id is read, so the error carries it
                raise BadRequest("type must be a string")
            if self.actor is None:
                if kind == "auth":
                    await self._authenticate(msg.get("token"), req_id)
                    return
                raise Unauthorized("authenticate first: send {\"type\":\"auth\",\"token\":...}")
            if kind == "auth":
                raise BadRequest("already authenticated")
            # The role is re-read in the background once half the bound has passed, so a busy
            # socket's frames never wait for it (many sockets that connected together would
            # otherwise all wait on a burst of reads); only a socket silent past the whole bound
            # waits for the read before its frame is handled.
            age, bound = self._seen_at - self._actor_at, self.deps.config.role_recheck_s
            if age >= bound:
                if not await self._recheck_actor():
                    return
            elif age >= bound / 2 and self._rechecking is None:
                self._rechecking = asyncio.ensure_future(self._recheck_in_background())
            await self.deps.dispatcher.handle(self, kind, msg, req_id)
        except PodiumError as e:
            self.error(req_id, e.code, e.reason)
        except Exception:  # a bug must not kill the socket; it is logged with the traceback
            self.log.exception("internal error handling a frame")
            self.error(req_id, "internal", "internal server error")
        finally:
            self.busy -= 1

    async def pipeline(self, fut: asyncio.Future, req_id: str | None, answer) -> None:
        """Answer ``fut`` (a queued send) with ``answer(result)`` when it completes, without
        holding up the next frame. Ordering holds: sends are queued in frame order and stored
        in queue order."""
        self.busy += 1
        self.pipelined.append(fut)

        def done(f: asyncio.Future) -> None:
            self.busy -= 1
            self.pipelined.remove(f)
            if f.cancelled():
                return
            err = f.exception()
            if err is None:
                if req_id is not None:
                    self.reply(req_id, answer(f.result()))
            elif isinstance(err, PodiumError):  # (slow mode's rate_limited says when, too)
                self.error(req_id, err.code, err.reason, getattr(err, "retry_after", None))
            else:
                self.log.error("message store failed: %r", err)
                self.error(req_id, "internal", "internal server error")

        fut.add_done_callback(done)
        if len(self.pipelined) > MAX_PIPELINED_SENDS:
            await asyncio.wait([self.pipelined[0]])

    def _parse(self, raw: str | bytes) -> dict:
        if isinstance(raw, bytes):
            raise BadRequest("binary frames are not accepted")
        try:
            msg = decode_json_object(raw)
        except BadRequest as e:
            raise BadRequest(f"frame {e.reason}") from None
        req_id = msg.get("id")
        if req_id is not None and (not isinstance(req_id, str) or len(req_id) > 64):
            msg.pop("id", None)
            raise BadRequest("id must be a string of at most 64 characters")
        return msg

    # -- outbound --------------------------------------------------------------------------
    def send_frame(self, frame: bytes, droppable: bool = False) -> None:
        conn = self.ws_connection
        if conn is None or conn.is_closing():
            return
        stream = conn.stream  # type: ignore[attr-defined]
        pending = pending_write_bytes(stream)
        cfg = self.deps.config
        if droppable and pending > cfg.outgoing_soft_bytes:
            self.deps.stats["dropped"] += 1
            return
        if pending + len(frame) > cfg.outgoing_max_bytes:
            self.deps.stats["overflows"] += 1
            self.log.warning("closing: slow consumer (%d bytes queued)", pending)
            self.close(CLOSE_SLOW_CONSUMER, "slow consumer: outgoing queue overflow")
            return
        if pending == 0 and self._direct:
            # Nothing queued: hand the frame straight to the kernel. Tornado's write() costs a
            # Future, a buffer copy and a peek per call; this is most of a broadcast's CPU.
            try:
                sent = stream.socket.send(frame)
            except BlockingIOError:
                sent = 0
            except OSError:
                sent = 0  # broken pipe or reset: stream.write below sees it and closes properly
            if sent == len(frame):
                return
            frame = memoryview(frame)[sent:]
        try:
            stream.write(frame)
        except StreamClosedError:
            pass  # the peer is gone; on_close does the clean-up

    def reply(self, req_id: str, data: dict) -> None:
        self.send_frame(event_frame({"type": "ack", "id": req_id, "data": data}))

    def error(self, req_id: str | None, code: str, reason: str, retry_after_s: float | None = None) -> None:
        err = {"type": "error", "code": code, "reason": reason}
        if retry_after_s is not None:  # rate_limited: when the frame would pass (docs/PROTOCOL-ADDITIONS.md)
            err["retry_after_s"] = round(retry_after_s, 3)
        if req_id is not None:
            err["id"] = req_id
        self.send_frame(event_frame(err))

    def is_open(self) -> bool:
        """Whether frames can still be sent (the socket is neither closed nor closing)."""
        conn = self.ws_connection
        return conn is not None and not conn.is_closing()

    # -- close -----------------------------------------------------------------------------
    def on_close(self) -> None:
        self.deps.sockets.discard(self)
        if self._auth_timer is not None:
            self._auth_timer.cancel()
        if self.actor is None:
            return
        left, gone = self.deps.registry.remove(self)
        self.deps.dispatcher.closed(self, left, gone)
        self.log.info("disconnected (code %s)", self.close_code)


def _readable_id(raw: str | bytes) -> str | None:
    """The id of a frame rejected as a whole (NUL, lone surrogate, ...) when it is itself a
    valid id: a plain string of at most 64 characters."""
    if not isinstance(raw, str):
        return None
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    rid = obj.get("id") if isinstance(obj, dict) else None
    if not isinstance(rid, str) or len(rid) > 64 or "\x00" in rid:
        return None
    try:
        rid.encode()
    except UnicodeEncodeError:
        return None
    return rid
