"""Group commit for ``message.send``: many sends, one transaction.

Concurrent sends queue here; a writer task takes everything queued (up to ``max_batch``) and
stores it in one transaction with a handful of statements, whatever the batch size (the SQL
is ``db.message_batch``, run by ``Database.run_write``: on SQLite one thread hop per batch). Only after COMMIT is any send acked or broadcast. If a batch fails
as a whole (say a unique-key race with another process), each of its sends is retried alone,
in a transaction of its own, so one bad send never fails another.

SQLite has one writer anyway: batching turns N commits into one. PostgreSQL gets a few writer
tasks so rooms proceed in parallel; rooms are updated in id order so batches cannot deadlock.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Awaitable, Callable

from sqlalchemy.exc import IntegrityError

from server.db.engine import Database
from server.db.message_batch import needs_transaction, simple_batch, store_batch
from server.db.message_batch_pg import store_simple_pg
from server.chat.wire import SendRequest
from server.rooms.membership import effective_role
from server.rooms.wire import message_wire

log = logging.getLogger("podium.writer")

Outcome = tuple[dict, bool]
Store = Callable[[object, list[SendRequest]], Awaitable[list[Outcome | Exception]]]


def store_wires(conn, batch: list[SendRequest]) -> list[Outcome | Exception]:
    """Store a batch with the room-role rule on a synchronous connection (inside
    ``Database.run_write``); outcomes as ``(message wire, created)``."""
    return _wires(store_batch(conn, batch, effective_role))


def _wires(outcomes: list) -> list:
    return [out if out is None or isinstance(out, Exception)
            else (message_wire(out.message, out.sender_name, out.reactions), out.created)
            for out in outcomes]


class MessageWriter:
    """Queues of validated sends, one per writer task; a room always maps to the same queue,
    so sends to a room are stored in the order they were queued."""

    def __init__(self, db: Database, on_stored: Callable[[list[tuple[int, dict]]], None],
                 max_batch: int = 256, store: Store | None = None):
        """``store(session, batch)`` stores a batch inside a transaction of ``db.write()``
        (default: ``store_wires`` — ``db.message_batch.store_batch`` with wire shapes — in one
        ``db.run_write`` transaction); ``on_stored`` gets the created messages of each committed
        batch as ``(room_id, wire)``."""
        self.db, self.on_stored = db, on_stored
        self.max_batch = max_batch
        self._store = store
        n = 1 if db.is_sqlite else 4
        self._queues: list[deque[SendRequest]] = [deque() for _ in range(n)]
        self._wakes: list[asyncio.Event] = []
        self._tasks: list[asyncio.Task] = []
        self.batches = 0
        self.stored = 0

    def enqueue(self, req: SendRequest) -> asyncio.Future:
        """Queue a validated send (synchronously, so call order is store order). The future
        resolves after commit with ``(message, created)`` or fails with the send's error."""
        loop = asyncio.get_running_loop()
        req.future = loop.create_future()
        if not self._tasks:
            self._wakes = [asyncio.Event() for _ in self._queues]
            self._tasks = [loop.create_task(self._run(q, w)) for q, w in zip(self._queues, self._wakes)]
        i = req.room_id % len(self._queues)
        self._queues[i].append(req)
        self._wakes[i].set()
        return req.future

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except asyncio.CancelledError:
                pass  # the cancellation asked for above
        self._tasks = []

    async def _run(self, queue: deque[SendRequest], wake: asyncio.Event) -> None:
        while True:
            await wake.wait()
            if not queue:
                wake.clear()
                continue
            batch = [queue.popleft() for _ in range(min(self.max_batch, len(queue)))]
            if not queue:
                wake.clear()
            try:
                await self._process(batch)
            except Exception:  # never let the writer die: fail this batch's sends loudly
                log.exception("message writer: batch of %d failed", len(batch))
                for req in batch:
                    if not req.future.done():
                        req.future.set_exception(RuntimeError("message store failed"))

    async def _process(self, batch: list[SendRequest]) -> None:
        try:
            outcomes = await self._commit(batch)
        except Exception as e:  # noqa: BLE001 - any failure of the shared transaction
            log.warning("batch of %d sends failed as a whole (%r); storing one by one", len(batch), e)
            for req in batch:
                await self._process_alone(req)
            return
        self.batches += 1
        self._settle(batch, outcomes)

    async def _process_alone(self, req: SendRequest) -> None:
        """Store one send in its own transaction, with the same code as a batch. A unique-key
        race with another process (the same client_msg_id committed meanwhile) is retried once:
        the retry's dedupe query then finds that row and answers with it."""
        for attempt in range(2):
            try:
                outcomes = await self._commit([req])
                break
            except IntegrityError:
                if attempt == 0:
                    continue
                err: Exception = RuntimeError("message store failed")
            except Exception as e:  # that send alone fails, with its own error
                err = e
            log.warning("send %s failed: %r", req.client_msg_id, err)
            if not req.future.done():
                req.future.set_exception(err)
            return
        self._settle([req], outcomes)

    async def _commit(self, batch: list[SendRequest]) -> list[Outcome | Exception]:
        if self._store is None:
            if not self.db.is_sqlite and simple_batch(batch):  # the common case, on asyncpg itself
                return await self._commit_pg(batch)
            return await self.db.run_write(store_wires, batch, atomic=needs_transaction(batch))
        async with self.db.write() as s:
            return await self._store(s, batch)

    async def _commit_pg(self, batch: list[SendRequest]) -> list[Outcome | Exception]:
        """One statement per room (db.message_batch_pg); what it leaves to the general path
        (a resend of a stored message) is answered there. What the first step stored is
        committed: if the second fails, only its own sends get the error."""
        outcomes = _wires(await self.db.run_pg(store_simple_pg, batch, effective_role))
        left = [i for i, out in enumerate(outcomes) if out is None]
        if left:
            rest = [batch[i] for i in left]
            try:
                answers = await self.db.run_write(store_wires, rest, atomic=needs_transaction(rest))
            except Exception as e:  # noqa: BLE001 - those sends fail; the stored ones are answered
                log.warning("%d resends failed: %r", len(rest), e)
                answers = [RuntimeError("message store failed")] * len(rest)
            for i, out in zip(left, answers):
                outcomes[i] = out
        return outcomes

    def _settle(self, batch: list[SendRequest], outcomes: list[Outcome | Exception]) -> None:
        """After commit: broadcast what was created (one buffer per room), then answer."""
        created = [(req.room_id, out[0]) for req, out in zip(batch, outcomes)
                   if isinstance(out, tuple) and out[1]]
        self.stored += len(created)
        if created:
            self.on_stored(created)
        for req, outcome in zip(batch, outcomes):
            if req.future.done():
                continue
            if isinstance(outcome, Exception):
                req.future.set_exception(outcome)
            else:
                req.future.set_result(outcome)
