"""PostgreSQL connections the message writer keeps: checked out of its SQLAlchemy pool once and
used on asyncpg itself, batch after batch (``Database.run_pg``).

Checking a connection out of the pool and back in for every batch (the pool's events, its
reset on return, the greenlet that runs them) cost the soak (bench/scaleout) ~0.3 ms of CPU
per message: more than the round trip to PostgreSQL. A connection kept here is handed to one
caller at a time. After an error PostgreSQL reported (a unique-key race, say) it is kept, as
the server left it usable; after anything else (a broken socket, a cancelled batch that may
have left a query under way) it is terminated and given back to the pool as invalid, and the
next batch checks out a fresh one. One closed by the server meanwhile is seen before use.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, TypeVar

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger("podium.db")
T = TypeVar("T")


def _server_error(e: BaseException) -> bool:
    """An error PostgreSQL answered with (the connection still works), also when wrapped
    (``db.message_batch._fetch`` raises unique violations as SQLAlchemy's IntegrityError)."""
    return isinstance(e, asyncpg.PostgresError) or isinstance(e.__cause__, asyncpg.PostgresError)


class HeldConnections:
    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        self._idle: list[tuple[AsyncConnection, asyncpg.Connection]] = []
        self._releasing: set[asyncio.Task] = set()
        self.opened = 0  # connections checked out of the pool so far

    async def run(self, fn: Callable[..., Awaitable[T]], *args) -> T:
        """``await fn(asyncpg_connection, *args)`` on a kept connection, in autocommit."""
        held = await self._take()
        try:
            out = await fn(held[1], *args)
        except BaseException as e:
            if _server_error(e) and not held[1].is_in_transaction():
                self._idle.append(held)
            else:
                self._drop(held)
            raise
        self._idle.append(held)
        return out

    async def _take(self) -> tuple[AsyncConnection, asyncpg.Connection]:
        while self._idle:
            held = self._idle.pop()
            if not held[1].is_closed():
                return held
            self._drop(held)
        conn = await self.engine.connect()
        try:
            raw = (await conn.get_raw_connection()).driver_connection
        except BaseException:
            await conn.close()
            raise
        self.opened += 1
        return conn, raw

    def _drop(self, held: tuple[AsyncConnection, asyncpg.Connection]) -> None:
        """End the connection now; its pool bookkeeping (async in SQLAlchemy) in a task."""
        conn, raw = held
        raw.terminate()

        async def release() -> None:
            try:
                await conn.invalidate()
                await conn.close()
            except Exception as e:  # the socket is gone already; nothing else to free
                log.debug("releasing a dropped writer connection: %r", e)

        task = asyncio.ensure_future(release())
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)

    async def close(self) -> None:
        """Give every kept connection back to the pool (before the engine is disposed)."""
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            try:
                await conn.close()
            except Exception as e:  # closing anyway
                log.debug("closing a writer connection: %r", e)
        if self._releasing:
            await asyncio.wait(tuple(self._releasing), timeout=5)
