"""What the benchmarks' bare Tornado WebSocket floors share (``fanout/tornado_floor.py``,
``scaleout/soak_floor.py``): Podium's envelope at its least, with no authentication, no
database and no logging.

Each floor is its own process, so the room state is this module's: ``ROOMS`` (room -> its
sockets), ``SEQS`` (room -> last seq) and ``IDS`` (message ids).
"""
from __future__ import annotations

import itertools
import struct
import time

import tornado.web
import tornado.websocket

ROOMS: dict[str, set] = {}
SEQS: dict[str, int] = {}
IDS = itertools.count(1)


def frame(payload: bytes) -> bytes:
    """One unfragmented, unmasked text frame (RFC 6455 §5.2) carrying ``payload``."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x81, n)
    elif n <= 0xFFFF:
        head = struct.pack("!BBH", 0x81, 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 127, n)
    return head + payload


def iso_now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def new_message(room: str, sender_id: str, display_name: str, msg: dict) -> dict:
    """The ``message.new`` message for ``msg`` (a ``message.send`` frame) with the room's next
    seq, shaped as Podium's (server/chat)."""
    seq = SEQS[room] = SEQS.get(room, 0) + 1
    return {"id": str(next(IDS)), "room": room, "seq": seq,
            "sender": {"id": sender_id, "display_name": display_name}, "kind": "text",
            "content": msg.get("content"), "file_id": None, "reply_to": None,
            "client_msg_id": msg.get("client_msg_id"), "created_at": iso_now(), "edited_at": None,
            "deleted_at": None, "reactions": {}}


class FloorSocket(tornado.websocket.WebSocketHandler):
    """A socket that accepts any origin and is in the rooms it joined until it closes."""

    def check_origin(self, origin: str) -> bool:
        return True

    def open(self) -> None:
        self.rooms: set[str] = set()

    def join(self, room: str) -> None:
        ROOMS.setdefault(room, set()).add(self)
        self.rooms.add(room)

    def on_close(self) -> None:
        for room in self.rooms:
            ROOMS.get(room, set()).discard(self)


def listen(handlers: list, port: int, *, ping_interval: float | None,
           ping_timeout: float | None) -> tornado.web.Application:
    """The application on 127.0.0.1:``port`` with Tornado's own WebSocket pings."""
    app = tornado.web.Application(handlers, websocket_ping_interval=ping_interval,
                                  websocket_ping_timeout=ping_timeout)
    app.listen(port, "127.0.0.1")
    return app
