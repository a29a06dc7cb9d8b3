"""The PostgreSQL fast path of message sends (db.message_batch.store_simple_pg, run by
Database.run_pg on asyncpg itself): the same outcomes as store_batch, a resend left to it, and
a unique-key race raised as the IntegrityError the writer retries. PostgreSQL only: on SQLite
sends take the writer thread's own raw path."""
from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import event, select, text
from sqlalchemy.exc import IntegrityError

from server.chat.wire import SendRequest
from server.db.message_batch import _BUMP_AND_INSERT_PG, _bump_and_insert_params
from server.db.message_batch_pg import _STORE_ROOM, _fetch, _numbered, store_simple_pg
from server.db.models import Message
from server.kernel.actor import Actor
from server.kernel.clock import utcnow
from server.kernel.errors import Forbidden
from server.rooms.membership import effective_role
from tests.dbutil import test_database_url as database_under_test

pytestmark = pytest.mark.skipif(not (database_under_test() or "").startswith("postgresql"),
                                reason="the asyncpg path exists on PostgreSQL only")


def send(actor: Actor, room: int, cmid: str) -> SendRequest:
    return SendRequest(actor=actor, room_id=room, kind="text", content=f"c-{cmid}", client_msg_id=cmid,
                       file_id=None, reply_to=None)


async def people_and_room(server):
    ana, tok = await server.user("ana", "instructor")
    eve, _ = await server.user("eve")
    room = int((await server.room(tok))["id"])
    return Actor(int(ana["id"]), "Ana", "instructor"), Actor(int(eve["id"]), "Eve", "student"), room


async def test_a_simple_batch_gets_store_batchs_outcomes_and_rows(server):
    """Two sends stored with consecutive seqs, a repeat in the batch answered with the first's
    message (not created), a non-member refused; the rows are in SQL with those seqs."""
    ana, eve, room = await people_and_room(server)
    batch = [send(ana, room, "m1"), send(ana, room, "m2"), send(ana, room, "m1"), send(eve, room, "e1")]
    out = await server.deps.db.run_pg(store_simple_pg, batch, effective_role)
    assert [(o.message.seq, o.created) for o in out[:3]] == [(1, True), (2, True), (1, False)]
    assert out[2].message is out[0].message and out[0].sender_name == "Ana"
    assert isinstance(out[3], Forbidden)
    async with server.deps.db.read() as s:
        rows = (await s.execute(select(Message.seq, Message.client_msg_id, Message.id)
                                .where(Message.room_id == room).order_by(Message.seq))).all()
    assert [(seq, cmid) for seq, cmid, _ in rows] == [(1, "m1"), (2, "m2")]
    assert [r.id for r in rows] == [out[0].message.id, out[1].message.id]


async def test_a_resend_of_a_stored_message_is_left_to_store_batch(server):
    """In a batch with the client_msg_id of a message already stored, the new send is stored
    and the resend is left to the general path (None); nothing is stored twice."""
    ana, _, room = await people_and_room(server)
    await server.deps.db.run_pg(store_simple_pg, [send(ana, room, "m1")], effective_role)
    out = await server.deps.db.run_pg(store_simple_pg, [send(ana, room, "m2"), send(ana, room, "m1")], effective_role)
    assert out[0].created and out[0].message.seq == 2 and out[1] is None
    async with server.deps.db.read() as s:
        rows = (await s.execute(select(Message.client_msg_id).where(Message.room_id == room).order_by(Message.seq)))
        assert rows.scalars().all() == ["m1", "m2"]


async def test_a_unique_key_race_is_the_integrity_error_the_writer_retries(server):
    """The same client_msg_id inserted by another writer after the statement's check (here: a
    plain INSERT run twice) raises sqlalchemy's IntegrityError, as the SQLAlchemy path did."""
    ana, _, room = await people_and_room(server)

    async def insert(conn):
        return await _fetch(conn, _numbered(_BUMP_AND_INSERT_PG),
                            _bump_and_insert_params(room, [send(ana, room, "m1")], utcnow()))

    assert len(await server.deps.db.run_pg(insert)) == 1
    with pytest.raises(IntegrityError):
        await server.deps.db.run_pg(insert)


async def test_a_batch_to_one_room_is_one_statement(server):
    """Membership, dedupe, seqs and the INSERT of a one-room batch: one round trip (after the
    connection's first batch, which also reads the types of its parameters)."""
    ana, _, room = await people_and_room(server)
    await server.deps.db.run_pg(store_simple_pg, [send(ana, room, "q0")], effective_role)
    queries = []

    async def store(conn, batch):
        conn.add_query_logger(queries.append)
        try:
            return await store_simple_pg(conn, batch, effective_role)
        finally:
            await asyncio.sleep(0.05)  # asyncpg calls query loggers soon after, not at once
            conn.remove_query_logger(queries.append)
    out = await server.deps.db.run_pg(store, [send(ana, room, f"q{i}") for i in range(1, 4)])
    assert [o.message.seq for o in out] == [2, 3, 4]
    assert [q.query for q in queries] == [_STORE_ROOM[0]]


