"""Zero-copy download bodies: ``os.sendfile`` from a stored object's file to the client's
socket, on the event loop, without the bytes ever entering Python.

``DownloadHandler`` (``/dl/``, which serves files and recording assets alike) uses this when
the storage backend keeps a local file (disk; :meth:`Storage.open_file`) and the connection is
a plain socket (TLS ends at the proxy in production); otherwise it streams chunks as before.

Fairness to chat is the one of the chunked path: each ``sendfile`` call moves at most one
slice, taken from the per-loop-turn budget every bulk transfer shares
(server/realtime/turn_budget.py), so the loop turns, and chat gets it, between slices however
many downloads run. A call is made only when the socket can take bytes: when the kernel's send
buffer is full the download waits for writability (server/realtime/tornado_stream.py) instead
of spinning. The socket is used through a duplicate descriptor owned here, so a client that goes
away mid-download (Tornado closes its stream) can neither leave a registration behind nor make
us write to whatever connection reuses the descriptor's number.
"""
from __future__ import annotations

import asyncio
import os
from typing import BinaryIO

from tornado.http1connection import HTTP1Connection
from tornado.iostream import StreamClosedError

from server.realtime.tornado_stream import body_sent_directly, pending_write_bytes, plain_socket, wait_writable
from server.realtime.turn_budget import SLICE, TurnBudget
from server.storage import StorageError
from server.storage.disk import READAHEAD_BYTES, prefetch


def direct_connection(connection: object) -> HTTP1Connection | None:
    """``connection`` if a body can be sent on its socket directly (HTTP/1.x on a plain,
    open socket), else None."""
    if isinstance(connection, HTTP1Connection) and plain_socket(connection.stream) is not None:
        return connection
    return None


async def send_file_range(connection: HTTP1Connection, f: BinaryIO, offset: int, count: int,
                          budget: TurnBudget) -> None:
    """Send ``count`` bytes of ``f`` from ``offset`` as the body of the response whose headers
    ``connection`` has already written and flushed. Raises StreamClosedError when the client
    goes away (nothing more is written), StorageError when the file is shorter than it was."""
    stream = connection.stream
    sock = plain_socket(stream)
    if sock is None:
        raise StreamClosedError()
    if pending_write_bytes(stream):
        raise RuntimeError("send_file_range needs the headers flushed first")
    in_fd = f.fileno()
    out_fd = os.dup(sock.fileno())  # ours alone: see the module docstring
    try:
        sent = 0
        prefetched = min(count, READAHEAD_BYTES)  # open_file asked for the first window
        while sent < count:
            n = min(SLICE, count - sent)
            await budget.take(n)
            if stream.closed():
                raise StreamClosedError()
            try:
                k = os.sendfile(out_fd, in_fd, offset + sent, n)
            except BlockingIOError:
                if not await wait_writable(out_fd, stream):
                    raise StreamClosedError() from None
                continue
            except ConnectionError as e:  # reset, broken pipe, aborted: the client is gone
                raise StreamClosedError(real_error=e) from None
            if k == 0:
                raise StorageError("object shorter than expected")
            sent += k
            body_sent_directly(connection, k)
            if sent + READAHEAD_BYTES // 2 > prefetched and prefetched < count:
                # The next window, read by the kernel while this one is sent (a cold cache
                # would otherwise make sendfile wait for the disk on the event loop).
                await asyncio.to_thread(prefetch, in_fd, offset + prefetched, count - prefetched)
                prefetched = min(count, prefetched + READAHEAD_BYTES)
    finally:
        os.close(out_fd)
