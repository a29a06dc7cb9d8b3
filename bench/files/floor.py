"""The floor row of the files benchmark's downloads: the least a Python server on one event loop
can do to send a stored file, so Podium's ``/dl/`` can be read against it as well as against nginx.

    python bench/files/floor.py PORT ROOT

asyncio alone, no HTTP framework: read the request head, answer ``200`` (or ``206`` for one
``Range: bytes=a-b``) with ``Content-Length``
and send ``ROOT/<path>`` with one ``loop.sock_sendfile`` (``os.sendfile`` until done, no per-turn
budget, no signature check, no database), then close. Standard library only.
"""
from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
from pathlib import Path


async def serve_one(loop: asyncio.AbstractEventLoop, conn: socket.socket, root: Path) -> None:
    with conn:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await loop.sock_recv(conn, 65536)
            if not chunk:
                return
            head += chunk
        path = head.split(b" ", 2)[1].decode().split("?", 1)[0].lstrip("/")
        target = (root / path).resolve()
        if root not in target.parents or not target.is_file():
            await loop.sock_sendall(conn, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        with open(target, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            start, count, status = 0, size, "200 OK"
            m = re.search(rb"\r\nRange: bytes=(\d+)-(\d+)\r\n", head, re.I)  # one closed range: bytes=a-b
            if m:
                start, end = int(m.group(1)), min(int(m.group(2)), size - 1)
                count, status = end - start + 1, f"206 Partial Content\r\nContent-Range: bytes {start}-{end}/{size}"
            await loop.sock_sendall(conn, f"HTTP/1.1 {status}\r\nContent-Length: {count}\r\nConnection: close\r\n\r\n".encode())
            await loop.sock_sendfile(conn, f, start, count, fallback=False)


async def main(port: int, root: Path) -> None:
    loop = asyncio.get_running_loop()
    listener = socket.create_server(("127.0.0.1", port), backlog=64)
    listener.setblocking(False)
    tasks: set[asyncio.Task] = set()
    while True:
        conn, _ = await loop.sock_accept(listener)
        conn.setblocking(False)
        t = asyncio.ensure_future(serve_one(loop, conn, root))
        tasks.add(t)
        t.add_done_callback(tasks.discard)


if __name__ == "__main__":
    try:
        asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2]).resolve()))
    except KeyboardInterrupt:
        pass
