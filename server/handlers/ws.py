"""``GET /ws``: one socket per browser tab (PROTOCOL §2).

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
from typing import Any, Awaitable, Callable

import tornado.httputil
import tornado.websocket
from tornado.iostream import SSLIOStream, StreamClosedError

from server.kernel.clock import iso, utcnow
from server.kernel.jsonbody import decode_json_object
from server.calls import session_wire
from server.kernel.actor import Actor, parse_id
from server.deps import Deps
from server.kernel.errors import BadRequest, PodiumError, RateLimited, Unauthorized
from server.handlers.base import origin_allowed
from server.kernel.frames import event_frame

log = logging.getLogger("podium.ws")

_NO_HEADERS = tornado.httputil.HTTPHeaders()
_NO_ARGS: dict = {}

CLOSE_GOING_AWAY = 1001
CLOSE_UNAUTHORIZED = 4401
CLOSE_SLOW_CONSUMER = 4008
CLOSE_RATE_LIMITED = 4429

SIGNALS = frozenset(("rtc.offer", "rtc.answer", "rtc.ice"))

# Sends one socket may have queued but not yet stored; past this the socket stops reading
# frames until the oldest is stored (back-pressure instead of an unbounded queue).
MAX_PIPELINED_SENDS = 64

Op = Callable[["ChatSocket", dict], Awaitable[Any]]
OPS: dict[str, Op] = {}


def op(name: str) -> Callable[[Op], Op]:
    def register(fn: Op) -> Op:
        OPS[name] = fn
        return fn
    return register


class ChatSocket(tornado.websocket.WebSocketHandler):
    """An authenticated client socket; implements the registry's Connection protocol."""

    def initialize(self, deps: Deps) -> None:
        self.deps = deps
        self.connection_id = secrets.token_hex(8)
        self.actor: Actor | None = None
        self.user_id = 0
        self.rooms: set[int] = set()
        self.sessions: set[int] = set()  # live call sessions this socket is a participant of
        self.worker = None  # set by worker.register (server.recordings.Worker)
        self.busy = 0
        self._auth_timer: asyncio.TimerHandle | None = None
        self._limited_in_a_row = 0
        self.pipelined: list[asyncio.Future] = []
        self._direct = False
        self._ping_at = 0.0
        self._seen_at = time.monotonic()

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
        return origin_allowed(self.deps, origin, self.request.host)

    def get_compression_options(self) -> None:
        return None  # frames are encoded once and shared by every recipient

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
        self.user_id = actor.id
        if self.deps.registry.add(self) and self.deps.chat.presence is not None:
            self.deps.calls.spawn(self.deps.chat.presence.user_here(self.user_id))
        self.log.info("connected (%s, role %s)", user["username"], actor.role)
        hello = {"type": "hello", "user": user,
                 "connection_id": self.connection_id, "server_time": iso(utcnow()),
                 "heartbeat_s": self.deps.config.heartbeat_s}
        self.send_frame(event_frame(hello))
        if req_id is not None:
            self._reply(req_id, {"user": hello["user"], "connection_id": self.connection_id})

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
                self.close(1000, "ping timed out")
            return
        if now - max(self._ping_at, self._seen_at) >= interval:
            self._ping_at = now
            try:
                self.ping()
            except tornado.websocket.WebSocketClosedError:
                pass

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
            limiter = self.deps.signal_limiter if kind in SIGNALS else self.deps.limiter
            if not limiter.allow(self.user_id):
                self._limited_in_a_row += 1
                self.deps.stats["rate_limited"] += 1
                if self._limited_in_a_row > self.deps.config.rate_abuse_limit:
                    self.log.warning("closing: sustained rate-limit abuse")
                    self.close(CLOSE_RATE_LIMITED, "rate limit exceeded")
                    return
                raise RateLimited("slow down: too many frames")
            self._limited_in_a_row = 0
            handler = OPS.get(kind)
            if handler is None:
                raise BadRequest(f"unknown type {kind!r}")
            data = await handler(self, msg)
            if req_id is not None and data is not PIPELINED:
                self._reply(req_id, data if data is not None else {})
        except PodiumError as e:
            self._error(req_id, e.code, e.reason)
        except Exception:  # a bug must not kill the socket; it is logged with the traceback
            self.log.exception("internal error handling a frame")
            self._error(req_id, "internal", "internal server error")
        finally:
            self.busy -= 1

    async def pipeline(self, fut: asyncio.Future, req_id: str | None) -> None:
        """Answer ``fut`` (a queued send) when it completes, without holding up the next frame.
        Ordering holds: sends are queued in frame order and stored in queue order."""
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
                    self._reply(req_id, {"message": f.result()[0]})
            elif isinstance(err, PodiumError):
                self._error(req_id, err.code, err.reason)
            else:
                self.log.error("message store failed: %r", err)
                self._error(req_id, "internal", "internal server error")

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
        # Bytes accepted by the stream but not yet written to the kernel.
        pending = stream._total_write_index - stream._total_write_done_index
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

    def _reply(self, req_id: str, data: dict) -> None:
        self.send_frame(event_frame({"type": "ack", "id": req_id, "data": data}))

    def _error(self, req_id: str | None, code: str, reason: str) -> None:
        err = {"type": "error", "code": code, "reason": reason}
        if req_id is not None:
            err["id"] = req_id
        self.send_frame(event_frame(err))

    # -- close -----------------------------------------------------------------------------
    def on_close(self) -> None:
        self.deps.sockets.discard(self)
        if self._auth_timer is not None:
            self._auth_timer.cancel()
        if self.actor is None:
            return
        if self.sessions:
            self.deps.calls.spawn(self.deps.calls.socket_closed(self))
        if self.worker is not None:
            self.deps.calls.spawn(self.deps.recordings.worker_gone(self))
        left, gone = self.deps.registry.remove(self)
        self.deps.chat.user_gone(self.actor, left)
        if gone:
            if self.deps.chat.presence is not None:
                self.deps.calls.spawn(self.deps.chat.presence.user_gone(self.user_id))
            self.deps.limiter.forget(self.user_id)
            self.deps.signal_limiter.forget(self.user_id)
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


