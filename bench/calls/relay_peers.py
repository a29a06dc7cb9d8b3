"""Peers for the signaling-relay benchmark: the same relay with none of Podium's checks or
storage, on two stacks.

    python bench/calls/relay_peers.py floor PORT   # bare Tornado WebSocketHandler, Podium envelope
    python bench/calls/relay_peers.py sio PORT     # python-socketio AsyncServer on Tornado

Both implement, per PROTOCOL §2.2 shapes: ``call.start {room}`` → ``{session: {id: room}}``,
``call.join {session}`` → ``{peer_id, participants}``, and ``rtc.offer`` / ``rtc.answer`` /
``rtc.ice`` relayed to ``to`` as ``{session, from, sdp|candidate, negotiation_id}`` when sender
and target are both in that session (``forbidden`` otherwise). No authentication, database,
rate limit or outgoing-queue bound: a floor, not a competitor.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import sys

import tornado.web
import tornado.websocket

SESSIONS: dict[str, set[str]] = {}  # session id -> peer ids


def relay_event(kind: str, session: str, sender: str, msg: dict) -> dict:
    ev = {"type": kind, "session": session, "from": sender, "negotiation_id": msg.get("negotiation_id")}
    if kind == "rtc.ice":
        ev["candidate"] = msg.get("candidate")
    else:
        ev["sdp"] = msg.get("sdp")
    return ev


# -- bare Tornado ---------------------------------------------------------------------------------
_ids = itertools.count(1)
PEERS: dict[str, "FloorSocket"] = {}


class FloorSocket(tornado.websocket.WebSocketHandler):
    def check_origin(self, origin: str) -> bool:
        return True

    def open(self) -> None:
        self.set_nodelay(True)  # a floor: small frames are not held back by Nagle's algorithm
        self.peer_id = f"p{next(_ids)}"
        self.sessions: set[str] = set()
        PEERS[self.peer_id] = self
        self.write_message(json.dumps({"type": "hello", "connection_id": self.peer_id}))

    def on_message(self, raw: str) -> None:
        msg = json.loads(raw)
        kind, rid = msg.get("type"), msg.get("id")
        reply: dict | None = {}
        if kind == "call.start":
            reply = {"session": {"id": str(msg["room"])}}
        elif kind == "call.join":
            sid = str(msg["session"])
            members = SESSIONS.setdefault(sid, set())
            reply = {"peer_id": self.peer_id, "participants": [{"peer_id": p} for p in members]}
            members.add(self.peer_id)
            self.sessions.add(sid)
        elif kind in ("rtc.offer", "rtc.answer", "rtc.ice"):
            sid, to = str(msg.get("session")), msg.get("to")
            members = SESSIONS.get(sid, ())
            if self.peer_id not in members or to not in members:
                reply = None
            else:
                PEERS[to].write_message(json.dumps(relay_event(kind, sid, self.peer_id, msg)))
        if rid is not None:
            if reply is None:
                self.write_message(json.dumps({"type": "error", "id": rid, "code": "forbidden"}))
            else:
                self.write_message(json.dumps({"type": "ack", "id": rid, "data": reply}))

    def on_close(self) -> None:
        PEERS.pop(self.peer_id, None)
        for sid in self.sessions:
            SESSIONS.get(sid, set()).discard(self.peer_id)


# -- python-socketio ------------------------------------------------------------------------------
def sio_app():
    import socketio

    sio = socketio.AsyncServer(async_mode="tornado", cors_allowed_origins=[], logger=False, engineio_logger=False)
    where: dict[str, set[str]] = {}

    @sio.on("call.start")
    async def start(sid, data):
        return {"session": {"id": str(data["room"])}}

    @sio.on("call.join")
    async def join(sid, data):
        s = str(data["session"])
        members = SESSIONS.setdefault(s, set())
        reply = {"peer_id": sid, "participants": [{"peer_id": p} for p in members]}
        members.add(sid)
        where.setdefault(sid, set()).add(s)
        return reply

    def relay(kind: str):
        async def handler(sid, data):
            s, to = str(data.get("session")), data.get("to")
            members = SESSIONS.get(s, ())
            if sid not in members or to not in members:
                return {"error": "forbidden"}
            await sio.emit(kind, relay_event(kind, s, sid, data), to=to)
            return {}
        return handler

    for kind in ("rtc.offer", "rtc.answer", "rtc.ice"):
        sio.on(kind, relay(kind))

    @sio.event
    async def disconnect(sid, *args):
        for s in where.pop(sid, ()):
            SESSIONS.get(s, set()).discard(sid)

    return tornado.web.Application([(r"/socket.io/", socketio.get_tornado_handler(sio))])


async def main(kind: str, port: int) -> None:
    app = sio_app() if kind == "sio" else tornado.web.Application([(r"/ws", FloorSocket)])
    app.listen(port, "127.0.0.1")
    print(f"listening {port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
