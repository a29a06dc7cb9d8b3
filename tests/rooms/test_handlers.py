"""Rooms and members over HTTP (server/rooms/handlers.py; PROTOCOL §3, docs/PROTOCOL-ADDITIONS.md):
creating and listing rooms, adding and removing members, and the room rule on every room and
message endpoint (outsiders 403, unknown ids 404, bodies that are not JSON objects refused)."""
from __future__ import annotations

import asyncio

import pytest

from tests.api import assert_error, history, send, trio  # noqa: F401  (trio is a fixture)


# -- rooms ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["course", "group"])
async def test_create_room(server, kind):
    """Creating a course/group room makes the creator instructor and listed users students."""
    ana, ana_tok = await server.user("ana")
    ben, _ = await server.user("ben")
    dan, _ = await server.user("dan")
    status, body = await server.http("POST", "/api/rooms", ana_tok, {
        "kind": kind, "name": "  Team A ", "members": [ben["id"]], "member_usernames": ["dan"]})
    assert status == 201, body
    room = body["room"]
    assert room["kind"] == kind and room["name"] == "Team A"
    assert room["created_by"] == ana["id"] and room["my_role"] == "instructor"
    assert room["members_count"] == 3 and room["last_seq"] == 0 and room["my_read_seq"] == 0
    status, detail = await server.http("GET", f"/api/rooms/{room['id']}", ana_tok)
    assert status == 200
    roles = {m["user"]["id"]: m["role"] for m in detail["members"]}
    assert roles == {ana["id"]: "instructor", ben["id"]: "student", dan["id"]: "student"}


@pytest.mark.parametrize("body,status,code", [
    ({"kind": "lecture", "name": "x"}, 400, "bad_request"),
    ({"kind": "course", "name": ""}, 400, "bad_request"),
    ({"kind": "course"}, 400, "bad_request"),
    ({"kind": "course", "name": 5}, 400, "bad_request"),
    ({"kind": "course", "name": "n" * 201}, 400, "bad_request"),
    ({"kind": "course", "name": "x", "members": "2"}, 400, "bad_request"),
    ({"kind": "course", "name": "x", "members": ["abc"]}, 400, "bad_request"),
    ({"kind": "course", "name": "x", "members": ["999999"]}, 404, "not_found"),
    ({"kind": "course", "name": "x", "member_usernames": ["ghost"]}, 404, "not_found"),
])
async def test_create_room_rejects_bad_input(server, body, status, code):
    """An unknown kind, a missing or oversized name, or unknown members are refused and no room is made."""
    _, tok = await server.user("ana")
    got, resp = await server.http("POST", "/api/rooms", tok, body)
    assert_error(got, resp, status, code)
    assert (await server.http("GET", "/api/rooms", tok))[1]["rooms"] == []


async def test_direct_room_dedupes_per_pair(server):
    """A direct room is one per pair of users: either side creating it gets the same room, both instructors."""
    ana, ana_tok = await server.user("ana")
    ben, ben_tok = await server.user("ben")
    first = await server.room(ana_tok, "direct", "", members=[ben["id"]])
    status, again = await server.http("POST", "/api/rooms", ben_tok,
                                      {"kind": "direct", "name": "", "member_usernames": ["ana"]})
    assert status in (200, 201) and again["room"]["id"] == first["id"]
    status, detail = await server.http("GET", f"/api/rooms/{first['id']}", ben_tok)
    assert {m["user"]["id"]: m["role"] for m in detail["members"]} == {
        ana["id"]: "instructor", ben["id"]: "instructor"}
    assert detail["room"]["name"]  # named after the other user when no name is given
    assert len((await server.http("GET", "/api/rooms", ana_tok))[1]["rooms"]) == 1


@pytest.mark.parametrize("others", [[], ["self"], ["ben", "carl"]])
async def test_direct_room_needs_exactly_one_other(server, others):
    """A direct room with no other member, only oneself, or two others is a 400."""
    ana, ana_tok = await server.user("ana")
    ids = {"self": ana["id"]}
    for name in ("ben", "carl"):
        ids[name] = (await server.user(name))[0]["id"]
    status, body = await server.http("POST", "/api/rooms", ana_tok,
                                     {"kind": "direct", "name": "", "members": [ids[o] for o in others]})
    assert_error(status, body, 400, "bad_request")


