"""The one place Podium reaches under Tornado's public API (pinned in requirements.txt).

* :func:`pending_write_bytes`: how many bytes a stream has accepted but not yet handed to the
  kernel (Tornado's private write indexes).
* :func:`plain_socket`, :func:`wait_writable` and :func:`body_sent_directly`: what a handler
  needs to put a response body on the socket itself (``os.sendfile``) between Tornado's own
  writes of the headers and the end of the response. Only ``body_sent_directly`` touches a
  private field (the connection's count of body bytes still due under ``Content-Length``).

``tests/realtime/test_tornado_stream.py`` pins the version this was checked against and proves
the numbers on a real socket, so an upgrade that renames the fields fails loudly there.
"""
from __future__ import annotations

import asyncio
import socket

from tornado.http1connection import HTTP1Connection
from tornado.iostream import IOStream

CHECKED_WITH_TORNADO = "6.6.1"


def pending_write_bytes(stream: IOStream) -> int:
    """Bytes written to ``stream`` but not yet sent to the kernel."""
    return stream._total_write_index - stream._total_write_done_index  # type: ignore[attr-defined]


def plain_socket(stream: object) -> socket.socket | None:
    """The TCP/Unix socket under ``stream`` when bytes written to it reach the peer as they
    are (a plain ``IOStream``, not TLS, not closed); None otherwise."""
    if type(stream) is not IOStream or stream.closed():
        return None
    sock = stream.socket
    if sock is None or sock.type != socket.SOCK_STREAM or sock.family not in (socket.AF_INET, socket.AF_INET6,
                                                                               socket.AF_UNIX):
        return None
    return sock


async def wait_writable(fd: int, stream: IOStream, poll_s: float = 0.5) -> bool:
    """Wait until the socket ``fd`` can take more bytes: True, or False once ``stream`` closed.

    ``fd`` must be the caller's own duplicate of the stream's socket (``os.dup``), never the
    stream's descriptor: Tornado registers that one with the loop itself, and once it closes
    the stream the number may be reused by another connection at once. On a duplicate the
    registration below is the caller's alone, and the socket stays open until the caller
    closes its duplicate. A closed stream is noticed within ``poll_s``.
    """
    loop = asyncio.get_running_loop()
    while not stream.closed():
        ready = loop.create_future()
        loop.add_writer(fd, lambda: ready.done() or ready.set_result(None))
        try:
            await asyncio.wait([ready], timeout=poll_s)
        finally:
            loop.remove_writer(fd)
        if ready.done():
            return not stream.closed()
    return False


def body_sent_directly(connection: HTTP1Connection, n: int) -> None:
    """Tell ``connection`` that ``n`` body bytes went out on its socket without passing through
    it, so that ``finish`` finds the ``Content-Length`` it announced fully written."""
    remaining = connection._expected_content_remaining  # type: ignore[attr-defined]
    if remaining is not None:
        connection._expected_content_remaining = remaining - n  # type: ignore[attr-defined]
