"""A room's chat rules (server/rooms/moderation.py, issue 16.4): the chat locked (students
read-only), slow mode, and bans — enforced on WebSocket and REST sends, told to the room;
across processes in the last test."""
from __future__ import annotations

import asyncio
import os
import secrets

import pytest

from tests.calls.helpers import room_with
from tests.realtime.test_scaleout import cluster
from tests.procserver import procs  # noqa: F401  (fixture)
from tests.wsclient import WsClient


async def send(c: WsClient, room: str, content: str, cmid: str | None = None) -> dict:
    """The ack or error frame of a message.send."""
    return await c.request_raw("message.send", room=room, content=content,
                               client_msg_id=cmid or secrets.token_hex(6))


async def test_a_locked_chat_takes_messages_from_instructors_only(server):
    room, [(ana, a_tok), (_, b_tok)] = await room_with(server, "ana", "ben")
    a, b = await server.client(a_tok), await server.client(b_tok)
    for c in (a, b):
        await c.request("room.join", room=room)
    assert (await send(b, room, "before"))["type"] == "ack"
    for bad in ({}, {"chat_locked": "yes"}, {"slow_mode_s": -1}, {"slow_mode_s": 3601}, {"slow_mode_s": 1.5},
                {"slow_mode_s": True}):
        status, _ = await server.http("PUT", f"/api/rooms/{room}/moderation", a_tok, bad)
        assert status == 400, bad
    status, _ = await server.http("PUT", f"/api/rooms/{room}/moderation", b_tok, {"chat_locked": True})
    assert status == 403
    status, body = await server.http("PUT", f"/api/rooms/{room}/moderation", a_tok, {"chat_locked": True})
    assert status == 200 and body == {"moderation": {"chat_locked": True, "slow_mode_s": 0}}
    changed = await b.next_event("room.moderation_changed")
    assert changed == {"type": "room.moderation_changed", "room": room, "chat_locked": True,
                       "slow_mode_s": 0, "by": ana["id"]}
    refused = await send(b, room, "while locked")
    assert refused["type"] == "error" and refused["code"] == "forbidden" and "locked" in refused["reason"]
    status, _ = await server.http("POST", f"/api/rooms/{room}/messages", b_tok,
                                  {"content": "over REST", "client_msg_id": "r1"})
    assert status == 403
    assert (await send(a, room, "instructors may"))["type"] == "ack"
    status, got = await server.http("GET", f"/api/rooms/{room}", b_tok)
    assert got["room"]["chat_locked"] is True
    status, history = await server.http("GET", f"/api/rooms/{room}/messages", b_tok)
    texts = [m["content"] for m in history["messages"]]
    assert "Ana locked the chat: only instructors can send messages" in texts
    assert "while locked" not in texts and "over REST" not in texts
    await server.http("PUT", f"/api/rooms/{room}/moderation", a_tok, {"chat_locked": False})
    assert (await send(b, room, "after"))["type"] == "ack"


async def test_slow_mode_lets_a_student_send_one_message_per_interval(server):
    room, [(_, a_tok), (_, b_tok)] = await room_with(server, "ana", "ben")
    a, b = await server.client(a_tok), await server.client(b_tok)
    status, _ = await server.http("PUT", f"/api/rooms/{room}/moderation", a_tok, {"slow_mode_s": 2})
    assert status == 200
    first = await send(b, room, "one", "s1")
    assert first["type"] == "ack"
    second = await send(b, room, "two", "s2")
    assert second["type"] == "error" and second["code"] == "rate_limited"
    assert 0 < second.get("retry_after_s", 0) <= 2, second
    status, _ = await server.http("POST", f"/api/rooms/{room}/messages", b_tok, {"content": "rest", "client_msg_id": "s3"})
    assert status == 429
    # The resend of a stored message (a reconnecting client) is never refused.
    again = await send(b, room, "one", "s1")
    assert again["type"] == "ack" and again["data"]["message"]["id"] == first["data"]["message"]["id"]
    # Instructors are not slowed; their sends keep the order they were sent in.
    acks = await asyncio.gather(*[send(a, room, f"i{i}") for i in range(20)])
    seqs = [x["data"]["message"]["seq"] for x in acks]
    assert seqs == sorted(seqs) and len(set(seqs)) == 20
    await asyncio.sleep(2.1)
    assert (await send(b, room, "later", "s4"))["type"] == "ack"
    await server.http("PUT", f"/api/rooms/{room}/moderation", a_tok, {"slow_mode_s": 0})
    assert (await send(b, room, "free", "s5"))["type"] == "ack"
    assert (await send(b, room, "free again", "s6"))["type"] == "ack"