async def test_the_statement_applies_the_room_role_rule_as_the_general_path_does(server):
    """Announcements from instructors only; a site admin who is not a member sends as an
    instructor; a non-member, a student's announcement and a missing room get the general
    path's errors."""
    ana, eve, room = await people_and_room(server)
    async with server.deps.db.write() as s:
        await s.execute(text("INSERT INTO memberships (room_id, user_id, role, joined_at) "
                             "VALUES (:r, :u, 'student', now())"), {"r": room, "u": eve.id})
    root, _ = await server.user("root", "admin")
    admin = Actor(int(root["id"]), "Root", "admin")
    assert admin.is_admin

    def ann(actor, cmid, room_id=room):
        req = send(actor, room_id, cmid)
        req.kind = "announcement"
        return req
    batch = [ann(ana, "a1"), ann(eve, "e1"), send(eve, room, "e2"), ann(admin, "r1"), send(admin, room + 999, "x")]
    out = await server.deps.db.run_pg(store_simple_pg, batch, effective_role)
    assert [o.message.seq if not isinstance(o, Exception) else type(o).__name__ for o in out] == [
        1, "Forbidden", 2, 3, "NotFound"]
    assert "instructors" in out[1].reason


async def test_a_batch_over_several_rooms_is_stored_in_one_transaction_with_each_rooms_seqs(server):
    """Sends to two rooms in one batch: each room's sends get that room's consecutive seqs, in
    batch order, and the rows are there after the commit."""
    ana, _, room = await people_and_room(server)
    _, tok = await server.user("ben", "instructor")
    other = int((await server.room(tok, members=[str(ana.id)]))["id"])
    batch = [send(ana, other, "o1"), send(ana, room, "r1"), send(ana, other, "o2"), send(ana, room, "r2")]
    out = await server.deps.db.run_pg(store_simple_pg, batch, effective_role)
    assert [(o.message.room_id, o.message.seq, o.created) for o in out] == [
        (other, 1, True), (room, 1, True), (other, 2, True), (room, 2, True)]
    async with server.deps.db.read() as s:
        rows = (await s.execute(select(Message.room_id, Message.seq, Message.client_msg_id)
                                .order_by(Message.room_id, Message.seq))).all()
    assert sorted(rows) == sorted([(other, 1, "o1"), (other, 2, "o2"), (room, 1, "r1"), (room, 2, "r2")])


async def _pid(conn) -> int:
    return await conn.fetchval("SELECT pg_backend_pid()")


async def test_the_writer_keeps_its_connection_across_batches_and_after_a_server_error(server):
    """Batch after batch runs on the same backend (no pool checkout per batch), also after an
    error PostgreSQL answered with (the connection still works)."""
    db = server.deps.db
    first = await db.run_pg(_pid)
    checkouts = []
    event.listen(db._write_engine.sync_engine.pool, "checkout", lambda *a: checkouts.append(1))
    assert await db.run_pg(_pid) == first

    async def fails(conn):
        await conn.execute("SELECT 1/0")
    with pytest.raises(asyncpg.DivisionByZeroError):
        await db.run_pg(fails)
    assert await db.run_pg(_pid) == first
    assert checkouts == []


async def test_a_writer_connection_the_server_ended_is_replaced_before_the_next_batch(server):
    """The backend of the kept connection is terminated (a PostgreSQL restart, a failover): the
    next batch runs on a new connection and stores its message."""
    db = server.deps.db
    ana, _, room = await people_and_room(server)
    old = await db.run_pg(_pid)
    async with db.read() as s:
        await s.execute(text("SELECT pg_terminate_backend(:p)"), {"p": old})
    await asyncio.sleep(0.2)  # PostgreSQL closes the socket; asyncpg sees it on the loop
    out = await db.run_pg(store_simple_pg, [send(ana, room, "after")], effective_role)
    assert out[0].created and out[0].message.seq == 1
    assert await db.run_pg(_pid) != old


async def test_a_batch_cancelled_mid_query_leaves_no_busy_connection_behind(server):
    """A batch cancelled while its statement runs (the writer shut down) does not hand the
    next batch a connection still busy with it ("another operation is in progress")."""
    db = server.deps.db
    old = await db.run_pg(_pid)
    task = asyncio.ensure_future(db.run_pg(lambda conn: conn.execute("SELECT pg_sleep(5)")))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.wait_for(db.run_pg(_pid), 3) != old
