"""File writes off the event loop: the muxers write into :class:`BackgroundFile` objects, and one
thread per process does the system calls.

Measured on the dev VM (30 live 720p tracks, ≈ 10 MB/s): a ``write()`` to the page cache usually
takes microseconds, but about one in a few hundred took 1–30 ms (writeback), which would stall
every call on the event loop. Here the loop only queues the bytes; the writer thread blocks
instead. Data waits in memory for microseconds normally, so crash safety is unchanged.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

log = logging.getLogger("podium.worker.live")

MAX_BACKLOG = 64 * 1024 * 1024  # bytes queued for the disk, all files together


class DiskBacklogFull(OSError):
    """The disk has not kept up: more than ``MAX_BACKLOG`` bytes are waiting to be written."""


class _DiskWriter:
    """One daemon thread running queued file operations in order (started on first use)."""

    def __init__(self) -> None:
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.backlog = 0  # bytes queued, not yet written

    def reserve(self, size: int, name: str) -> None:
        """Count ``size`` more bytes as queued; raises :class:`DiskBacklogFull` over the cap."""
        with self._lock:
            if self.backlog + size > MAX_BACKLOG:
                raise DiskBacklogFull(f"{self.backlog} bytes are waiting for the disk; "
                                      f"not queueing more for {name}")
            self.backlog += size

    def release(self, size: int) -> None:
        with self._lock:
            self.backlog -= size

    def submit(self, op: Callable[..., None], *args: Any) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="live-disk-writer",
                                                    daemon=True)
                    self._thread.start()
        self._q.put((op, args))

    def _run(self) -> None:
        while True:
            op, args = self._q.get()
            op(*args)  # operations catch their own errors (BackgroundFile records them)


_WRITER = _DiskWriter()


def queued_bytes() -> int:
    """Bytes queued for the disk, not yet written (all files together)."""
    return _WRITER.backlog


class BackgroundFile:
    """A new, write-only, seekable binary file whose writes happen on the disk writer thread.

    ``write``/``seek``/``tell`` return at once (positional writes keep the order right); an error
    of an earlier write is raised by the next call. :meth:`close` returns a future that is done
    when every write has reached the OS and the file is closed (its exception if one failed).
    """

    def __init__(self, path: Path):
        self.name = str(path)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._pos = 0
        self._size = 0
        self._error: OSError | None = None
        self._closed: Future | None = None

    # -- the file-object interface PyAV uses ---------------------------------------------------
    def write(self, data: bytes) -> int:
        self._check()
        size = len(data)
        _WRITER.reserve(size, self.name)
        _WRITER.submit(self._pwrite, data, self._pos)
        self._pos += size
        self._size = max(self._size, self._pos)
        return size

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._check()
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise OSError(f"negative seek position in {self.name}")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def flush(self) -> None:
        self._check()  # writes are queued already; close() waits for them

    def close(self) -> Future:
        """Queue the close after the pending writes; idempotent."""
        if self._closed is None:
            self._closed = Future()
            _WRITER.submit(self._close)
        return self._closed

    # -- on the writer thread --------------------------------------------------------------
    def _pwrite(self, data: bytes, pos: int) -> None:
        try:
            if self._error is None:
                view = memoryview(data)
                while view:
                    written = os.pwrite(self._fd, view, pos)
                    view, pos = view[written:], pos + written
        except OSError as exc:
            self._error = exc
            log.error("writing %s failed: %r", self.name, exc)
        finally:
            _WRITER.release(len(data))

    def _close(self) -> None:
        try:
            os.close(self._fd)
        except OSError as exc:
            self._error = self._error or exc
        if self._error is not None:
            self._closed.set_exception(self._error)
        else:
            self._closed.set_result(None)

    def _check(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed is not None:
            raise ValueError(f"{self.name} is closed")
