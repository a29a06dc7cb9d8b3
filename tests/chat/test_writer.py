"""MessageWriter (server/chat/writer.py): group commit of message sends, without a database.

The writer takes its two collaborators as arguments: a ``db`` (``is_sqlite`` and an async
``write()`` transaction) and ``store(session, batch)``. Here they are a fake transaction counter
and a recording store that can hold, fail or answer each send as the test says.
"""
from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy.exc import IntegrityError

from server.chat.wire import SendRequest
from server.chat.writer import MessageWriter
from server.kernel.actor import Actor

ANA = Actor(1, "Ana", "student")


class FakeDb:
    """What the writer uses of a Database: ``is_sqlite`` (one queue, else four) and ``write()``."""

    def __init__(self, is_sqlite: bool = True):
        self.is_sqlite = is_sqlite
        self.transactions = 0

    @contextlib.asynccontextmanager
    async def write(self):
        self.transactions += 1
        yield f"tx{self.transactions}"


class RecordingStore:
    """``store(session, batch)`` that records every call's client_msg_ids and answers each send
    ``(wire, created)``; ``hold[room]`` makes a batch touching the room wait for the event,
    ``raise_for[cmid]`` fails the whole call while that send is in it, ``answer_error[cmid]``
    returns that exception as the send's outcome, ``existing`` answers created False."""

    def __init__(self):
        self.calls: list[list[str]] = []
        self.sessions: list[str] = []
        self.hold: dict[int, asyncio.Event] = {}
        self.raise_for: dict[str, Exception] = {}
        self.answer_error: dict[str, Exception] = {}
        self.existing: set[str] = set()

    async def __call__(self, session, batch: list[SendRequest]):
        self.calls.append([r.client_msg_id for r in batch])
        self.sessions.append(session)
        for room in {r.room_id for r in batch}:
            if room in self.hold:
                await self.hold[room].wait()
        for r in batch:
            if r.client_msg_id in self.raise_for:
                raise self.raise_for[r.client_msg_id]
        return [self.answer_error.get(r.client_msg_id)
                or ({"room": str(r.room_id), "client_msg_id": r.client_msg_id, "content": r.content},
                    r.client_msg_id not in self.existing)
                for r in batch]


def send(room: int, cmid: str, content: str = "hi") -> SendRequest:
    return SendRequest(actor=ANA, room_id=room, kind="text", content=content, client_msg_id=cmid,
                       file_id=None, reply_to=None)


@contextlib.asynccontextmanager
async def writer_of(store: RecordingStore, db: FakeDb | None = None, max_batch: int = 256):
    """``(writer, broadcasts)``: a MessageWriter on ``store`` and the list of what it passed to
    ``on_stored``, one entry per call; the writer is closed after."""
    broadcasts: list[list[tuple[int, dict]]] = []
    w = MessageWriter(db or FakeDb(), broadcasts.append, max_batch=max_batch, store=store)
    try:
        yield w, broadcasts
    finally:
        await w.close()


async def until(predicate, turns: int = 100) -> None:
    """Let the loop run until ``predicate()`` holds (bounded: fails rather than hangs)."""
    for _ in range(turns):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


async def settled(*futures: asyncio.Future) -> list:
    """Each future's result, or its exception."""
    done = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), 2)
    return list(done)


async def test_sends_queued_during_a_commit_go_out_together_in_the_next_batch():
    """Group commit: while one batch is being stored, new sends queue and are then stored in one transaction."""
    store, db = RecordingStore(), FakeDb()
    store.hold[1] = asyncio.Event()
    async with writer_of(store, db) as (w, broadcasts):
        first = w.enqueue(send(1, "a"))
        await until(lambda: store.calls)
        later = [w.enqueue(send(1, cmid)) for cmid in ("b", "c", "d")]
        await asyncio.sleep(0.01)
        assert store.calls == [["a"]] and not first.done()  # nothing acked before its commit
        store.hold[1].set()
        results = await settled(first, *later)
    assert store.calls == [["a"], ["b", "c", "d"]] and db.transactions == 2
    assert [r[0]["client_msg_id"] for r in results] == ["a", "b", "c", "d"]
    assert store.sessions == ["tx1", "tx2"]  # each batch is stored inside its own write()


async def test_max_batch_bounds_a_batch():
    """Seven sends queued at once with max_batch=3 are stored as batches of 3, 3 and 1, in order."""
    store = RecordingStore()
    async with writer_of(store, max_batch=3) as (w, broadcasts):
        futures = [w.enqueue(send(1, f"m{i}")) for i in range(7)]
        await settled(*futures)
    assert store.calls == [["m0", "m1", "m2"], ["m3", "m4", "m5"], ["m6"]]


async def test_order_within_a_room_is_kept_and_other_rooms_do_not_wait():
    """On PostgreSQL (four queues) a room's sends are stored in queue order while a held room does not block another."""
    store, db = RecordingStore(), FakeDb(is_sqlite=False)
    store.hold[1] = asyncio.Event()
    async with writer_of(store, db, max_batch=2) as (w, broadcasts):
        room1 = [w.enqueue(send(1, f"r1-{i}")) for i in range(5)]
        room2 = [w.enqueue(send(2, f"r2-{i}")) for i in range(3)]
        await settled(*room2)  # room 2 is stored while room 1's first batch is held
        assert not any(f.done() for f in room1)
        store.hold[1].set()
        await settled(*room1)
    room1_calls = [c for c in store.calls if c[0].startswith("r1")]
    assert [cmid for c in room1_calls for cmid in c] == [f"r1-{i}" for i in range(5)]
    assert all(len(c) <= 2 and len({cmid[:2] for cmid in c}) == 1 for c in store.calls)  # one room per queue here


