"""SQLite WAL checkpoints off the write path.

By default SQLite checkpoints from whichever connection commits the transaction that takes the
write-ahead log past 1,000 pages: that commit then copies the log into the database and
``fsync``s both files before it returns. While the disk is busy writing other data back (eight
512 MiB uploads, a backup), one such ``fsync`` was measured at 65–440 ms on ext4, and the
chat sends queued behind that commit (one writer at a time) waited as long
(docs/BENCHMARKS.md, Files).

So Podium's own connections checkpoint only as a backstop (``BACKSTOP_PAGES``: the log grew
that far because checkpoints fell behind), and :class:`WalCheckpointer` runs a ``PASSIVE``
checkpoint every ``INTERVAL_S`` on a connection and thread of its own. A passive checkpoint
takes no lock a writer waits for: commits go on appending to the log while it copies and
syncs, and the next write transaction after a complete checkpoint starts the log again from its
beginning, so the log stays as small as before. Durability is unchanged (``synchronous=NORMAL``:
a commit is in the log before it is acknowledged; engine.py).
"""
from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger("podium.db")

INTERVAL_S = 1.0
# What Podium's own connections let the log grow to before one of them checkpoints itself
# (SQLite's default is 1,000 pages): ~40 MiB at 4 KiB pages, reached only when the checkpointer
# is not running or falls behind.
BACKSTOP_PAGES = 10_000
SLOW_S = 0.25  # a checkpoint slower than this is logged


def sqlite_file(url: str) -> str | None:
    """The database file of a SQLite URL (``sqlite+aiosqlite:///path``), or None for an
    in-memory database or another database."""
    if not url.startswith("sqlite") or ":memory:" in url or "mode=memory" in url:
        return None
    path = url.split(":///", 1)[1] if ":///" in url else ""
    return path.split("?", 1)[0] or None


class WalCheckpointer:
    """Checkpoints the WAL of the SQLite file at ``path`` every ``interval`` seconds, from one
    thread with its own connection, until :meth:`close`."""

    def __init__(self, path: str, interval: float = INTERVAL_S):
        self.path, self.interval = path, interval
        self.checkpoints = 0  # completed checkpoints (/metrics)
        self.slowest_s = 0.0
        self._thread = ThreadPoolExecutor(1, "podium-sqlite-checkpoint")
        self._conn: sqlite3.Connection | None = None  # used on that thread only
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.interval)
            try:
                await loop.run_in_executor(self._thread, self.checkpoint)
            except sqlite3.Error:  # the file went away or is locked for a restore: try again later
                log.exception("checkpointing the SQLite log failed")

    def checkpoint(self) -> tuple[int, int, int]:
        """One passive checkpoint, on the calling thread: SQLite's ``(busy, log pages, pages
        checkpointed)``."""
        if self._conn is None:
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        t = time.monotonic()
        busy, frames, done = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        took = time.monotonic() - t
        self.checkpoints += 1
        self.slowest_s = max(self.slowest_s, took)
        if took > SLOW_S:
            log.warning("a checkpoint of %d log pages took %.0f ms (the disk is busy)", frames, took * 1000)
        return busy, frames, done

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close_conn)
        self._thread.shutdown(wait=True)

    def _close_conn(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
