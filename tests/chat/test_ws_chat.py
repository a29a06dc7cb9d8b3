"""The chat half of the WebSocket protocol (PROTOCOL §2 intro, §2.1, docs/PROTOCOL-ADDITIONS.md).

Every test talks to a real server over real sockets; state is checked through the protocol,
the REST API or a separate database connection, never through the server's internals.
"""
from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.wsclient import ProtocolError, WsClient

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
MESSAGE_KEYS = {"id", "room", "seq", "sender", "kind", "content", "file_id", "reply_to",
                "client_msg_id", "created_at", "edited_at", "deleted_at", "reactions"}


@dataclass
class Classroom:
    """A course room: ``ana`` is the instructor, ``ben`` and ``cat`` students, ``dan`` an outsider."""

    room: dict
    ana: dict
    ben: dict
    cat: dict
    dan: dict
    ana_tok: str
    ben_tok: str
    cat_tok: str
    dan_tok: str

    @property
    def rid(self) -> str:
        return self.room["id"]


async def classroom(server) -> Classroom:
    ana, ana_tok = await server.user("ana", "instructor")
    ben, ben_tok = await server.user("ben")
    cat, cat_tok = await server.user("cat")
    dan, dan_tok = await server.user("dan")
    room = await server.room(ana_tok, members=[ben["id"], cat["id"]])
    return Classroom(room, ana, ben, cat, dan, ana_tok, ben_tok, cat_tok, dan_tok)


async def joined(server, token: str, room_id: str) -> WsClient:
    c = await server.client(token)
    await c.request("room.join", room=room_id)
    return c


async def expect_error(client: WsClient, code: str, type_: str, **fields) -> dict:
    with pytest.raises(ProtocolError) as e:
        await client.request(type_, **fields)
    assert e.value.code == code, e.value.frame
    assert e.value.frame["type"] == "error" and isinstance(e.value.frame["reason"], str)
    return e.value.frame


async def drain(client: WsClient, wait: float = 0.4) -> list[dict]:
    """Every event queued on ``client`` after waiting ``wait`` seconds for stragglers."""
    await asyncio.sleep(wait)
    out = []
    while not client.events.empty():
        out.append(client.events.get_nowait())
    return out


async def send(client: WsClient, room_id: str, cmid: str, content: str = "hi", **kw) -> dict:
    return (await client.request("message.send", room=room_id, client_msg_id=cmid, content=content, **kw))["message"]


# -- hello & join -------------------------------------------------------------------------------
async def test_hello_frame_shape(server):
    """After authentication the server sends hello {user, connection_id, server_time, heartbeat_s}."""
    ana, tok = await server.user("ana", "instructor")
    c1 = await server.client(tok)
    c2 = await server.client(tok, first_frame_auth=True)
    for c in (c1, c2):
        h = c.hello
        assert h["type"] == "hello"
        assert h["user"]["id"] == ana["id"] and h["user"]["display_name"] == "Ana"
        assert h["user"]["username"] == "ana" and h["user"]["role"] == "instructor"
        assert isinstance(h["connection_id"], str) and h["connection_id"]
        assert ISO_MS.match(h["server_time"]), h["server_time"]
        assert h["heartbeat_s"] == server.deps.config.heartbeat_s
    assert c1.hello["connection_id"] != c2.hello["connection_id"]