async def test_list_rooms_only_mine_newest_activity_first(server, trio):
    """GET /api/rooms lists only the caller's rooms, most recent activity first, with my_role."""
    ana, ana_tok = trio["ana"]
    ben, ben_tok = trio["ben"]
    carl, carl_tok = trio["carl"]
    await asyncio.sleep(0.01)
    other = await server.room(carl_tok, "group", "Carl's", members=[ben["id"]])
    await asyncio.sleep(0.01)
    await send(server, ana_tok, trio["room"]["id"], "bump")
    _, body = await server.http("GET", "/api/rooms", ben_tok)
    assert [r["id"] for r in body["rooms"]] == [trio["room"]["id"], other["id"]]
    assert [r["my_role"] for r in body["rooms"]] == ["student", "student"]
    assert body["rooms"][0]["last_seq"] == 1
    _, body = await server.http("GET", "/api/rooms", ana_tok)
    assert [r["id"] for r in body["rooms"]] == [trio["room"]["id"]]
    _, body = await server.http("GET", "/api/rooms", carl_tok)
    assert [r["id"] for r in body["rooms"]] == [other["id"]] and body["rooms"][0]["my_role"] == "instructor"


async def test_rooms_require_authentication(server):
    """Room endpoints without a bearer token answer 401."""
    status, body = await server.http("GET", "/api/rooms")
    assert_error(status, body, 401, "unauthorized")


async def test_concurrent_direct_room_creation_returns_one_room(server):
    """Both users opening their direct room at the same moment get the same single room, never an error."""
    ana, ana_tok = await server.user("ana")
    ben, ben_tok = await server.user("ben")
    results = await asyncio.gather(*[
        server.http("POST", "/api/rooms", tok, {"kind": "direct", "name": "", "members": [other]})
        for tok, other in [(ana_tok, ben["id"]), (ben_tok, ana["id"])] * 4])
    assert all(status in (200, 201) for status, _ in results), results
    assert len({body["room"]["id"] for _, body in results}) == 1
    _, listed = await server.http("GET", "/api/rooms", ana_tok)
    assert len(listed["rooms"]) == 1


# -- members ----------------------------------------------------------------------------------
@pytest.mark.parametrize("by", ["user_id", "username"])
async def test_instructor_adds_member(server, trio, by):
    """A room instructor adds a user by user_id or by username; the new member sees the room."""
    ana, ana_tok = trio["ana"]
    carl, carl_tok = trio["carl"]
    rid = trio["room"]["id"]
    body = {"user_id": carl["id"]} if by == "user_id" else {"username": "Carl"}
    status, resp = await server.http("POST", f"/api/rooms/{rid}/members", ana_tok, body)
    assert status in (200, 201), resp
    assert resp["member"]["user"]["id"] == carl["id"] and resp["member"]["role"] == "student"
    status, detail = await server.http("GET", f"/api/rooms/{rid}", carl_tok)
    assert status == 200 and carl["id"] in [m["user"]["id"] for m in detail["members"]]
    # The addition is recorded in the room as a system message.
    msgs = (await history(server, carl_tok, rid))["messages"]
    assert [m["kind"] for m in msgs] == ["system"]


async def test_adding_existing_member_updates_role(server, trio):
    """Adding someone already in the room changes their role instead of duplicating them."""
    ana, ana_tok = trio["ana"]
    ben, ben_tok = trio["ben"]
    rid = trio["room"]["id"]
    status, resp = await server.http("POST", f"/api/rooms/{rid}/members", ana_tok,
                                     {"user_id": ben["id"], "role": "instructor"})
    assert status in (200, 201) and resp["member"]["role"] == "instructor"
    _, detail = await server.http("GET", f"/api/rooms/{rid}", ben_tok)
    assert detail["room"]["my_role"] == "instructor" and detail["room"]["members_count"] == 2


async def test_student_cannot_add_member(server, trio):
    """A student member adding someone gets 403 and the user is not added."""
    _, ben_tok = trio["ben"]
    carl, carl_tok = trio["carl"]
    rid = trio["room"]["id"]
    status, body = await server.http("POST", f"/api/rooms/{rid}/members", ben_tok, {"user_id": carl["id"]})
    assert_error(status, body, 403, "forbidden")
    assert (await server.http("GET", f"/api/rooms/{rid}", carl_tok))[0] == 403


