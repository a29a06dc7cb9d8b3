"""Free loopback ports for test servers, and proof that a started server holds its port.

Picking a free port and then starting a server on it races with every other process doing the
same (two test passes run at once in CI): the server may lose the port, and a readiness probe
would then be answered by *another* server on it. ``listens_on`` checks, from /proc, that the
listening socket on the port belongs to our process.
"""
from __future__ import annotations

import os
import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening_inodes(port: int) -> set[str]:
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:  # LISTEN
                        found.add(parts[9])
        except OSError:
            continue
    return found


def listens_on(pid: int, port: int) -> bool:
    """True when process ``pid`` holds a socket listening on ``port`` (any address)."""
    inodes = _listening_inodes(port)
    if not inodes:
        return False
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False
