"""Micro-benchmark: what one fan-out delivery costs on each way of writing a frame in Tornado.

    .venv/bin/python bench/fanout/write_paths.py [--subs 200] [--messages 2000] [--batch 50]

Opens --subs loopback TCP connections (server ends wrapped in Tornado IOStreams with a 64 KiB
SO_SNDBUF, as Podium sets; a child process drains the client ends), then delivers --messages
ready-made ~420-byte WebSocket frames to every connection in batches of --batch (a group-commit
batch), four ways:

  iostream      ``stream.write(frame)`` per frame per socket: what Podium's send_frame does
  direct        ``sock.send(frame)`` when the stream has nothing queued, ``stream.write`` for
                the rest (partial write / EAGAIN) or when something is already queued
  coalesced     one ``stream.write(b"".join(batch frames))`` per socket per batch
  coalesced+direct  both

Prints server-side CPU microseconds per delivery (process CPU time, so a noisy machine
changes it less than wall time) and deliveries per CPU-second. Loopback only; bounded.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import socket
import time

from tornado.iostream import IOStream

FRAME_PAYLOAD = json.dumps({"type": "message.new", "message": {
    "id": "123456", "room": "1", "seq": 123456, "sender": {"id": "1", "display_name": "Bench Publisher"},
    "kind": "text", "content": "m|12345.678|" + "x" * 88, "file_id": None, "reply_to": None,
    "client_msg_id": "abcdef01-123456", "created_at": "2026-11-21T10:20:30.123Z", "edited_at": None,
    "deleted_at": None, "reactions": {}}}, separators=(",", ":")).encode()
FRAME = bytes([0x81, 126]) + len(FRAME_PAYLOAD).to_bytes(2, "big") + FRAME_PAYLOAD


def drain(fds: list[int]) -> None:
    """Child process: read every client end until all are closed."""
    ep = select.epoll()
    for fd in fds:
        ep.register(fd, select.EPOLLIN)
    open_fds = set(fds)
    deadline = time.monotonic() + 600
    while open_fds and time.monotonic() < deadline:
        for fd, _ in ep.poll(1.0):
            try:
                data = os.read(fd, 1 << 20)
            except BlockingIOError:
                continue
            if not data:
                ep.unregister(fd)
                open_fds.discard(fd)
    os._exit(0)


def pairs(n: int) -> tuple[list[socket.socket], list[socket.socket]]:
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(n)
    clients, servers = [], []
    for _ in range(n):
        c = socket.create_connection(lst.getsockname())
        s, _ = lst.accept()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        clients.append(c)
        servers.append(s)
    lst.close()
    return clients, servers


async def run(mode: str, n: int, messages: int, batch: int) -> dict:
    clients, servers = pairs(n)
    pid = os.fork()
    if pid == 0:
        for s in servers:
            s.close()
        drain([c.fileno() for c in clients])
    for c in clients:
        c.close()
    streams = [IOStream(s) for s in servers]
    direct = "direct" in mode
    coalesced = mode.startswith("coalesced")

    def send(stream: IOStream, data: bytes) -> None:
        if direct and stream._total_write_index == stream._total_write_done_index:
            try:
                sent = stream.socket.send(data)
            except BlockingIOError:
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        stream.write(data)

    cpu0, t0 = time.process_time(), time.monotonic()
    for start in range(0, messages, batch):
        k = min(batch, messages - start)
        if coalesced:
            blob = FRAME * k
            for st in streams:
                send(st, blob)
        else:
            for _ in range(k):
                for st in streams:
                    send(st, FRAME)
        await asyncio.sleep(0)  # let the loop flush what the kernel did not take
    while any(st._total_write_index != st._total_write_done_index for st in streams):
        await asyncio.sleep(0.001)
        if time.monotonic() - t0 > 300:
            break
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - t0
    for st in streams:
        st.close()
    os.waitpid(pid, 0)
    deliveries = n * messages
    return {"mode": mode, "deliveries": deliveries, "cpu_us_per_delivery": round(cpu * 1e6 / deliveries, 2),
            "deliveries_per_cpu_s": round(deliveries / cpu), "wall_s": round(wall, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subs", type=int, default=200)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    modes = ["iostream", "direct", "coalesced", "coalesced+direct"]
    results: dict[str, list[dict]] = {m: [] for m in modes}
    for _ in range(args.repeat):
        for m in modes:
            results[m].append(asyncio.run(run(m, args.subs, args.messages, args.batch)))
    print(f"{args.subs} sockets x {args.messages} frames of {len(FRAME)} bytes, batches of {args.batch}; "
          f"median of {args.repeat}")
    print(f"{'mode':<18} {'CPU us/delivery':>16} {'deliveries/CPU-s':>17}")
    for m in modes:
        us = sorted(r["cpu_us_per_delivery"] for r in results[m])[len(results[m]) // 2]
        print(f"{m:<18} {us:>16.2f} {1e6 / us:>17,.0f}")


if __name__ == "__main__":
    main()
