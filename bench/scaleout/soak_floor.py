"""Floors of the soak (issue 18.3): a bare Tornado WebSocket server for the soak's traffic.

    python bench/scaleout/soak_floor.py PORT [POSTGRES_DSN]

``run.py soak --server floor`` starts it instead of ``python -m server serve`` (one process,
``--procs 1``: without a database it has no bus between processes); ``--server floor-pg``
passes the bench database and, unless ``--no-bus``, Redis (then ``--procs 2`` works, as the
soak runs Podium). It speaks just enough of Podium's protocol for harness.js's soak and does
what any Python/Tornado chat server must do for that traffic, and nothing more: no
authentication, no rate limits, no logging.

- ``hello`` on open; ``room.join`` acked and remembered;
- ``message.send``: the room's next seq from a counter, the ``message.new`` frame serialized
  and framed once and written to every member (the sender too, as Podium does), then the ack;
- ``typing``: relayed to the other members when it changes what they see, by the rule Podium
  uses (server/chat/typing.py: a message ends its sender's typing, so the ``active:false``
  after a send is not relayed), so both deliver the same frames;
- writes as Podium's ``send_frame`` does: straight to the socket when nothing is queued;
- Tornado's own pings (25 s interval, 20 s timeout) and its own frame reader;
- ``/healthz`` and an empty ``/metrics`` for run.py;
- with ``POSTGRES_DSN`` (``run.py soak --server floor-pg``): each message is stored before it
  is broadcast and acked, as Podium must (ARCHITECTURE principle 1: SQL is the log) — one
  prepared statement on one kept asyncpg connection bumps the room's seq and inserts the row
  (tables of its own), and the seq is the database's; with ``REDIS_URL`` as well, every
  ``message.new`` and typing frame is also published on one Redis channel (``CLIENT REPLY
  OFF``, as Podium's bus) and the other processes deliver it to their members, ``message.new``
  in seq order. Nothing else: no authentication, no rate limits, no dedupe, no catch-up after
  a lost notice — the least a scaled-out server that persists every message pays;
- the event loop Podium runs on: ``EVENT_LOOP`` (default uvloop, as Podium's), through
  ``server/event_loop.py``, so the floor and Podium are configured alike.

The frame, the message and the room sets are ``bench/ws_floor.py``'s, shared with the fan-out's
floor (``bench/fanout/tornado_floor.py``).
"""
from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
from pathlib import Path

import tornado.iostream
import tornado.web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/, for the shared ws_floor module
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for server.event_loop
from server import event_loop  # noqa: E402
from server.realtime import resp  # noqa: E402  (Podium's RESP encoder and parser: the least a bus needs)
from ws_floor import ROOMS, SEQS, FloorSocket, frame, listen, new_message  # noqa: E402

TYPING: set[tuple[str, int]] = set()
USERS = itertools.count(1 + os.getpid() * 100_000)  # sender ids distinct across processes
STORE: list = []  # [asyncpg connection, asyncio.Lock] with POSTGRES_DSN
# The room's seq bumped and the message inserted in one statement (Podium's is one too).
STORE_SQL = ("WITH r AS (INSERT INTO floor_rooms (room, last_seq) VALUES ($1, 1) ON CONFLICT (room) "
             "DO UPDATE SET last_seq = floor_rooms.last_seq + 1 RETURNING last_seq) "
             "INSERT INTO floor_messages (room, seq, sender, content, client_msg_id) "
             "SELECT $1, last_seq, $2, $3, $4 FROM r RETURNING seq")


async def open_store(dsn: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)  # run.py starts the processes one after the other
    await conn.execute("CREATE TABLE IF NOT EXISTS floor_rooms (room text PRIMARY KEY, last_seq int NOT NULL); "
                       "CREATE TABLE IF NOT EXISTS floor_messages (room text, seq int, sender text, content text, "
                       "client_msg_id text, created_at timestamptz DEFAULT now(), PRIMARY KEY (room, seq))")
    STORE.extend((conn, asyncio.Lock()))


async def store(room: str, sender: str, msg: dict) -> int:
    """The message stored; its seq."""
    conn, lock = STORE
    async with lock:  # one statement at a time on the kept connection
        return await conn.fetchval(STORE_SQL, room, sender, msg.get("content"), msg.get("client_msg_id"))


