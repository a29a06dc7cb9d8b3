"""Event-loop lag of running web processes, seen from outside: one idle ``/ws`` socket per
target sends a WebSocket ping every ``--interval`` seconds (fixed rate, not waiting for answers)
and times each pong. Tornado answers a ping on the server's event loop as soon as it reads the
frame, with no application code, so the round trip is loopback latency plus however long the
loop was busy with something else, plus the time the process waited for a CPU. Pinging a bare
Tornado server (the control) at the same instants from the same loop tells the two apart: what
the control also shows is the machine's, not the web process's.

    python bench/recording/lagprobe.py OUT.json WS_URL [WS_URL ...] [--interval 0.02]

Each URL carries its own ``?token=``. Prints ``{"ready": ...}`` once every socket got its
``hello``; on ``{"cmd": "quit"}`` (or stdin EOF) writes every sample to OUT.json as
``[[sent_monotonic, rtt_ms, target_index], ...]`` (``time.monotonic`` is the same clock in every
process, so the driver splits the samples by its phase marks) and exits. A ping with no pong
after 5 s counts as a 5,000 ms sample.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from tornado.websocket import websocket_connect

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from procs import Control  # noqa: E402

LOST_MS = 5000.0


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("urls", nargs="+")
    p.add_argument("--interval", type=float, default=0.02)
    p.add_argument("--max-s", type=float, default=1800)
    args = p.parse_args()
    ctl = Control()
    await ctl.start()
    conns = []
    for url in args.urls:
        conn = await websocket_connect(url, ping_interval=None)
        # Podium pings a socket that sent no message for 25 s (pings do not count); our pong to
        # it would then hold back our next ping for the server's delayed ACK (~40 ms, Nagle).
        conn.protocol.stream.set_nodelay(True)
        hello = json.loads(await asyncio.wait_for(conn.read_message(), 10))
        if hello.get("type") != "hello":
            ctl.emit({"error": f"{url.split('?')[0]}: expected hello, got {hello}"})
            return
        conns.append(conn)
    pending: dict[tuple[int, int], float] = {}
    samples: list[tuple[float, float, int]] = []

    def on_pong(target: int, data: bytes) -> None:
        sent = pending.pop((target, int(data or b"-1")), None)
        if sent is not None:
            samples.append((sent, (time.monotonic() - sent) * 1000, target))

    async def drain(conn) -> None:  # the servers send nothing to an idle socket, but read anyway
        while await conn.read_message() is not None:
            pass

    async def pinger() -> None:
        n = 0
        start = time.monotonic()
        while time.monotonic() - start < args.max_s:
            due = start + n * args.interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            now = time.monotonic()
            for target, conn in enumerate(conns):
                pending[(target, n)] = now
                conn.ping(str(n).encode())
            n += 1
            for key, sent in list(pending.items()):
                if now - sent > LOST_MS / 1000:
                    samples.append((sent, LOST_MS, key[0]))
                    del pending[key]

    for target, conn in enumerate(conns):
        conn.on_pong = lambda data, target=target: on_pong(target, data)  # tornado calls it per pong
    tasks = [asyncio.ensure_future(drain(c)) for c in conns] + [asyncio.ensure_future(pinger())]
    ctl.emit({"ready": {"t": time.monotonic()}})
    try:
        while True:
            msg = await ctl.next()
            if msg is None or msg.get("cmd") == "quit":
                break
    finally:
        for t in tasks:
            t.cancel()
        for conn in conns:
            conn.close()
        Path(args.out).write_text(json.dumps(sorted(samples)))
        ctl.emit({"done": len(samples)})


if __name__ == "__main__":
    asyncio.run(main())