# -- operations (PROTOCOL §2.1) ---------------------------------------------------------------
def _room(msg: dict) -> int:
    return parse_id(msg.get("room"), "room")


@op("auth")
async def _auth_again(sock: ChatSocket, msg: dict) -> dict:
    raise BadRequest("already authenticated")


@op("room.join")
async def _join(sock: ChatSocket, msg: dict) -> dict:
    room_id = _room(msg)
    data = await sock.deps.chat.join(sock, sock.actor, room_id)
    # The room's live call, so a client shows "Join call" without another request.
    live = next((lv for lv in sock.deps.calls.live.values() if lv.room_id == room_id), None)
    data["live_session"] = session_wire(live.row) if live else None
    return data


@op("room.leave")
async def _leave(sock: ChatSocket, msg: dict) -> dict:
    sock.deps.chat.leave(sock, sock.actor, _room(msg))
    return {}


@op("room.sync")
async def _sync(sock: ChatSocket, msg: dict) -> dict:
    return await sock.deps.chat.sync(sock.actor, _room(msg), msg.get("since"), msg.get("limit"))


PIPELINED = object()  # an op's answer is sent later, by ChatSocket.pipeline


@op("room.changes")
async def _changes(sock: ChatSocket, msg: dict) -> dict:
    return await sock.deps.chat.changes(sock.actor, _room(msg), msg.get("since"), msg.get("upto"),
                                        msg.get("limit"))


@op("message.send")
async def _send(sock: ChatSocket, msg: dict) -> object:
    chat = sock.deps.chat
    fut = chat.writer.enqueue(chat.prepare_send(sock.actor, _room(msg), msg))
    await sock.pipeline(fut, msg.get("id"))
    return PIPELINED


