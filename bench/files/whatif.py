"""Start Podium (``python -m server serve``) with one or more candidate fixes patched in at run
time, so ``run.py --whatif NAME`` can measure a change before anyone makes it in ``server/``.
Nothing here is used by the default benchmark run, and nothing in ``server/`` is modified.

    python bench/files/whatif.py chunk1m,sendfile      # cwd: the server source; env as run.py sets it

``BENCH_HTTP_CHUNK_KIB`` (default 1024) and ``BENCH_SENDFILE_TURN_KIB`` (default 256) tune them.

Patches:

* ``chunk1m``: ``HTTPServer(chunk_size=1 MiB)`` instead of Tornado's 64 KiB default, so a
  streamed upload reaches ``FilesHandler.data_received`` (and the multipart parser, the hash,
  the storage writer) in 1 MiB pieces: 16x fewer trips through Tornado's body loop and
  ``Upload.feed``. In ``server/`` this would be one argument in ``server/__main__.py``.
* ``yield``: ``FilesHandler.data_received`` gives the event loop up (``await asyncio.sleep(0)``)
  after every body chunk. Tornado delivers buffered chunks back to back without yielding, and
  ``DiskWriter.write`` yields only when its 1 MiB buffer goes to the worker thread, so each
  upload holds the loop for ~16 chunks at a time.
* ``sendfile``: ``/dl/`` sends the stored object with ``os.sendfile`` from the event loop (on
  the connection's socket, after the headers are flushed; one call per loop turn, 256 KiB per
  turn shared by the downloads in progress) instead of ``DiskChunkStream``'s 1 MiB ``read`` on
  a worker thread + ``write`` + ``flush`` per chunk: no copy into Python, no thread hop, no
  per-chunk allocation. In ``server/`` this would be a ``sendfile`` capability of the disk
  backend (``DiskStorage``) that ``DownloadHandler.get`` uses when the storage offers it (S3
  keeps streaming chunks).
"""
from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import sys

sys.path.insert(0, os.getcwd())  # the server source (run.py starts this with cwd = SRC)

_handler: contextvars.ContextVar = contextvars.ContextVar("download_handler", default=None)


def patch_chunk1m() -> None:
    import tornado.httpserver

    orig = tornado.httpserver.HTTPServer.initialize
    size = int(os.environ.get("BENCH_HTTP_CHUNK_KIB", "1024")) * 1024

    @functools.wraps(orig)
    def initialize(self, *args, **kwargs):
        kwargs.setdefault("chunk_size", size)
        return orig(self, *args, **kwargs)

    tornado.httpserver.HTTPServer.initialize = initialize


def patch_yield() -> None:
    from server.files import handlers

    orig = handlers.FilesHandler.data_received

    async def data_received(self, chunk: bytes) -> None:
        await orig(self, chunk)
        await asyncio.sleep(0)

    handlers.FilesHandler.data_received = data_received


def patch_sendfile() -> None:
    from server.files import handlers
    from server.storage import disk

    orig_get = handlers.DownloadHandler.get

    async def get(self, file_id: str, name: str) -> None:
        token = _handler.set(self)
        try:
            await orig_get(self, file_id, name)
        finally:
            _handler.reset(token)

    handlers.DownloadHandler.get = get

    class SendfileStream(disk.DiskChunkStream):
        """Yields nothing: on first iteration it flushes the headers and sendfile()s the range."""

        def __init__(self, f, start: int, count: int, handler):
            super().__init__(f, count)
            self._start, self._count, self._handler = start, count, handler

        async def __anext__(self) -> bytes:
            h, self._handler = self._handler, None
            if h is not None and self._f is not None:
                await h.flush()  # the status line and headers
                await send_range(h.request.connection.stream.socket, self._f, self._start, self._count)
                # Tornado counts the body bytes it writes against Content-Length; these bypassed it.
                h.request.connection._expected_content_remaining = 0
            await self.aclose()
            raise StopAsyncIteration

    orig_open = disk.DiskStorage.open_range

    async def open_range(self, key: str, start: int, end: int):
        stream = await orig_open(self, key, start, end)
        handler = _handler.get()
        if handler is None:
            return stream
        return SendfileStream(stream._f, start, end - start + 1, handler)

    disk.DiskStorage.open_range = open_range


TURN_BYTES = int(os.environ.get("BENCH_SENDFILE_TURN_KIB", "256")) * 1024
MIN_SLICE_BYTES = 64 * 1024
_sending = 0  # downloads in send_range now


async def send_range(sock, f, offset: int, count: int) -> None:
    """``count`` bytes of ``f`` from ``offset`` into the non-blocking ``sock`` with ``os.sendfile``:
    one call per event-loop turn, of TURN_BYTES shared by the downloads in progress (at least
    64 KiB), so one turn of the loop moves about TURN_BYTES whatever the number of downloads and
    the chat sockets get the loop in between. (One unbounded sendfile on loopback keeps going
    while the reader drains and holds the loop for tens of milliseconds; 8 downloads of 1 MiB
    slices make every turn ~4 ms, and a chat send takes ~20 turns; docs/BENCHMARKS.md.)"""
    global _sending
    loop = asyncio.get_running_loop()
    out_fd, in_fd = sock.fileno(), f.fileno()
    _sending += 1
    try:
        while count > 0:
            try:
                n = os.sendfile(out_fd, in_fd, offset, min(count, max(MIN_SLICE_BYTES, TURN_BYTES // _sending)))
            except BlockingIOError:
                ready = loop.create_future()
                loop.add_writer(out_fd, lambda r=ready: r.done() or r.set_result(None))
                try:
                    await ready
                finally:
                    loop.remove_writer(out_fd)
                continue
            if n == 0:
                raise ConnectionError("sendfile: the object ended early")
            offset += n
            count -= n
            await asyncio.sleep(0)
    finally:
        _sending -= 1


PATCHES = {"chunk1m": patch_chunk1m, "sendfile": patch_sendfile, "yield": patch_yield}


def main() -> None:
    names = [n for n in sys.argv[1].split(",") if n] if len(sys.argv) > 1 else []
    for name in names:
        PATCHES[name]()
    from server.__main__ import main as serve
    serve(["serve"])


if __name__ == "__main__":
    main()
