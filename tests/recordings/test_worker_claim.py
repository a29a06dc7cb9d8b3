"""Claiming a recording for a worker (server/db/recordings.py ``claim``): first claim wins, and
a worker is never given more recordings than its capacity, even when several web processes
dispatch at the same moment (each process has its own connection pool; on PostgreSQL the claim
holds a lock on the worker's id until its transaction ends)."""
from __future__ import annotations

import asyncio

import pytest

from server.kernel.clock import utcnow
from server.db import recordings as rq
from server.db.engine import Database
from server.db.models import CallSession, Room, User
from tests.dbutil import test_database_url as configured_database_url

needs_pg = pytest.mark.skipif(not (configured_database_url() or "").startswith("postgresql"),
                              reason="two concurrent writers need PostgreSQL (SQLite has one writer)")


async def pending_recordings(db: Database, n: int, tag: str = "a") -> list[int]:
    """``n`` pending recordings, each of a live call in a room of its own."""
    now = utcnow()
    async with db.write() as s:
        user = User(username=f"teacher-{tag}", display_name="Teacher", role="instructor", created_at=now)
        s.add(user)
        await s.flush()
        ids = []
        for i in range(n):
            room = Room(kind="course", name=f"class {i}", created_by=user.id, created_at=now, last_activity_at=now)
            s.add(room)
            await s.flush()
            call = CallSession(room_id=room.id, started_by=user.id, started_at=now)
            s.add(call)
            await s.flush()
            ids.append((await rq.create(s, call.id, room.id, user.id, now)).id)
    return ids


async def claim(db: Database, recording_id: int, worker: str, capacity: int):
    async with db.write() as s:
        return await rq.claim(s, recording_id, worker, capacity)


async def status(db: Database, recording_id: int) -> tuple[str, str | None]:
    async with db.read() as s:
        row = await rq.get(s, recording_id)
        return row.status, row.worker_id


async def test_a_worker_gets_no_more_recordings_than_its_capacity(database_url):
    """The first claim wins, a full worker is refused, and only a finished (not a processing) recording frees its slot."""
    db = Database(database_url)
    try:
        r1, r2, r3 = await pending_recordings(db, 3)
        assert (await claim(db, r1, "w1", 2)).worker_id == "w1"
        assert await claim(db, r1, "w2", 2) is None, "first claim wins"
        assert (await claim(db, r2, "w1", 2)).worker_id == "w1"
        assert await claim(db, r3, "w1", 2) is None, "w1 is full"
        assert await status(db, r3) == ("pending", None)
        assert (await claim(db, r3, "w2", 1)).worker_id == "w2"
        # A finished recording frees its slot; a recording that is still processing does not.
        async with db.write() as s:
            await rq.transition(s, r1, ("pending",), status="processing")
        r4, = await pending_recordings(db, 1, tag="b")
        assert await claim(db, r4, "w1", 2) is None
        async with db.write() as s:
            await rq.transition(s, r1, ("processing",), status="ready")
        assert (await claim(db, r4, "w1", 2)).worker_id == "w1"
    finally:
        await db.close()


@needs_pg
async def test_two_processes_claiming_at_once_do_not_overfill_a_worker(database_url):
    """Process A claims recording 1 for a worker with one free slot and has not committed yet;
    process B's claim of recording 2 for that worker waits for A's transaction and then finds
    the worker full. Without the lock B counted the worker empty and both claims succeeded."""
    a, b = Database(database_url), Database(database_url)
    try:
        r1, r2 = await pending_recordings(a, 2)
        a_may_commit = asyncio.Event()

        async def process_a():
            async with a.write() as s:
                row = await rq.claim(s, r1, "w1", 1)
                await a_may_commit.wait()
                return row

        task_a = asyncio.create_task(process_a())
        await asyncio.sleep(0.3)  # A is inside its transaction, holding the worker's lock
        assert not task_a.done()
        task_b = asyncio.create_task(claim(b, r2, "w1", 1))
        await asyncio.sleep(0.5)
        assert not task_b.done(), "B's claim must wait for A's transaction"
        a_may_commit.set()
        assert (await task_a).worker_id == "w1"
        assert await asyncio.wait_for(task_b, 10) is None
        assert await status(b, r2) == ("pending", None)
    finally:
        await a.close()
        await b.close()