async def test_room_join_ack_shape(server):
    """room.join acks {room, last_seq, members, online, reads, my_role} and subscribes the socket."""
    k = await classroom(server)
    a = await joined(server, k.ana_tok, k.rid)
    for i in range(3):
        await send(a, k.rid, f"m{i}")
    b = await joined(server, k.ben_tok, k.rid)
    await b.request("read", room=k.rid, seq=2)

    a2 = await server.client(k.ana_tok)
    data = await a2.request("room.join", room=k.rid)
    assert data["room"]["id"] == k.rid and data["room"]["kind"] == "course"
    assert data["room"]["name"] == "Physics 101" and data["room"]["last_seq"] == 3
    assert data["last_seq"] == 3
    assert data["my_role"] == "instructor" and data["room"]["my_role"] == "instructor"
    members = {m["id"]: m for m in data["members"]}
    assert set(members) == {k.ana["id"], k.ben["id"], k.cat["id"]}
    assert members[k.ben["id"]]["display_name"] == "Ben"
    assert members[k.ana["id"]]["room_role"] == "instructor"
    assert members[k.cat["id"]]["room_role"] == "student"
    assert sorted(data["online"], key=int) == sorted([k.ana["id"], k.ben["id"]], key=int)
    assert data["reads"] == {k.ben["id"]: 2}
    # The socket is subscribed: it receives the next message.
    await send(b, k.rid, "after-join")
    ev = await a2.next_event("message.new")
    assert ev["message"]["client_msg_id"] == "after-join"


async def test_room_leave_stops_events(server):
    """After room.leave ({} ack) the socket gets no more events of that room; others still do."""
    k = await classroom(server)
    a = await joined(server, k.ana_tok, k.rid)
    b = await joined(server, k.ben_tok, k.rid)
    c = await joined(server, k.cat_tok, k.rid)
    assert await b.request("room.leave", room=k.rid) == {}
    await drain(b, 0)
    await send(a, k.rid, "x1")
    await a.request("typing", room=k.rid, active=True)
    await c.request("read", room=k.rid, seq=1)
    ev = await c.next_event("message.new")
    assert ev["message"]["client_msg_id"] == "x1"
    await c.next_event("typing")
    assert await drain(b, 0.5) == []  # nothing at all from the room
    # Joining again resumes delivery.
    await b.request("room.join", room=k.rid)
    await send(a, k.rid, "x2")
    assert (await b.next_event("message.new"))["message"]["client_msg_id"] == "x2"


# -- sync -----------------------------------------------------------------------------------------
async def test_room_sync_pages_until_complete(server):
    """room.sync returns seq-ordered pages with complete:false while more remain, then true."""
    k = await classroom(server)
    a = await joined(server, k.ana_tok, k.rid)
    for i in range(7):
        await send(a, k.rid, f"m{i}", content=f"text {i}")
    b = await server.client(k.ben_tok)
    await b.request("room.join", room=k.rid)
    seen, since, pages = [], 0, []
    while True:
        page = await b.request("room.sync", room=k.rid, since=since, limit=3)
        assert page["last_seq"] == 7
        pages.append(([m["seq"] for m in page["messages"]], page["complete"]))
        seen += page["messages"]
        if page["complete"]:
            break
        since = page["messages"][-1]["seq"]
    assert pages == [([1, 2, 3], False), ([4, 5, 6], False), ([7], True)]
    assert [m["content"] for m in seen] == [f"text {i}" for i in range(7)]
    for m in seen:
        assert set(m) == MESSAGE_KEYS and m["room"] == k.rid
        assert m["sender"] == {"id": k.ana["id"], "display_name": "Ana"}
        assert ISO_MS.match(m["created_at"])
    tail = await b.request("room.sync", room=k.rid, since=7)
    assert tail == {"messages": [], "complete": True, "last_seq": 7}


async def test_room_sync_limit_bounds(server):
    """room.sync defaults to 100 per page, accepts limit 500 and rejects 501 or 0 with bad_request."""
    k = await classroom(server)
    a = await joined(server, k.ana_tok, k.rid)
    acks = await asyncio.gather(*(send(a, k.rid, f"m{i}") for i in range(101)))
    assert sorted(m["seq"] for m in acks) == list(range(1, 102))
    page = await a.request("room.sync", room=k.rid, since=0)
    assert len(page["messages"]) == 100 and page["complete"] is False
    page = await a.request("room.sync", room=k.rid, since=0, limit=500)
    assert len(page["messages"]) == 101 and page["complete"] is True
    for bad in (501, 0, -1, "10", 2.5, True):
        await expect_error(a, "bad_request", "room.sync", room=k.rid, since=0, limit=bad)
    await expect_error(a, "bad_request", "room.sync", room=k.rid, since="0")


