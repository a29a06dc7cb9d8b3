"""Reference for scenario 3 only: the memory floor of a bare Tornado WebSocket.

    python bench/fanout/tornado_floor.py PORT

A plain ``tornado.websocket.WebSocketHandler`` speaking just enough of Podium's envelope for
harness.js (``hello`` on open, ``room.join`` acked and remembered in a room set), with the same
ping settings Podium uses (25 s interval, 20 s timeout). No authentication, no database, no
logging: what every Tornado WebSocket costs before Podium adds anything.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys

import tornado.web
import tornado.websocket

ROOMS: dict[str, set] = {}


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
