"""Live results: after votes on a poll, its counts go to the room's instructors (with the
ballots of a named poll) and, while its results are public, to the whole room — at most once
per ``interval_s`` per poll in this process, however many votes arrive meanwhile.

Each push reads the counts from SQL after the votes that caused it committed, and carries the
poll's ``version``: pushes of several processes may arrive in any order, and a client keeps
the one with the highest version.
"""
from __future__ import annotations

import asyncio
import logging

from server.db import polls as pq
from server.db.engine import Database
from server.kernel.frames import event_frame
from server.polls.wire import ballots_wire, results_event
from server.realtime.registry import Registry

log = logging.getLogger("podium.polls")

PUSH_INTERVAL_S = 0.1


class ResultsPush:
    def __init__(self, db: Database, registry: Registry, interval_s: float = PUSH_INTERVAL_S):
        self.db, self.registry, self.interval_s = db, registry, interval_s
        self._dirty: set[int] = set()
        self._tasks: dict[int, asyncio.Task] = {}
        self._closed = False
        self.pushes = 0

    def touched(self, message_id: int) -> None:
        """The poll changed (a committed vote, close, re-open, results shown): push soon."""
        self._dirty.add(message_id)
        if message_id not in self._tasks:
            self._tasks[message_id] = asyncio.ensure_future(self._run(message_id))

    async def _run(self, message_id: int) -> None:
        try:
            # A change arriving while a push reads SQL marks the poll dirty again: one more round.
            while message_id in self._dirty:
                await asyncio.sleep(self.interval_s)
                if self._closed:
                    return
                self._dirty.discard(message_id)
                try:
                    await self.push(message_id)
                except Exception:  # the next change pushes again; clients can also poll.get
                    log.exception("poll %s: pushing live results failed", message_id)
        finally:
            self._tasks.pop(message_id, None)

    async def push(self, message_id: int) -> None:
        async with self.db.read() as s:
            row = await pq.get(s, message_id)
            if row is None:
                return
            poll, msg = row
            if msg.deleted_at is not None:
                return
            counted = (await pq.counts(s, [message_id]))[message_id]
            instructors = await pq.instructor_ids(s, poll.room_id)
            ballots = None if poll.anonymous else ballots_wire(await pq.ballots(s, message_id))
        self.pushes += 1
        frame = event_frame(results_event(poll, poll.room_id, counted, ballots))
        for user_id in instructors:
            self.registry.send_user(user_id, frame)
        if poll.results_public:
            self.registry.broadcast(poll.room_id, results_event(poll, poll.room_id, counted, None))

    async def close(self) -> None:
        """Push nothing more; wait for pushes under way (they read SQL: the database closes
        after this)."""
        self._closed = True
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()), timeout=5)