# -- message.send ---------------------------------------------------------------------------------
async def test_send_ack_after_commit(server):
    """The message.send ack comes only after commit: a separate DB connection and REST see it at once."""
    k = await classroom(server)
    a = await joined(server, k.ana_tok, k.rid)
    engine = create_async_engine(server.deps.config.database_url)
    try:
        for i in range(10):
            m = await send(a, k.rid, f"c{i}", content=f"durable {i}")
            assert set(m) == MESSAGE_KEYS
            assert m["seq"] == i + 1 and m["kind"] == "text" and m["content"] == f"durable {i}"
            assert m["edited_at"] is None and m["deleted_at"] is None and m["reactions"] == {}
            async with engine.connect() as conn:
                row = (await conn.execute(text("SELECT seq, content FROM messages WHERE id = :id"),
                                          {"id": int(m["id"])})).one()
            assert tuple(row) == (i + 1, f"durable {i}")
            status, body = await server.http("GET", f"/api/rooms/{k.rid}/messages?after={i}", k.ben_tok)
            assert status == 200 and [x["id"] for x in body["messages"]] == [m["id"]]
    finally:
        await engine.dispose()


async def test_resend_client_msg_id_returns_stored_copy(server):
    """Resending a client_msg_id returns the stored message and broadcasts no second message.new."""
    k = await classroom(server)
    a = await joined(server, k.ana_tok, k.rid)
    b = await joined(server, k.ben_tok, k.rid)
    first = await send(a, k.rid, "dup-1", content="original")
    again = await send(a, k.rid, "dup-1", content="changed on retry")
    assert again == first and again["content"] == "original"
    # Two resends racing each other still give one stored copy.
    racing = await asyncio.gather(send(a, k.rid, "dup-2", content="r"), send(a, k.rid, "dup-2", content="r"))
    assert racing[0] == racing[1] and racing[0]["seq"] == 2
    got = [await b.next_event("message.new") for _ in range(2)]
    assert [e["message"]["client_msg_id"] for e in got] == ["dup-1", "dup-2"]
    assert await b.no_event("message.new", within=0.5)
    # client_msg_id is unique per sender: another sender may reuse it.
    other = await send(b, k.rid, "dup-1", content="ben's own")
    assert other["id"] != first["id"] and other["seq"] == 3
    page = await b.request("room.sync", room=k.rid, since=0)
    assert [m["seq"] for m in page["messages"]] == [1, 2, 3]


async def test_seq_gapless_under_concurrency(server):
    """20 senders on 20 sockets, 10 messages each at once: seqs 1..200 exactly once, acks match."""
    owner, owner_tok = await server.user("owner", "instructor")
    users = [await server.user(f"u{i:02d}") for i in range(20)]
    room = await server.room(owner_tok, members=[u["id"] for u, _ in users])
    rid = room["id"]
    observer = await joined(server, owner_tok, rid)
    clients = [await joined(server, tok, rid) for _, tok in users]

    async def burst(i: int, c: WsClient) -> list[dict]:
        return await asyncio.gather(*(send(c, rid, f"u{i}-{j}", content=f"{i}/{j}") for j in range(10)))

    acks = [m for per in await asyncio.gather(*(burst(i, c) for i, c in enumerate(clients))) for m in per]
    assert sorted(m["seq"] for m in acks) == list(range(1, 201))
    by_seq = {m["seq"]: m for m in acks}
    stored, since = [], 0
    while True:
        page = await observer.request("room.sync", room=rid, since=since, limit=500)
        stored += page["messages"]
        if page["complete"]:
            break
        since = page["messages"][-1]["seq"]
    assert [m["seq"] for m in stored] == list(range(1, 201))
    for m in stored:
        ack = by_seq[m["seq"]]
        assert (m["id"], m["client_msg_id"], m["content"]) == (ack["id"], ack["client_msg_id"], ack["content"])
    live = [await observer.next_event("message.new") for _ in range(200)]
    assert sorted(e["message"]["seq"] for e in live) == list(range(1, 201))
    assert all(e["message"]["id"] == by_seq[e["message"]["seq"]]["id"] for e in live)