# --- the bus (REDIS_URL): every frame published for the other processes ----------------------
ORIGIN = os.urandom(4).hex().encode()  # 8 bytes that start every notice this process publishes
BUS: list = []  # [the publishing transport, the channel]
NEXT: dict[str, int] = {}  # room -> the next seq to deliver here
HELD: dict[str, dict[int, bytes]] = {}  # room -> seq -> frame that came before its predecessor


class _Subscription(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = resp.Parser()

    def data_received(self, data: bytes) -> None:
        self.parser.feed(data)
        for r in self.parser.replies():
            if type(r) is list and len(r) == 3 and r[0] == b"message":
                on_notice(r[2])


async def open_bus(url: str, prefix: str) -> None:
    """A subscription and a publishing connection without replies (as Podium's bus)."""
    addr = resp.parse_url(url)
    loop = asyncio.get_running_loop()
    channel = f"{prefix}:floor"
    sub_t, _ = await loop.create_connection(_Subscription, addr.host, addr.port)
    sub_t.write(resp.encode("SUBSCRIBE", channel))
    pub_t, _ = await loop.create_connection(asyncio.Protocol, addr.host, addr.port)
    pub_t.write(resp.encode("CLIENT", "REPLY", "OFF"))
    BUS.extend((pub_t, channel))
    await asyncio.sleep(0.2)  # the SUBSCRIBE answered before any traffic


def publish(kind: bytes, head: str, data: bytes) -> None:
    if BUS:
        pub_t, channel = BUS
        pub_t.write(resp.encode("PUBLISH", channel, ORIGIN + kind + head.encode() + b"\n" + data))


def on_notice(data: bytes) -> None:
    if data.startswith(ORIGIN):
        return  # our own: delivered here already
    kind = data[8:9]
    head, _, data = data[9:].partition(b"\n")
    if kind == b"m":
        room, seq = head.decode().split(" ")
        deliver(room, int(seq), data)
    else:
        to_room(head.decode(), data)


def deliver(room: str, seq: int, data: bytes) -> None:
    """``message.new`` number ``seq`` to the room's sockets here, in seq order: with two
    processes a later seq can arrive over the bus before this process's own earlier one."""
    nxt = NEXT.get(room, 1)
    if seq != nxt:
        if seq > nxt:
            HELD.setdefault(room, {})[seq] = data
        return
    to_room(room, data)
    held = HELD.get(room)
    while held and nxt + 1 in held:
        nxt += 1
        to_room(room, held.pop(nxt))
    NEXT[room] = nxt + 1
    SEQS[room] = nxt


def to_room(room: str, data: bytes, skip=None) -> None:
    for ws in tuple(ROOMS.get(room, ())):
        if ws is not skip:
            ws.send(data)


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

    async def on_message(self, raw) -> None:
        msg = json.loads(raw)
        kind, rid = msg.get("type"), msg.get("id")
        room = str(msg.get("room"))
        if kind == "room.join":
            self.join(room)
            self.send(encode({"type": "ack", "id": rid, "data": {"last_seq": SEQS.get(room, 0)}}))
        elif kind == "message.send":
            m = new_message(room, str(self.uid), "Soak", msg)
            TYPING.discard((room, self.uid))
            if STORE:  # the seq is the database's
                m["seq"] = await store(room, m["sender"]["id"], msg)
            data = encode({"type": "message.new", "message": m})
            if STORE:
                publish(b"m", f"{room} {m['seq']}", data)
                deliver(room, m["seq"], data)
            else:
                to_room(room, data)
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
            data = encode({"type": "typing", "room": room, "user_id": str(self.uid), "active": active})
            publish(b"t", room, data)
            to_room(room, data, skip=self)
        elif rid is not None:
            self.send(encode({"type": "ack", "id": rid, "data": {}}))


class Health(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write("ok")


class Metrics(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain")
        self.write("")


async def main(port: int, dsn: str | None) -> None:
    if dsn:
        await open_store(dsn)
        if os.environ.get("REDIS_URL"):
            await open_bus(os.environ["REDIS_URL"], os.environ.get("REDIS_PREFIX", "podium"))
    listen([(r"/ws", Sock), (r"/healthz", Health), (r"/metrics", Metrics)], port,
           ping_interval=25, ping_timeout=20)
    await asyncio.Event().wait()


if __name__ == "__main__":
    event_loop.run(main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None), os.environ.get("EVENT_LOOP", "uvloop"))