@op("message.edit")
async def _edit(sock: ChatSocket, msg: dict) -> dict:
    return {"message": await sock.deps.chat.edit(sock.actor, parse_id(msg.get("message_id"), "message_id"),
                                                 msg.get("content"))}


@op("message.delete")
async def _delete(sock: ChatSocket, msg: dict) -> dict:
    return {"message": await sock.deps.chat.delete(sock.actor, parse_id(msg.get("message_id"), "message_id"))}


@op("message.react")
async def _react(sock: ChatSocket, msg: dict) -> dict:
    return await sock.deps.chat.react(sock.actor, parse_id(msg.get("message_id"), "message_id"),
                                      msg.get("emoji"), msg.get("on", True))


@op("typing")
async def _typing(sock: ChatSocket, msg: dict) -> None:
    await sock.deps.chat.typing(sock.actor, _room(msg), msg.get("active", True))


@op("read")
async def _read(sock: ChatSocket, msg: dict) -> dict:
    return await sock.deps.chat.read(sock.actor, _room(msg), msg.get("seq"))


@op("presence.list")
async def _presence_list(sock: ChatSocket, msg: dict) -> dict:
    return await sock.deps.chat.presence_list(sock.actor, _room(msg))


@op("presence.status")
async def _presence_status(sock: ChatSocket, msg: dict) -> dict:
    return await sock.deps.chat.presence_status(sock.actor, msg.get("status"))


# -- live calls (PROTOCOL §2.2) ---------------------------------------------------------------
def _session(msg: dict) -> int:
    return parse_id(msg.get("session"), "session")


@op("call.start")
async def _call_start(sock: ChatSocket, msg: dict) -> dict:
    return await sock.deps.calls.start(sock.actor, _room(msg))


@op("call.join")
async def _call_join(sock: ChatSocket, msg: dict) -> dict:
    return await sock.deps.calls.join(sock, sock.actor, _session(msg), msg.get("media"))


@op("call.leave")
async def _call_leave(sock: ChatSocket, msg: dict) -> dict:
    await sock.deps.calls.leave(sock, _session(msg))
    return {}


@op("call.end")
async def _call_end(sock: ChatSocket, msg: dict) -> dict:
    await sock.deps.calls.end(sock.actor, _session(msg))
    return {}


async def _relay(sock: ChatSocket, msg: dict) -> dict:
    await sock.deps.calls.relay(sock, msg["type"], msg)
    return {}


for _kind in SIGNALS:
    OPS[_kind] = _relay


@op("call.media")
async def _call_media(sock: ChatSocket, msg: dict) -> dict:
    return await sock.deps.calls.media(sock, msg)


@op("call.hand")
async def _call_hand(sock: ChatSocket, msg: dict) -> dict:
    return await sock.deps.calls.hand(sock, msg)


@op("call.mute")
async def _call_mute(sock: ChatSocket, msg: dict) -> dict:
    await sock.deps.calls.mute(sock.actor, msg)
    return {}


@op("call.remove")
async def _call_remove(sock: ChatSocket, msg: dict) -> dict:
    await sock.deps.calls.remove(sock.actor, msg)
    return {}


# -- recordings and media workers (PROTOCOL §2.2–§2.3, docs/RECORDING.md) --------------------
@op("recording.start")
async def _recording_start(sock: ChatSocket, msg: dict) -> dict:
    return await sock.deps.recordings.start(sock.actor, _session(msg))


@op("recording.stop")
async def _recording_stop(sock: ChatSocket, msg: dict) -> dict:
    return await sock.deps.recordings.stop(sock.actor, _session(msg))


@op("recording.mark")
async def _recording_mark(sock: ChatSocket, msg: dict) -> dict:
    return await sock.deps.recordings.mark(sock.actor, _session(msg), msg.get("label"))


@op("worker.register")
async def _worker_register(sock: ChatSocket, msg: dict) -> dict:
    return await sock.deps.recordings.register(sock, sock.actor, msg)


@op("worker.status")
async def _worker_status(sock: ChatSocket, msg: dict) -> dict:
    return await sock.deps.recordings.status(sock, msg)
