"""Peer for the fan-out benchmark: python-socketio's AsyncServer on Tornado.

    python bench/fanout/pysio_server.py PORT

Same room broadcast as Podium, without persistence or authentication: ``join`` puts the
socket in a room; ``message.send`` builds a message object shaped like Podium's, broadcasts
``message.new`` to the room (the sender is not in it) and acks ``{message}``.
"""
from __future__ import annotations

import asyncio
import itertools
import sys
from datetime import datetime, timezone

import socketio
import tornado.web


def iso_now() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


async def main(port: int) -> None:
    sio = socketio.AsyncServer(async_mode="tornado", cors_allowed_origins=[], logger=False,
                               engineio_logger=False)
    ids = itertools.count(1)
    seqs: dict[str, int] = {}

    @sio.event
    async def join(sid, room):
        await sio.enter_room(sid, str(room))
        return {"room": str(room)}

    @sio.on("message.send")
    async def send(sid, data):
        room = str(data["room"])
        seq = seqs[room] = seqs.get(room, 0) + 1
        msg = {"id": str(next(ids)), "room": room, "seq": seq,
               "sender": {"id": sid, "display_name": "Bench Publisher"}, "kind": "text",
               "content": data["content"], "file_id": None, "reply_to": None,
               "client_msg_id": data["client_msg_id"], "created_at": iso_now(), "edited_at": None,
               "deleted_at": None, "reactions": {}}
        await sio.emit("message.new", {"message": msg}, room=room, skip_sid=sid)
        return {"message": msg}

    app = tornado.web.Application([(r"/socket.io/", socketio.get_tornado_handler(sio))])
    app.listen(port, "127.0.0.1")
    print(f"listening {port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
