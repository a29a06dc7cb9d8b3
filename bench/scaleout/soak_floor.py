"""Floor of the soak (issue 18.3): a bare Tornado WebSocket server for the soak's traffic.

    python bench/scaleout/soak_floor.py PORT

``run.py soak --server floor`` starts it instead of ``python -m server serve`` (one process:
``--procs 1``; it has no bus between processes). It speaks just enough of Podium's protocol
for harness.js's soak and does what any Python/Tornado chat server must do for that traffic,
and nothing more: no authentication, no database, no rate limits, no logging.

- ``hello`` on open; ``room.join`` acked and remembered;
- ``message.send``: the room's next seq from a counter, the ``message.new`` frame serialized
  and framed once and written to every member (the sender too, as Podium does), then the ack;
- ``typing``: relayed to the other members when it changes what they see, by the rule Podium
  uses (server/chat/typing.py: a message ends its sender's typing, so the ``active:false``
  after a send is not relayed), so both deliver the same frames;
- writes as Podium's ``send_frame`` does: straight to the socket when nothing is queued;
- Tornado's own pings (25 s interval, 20 s timeout) and its own frame reader;
- ``/healthz`` and an empty ``/metrics`` for run.py.

The frame, the message and the room sets are ``bench/ws_floor.py``'s, shared with the fan-out's
floor (``bench/fanout/tornado_floor.py``).
"""
from __future__ import annotations

import asyncio
import itertools
import json
import sys
from pathlib import Path

import tornado.iostream
import tornado.web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/, for the shared ws_floor module
from ws_floor import ROOMS, SEQS, FloorSocket, frame, listen, new_message  # noqa: E402

TYPING: set[tuple[str, int]] = set()
USERS = itertools.count(1)


def encode(obj: dict) -> bytes:
    return frame(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode())


class Sock(FloorSocket):
    def get_compression_options(self) -> None:
        return None

    def open(self) -> None:
        super().open()
        self.uid = next(USERS)
        self.set_nodelay(True)
        self.send(encode({"type": "hello", "user": {"id": str(self.uid)}}))

    def send(self, data: bytes) -> None:
        conn = self.ws_connection
        if conn is None or conn.is_closing():
            return
        stream = conn.stream
        if stream._total_write_index == stream._total_write_done_index:  # nothing queued
            try:
                sent = stream.socket.send(data)
            except OSError:
                sent = 0
            if sent == len(data):
                return
            data = memoryview(data)[sent:]
        try:
            stream.write(data)
        except tornado.iostream.StreamClosedError:
            pass

    def to_room(self, room: str, data: bytes, skip=None) -> None:
        for ws in tuple(ROOMS.get(room, ())):
            if ws is not skip:
                ws.send(data)

    def on_message(self, raw) -> None:
        msg = json.loads(raw)
        kind, rid = msg.get("type"), msg.get("id")
        room = str(msg.get("room"))
        if kind == "room.join":
            self.join(room)
            self.send(encode({"type": "ack", "id": rid, "data": {"last_seq": SEQS.get(room, 0)}}))
        elif kind == "message.send":
            m = new_message(room, str(self.uid), "Soak", msg)
            TYPING.discard((room, self.uid))
            self.to_room(room, encode({"type": "message.new", "message": m}))
            if rid is not None:
                self.send(encode({"type": "ack", "id": rid, "data": {"message": m}}))
        elif kind == "typing":
            key, active = (room, self.uid), msg.get("active", True)
            if active == (key in TYPING):
                return
            if active:
                TYPING.add(key)
            else:
                TYPING.discard(key)
            self.to_room(room, encode({"type": "typing", "room": room, "user_id": str(self.uid), "active": active}),
                         skip=self)
        elif rid is not None:
            self.send(encode({"type": "ack", "id": rid, "data": {}}))


class Health(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write("ok")


class Metrics(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain")
        self.write("")


async def main(port: int) -> None:
    listen([(r"/ws", Sock), (r"/healthz", Health), (r"/metrics", Metrics)], port,
           ping_interval=25, ping_timeout=20)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