async def test_send_validation(server):
    """message.send rejects bad kinds, missing/long client_msg_id, empty text and system messages."""
    k = await classroom(server)
    a = await joined(server, k.ana_tok, k.rid)
    base = dict(room=k.rid, client_msg_id="v", content="ok")
    for fields in ({"kind": "system"}, {"kind": "nope"}, {"client_msg_id": None},
                   {"client_msg_id": ""}, {"client_msg_id": "x" * 65}, {"content": "   "},
                   {"content": 5}, {"kind": "image"}, {"file_id": 7}):
        await expect_error(a, "bad_request", "message.send", **(base | fields))
    m = await send(a, k.rid, "x" * 64, content="max-length client_msg_id")
    assert m["client_msg_id"] == "x" * 64 and m["seq"] == 1


# -- reply_to -------------------------------------------------------------------------------------
async def test_reply_to_must_be_same_room(server):
    """reply_to must name a message of the same room; another room's or a missing message is refused."""
    k = await classroom(server)
    other = await server.room(k.ana_tok, name="Other", members=[k.ben["id"]])
    a = await joined(server, k.ana_tok, k.rid)
    elsewhere = await send(a, other["id"], "o1")
    target = await send(a, k.rid, "t1")
    reply = await send(a, k.rid, "r1", content="answer", reply_to=target["id"])
    assert reply["reply_to"] == target["id"]
    await expect_error(a, "bad_request", "message.send", room=k.rid, client_msg_id="r2",
                       content="x", reply_to=elsewhere["id"])
    await expect_error(a, "bad_request", "message.send", room=k.rid, client_msg_id="r3",
                       content="x", reply_to="999999")
    page = await a.request("room.sync", room=k.rid, since=0)
    assert [m["client_msg_id"] for m in page["messages"]] == ["t1", "r1"]


# -- edit, delete, react ---------------------------------------------------------------------------
async def test_edit_author_only(server):
    """Only the author edits (others, even the room instructor, get forbidden); edits are broadcast."""
    k = await classroom(server)
    a = await joined(server, k.ana_tok, k.rid)
    b = await joined(server, k.ben_tok, k.rid)
    c = await joined(server, k.cat_tok, k.rid)
    m = await send(b, k.rid, "e1", content="typo")
    edited = (await b.request("message.edit", message_id=m["id"], content="fixed"))["message"]
    assert edited["id"] == m["id"] and edited["seq"] == m["seq"] and edited["content"] == "fixed"
    assert ISO_MS.match(edited["edited_at"])
    ev = await a.next_event("message.updated")
    assert ev["message"]["content"] == "fixed" and ev["message"]["id"] == m["id"]
    await expect_error(c, "forbidden", "message.edit", message_id=m["id"], content="hijack")
    await expect_error(a, "forbidden", "message.edit", message_id=m["id"], content="hijack")
    await expect_error(b, "not_found", "message.edit", message_id="987654", content="x")
    await expect_error(b, "bad_request", "message.edit", message_id=m["id"], content="")
    page = await c.request("room.sync", room=k.rid, since=0)
    assert [x["content"] for x in page["messages"]] == ["fixed"]