async def test_a_batch_that_fails_as_a_whole_is_retried_one_send_at_a_time():
    """When the shared transaction fails, each send is stored alone: the bad one fails with its own error, the others succeed."""
    store = RecordingStore()
    bad = ValueError("reply_to names a message being deleted")
    store.raise_for["b"] = bad
    async with writer_of(store) as (w, broadcasts):
        futures = [w.enqueue(send(1, cmid)) for cmid in ("a", "b", "c")]
        a, b, c = await settled(*futures)
    assert store.calls == [["a", "b", "c"], ["a"], ["b"], ["c"]]
    assert b is bad
    assert a[0]["client_msg_id"] == "a" and c[0]["client_msg_id"] == "c"
    assert [[m["client_msg_id"] for _, m in batch] for batch in broadcasts] == [["a"], ["c"]]


async def test_a_unique_key_race_is_retried_once_and_answered_with_the_stored_row():
    """A send alone that hits IntegrityError is retried once; the retry finding the row answers it as not created."""
    class RaceOnce(RecordingStore):
        async def __call__(self, session, batch):
            if len(self.calls) < 2:  # the batch, then the first attempt alone
                self.calls.append([r.client_msg_id for r in batch])
                raise IntegrityError("INSERT INTO messages", {}, Exception("duplicate key"))
            self.existing.add("x")  # the other process's row is visible now
            return await super().__call__(session, batch)

    store = RaceOnce()
    async with writer_of(store) as (w, broadcasts):
        (result,) = await settled(w.enqueue(send(1, "x")))
    assert store.calls == [["x"], ["x"], ["x"]]
    assert result[1] is False and result[0]["client_msg_id"] == "x"
    assert broadcasts == []


async def test_an_exception_outcome_fails_only_that_send():
    """A store that answers one send with an exception fails that future alone, without a retry."""
    store = RecordingStore()
    refused = PermissionError("not a member any more")
    store.answer_error["b"] = refused
    async with writer_of(store) as (w, broadcasts):
        a, b, c = await settled(*(w.enqueue(send(1, cmid)) for cmid in ("a", "b", "c")))
    assert store.calls == [["a", "b", "c"]]
    assert b is refused and a[1] is True and c[1] is True
    assert [m["client_msg_id"] for _, m in broadcasts[0]] == ["a", "c"]


async def test_on_stored_gets_only_created_messages_with_their_rooms():
    """on_stored is called once per committed batch with (room_id, wire) of the created messages only."""
    store = RecordingStore()
    store.existing.add("again")
    async with writer_of(store) as (w, broadcasts):
        futures = [w.enqueue(send(room, cmid)) for room, cmid in ((1, "a"), (1, "again"), (1, "b"))]
        await settled(*futures)
    assert broadcasts == [[(1, {"room": "1", "client_msg_id": "a", "content": "hi"}),
                             (1, {"room": "1", "client_msg_id": "b", "content": "hi"})]]
    assert w.stored == 2 and w.batches == 1


async def test_a_resend_is_answered_but_not_broadcast():
    """A send the store reports as already stored (created False) resolves with that message and broadcasts nothing."""
    store = RecordingStore()
    store.existing.add("dup")
    async with writer_of(store) as (w, broadcasts):
        (result,) = await settled(w.enqueue(send(1, "dup", "same text")))
    assert result == ({"room": "1", "client_msg_id": "dup", "content": "same text"}, False)
    assert broadcasts == [] and w.stored == 0


async def test_the_writer_survives_a_store_that_crashes():
    """A store raising on every attempt fails those sends with its error; the next send is stored by the same writer."""
    store = RecordingStore()
    boom = RuntimeError("database went away")
    store.raise_for.update({"a": boom, "b": boom})
    async with writer_of(store) as (w, broadcasts):
        failed = await settled(w.enqueue(send(1, "a")), w.enqueue(send(1, "b")))
        assert failed == [boom, boom]
        (ok,) = await settled(w.enqueue(send(1, "c")))
    assert ok[0]["client_msg_id"] == "c" and ok[1] is True


async def test_the_writer_survives_a_broadcast_that_crashes():
    """When on_stored raises, that batch's sends fail loudly instead of hanging, and the writer keeps storing."""
    store = RecordingStore()
    calls: list[int] = []

    def on_stored(created):
        calls.append(len(created))
        if len(calls) == 1:
            raise RuntimeError("fan-out bug")

    w = MessageWriter(FakeDb(), on_stored, store=store)
    try:
        (first,) = await settled(w.enqueue(send(1, "a")))
        (second,) = await settled(w.enqueue(send(1, "b")))
    finally:
        await w.close()
    assert isinstance(first, RuntimeError) and str(first) == "message store failed"
    assert second[0]["client_msg_id"] == "b" and calls == [1, 1]
