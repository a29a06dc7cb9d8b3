"""SQLite's write-ahead log is checkpointed on a thread of its own (server/db/wal_checkpoints.py),
not by the commit that takes it past SQLite's default 1,000 pages: that commit would wait for
the checkpoint's fsyncs, and chat sends behind it too (65-440 ms while uploads were written
back: docs/BENCHMARKS.md, Files). Real SQLite files, written through the message writer's path
(``run_write``) and an ordinary session."""
from __future__ import annotations

import asyncio
import sqlite3

from sqlalchemy import text

from server.db.engine import Database
from server.db.wal_checkpoints import BACKSTOP_PAGES

ROW = b"x" * 3000  # about one page per row


def log_pages(path) -> int:
    """Pages in the log now (a passive checkpoint from outside reports them)."""
    with sqlite3.connect(path) as c:
        return c.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]


def insert_rows(conn, n: int) -> None:
    conn.execute(text("INSERT INTO t (body) VALUES (:b)"), [{"b": ROW}] * n)


async def write_pages(db: Database, transactions: int, rows: int = 10, pause: float = 0.0) -> None:
    """``transactions`` commits of ``rows`` pages each, alternating the two write paths."""
    for i in range(transactions):
        if i % 2:
            await db.run_write(insert_rows, rows)
        else:
            async with db.write() as s:
                await s.execute(text("INSERT INTO t (body) VALUES (:b)"), [{"b": ROW}] * rows)
        if pause:
            await asyncio.sleep(pause)


async def open_db(tmp_path) -> tuple[Database, str]:
    path = str(tmp_path / "wal.db")
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.run_write(lambda c: c.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)")))
    return db, path


async def test_commits_do_not_checkpoint_the_log_themselves(tmp_path):
    """Without the checkpointer, 2,000 pages of commits leave 2,000 pages in the log: neither
    write path checkpointed at 1,000 (the log would have started again from its beginning)."""
    db, path = await open_db(tmp_path)
    try:
        await write_pages(db, 200)
        pages = log_pages(path)
        assert 2_000 <= pages < BACKSTOP_PAGES, pages
    finally:
        await db.close()


async def test_the_checkpointer_keeps_the_log_small_while_commits_go_on(tmp_path):
    """With the checkpointer running, 3,000 pages of commits never let the log grow past a
    few hundred pages: the checkpointer copies it back while writers commit, and the next
    write transaction starts the log again from its beginning."""
    db, path = await open_db(tmp_path)
    db.checkpointer.interval = 0.05
    db.start()
    try:
        biggest = 0
        for _ in range(30):
            await write_pages(db, 10, pause=0.01)
            # The log file's size is its high-water mark: 24 bytes of header per 4 KiB page.
            biggest = max(biggest, (tmp_path / "wal.db-wal").stat().st_size // 4120)
        assert biggest < 1_000, biggest
        assert db.checkpointer.checkpoints >= 5
        async with db.read() as s:
            assert (await s.execute(text("SELECT count(*) FROM t"))).scalar_one() == 3_000
    finally:
        await db.close()