async def test_delete_author_or_instructor(server):
    """The author or a room instructor deletes; a student cannot delete another's message."""
    k = await classroom(server)
    a = await joined(server, k.ana_tok, k.rid)
    b = await joined(server, k.ben_tok, k.rid)
    c = await joined(server, k.cat_tok, k.rid)
    by_ana = await send(a, k.rid, "d1", content="instructor text")
    by_ben = await send(b, k.rid, "d2", content="ben text")
    by_cat = await send(c, k.rid, "d3", content="cat text")
    await expect_error(b, "forbidden", "message.delete", message_id=by_ana["id"])
    await expect_error(b, "forbidden", "message.delete", message_id=by_cat["id"])
    own = (await b.request("message.delete", message_id=by_ben["id"]))["message"]
    assert own["content"] == "" and ISO_MS.match(own["deleted_at"]) and own["seq"] == by_ben["seq"]
    ev = await c.next_event("message.deleted")
    assert ev["message"]["id"] == by_ben["id"] and ev["message"]["content"] == ""
    mod = (await a.request("message.delete", message_id=by_cat["id"]))["message"]
    assert mod["deleted_at"] and mod["content"] == ""
    page = await c.request("room.sync", room=k.rid, since=0)
    assert [(x["content"], x["deleted_at"] is not None) for x in page["messages"]] == [
        ("instructor text", False), ("", True), ("", True)]


async def test_react_on_off_broadcast(server):
    """message.react toggles a reaction, acks {message_id, reactions} and broadcasts message.reaction."""
    k = await classroom(server)
    a = await joined(server, k.ana_tok, k.rid)
    b = await joined(server, k.ben_tok, k.rid)
    m = await send(a, k.rid, "q1", content="question?")
    ack = await b.request("message.react", message_id=m["id"], emoji="👍", on=True)
    assert ack == {"message_id": m["id"], "reactions": {"👍": [k.ben["id"]]}}
    ev = await a.next_event("message.reaction")
    assert ev == {"type": "message.reaction", "room": k.rid, "message_id": m["id"],
                  "reactions": {"👍": [k.ben["id"]]}}
    await a.request("message.react", message_id=m["id"], emoji="👍", on=True)
    ev = await b.next_event("message.reaction", reactions={"👍": [k.ben["id"], k.ana["id"]]})
    ack = await b.request("message.react", message_id=m["id"], emoji="👍", on=False)
    assert ack["reactions"] == {"👍": [k.ana["id"]]}
    ev = await a.next_event("message.reaction", reactions={"👍": [k.ana["id"]]})
    await a.request("message.react", message_id=m["id"], emoji="👍", on=False)
    ev = await b.next_event("message.reaction", reactions={})
    assert ev["message_id"] == m["id"]
    page = await b.request("room.sync", room=k.rid, since=0)
    assert page["messages"][0]["reactions"] == {}
    await expect_error(b, "bad_request", "message.react", message_id=m["id"], emoji="👍", on="yes")
    await expect_error(b, "bad_request", "message.react", message_id=m["id"], emoji="", on=True)


async def test_announcement_instructors_only(server):
    """Only room instructors send announcements; a student gets forbidden and nothing is stored."""
    k = await classroom(server)
    a = await joined(server, k.ana_tok, k.rid)
    b = await joined(server, k.ben_tok, k.rid)
    await expect_error(b, "forbidden", "message.send", room=k.rid, client_msg_id="an1",
                       kind="announcement", content="exam cancelled!")
    m = await send(a, k.rid, "an2", content="exam on Friday", kind="announcement")
    assert m["kind"] == "announcement" and m["seq"] == 1
    ev = await b.next_event("message.new")
    assert ev["message"]["kind"] == "announcement"
    # In a direct room both members are instructors, so either may announce.
    direct = await server.room(k.ben_tok, kind="direct", name="", members=[k.cat["id"]])
    c = await server.client(k.cat_tok)
    m2 = await send(c, direct["id"], "an3", content="hey", kind="announcement")
    assert m2["kind"] == "announcement"


# -- typing, read, presence ------------------------------------------------------------------------
async def test_typing_relayed_never_echoed(server):
    """typing reaches other members but never the typer, not even the typer's second socket."""
    k = await classroom(server)
    a1 = await joined(server, k.ana_tok, k.rid)
    a2 = await joined(server, k.ana_tok, k.rid)
    b = await joined(server, k.ben_tok, k.rid)
    c = await joined(server, k.cat_tok, k.rid)
    assert await a1.request("typing", room=k.rid, active=True) == {}
    for other in (b, c):
        ev = await other.next_event("typing")
        assert ev == {"type": "typing", "room": k.rid, "user_id": k.ana["id"], "active": True}
    a1.send({"type": "typing", "room": k.rid, "active": False})  # without id: no ack needed
    ev = await b.next_event("typing")
    assert ev["active"] is False
    await expect_error(a1, "bad_request", "typing", room=k.rid, active="yes")
    assert await a1.no_event("typing", within=0.3)
    assert await a2.no_event("typing", within=0.2)


