"""One heartbeat timer for every socket of the process.

Tornado's own ``websocket_ping_interval`` runs a ping coroutine per connection (~2 KB each);
one process-wide timer that walks the socket set does the same job for a few bytes per socket.
Every socket silent for ``interval`` seconds is pinged; one that has not answered a ping (or
sent anything) within ``timeout`` seconds is closed.
"""
from __future__ import annotations

import time
from typing import Callable, Iterable

from tornado.ioloop import PeriodicCallback


class Heartbeat:
    def __init__(self, sockets: Callable[[], Iterable], interval_s: float, timeout_s: float):
        self.sockets, self.interval_s, self.timeout_s = sockets, interval_s, timeout_s
        self._timer: PeriodicCallback | None = None

    def ensure_started(self) -> None:
        if self._timer is None and self.interval_s > 0:
            tick_s = min(5.0, max(0.1, min(self.interval_s, self.timeout_s) / 4))
            self._timer = PeriodicCallback(self.tick, tick_s * 1000)
            self._timer.start()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def tick(self) -> None:
        now = time.monotonic()
        for sock in tuple(self.sockets()):
            sock.heartbeat(now, self.interval_s, self.timeout_s)
