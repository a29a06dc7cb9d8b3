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

The frame, the message and the room sets are ``bench/ws_floor.py``'s, shared with the soak's
floor (``bench/scaleout/soak_floor.py``).
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import tornado.iostream

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/, for the shared ws_floor module
from ws_floor import ROOMS, FloorSocket, frame, listen, new_message  # noqa: E402


class Sock(FloorSocket):
    def open(self) -> None:
        super().open()
        self.write_message('{"type":"hello"}')

    def on_message(self, raw) -> None:
        msg = json.loads(raw)
        if msg.get("type") == "room.join":
            self.join(str(msg.get("room")))
            self.write_message(json.dumps({"type": "ack", "id": msg.get("id"), "data": {}}))
        elif msg.get("type") == "message.send":
            room = str(msg.get("room"))
            m = new_message(room, str(id(self)), "Bench Publisher", msg)
            data = frame(json.dumps({"type": "message.new", "message": m}, separators=(",", ":")).encode())
            for ws in ROOMS.get(room, ()):
                if ws is not self and ws.ws_connection is not None and not ws.ws_connection.is_closing():
                    try:
                        ws.ws_connection.stream.write(data)
                    except tornado.iostream.StreamClosedError:
                        pass
            self.write_message(json.dumps({"type": "ack", "id": msg.get("id"), "data": {"message": m}}))


async def main(port: int) -> None:
    # BENCH_FLOOR_PING=0 turns the per-connection ping task off, to see what it costs.
    ping = float(os.environ.get("BENCH_FLOOR_PING", "25")) or None
    listen([(r"/ws", Sock)], port, ping_interval=ping, ping_timeout=20 if ping else None)
    print(f"listening {port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