@pytest.mark.parametrize("body,status,code", [
    ({}, 400, "bad_request"),
    ({"user_id": "999999"}, 404, "not_found"),
    ({"username": "ghost"}, 404, "not_found"),
    ({"username": "carl", "role": "admin"}, 400, "bad_request"),
])
async def test_add_member_bad_input(server, trio, body, status, code):
    """Adding with no user, an unknown user or an unknown room role is refused."""
    _, ana_tok = trio["ana"]
    got, resp = await server.http("POST", f"/api/rooms/{trio['room']['id']}/members", ana_tok, body)
    assert_error(got, resp, status, code)


async def test_instructor_removes_member(server, trio):
    """A room instructor removes a member, who then loses access and stops receiving the room live."""
    ana, ana_tok = trio["ana"]
    ben, ben_tok = trio["ben"]
    rid = trio["room"]["id"]
    b = await server.client(ben_tok)
    await b.request("room.join", room=rid)
    status, body = await server.http("DELETE", f"/api/rooms/{rid}/members/{ben['id']}", ana_tok)
    assert status == 200 and body == {}
    assert (await server.http("GET", f"/api/rooms/{rid}", ben_tok))[0] == 403
    assert (await server.http("GET", "/api/rooms", ben_tok))[1]["rooms"] == []
    # The removal itself is announced to the room (ben included) before ben is unsubscribed.
    notice = await b.next_event("message.new")
    assert notice["message"]["kind"] == "system" and notice["message"]["seq"] == 1
    await send(server, ana_tok, rid, "after removal")
    assert await b.no_event("message.new")


async def test_member_removes_self(server, trio):
    """A student may leave a room by removing themself."""
    ben, ben_tok = trio["ben"]
    rid = trio["room"]["id"]
    status, _ = await server.http("DELETE", f"/api/rooms/{rid}/members/{ben['id']}", ben_tok)
    assert status == 200
    assert (await server.http("GET", f"/api/rooms/{rid}", ben_tok))[0] == 403


async def test_student_cannot_remove_others(server, trio):
    """A student removing another member gets 403 and the member stays."""
    ana, ana_tok = trio["ana"]
    _, ben_tok = trio["ben"]
    rid = trio["room"]["id"]
    status, body = await server.http("DELETE", f"/api/rooms/{rid}/members/{ana['id']}", ben_tok)
    assert_error(status, body, 403, "forbidden")
    assert (await server.http("GET", f"/api/rooms/{rid}", ana_tok))[0] == 200


async def test_remove_non_member_404(server, trio):
    """Removing a user who is not in the room answers 404."""
    _, ana_tok = trio["ana"]
    carl, _ = trio["carl"]
    status, body = await server.http("DELETE", f"/api/rooms/{trio['room']['id']}/members/{carl['id']}", ana_tok)
    assert_error(status, body, 404, "not_found")


async def test_direct_room_membership_is_fixed(server):
    """Members cannot be added to or removed from a direct room (409)."""
    ana, ana_tok = await server.user("ana")
    ben, _ = await server.user("ben")
    carl, _ = await server.user("carl")
    room = await server.room(ana_tok, "direct", "", members=[ben["id"]])
    status, body = await server.http("POST", f"/api/rooms/{room['id']}/members", ana_tok, {"user_id": carl["id"]})
    assert_error(status, body, 409, "conflict")
    status, body = await server.http("DELETE", f"/api/rooms/{room['id']}/members/{ben['id']}", ana_tok)
    assert_error(status, body, 409, "conflict")


async def test_concurrent_adds_of_same_member(server, trio):
    """Adding the same user several times at once (a double click) adds them once, never an error."""
    _, ana_tok = trio["ana"]
    carl, carl_tok = trio["carl"]
    rid = trio["room"]["id"]
    results = await asyncio.gather(*[
        server.http("POST", f"/api/rooms/{rid}/members", ana_tok, {"user_id": carl["id"]}) for _ in range(6)])
    assert all(status in (200, 201) for status, _ in results), results
    _, detail = await server.http("GET", f"/api/rooms/{rid}", carl_tok)
    assert [m["user"]["id"] for m in detail["members"]].count(carl["id"]) == 1
    system = [m for m in (await history(server, carl_tok, rid))["messages"] if m["kind"] == "system"]
    assert len(system) == 1  # one "added" notice, not one per request