async def test_a_banned_user_is_removed_and_cannot_be_added_back_until_the_ban_is_lifted(server):
    room, [(ana, a_tok), (ben, b_tok), (cleo, c_tok)] = await room_with(server, "ana", "ben", "cleo")
    b = await server.client(b_tok)
    await b.request("room.join", room=room)
    status, _ = await server.http("POST", f"/api/rooms/{room}/bans", c_tok, {"user_id": ben["id"]})
    assert status == 403
    status, _ = await server.http("POST", f"/api/rooms/{room}/bans", a_tok, {"user_id": ana["id"]})
    assert status == 400
    status, _ = await server.http("POST", f"/api/rooms/{room}/bans", a_tok, {"user_id": "x"})
    assert status == 400
    status, _ = await server.http("POST", f"/api/rooms/{room}/bans", a_tok, {"user_id": ben["id"]})
    assert status == 201
    removed = await b.next_event("room.removed")
    assert removed["room"]["id"] == room and removed["reason"] == "banned"
    status, _ = await server.http("GET", f"/api/rooms/{room}/messages", b_tok)
    assert status == 403
    status, body = await server.http("POST", f"/api/rooms/{room}/members", a_tok, {"user_id": ben["id"]})
    assert status == 409 and "banned" in body["error"]["reason"]
    status, bans = await server.http("GET", f"/api/rooms/{room}/bans", a_tok)
    assert [x["user_id"] for x in bans["bans"]] == [ben["id"]] and bans["bans"][0]["banned_by"] == ana["id"]
    status, history = await server.http("GET", f"/api/rooms/{room}/messages", a_tok)
    assert "Ana banned Ben" in [m["content"] for m in history["messages"]]
    status, _ = await server.http("DELETE", f"/api/rooms/{room}/bans/{cleo['id']}", a_tok)
    assert status == 404
    status, _ = await server.http("DELETE", f"/api/rooms/{room}/bans/{ben['id']}", a_tok)
    assert status == 200
    status, _ = await server.http("POST", f"/api/rooms/{room}/members", a_tok, {"user_id": ben["id"]})
    assert status == 201


async def test_bans_refused_for_instructors_and_direct_rooms(server):
    room, [(_, a_tok), (ben, _)] = await room_with(server, "ana", "ben")
    status, _ = await server.http("POST", f"/api/rooms/{room}/members", a_tok, {"user_id": ben["id"], "role": "instructor"})
    assert status in (200, 201)
    status, _ = await server.http("POST", f"/api/rooms/{room}/bans", a_tok, {"user_id": ben["id"]})
    assert status == 409
    direct, [(_, d_tok), (dan, _)] = await room_with(server, "dora", "dan", kind="direct")
    status, _ = await server.http("POST", f"/api/rooms/{direct}/bans", d_tok, {"user_id": dan["id"]})
    assert status in (403, 409)


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="several processes need Redis")
async def test_the_rules_hold_in_every_process(procs):  # noqa: F811
    """Locked through one process, refused at once through the other (its cached rules are
    dropped by a notice); slow mode's interval is one for both processes."""
    servers = cluster(procs, os.environ["TEST_REDIS_URL"], 2)
    (_, a_tok), (ben, b_tok) = [await servers[0].register(f"u{secrets.token_hex(3)}{i}") for i in range(2)]
    room = (await servers[0].room(a_tok, [ben["id"]]))["id"]
    b1 = await WsClient.connect(servers[1].ws_url, b_tok)
    b0 = await WsClient.connect(servers[0].ws_url, b_tok)
    assert (await send(b1, room, "cached as open"))["type"] == "ack"
    status, _ = await servers[0].http("PUT", f"/api/rooms/{room}/moderation", a_tok, {"chat_locked": True})
    assert status == 200
    deadline = asyncio.get_running_loop().time() + 3  # a notice's way over Redis, well below the 30 s TTL
    while (reply := await send(b1, room, "locked?"))["type"] == "ack":
        assert asyncio.get_running_loop().time() < deadline, "the other process still takes messages"
        await asyncio.sleep(0.1)
    assert reply["code"] == "forbidden"
    await servers[0].http("PUT", f"/api/rooms/{room}/moderation", a_tok, {"chat_locked": False, "slow_mode_s": 30})
    await asyncio.sleep(0.5)
    assert (await send(b0, room, "one"))["type"] == "ack"
    slowed = await send(b1, room, "two")
    assert slowed["type"] == "error" and slowed["code"] == "rate_limited"
    for c in (b0, b1):
        c.close()


async def test_rules_changed_behind_the_cache_are_picked_up_by_one_read_of_all_rooms(server):
    """The rules of rooms with sockets here are re-read together (``keep_fresh``): a lock that
    reached the database without a notice (lost while Redis was down) holds after that read,
    and three rooms cost one query."""
    from sqlalchemy import event, text

    rooms, clients = [], []
    for i in range(3):
        room, [(_, a_tok), (_, b_tok)] = await room_with(server, f"ana{i}", f"ben{i}")
        b = await server.client(b_tok)
        await b.request("room.join", room=room)
        assert (await send(b, room, "before"))["type"] == "ack"  # the room's rules are cached now
        rooms.append(int(room))
        clients.append(b)
    mod = server.deps.moderation
    assert sorted(mod.due()) == sorted(rooms)
    async with server.deps.db.write() as s:
        await s.execute(text("UPDATE rooms SET chat_locked = true WHERE id = :r"), {"r": rooms[0]})
    assert (await send(clients[0], str(rooms[0]), "cached rules still say open"))["type"] == "ack"
    queries = []
    listener = lambda *args: queries.append(args[2])  # noqa: E731 - the statement
    event.listen(server.deps.db.engine.sync_engine, "before_cursor_execute", listener)
    try:
        await mod.refresh(mod.due())
    finally:
        event.remove(server.deps.db.engine.sync_engine, "before_cursor_execute", listener)
    assert len([q for q in queries if "FROM rooms" in q]) == 1, queries
    refused = await send(clients[0], str(rooms[0]), "now locked")
    assert refused["type"] == "error" and "locked" in refused["reason"]
    assert (await send(clients[1], str(rooms[1]), "others unchanged"))["type"] == "ack"
