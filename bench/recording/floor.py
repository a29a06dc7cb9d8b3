"""The control for the web-process lag probe: a bare Tornado WebSocket server on the same
machine, pinged at the same instants as Podium.

    python bench/recording/floor.py PORT

It sends ``{"type": "hello"}`` on open (what the probe waits for), sets ``TCP_NODELAY`` like
Podium's sockets (without it every pong waits for the probe's next ping to ACK the previous
one: Nagle's algorithm), and does nothing else: no auth, no database, no server pings. What
its round trips show is the machine (CPU contention, scheduling), not an application.
"""
from __future__ import annotations

import asyncio
import sys

import tornado.web
import tornado.websocket


class Sock(tornado.websocket.WebSocketHandler):
    def check_origin(self, origin: str) -> bool:
        return True

    def open(self) -> None:
        self.set_nodelay(True)
        self.write_message('{"type":"hello"}')

    def on_message(self, message) -> None:
        pass


async def main(port: int) -> None:
    tornado.web.Application([(r"/ws", Sock)]).listen(port, "127.0.0.1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
