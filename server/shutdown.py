"""Graceful stop (ARCHITECTURE principle 7): stop accepting, let in-flight frames finish,
close sockets with 1001 spread over a few seconds, exit well inside Heroku's 30 s."""
from __future__ import annotations

import asyncio
import logging
import time

from tornado.httpserver import HTTPServer

from server.deps import Deps
from server.realtime.close_codes import CLOSE_GOING_AWAY

log = logging.getLogger("podium.shutdown")

BUSY_GRACE_S = 2.0  # how long past the spread a close still waits for a frame being handled


def _busy_http(server: HTTPServer) -> int:
    """HTTP connections with a request being handled or a response still being written.

    An idle keep-alive connection is waiting to read its next request; upgraded WebSocket
    connections have already left ``_connections`` (the set ``close_all_connections`` uses).
    """
    return sum(1 for c in tuple(getattr(server, "_connections", ()))
               if not c.stream.closed() and (c.stream.writing() or not c.stream.reading()))


async def drain(deps: Deps, server: HTTPServer, deadline_s: float = 20.0) -> None:
    start = time.monotonic()
    deps.shutting_down = True
    server.stop()  # no new connections
    sockets = list(deps.sockets)
    log.info("shutting down: closing %d sockets over %.1f s", len(sockets), deps.config.shutdown_spread_s)
    spread = deps.config.shutdown_spread_s
    # In-flight frames get one shared grace period, not one per socket: with a stalled
    # database every socket is busy, and N sequential waits would blow the 25 s budget.
    busy_until = start + spread + BUSY_GRACE_S
    for i, sock in enumerate(sockets):
        # Spread the closes so thousands of clients do not reconnect to the next process at once.
        target = start + spread * i / max(1, len(sockets))
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        # Let a frame being handled (e.g. a message being committed) finish and ack first.
        while sock.busy and time.monotonic() < busy_until:
            await asyncio.sleep(0.02)
        sock.close(CLOSE_GOING_AWAY, "server shutting down")
    # Wait for clients to answer the close handshakes, bounded.
    while deps.sockets and time.monotonic() - start < deadline_s:
        await asyncio.sleep(0.05)
    # Let HTTP requests already being handled finish and flush their responses (bounded);
    # closing their streams now would cut them off after they may have committed.
    while _busy_http(server) and time.monotonic() - start < deadline_s:
        await asyncio.sleep(0.02)
    try:
        await asyncio.wait_for(server.close_all_connections(), timeout=max(1.0, deadline_s - (time.monotonic() - start)))
    except asyncio.TimeoutError:
        log.warning("some HTTP connections did not close in time")
    await deps.close()
    log.info("stopped in %.1f s", time.monotonic() - start)
