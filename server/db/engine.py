"""Engine and session factory for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""
from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import AsyncIterator, Awaitable, Callable, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from server.db.held_connections import HeldConnections
from server.db.wal_checkpoints import BACKSTOP_PAGES, WalCheckpointer, sqlite_file

T = TypeVar("T")


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001 - DB-API connection
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a commit survives a process crash (SIGKILL); FULL would also
    # survive power loss at the cost of an fsync per commit. See docs/CONFIGURATION.md.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    # Checkpoints run on a thread of their own (db/wal_checkpoints.py); a commit checkpoints
    # only when the log has grown this far because they fell behind.
    cur.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
    cur.close()


def make_engine(url: str) -> AsyncEngine:
    """Create the async engine. SQLite gets WAL, a busy timeout and foreign keys on."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def make_sqlite_writer_engine(url: str) -> Engine | None:
    """A synchronous engine (the stdlib sqlite3 driver) on the same SQLite file, for
    ``Database.run_write``; None for an in-memory database (a second engine would not see it)."""
    if sqlite_file(url) is None:
        return None
    sync_url = url.replace("sqlite+aiosqlite:", "sqlite+pysqlite:", 1)
    # One writer thread uses it; check_same_thread off only so dispose() may close it from the loop.
    engine = create_engine(sync_url, connect_args={"timeout": 30, "check_same_thread": False},
                           pool_size=1, max_overflow=0)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


class Database:
    """Owns the engine and hands out one AsyncSession per unit of work.

    SQLite allows one writer at a time; ``write()`` serialises this process's write
    transactions on an asyncio lock so they queue in memory instead of spinning on
    SQLITE_BUSY. PostgreSQL writes run concurrently (row locks do the ordering).
    """

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.is_sqlite = url.startswith("sqlite")
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._sync_engine = make_sqlite_writer_engine(url) if self.is_sqlite else None
        self._writer_thread = ThreadPoolExecutor(1, "podium-sqlite-writer") if self._sync_engine else None
        self._writer_conn: Connection | None = None  # used on the writer thread only
        # PostgreSQL: the message writer's own small pool, without the pre-ping round trip per
        # checkout. A dead connection fails its batch (nothing acked; the sends are retried one
        # by one) and SQLAlchemy then recycles every connection of the pool.
        self._write_engine = None if self.is_sqlite else create_async_engine(url, pool_size=4, max_overflow=4)
        self._held = None if self.is_sqlite else HeldConnections(self._write_engine)
        path = sqlite_file(url)
        self.checkpointer = WalCheckpointer(path) if path else None

    def start(self) -> None:
        """Start what needs the running loop: a SQLite file's checkpoints (db/wal_checkpoints.py)."""
        if self.checkpointer is not None:
            self.checkpointer.start()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as s:
            yield s

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session inside a transaction that commits on clean exit and rolls back on error."""
        if self._write_lock is None:
            async with self.sessions() as s, s.begin():
                yield s
            return
        async with self._write_lock:
            async with self.sessions() as s, s.begin():
                yield s

    async def run_write(self, fn: Callable[..., T], *args, atomic: bool = True) -> T:
        """``fn(connection, *args)`` on a synchronous SQLAlchemy Connection inside one write
        transaction: committed when ``fn`` returns, rolled back when it raises.

        The hot path of chat sends (db.message_batch). On SQLite the whole transaction —
        BEGIN IMMEDIATE, every statement, COMMIT — runs in one hop to a writer thread with the
        stdlib driver, instead of several thread hops per statement through aiosqlite (still
        under this process's write lock). On PostgreSQL ``fn`` runs on the asyncpg connection
        (each statement one round trip); ``atomic=False`` says ``fn`` writes with at most one
        statement (atomic by itself), so it runs in autocommit mode, without the BEGIN and
        COMMIT round trips (its reads see what they would see under READ COMMITTED)."""
        if self._sync_engine is not None:
            async with self._write_lock:
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(self._writer_thread, self._sqlite_transaction, fn, args)
        if self._write_lock is not None:  # in-memory SQLite: on the aiosqlite connection
            async with self._write_lock, self.engine.begin() as conn:
                return await conn.run_sync(fn, *args)
        if not atomic:
            async with self._write_engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                return await conn.run_sync(fn, *args)
        async with self._write_engine.begin() as conn:
            return await conn.run_sync(fn, *args)

    async def run_pg(self, fn: Callable[..., Awaitable[T]], *args) -> T:
        """PostgreSQL only: ``await fn(asyncpg_connection, *args)`` on a connection the message
        writer keeps (db.held_connections), in autocommit (each statement its own transaction
        unless ``fn`` opens one with ``connection.transaction()``). The hot path of chat sends
        (db.message_batch's ``store_simple_pg``), without SQLAlchemy's per-statement machinery
        or a pool checkout per batch."""
        return await self._held.run(fn, *args)

    def _sqlite_transaction(self, fn: Callable[..., T], args: tuple) -> T:
        """On the writer thread: one transaction on the thread's own connection, kept open
        between transactions (no pool checkout and reset per batch)."""
        conn = self._writer_conn
        if conn is None or conn.invalidated or conn.closed:
            conn = self._writer_conn = self._sync_engine.connect()
        raw = conn.connection.driver_connection
        # The stdlib driver would begin only at the first write: take the write lock first,
        # so the reads of the transaction (membership, dedupe) see what it writes over.
        raw.execute("BEGIN IMMEDIATE")
        try:
            out = fn(conn, *args)
            raw.commit()
        except BaseException:
            if conn.in_transaction():
                conn.rollback()
            if raw.in_transaction:
                raw.rollback()
            raise
        if conn.in_transaction():  # statements fn ran through SQLAlchemy: its bookkeeping only
            conn.commit()
        return out

    def _close_writer_conn(self) -> None:
        if self._writer_conn is not None:
            self._writer_conn.close()
            self._writer_conn = None

    async def close(self) -> None:
        if self.checkpointer is not None:
            await self.checkpointer.close()
        await self.engine.dispose()
        if self._write_engine is not None:
            await self._held.close()
            await self._write_engine.dispose()
        if self._sync_engine is not None:
            await asyncio.get_running_loop().run_in_executor(self._writer_thread, self._close_writer_conn)
            self._writer_thread.shutdown(wait=True)
            self._sync_engine.dispose()