async def test_added_and_removed_member_sockets_are_told(server):
    """A user's open sockets get room.added when they are added and room.removed when removed."""
    _, ana_tok = await server.user("roomadd_ana", "instructor")
    ben, ben_tok = await server.user("roomadd_ben")
    room = await server.room(ana_tok)
    b = await server.client(ben_tok)
    status, _ = await server.http("POST", f"/api/rooms/{room['id']}/members", ana_tok, {"username": "roomadd_ben"})
    assert status == 201
    ev = await b.next_event("room.added")
    assert ev["room"]["id"] == room["id"]
    status, _ = await server.http("DELETE", f"/api/rooms/{room['id']}/members/{ben['id']}", ana_tok)
    assert status == 200
    ev = await b.next_event("room.removed")
    assert ev["room"]["id"] == room["id"]


async def test_members_of_a_new_room_are_told(server):
    """Members named at room creation get room.added on their open sockets."""
    _, ana_tok = await server.user("newroom_ana", "instructor")
    ben, ben_tok = await server.user("newroom_ben")
    b = await server.client(ben_tok)
    room = await server.room(ana_tok, members=[ben["id"]])
    ev = await b.next_event("room.added")
    assert ev["room"]["id"] == room["id"] and ev["room"]["name"] == room["name"]


# -- access rules on every room endpoint ------------------------------------------------------
ROOM_ENDPOINTS = [
    ("GET", "/api/rooms/{room}", None),
    ("POST", "/api/rooms/{room}/members", {"username": "carl"}),
    ("DELETE", "/api/rooms/{room}/members/{ana}", None),
    ("GET", "/api/rooms/{room}/messages", None),
    ("POST", "/api/rooms/{room}/messages", {"client_msg_id": "x1", "kind": "text", "content": "hi"}),
    ("GET", "/api/rooms/{room}/messages/search?q=hello", None),
    ("GET", "/api/rooms/{room}/statistics", None),
    ("PATCH", "/api/messages/{message}", {"content": "edited"}),
    ("DELETE", "/api/messages/{message}", None),
]


@pytest.mark.parametrize("method,path,body", ROOM_ENDPOINTS)
async def test_non_member_forbidden_everywhere(server, trio, method, path, body):
    """Someone outside the room gets 403 on every room and message endpoint and changes nothing."""
    ana, ana_tok = trio["ana"]
    _, carl_tok = trio["carl"]
    rid = trio["room"]["id"]
    msg = await send(server, ana_tok, rid, "hello world")
    url = path.format(room=rid, ana=ana["id"], message=msg["id"])
    status, resp = await server.http(method, url, carl_tok, body)
    assert_error(status, resp, 403, "forbidden")
    after = await history(server, ana_tok, rid)
    assert [(m["id"], m["content"]) for m in after["messages"]] == [(msg["id"], "hello world")]
    _, detail = await server.http("GET", f"/api/rooms/{rid}", ana_tok)
    assert detail["room"]["members_count"] == 2


@pytest.mark.parametrize("method,path,body", ROOM_ENDPOINTS)
@pytest.mark.parametrize("missing", ["999999", "abc"])
async def test_unknown_room_or_message_404(server, method, path, body, missing):
    """A room or message id that does not exist (or is not an id) answers 404 on every endpoint."""
    ana, ana_tok = await server.user("ana")
    url = path.format(room=missing, ana=ana["id"], message=missing)
    status, resp = await server.http(method, url, ana_tok, body)
    assert_error(status, resp, 404, "not_found")


@pytest.mark.parametrize("raw,ctype,status,code", [
    (b"{not json", "application/json", 400, "bad_request"),
    (b"[1, 2]", "application/json", 400, "bad_request"),
    (b"\xff\xfe", "application/json", 400, "bad_request"),
    (b"kind=course", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
])
async def test_bad_body(server, raw, ctype, status, code):
    """A body that is not a JSON object is 400; a non-JSON content type is 415."""
    _, tok = await server.user("ana")
    got, resp = await server.http("POST", "/api/rooms", tok, raw_body=raw, headers={"Content-Type": ctype})
    assert_error(got, resp, status, code)