async def test_read_stored_and_broadcast(server):
    """read stores a forward-only position, broadcasts read, and shows in room.join reads and REST."""
    k = await classroom(server)
    a = await joined(server, k.ana_tok, k.rid)
    b = await joined(server, k.ben_tok, k.rid)
    for i in range(4):
        await send(a, k.rid, f"m{i}")
    assert await b.request("read", room=k.rid, seq=3) == {"room": k.rid, "seq": 3}
    ev = await a.next_event("read")
    assert ev == {"type": "read", "room": k.rid, "user_id": k.ben["id"], "seq": 3}
    assert (await b.request("read", room=k.rid, seq=1))["seq"] == 3  # never moves back
    assert (await b.request("read", room=k.rid, seq=99))["seq"] == 4  # clamped to last_seq
    fresh = await server.client(k.ana_tok)
    data = await fresh.request("room.join", room=k.rid)
    assert data["reads"] == {k.ben["id"]: 4}
    status, body = await server.http("GET", f"/api/rooms/{k.rid}", k.ben_tok)
    assert status == 200 and body["room"]["my_read_seq"] == 4
    status, body = await server.http("GET", f"/api/rooms/{k.rid}", k.cat_tok)
    assert body["room"]["my_read_seq"] == 0
    await expect_error(b, "bad_request", "read", room=k.rid, seq="3")


async def test_presence_joined_left_first_and_last_socket(server):
    """presence.joined on a user's first socket in the room; presence.left when the last leaves or closes."""
    k = await classroom(server)
    a = await joined(server, k.ana_tok, k.rid)
    b1 = await joined(server, k.ben_tok, k.rid)
    ev = await a.next_event("presence.joined")
    assert ev == {"type": "presence.joined", "room": k.rid, "user_id": k.ben["id"]}
    assert await b1.no_event("presence.joined", within=0.2)  # not told about itself
    b2 = await joined(server, k.ben_tok, k.rid)
    assert await a.no_event("presence.joined", within=0.3)
    b1.close()
    assert await a.no_event("presence.left", within=0.5)  # b2 is still there
    await b2.request("room.leave", room=k.rid)
    ev = await a.next_event("presence.left")
    assert ev == {"type": "presence.left", "room": k.rid, "user_id": k.ben["id"]}
    b3 = await joined(server, k.ben_tok, k.rid)
    await a.next_event("presence.joined", user_id=k.ben["id"])
    b3.close()
    await a.next_event("presence.left", user_id=k.ben["id"])
    assert (await a.request("presence.list", room=k.rid))["online"] == [k.ana["id"]]


async def test_presence_list_and_status(server):
    """presence.list gives online ids and statuses; presence.status is acked and broadcast."""
    k = await classroom(server)
    a = await joined(server, k.ana_tok, k.rid)
    b = await joined(server, k.ben_tok, k.rid)
    lst = await a.request("presence.list", room=k.rid)
    assert sorted(lst["online"], key=int) == sorted([k.ana["id"], k.ben["id"]], key=int)
    assert lst["status"] == {k.ana["id"]: "online", k.ben["id"]: "online"}
    assert await b.request("presence.status", status="away") == {"status": "away"}
    ev = await a.next_event("presence.status")
    assert ev["user_id"] == k.ben["id"] and ev["status"] == "away" and ev["room"] == k.rid
    lst = await a.request("presence.list", room=k.rid)
    assert lst["status"][k.ben["id"]] == "away"
    await expect_error(b, "bad_request", "presence.status", status="invisible")
    # cat is a member but has no socket in the room: listed by nobody as online.
    c = await server.client(k.cat_tok)
    lst = await c.request("presence.list", room=k.rid)
    assert k.cat["id"] not in lst["online"]


