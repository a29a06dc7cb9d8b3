"""Floor row of the fan-out benchmark: a bare Tornado WebSocket, no persistence, no checks.

    python bench/fanout/tornado_floor.py PORT

A plain ``tornado.websocket.WebSocketHandler`` speaking just enough of Podium's envelope for
harness.js (``hello`` on open, ``room.join`` acked and remembered in a room set), with the same
ping settings Podium uses (25 s interval, 20 s timeout). No authentication, no database, no
logging: what every Tornado WebSocket costs before Podium adds anything (scenario 3's memory
floor).

``message.send`` (scenarios 1 and 2, the throughput floor): the message.new envelope is
serialized once and its WebSocket frame (header + payload, unmasked server frame) built once,
then the same bytes are written to every room member's IOStream except the sender's, and the
sender gets an ack. That is the least a Python/Tornado server can do per delivery.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import os
import struct
import sys
import time

import tornado.iostream
import tornado.web
import tornado.websocket

ROOMS: dict[str, set] = {}
IDS = itertools.count(1)
SEQS: dict[str, int] = {}


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


class Sock(tornado.websocket.WebSocketHandler):
    def check_origin(self, origin: str) -> bool:
        return True

    def open(self) -> None:
        self.rooms: set[str] = set()
        self.write_message('{"type":"hello"}')

    def on_message(self, raw) -> None:
        msg = json.loads(raw)
        if msg.get("type") == "room.join":
            room = str(msg.get("room"))
            ROOMS.setdefault(room, set()).add(self)
            self.rooms.add(room)
            self.write_message(json.dumps({"type": "ack", "id": msg.get("id"), "data": {}}))
        elif msg.get("type") == "message.send":
            room = str(msg.get("room"))
            seq = SEQS[room] = SEQS.get(room, 0) + 1
            m = {"id": str(next(IDS)), "room": room, "seq": seq,
                 "sender": {"id": str(id(self)), "display_name": "Bench Publisher"}, "kind": "text",
                 "content": msg.get("content"), "file_id": None, "reply_to": None,
                 "client_msg_id": msg.get("client_msg_id"), "created_at": iso_now(), "edited_at": None,
                 "deleted_at": None, "reactions": {}}
            data = frame(json.dumps({"type": "message.new", "message": m}, separators=(",", ":")).encode())
            for ws in ROOMS.get(room, ()):
                if ws is not self and ws.ws_connection is not None and not ws.ws_connection.is_closing():
                    try:
                        ws.ws_connection.stream.write(data)
                    except tornado.iostream.StreamClosedError:
                        pass
            self.write_message(json.dumps({"type": "ack", "id": msg.get("id"), "data": {"message": m}}))

    def on_close(self) -> None:
        for room in self.rooms:
            ROOMS.get(room, set()).discard(self)


async def main(port: int) -> None:
    # BENCH_FLOOR_PING=0 turns the per-connection ping task off, to see what it costs.
    ping = float(os.environ.get("BENCH_FLOOR_PING", "25")) or None
    app = tornado.web.Application([(r"/ws", Sock)], websocket_ping_interval=ping,
                                  websocket_ping_timeout=20 if ping else None)
    app.listen(port, "127.0.0.1")
    print(f"listening {port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
