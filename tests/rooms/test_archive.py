"""Rename and archive a room (issue 15.5): instructors only; an archived room refuses sends
(WebSocket and REST), calls and uploads with ``room_archived``, and its live call ends; system messages and
``room.updated`` tell the members; members hear ``member.added`` / ``member.removed`` with the
new count (issue 15.8)."""
from __future__ import annotations

import secrets

from tests.api import assert_error
from tests.calls.helpers import room_with
from tests.files.test_files import upload


async def send(c, room: str, content: str) -> dict:
    return await c.request_raw("message.send", room=room, content=content, client_msg_id=secrets.token_hex(6))


async def test_rename_and_archive_are_for_instructors_and_check_their_input(server):
    room, [(ana, a_tok), (_, b_tok)] = await room_with(server, "ana", "ben")
    b = await server.client(b_tok)
    await b.request("room.join", room=room)
    for bad in ({}, {"name": ""}, {"name": "  "}, {"name": 7}, {"name": "x" * 201}, {"archived": "yes"}, {"archived": 1}):
        st, resp = await server.http("PATCH", f"/api/rooms/{room}", a_tok, bad)
        assert_error(st, resp, 400, "bad_request")
    st, resp = await server.http("PATCH", f"/api/rooms/{room}", b_tok, {"name": "Mine now"})
    assert_error(st, resp, 403, "forbidden")
    st, body = await server.http("PATCH", f"/api/rooms/{room}", a_tok, {"name": "  Physics — autumn  "})
    assert st == 200 and body["room"]["name"] == "Physics — autumn" and body["room"]["archived_at"] is None
    ev = await b.next_event("room.updated")
    assert ev["room"] == {"id": room, "name": "Physics — autumn", "archived_at": None}
    note = await b.next_event("message.new")
    assert note["message"]["kind"] == "system" and note["message"]["content"] == "Ana renamed the room to “Physics — autumn”"
    _, listed = await server.http("GET", "/api/rooms", b_tok)
    assert [r["name"] for r in listed["rooms"]] == ["Physics — autumn"]
    # A direct room has no name to change and is never archived.
    (_, c_tok), (carl, _) = await server.user("carl", "instructor"), await server.user("dora")
    direct = await server.room(c_tok, kind="direct", name="", members=[carl["id"]])
    st, resp = await server.http("PATCH", f"/api/rooms/{direct['id']}", c_tok, {"archived": True})
    assert_error(st, resp, 409, "conflict")


async def test_an_archived_room_is_read_only_until_unarchived(server):
    room, [(ana, a_tok), (_, b_tok)] = await room_with(server, "ana", "ben")
    a, b = await server.client(a_tok), await server.client(b_tok)
    for c in (a, b):
        await c.request("room.join", room=room)
    mine = await send(b, room, "before")
    assert mine["type"] == "ack"  # the rules are cached as open
    session = (await a.request("call.start", room=room))["session"]["id"]
    await b.request("call.join", session=session)
    st, body = await server.http("PATCH", f"/api/rooms/{room}", a_tok, {"archived": True})
    assert st == 200 and body["room"]["archived_at"].endswith("Z")
    ev = await b.next_event("room.updated")
    assert ev["room"]["archived_at"] == body["room"]["archived_at"]
    note = await b.next_event("message.new")
    assert note["message"]["content"] == "Ana archived the room: it is read-only now"
    # Its live call ends for everyone, as after "End for all".
    assert (await b.next_event("message.new"))["message"]["content"].startswith("The call ended")
    ended = await b.next_event("call.ended")
    assert ended["session"]["id"] == session and ended["session"]["ended_at"]
    assert (await b.request_raw("call.join", session=session))["code"] == "conflict"
    for c in (a, b):  # instructors too
        refused = await send(c, room, "while archived")
        assert refused["type"] == "error" and refused["code"] == "room_archived" and "archived" in refused["reason"]
    st, resp = await server.http("POST", f"/api/rooms/{room}/messages", a_tok, {"content": "REST", "client_msg_id": "r1"})
    assert_error(st, resp, 409, "room_archived")
    for op, fields in (("message.edit", {"message_id": mine["data"]["message"]["id"], "content": "edited"}),
                       ("message.react", {"message_id": mine["data"]["message"]["id"], "emoji": "👍"})):
        refused = await b.request_raw(op, **fields)
        assert refused["type"] == "error" and refused["code"] == "room_archived", op
    call = await a.request_raw("call.start", room=room)
    assert call["type"] == "error" and call["code"] == "room_archived"
    resp = await upload(server, a_tok, [("a.txt", b"x")], {"room": room}, expect=409)
    assert resp["error"]["code"] == "room_archived"
    _, history = await server.http("GET", f"/api/rooms/{room}/messages", b_tok)
    assert "while archived" not in [m["content"] for m in history["messages"]]  # still readable
    _, listed = await server.http("GET", "/api/rooms", b_tok)
    assert listed["rooms"][0]["archived_at"] is not None  # listed; the client hides it by default
    st, body = await server.http("PATCH", f"/api/rooms/{room}", a_tok, {"archived": False})
    assert st == 200 and body["room"]["archived_at"] is None
    assert (await b.next_event("room.updated"))["room"]["archived_at"] is None
    assert (await send(b, room, "after"))["type"] == "ack"
    assert (await a.request("call.start", room=room))["session"]["id"]


async def test_members_hear_the_count_change_when_someone_is_added_or_removed(server):
    room, [(ana, a_tok), (ben, b_tok)] = await room_with(server, "ana", "ben")
    carl, _ = await server.user("carl")
    b = await server.client(b_tok)
    await b.request("room.join", room=room)
    st, _ = await server.http("POST", f"/api/rooms/{room}/members", a_tok, {"username": "carl"})
    assert st == 201
    ev = await b.next_event("member.added")
    assert ev["room"] == room and ev["members_count"] == 3 and ev["member"]["user"]["id"] == carl["id"]
    assert ev["member"]["role"] == "student"
    st, _ = await server.http("DELETE", f"/api/rooms/{room}/members/{carl['id']}", a_tok)
    assert st == 200
    ev = await b.next_event("member.removed")
    assert ev == {"type": "member.removed", "room": room, "user_id": carl["id"], "members_count": 2}