# -- membership ------------------------------------------------------------------------------------
async def test_membership_checked_on_every_room_operation(server):
    """A non-member gets forbidden for join, sync, send, history, typing, read, presence.list, edit, react."""
    k = await classroom(server)
    a = await joined(server, k.ana_tok, k.rid)
    m = await send(a, k.rid, "m1", content="members only")
    d = await server.client(k.dan_tok)
    await expect_error(d, "forbidden", "room.join", room=k.rid)
    await expect_error(d, "forbidden", "room.sync", room=k.rid, since=0)
    await expect_error(d, "forbidden", "message.send", room=k.rid, client_msg_id="x", content="spam")
    await expect_error(d, "forbidden", "typing", room=k.rid, active=True)
    await expect_error(d, "forbidden", "read", room=k.rid, seq=1)
    await expect_error(d, "forbidden", "presence.list", room=k.rid)
    await expect_error(d, "forbidden", "message.edit", message_id=m["id"], content="x")
    await expect_error(d, "forbidden", "message.delete", message_id=m["id"])
    await expect_error(d, "forbidden", "message.react", message_id=m["id"], emoji="👎", on=True)
    status, body = await server.http("GET", f"/api/rooms/{k.rid}/messages", k.dan_tok)
    assert status == 403 and body["error"]["code"] == "forbidden"
    # Nothing leaked to or was stored by the outsider.
    assert await a.no_event("typing", within=0.3)
    page = await a.request("room.sync", room=k.rid, since=0)
    assert [x["content"] for x in page["messages"]] == ["members only"]
    assert page["messages"][0]["reactions"] == {}
    assert not any(e.get("type") in ("message.new", "typing", "read") for e in await drain(d, 0))


async def test_unknown_room_not_found(server):
    """Operations on a room that does not exist answer not_found; a malformed room id bad_request."""
    ana, tok = await server.user("ana", "instructor")
    c = await server.client(tok)
    for type_, fields in (("room.join", {}), ("room.sync", {"since": 0}), ("read", {"seq": 1}),
                          ("presence.list", {}), ("typing", {"active": True}),
                          ("message.send", {"client_msg_id": "x", "content": "y"})):
        await expect_error(c, "not_found", type_, room="424242", **fields)
    await expect_error(c, "not_found", "message.delete", message_id="424242")
    await expect_error(c, "bad_request", "room.join", room="abc")
    await expect_error(c, "bad_request", "room.join")


async def test_removed_member_stops_receiving(server):
    """Removing a member unsubscribes all their sockets at once and later operations are forbidden."""
    k = await classroom(server)
    a = await joined(server, k.ana_tok, k.rid)
    b1 = await joined(server, k.ben_tok, k.rid)
    b2 = await joined(server, k.ben_tok, k.rid)
    c = await joined(server, k.cat_tok, k.rid)
    status, _ = await server.http("DELETE", f"/api/rooms/{k.rid}/members/{k.ben['id']}", k.ana_tok)
    assert status == 200
    await a.next_event("presence.left", user_id=k.ben["id"])
    await send(a, k.rid, "after", content="not for ben")
    await a.request("typing", room=k.rid, active=True)
    ev = await c.next_event("message.new")
    while ev["message"]["client_msg_id"] != "after":
        ev = await c.next_event("message.new")
    for b in (b1, b2):
        got = await drain(b, 0.3)
        assert not any(e.get("type") == "message.new" and e["message"]["client_msg_id"] == "after"
                       for e in got), got
        assert not any(e.get("type") == "typing" for e in got), got
    await expect_error(b1, "forbidden", "message.send", room=k.rid, client_msg_id="b", content="hi")
    await expect_error(b2, "forbidden", "room.join", room=k.rid)
    await expect_error(b2, "forbidden", "typing", room=k.rid, active=True)
    await expect_error(b1, "forbidden", "room.sync", room=k.rid, since=0)
