"""pending_write_bytes (server/realtime/tornado_stream.py), the one read of Tornado's private
write indexes: pinned to the Tornado version it was checked with, and proved on a real
loopback TCP connection whose reader stops reading."""
from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path

import tornado
from tornado.iostream import IOStream

from server.realtime.tornado_stream import CHECKED_WITH_TORNADO, pending_write_bytes

ROOT = Path(__file__).resolve().parents[2]
TOTAL = 8 * 1024 * 1024  # far more than the small kernel buffers below can hold


def test_pinned_to_the_tornado_version_it_was_checked_with():
    """The installed Tornado and the one requirements.txt pins are the version pending_write_bytes was checked with."""
    assert tornado.version == CHECKED_WITH_TORNADO, "re-check pending_write_bytes against this Tornado, then bump"
    pin = re.search(r"^tornado==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert pin is not None and pin.group(1) == CHECKED_WITH_TORNADO


def loopback_pair() -> tuple[socket.socket, socket.socket]:
    """A connected TCP pair on 127.0.0.1 with small kernel buffers: (writer side, reader side)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        reader = socket.socket()
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
        reader.connect(listener.getsockname())
        writer, _ = listener.accept()
    writer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    reader.setblocking(False)
    return writer, reader


async def test_counts_the_bytes_not_yet_handed_to_the_kernel():
    """0 before writing; while the peer does not read, > 0 and steady; 0 again once the peer has read everything."""
    writer_sock, reader = loopback_pair()
    stream = IOStream(writer_sock)
    try:
        assert pending_write_bytes(stream) == 0
        done = stream.write(b"x" * TOTAL)
        for _ in range(20):  # let the loop try to flush: the kernel takes what fits, no more
            await asyncio.sleep(0.005)
        pending = pending_write_bytes(stream)
        assert 0 < pending < TOTAL, pending
        await asyncio.sleep(0.05)
        assert pending_write_bytes(stream) == pending  # nothing moves while nobody reads
        received = 0
        loop = asyncio.get_running_loop()
        while received < TOTAL:
            chunk = await asyncio.wait_for(loop.sock_recv(reader, 1 << 20), 10)
            assert chunk, "EOF before every byte arrived"
            received += len(chunk)
        await asyncio.wait_for(done, 10)
        assert received == TOTAL and pending_write_bytes(stream) == 0
    finally:
        stream.close()
        reader.close()


async def test_wait_writable_on_a_duplicate_descriptor():
    """With the kernel buffer full, wait_writable waits; it returns True once the peer reads,
    and False soon after Tornado closes the stream (while the duplicate keeps the socket)."""
    import os

    from server.realtime.tornado_stream import plain_socket, wait_writable

    writer_sock, reader = loopback_pair()
    stream = IOStream(writer_sock)
    fd = os.dup(plain_socket(stream).fileno())
    try:
        while True:  # fill the send buffer through the duplicate, as sendfile does
            try:
                os.write(fd, b"x" * 65536)
            except BlockingIOError:
                break
        waiting = asyncio.ensure_future(wait_writable(fd, stream, poll_s=0.05))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        loop = asyncio.get_running_loop()
        for _ in range(200):  # the peer reads: the buffer drains
            if waiting.done():
                break
            try:
                await asyncio.wait_for(loop.sock_recv(reader, 1 << 20), 0.05)
            except asyncio.TimeoutError:
                pass
        assert await asyncio.wait_for(waiting, 5) is True
        for _ in range(10):  # fill again, until what the peer's window took has settled
            while True:
                try:
                    os.write(fd, b"x" * 65536)
                except BlockingIOError:
                    break
            await asyncio.sleep(0.05)
        waiting = asyncio.ensure_future(wait_writable(fd, stream, poll_s=0.05))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        stream.close()
        assert await asyncio.wait_for(waiting, 5) is False
    finally:
        os.close(fd)
        stream.close()
        reader.close()


def test_plain_socket_is_only_for_plain_open_streams():
    """A plain IOStream gives its socket; a closed one gives None."""
    from server.realtime.tornado_stream import plain_socket

    writer_sock, reader = loopback_pair()
    stream = IOStream(writer_sock)
    assert plain_socket(stream) is writer_sock
    stream.close()
    assert plain_socket(stream) is None
    reader.close()
