"""HTTP API for rooms, members and messages (PROTOCOL §3, docs/PROTOCOL-ADDITIONS.md)."""
from __future__ import annotations

import asyncio
import itertools

import pytest

from server.db.models import Message

_cmids = itertools.count(1)


def assert_error(status: int, body, expected_status: int, code: str) -> None:
    """Errors are exactly ``{"error": {"code", "reason"}}`` with the matching status."""
    assert status == expected_status, (status, body)
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "reason"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["reason"], str) and body["error"]["reason"]


async def send(server, token: str, room_id: str, content: str = "hi", kind: str = "text",
               cmid: str | None = None, expect: int = 201, **extra) -> dict:
    body = {"client_msg_id": cmid or f"c{next(_cmids)}", "kind": kind, "content": content, **extra}
    status, resp = await server.http("POST", f"/api/rooms/{room_id}/messages", token, body)
    assert status == expect, (status, resp)
    return resp["message"] if status < 300 else resp


async def history(server, token: str, room_id: str, query: str = "") -> dict:
    status, body = await server.http("GET", f"/api/rooms/{room_id}/messages{query}", token)
    assert status == 200, body
    return body


@pytest.fixture
def trio(server, io_loop):
    """ana (room instructor), ben (student member) and carl (not a member) and their course room."""
    async def make() -> dict:
        ana, ana_tok = await server.user("ana", "instructor")
        ben, ben_tok = await server.user("ben")
        carl, carl_tok = await server.user("carl")
        room = await server.room(ana_tok, "course", "Physics 101", members=[ben["id"]])
        return {"ana": (ana, ana_tok), "ben": (ben, ben_tok), "carl": (carl, carl_tok), "room": room}
    return io_loop.run_sync(make)


# -- operations ------------------------------------------------------------------------------
async def test_healthz(server):
    """GET /healthz answers 200 {status: ok} while the database answers."""
    status, body = await server.http("GET", "/healthz")
    assert status == 200 and body["status"] == "ok"


async def test_unknown_api_path_is_json_404(server):
    """An unknown /api path answers a JSON not_found error, not an HTML page."""
    _, tok = await server.user("ana")
    status, body = await server.http("GET", "/api/nothing-here", tok)
    assert_error(status, body, 404, "not_found")


# -- rooms -----------------------------------------------------------------------------------
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


# -- members ---------------------------------------------------------------------------------
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


# -- access rules on every room endpoint -----------------------------------------------------
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


# -- messages --------------------------------------------------------------------------------
async def test_history_paging_before_after_limit(server, trio):
    """History pages by seq in ascending order; `complete` says whether more remain in the paging direction."""
    _, ana_tok = trio["ana"]
    _, ben_tok = trio["ben"]
    rid = trio["room"]["id"]
    for i in range(1, 11):
        await send(server, ana_tok if i % 2 else ben_tok, rid, f"m{i}")

    async def seqs(query):
        body = await history(server, ben_tok, rid, query)
        return [m["seq"] for m in body["messages"]], body["complete"]

    assert await seqs("") == (list(range(1, 11)), True)
    assert await seqs("?limit=3") == ([8, 9, 10], False)
    assert await seqs("?before=8&limit=3") == ([5, 6, 7], False)
    assert await seqs("?before=4&limit=3") == ([1, 2, 3], True)
    assert await seqs("?after=2&limit=3") == ([3, 4, 5], False)
    assert await seqs("?after=7&limit=3") == ([8, 9, 10], True)
    assert await seqs("?after=10") == ([], True)
    assert (await seqs("?after=2&before=6"))[0] == [3, 4, 5]
    body = await history(server, ben_tok, rid, "?limit=1")
    m = body["messages"][0]
    assert m["content"] == "m10" and m["sender"]["id"] == trio["ben"][0]["id"]
    assert m["room"] == rid and m["reactions"] == {} and m["deleted_at"] is None
    assert m["created_at"].endswith("Z")


@pytest.mark.parametrize("query", ["?limit=0", "?limit=501", "?before=abc", "?after=-1", "?kind=bogus"])
async def test_history_rejects_bad_query(server, trio, query):
    """Out-of-range or malformed history parameters are 400."""
    status, body = await server.http("GET", f"/api/rooms/{trio['room']['id']}/messages{query}", trio["ana"][1])
    assert_error(status, body, 400, "bad_request")


async def test_history_filter_by_kind(server, trio):
    """`kind=` returns only messages of that kind, still paged by seq."""
    _, ana_tok = trio["ana"]
    rid = trio["room"]["id"]
    await send(server, ana_tok, rid, "a")
    await send(server, ana_tok, rid, "Exam on Friday", kind="announcement")
    await send(server, ana_tok, rid, "b")
    await send(server, ana_tok, rid, "Bring a pencil", kind="announcement")
    body = await history(server, ana_tok, rid, "?kind=announcement")
    assert [(m["seq"], m["content"]) for m in body["messages"]] == [(2, "Exam on Friday"), (4, "Bring a pencil")]
    body = await history(server, ana_tok, rid, "?kind=announcement&limit=1")
    assert [m["seq"] for m in body["messages"]] == [4] and body["complete"] is False
    body = await history(server, ana_tok, rid, "?kind=text")
    assert [m["seq"] for m in body["messages"]] == [1, 3]


async def test_rest_send_reaches_live_socket(server, trio):
    """A message posted over REST is broadcast as `message.new` to a socket subscribed with room.join."""
    ana, ana_tok = trio["ana"]
    _, ben_tok = trio["ben"]
    rid = trio["room"]["id"]
    b = await server.client(ben_tok)
    await b.request("room.join", room=rid)
    msg = await send(server, ana_tok, rid, "over rest", cmid="rest-1")
    ev = await b.next_event("message.new")
    assert ev["message"] == msg
    assert msg["seq"] == 1 and msg["sender"] == {"id": ana["id"], "display_name": ana["display_name"]}
    assert msg["client_msg_id"] == "rest-1"


async def test_resend_same_client_msg_id_is_idempotent(server, trio):
    """Resending a client_msg_id returns the stored message, stores no second copy and broadcasts nothing new."""
    _, ana_tok = trio["ana"]
    _, ben_tok = trio["ben"]
    rid = trio["room"]["id"]
    b = await server.client(ben_tok)
    await b.request("room.join", room=rid)
    first = await send(server, ana_tok, rid, "once", cmid="dup")
    await b.next_event("message.new")
    again = await send(server, ana_tok, rid, "once", cmid="dup", expect=200)
    assert again == first
    assert await b.no_event("message.new")
    body = await history(server, ana_tok, rid)
    assert [m["id"] for m in body["messages"]] == [first["id"]]
    # The id is unique per sender: another member may use the same client_msg_id.
    other = await send(server, ben_tok, rid, "mine", cmid="dup")
    assert other["id"] != first["id"] and other["seq"] == 2


@pytest.mark.parametrize("body,status,code", [
    ({"kind": "text", "content": "x"}, 400, "bad_request"),
    ({"client_msg_id": "", "kind": "text", "content": "x"}, 400, "bad_request"),
    ({"client_msg_id": "c" * 65, "kind": "text", "content": "x"}, 400, "bad_request"),
    ({"client_msg_id": "a", "kind": "text", "content": "   "}, 400, "bad_request"),
    ({"client_msg_id": "a", "kind": "text", "content": 5}, 400, "bad_request"),
    ({"client_msg_id": "a", "kind": "system", "content": "fake"}, 400, "bad_request"),
    ({"client_msg_id": "a", "kind": "image", "content": ""}, 400, "bad_request"),
    ({"client_msg_id": "a", "kind": "text", "content": "x", "reply_to": "999999"}, 400, "bad_request"),
    ({"client_msg_id": "a", "kind": "text", "content": "x" * (16 * 1024 + 1)}, 413, "too_large"),
    ({"client_msg_id": "a", "kind": "text", "content": "é" * (8 * 1024 + 1)}, 413, "too_large"),
])
async def test_send_rejects_bad_message(server, trio, body, status, code):
    """Missing ids, empty or non-string content, server-only kinds, foreign replies and content over 16 KiB are refused."""
    _, ana_tok = trio["ana"]
    rid = trio["room"]["id"]
    got, resp = await server.http("POST", f"/api/rooms/{rid}/messages", ana_tok, body)
    assert_error(got, resp, status, code)
    assert (await history(server, ana_tok, rid))["messages"] == []


async def test_content_of_exactly_16_kib_accepted(server, trio):
    """Content of exactly 16 KiB is at the limit and is stored whole."""
    _, ana_tok = trio["ana"]
    msg = await send(server, ana_tok, trio["room"]["id"], "x" * (16 * 1024))
    assert len(msg["content"]) == 16 * 1024


async def test_reply_to_message_of_same_room(server, trio):
    """reply_to naming a message of the same room is stored and returned."""
    _, ana_tok = trio["ana"]
    _, ben_tok = trio["ben"]
    rid = trio["room"]["id"]
    q = await send(server, ana_tok, rid, "question?")
    a = await send(server, ben_tok, rid, "answer", reply_to=q["id"])
    assert a["reply_to"] == q["id"]


async def test_edit_by_author_only(server, trio):
    """Only the author edits a message (even a room instructor may not); the edit is broadcast and sets edited_at."""
    _, ana_tok = trio["ana"]
    _, ben_tok = trio["ben"]
    rid = trio["room"]["id"]
    a = await server.client(ana_tok)
    await a.request("room.join", room=rid)
    msg = await send(server, ben_tok, rid, "teh answer")
    status, body = await server.http("PATCH", f"/api/messages/{msg['id']}", ana_tok, {"content": "hijacked"})
    assert_error(status, body, 403, "forbidden")
    status, body = await server.http("PATCH", f"/api/messages/{msg['id']}", ben_tok, {"content": "the answer"})
    assert status == 200, body
    edited = body["message"]
    assert edited["content"] == "the answer" and edited["edited_at"] is not None
    assert edited["id"] == msg["id"] and edited["seq"] == msg["seq"]
    ev = await a.next_event("message.updated")
    assert ev["message"]["content"] == "the answer"
    stored = (await history(server, ana_tok, rid))["messages"][0]
    assert stored["content"] == "the answer" and stored["edited_at"] == edited["edited_at"]


@pytest.mark.parametrize("content,status,code", [
    ("", 400, "bad_request"), (None, 400, "bad_request"), ("y" * (16 * 1024 + 1), 413, "too_large")])
async def test_edit_rejects_bad_content(server, trio, content, status, code):
    """An edit to empty, missing or oversized content is refused and the message is unchanged."""
    _, ana_tok = trio["ana"]
    msg = await send(server, ana_tok, trio["room"]["id"], "keep me")
    got, body = await server.http("PATCH", f"/api/messages/{msg['id']}", ana_tok, {"content": content})
    assert_error(got, body, status, code)
    assert (await history(server, ana_tok, trio["room"]["id"]))["messages"][0]["content"] == "keep me"


async def test_delete_by_author(server, trio):
    """The author deletes a message: content becomes "" and deleted_at is set, in the answer, the broadcast and history."""
    _, ana_tok = trio["ana"]
    _, ben_tok = trio["ben"]
    rid = trio["room"]["id"]
    a = await server.client(ana_tok)
    await a.request("room.join", room=rid)
    msg = await send(server, ben_tok, rid, "oops")
    status, body = await server.http("DELETE", f"/api/messages/{msg['id']}", ben_tok)
    assert status == 200, body
    assert body["message"]["content"] == "" and body["message"]["deleted_at"] is not None
    ev = await a.next_event("message.deleted")
    assert ev["message"]["id"] == msg["id"] and ev["message"]["content"] == ""
    stored = (await history(server, ana_tok, rid))["messages"]
    assert [(m["seq"], m["content"], m["deleted_at"] is not None) for m in stored] == [(1, "", True)]
    async with server.deps.db.read() as s:  # the text is erased from storage, not only hidden
        row = await s.get(Message, int(msg["id"]))
    assert row.content == "" and row.deleted_at is not None
    status, body = await server.http("PATCH", f"/api/messages/{msg['id']}", ben_tok, {"content": "back"})
    assert_error(status, body, 409, "conflict")


async def test_room_instructor_deletes_any_message(server, trio):
    """A room instructor deletes a student's message; another student may not."""
    _, ana_tok = trio["ana"]
    _, ben_tok = trio["ben"]
    dan, dan_tok = await server.user("dan")
    rid = trio["room"]["id"]
    await server.http("POST", f"/api/rooms/{rid}/members", ana_tok, {"user_id": dan["id"]})
    msg = await send(server, ben_tok, rid, "spam")
    status, body = await server.http("DELETE", f"/api/messages/{msg['id']}", dan_tok)
    assert_error(status, body, 403, "forbidden")
    stored = [m for m in (await history(server, ana_tok, rid))["messages"] if m["id"] == msg["id"]]
    assert stored[0]["content"] == "spam"
    status, body = await server.http("DELETE", f"/api/messages/{msg['id']}", ana_tok)
    assert status == 200 and body["message"]["deleted_at"] is not None


async def test_announcement_only_by_room_instructor(server, trio):
    """A student's announcement is 403; a room instructor's is stored as an announcement."""
    _, ana_tok = trio["ana"]
    ben, ben_tok = trio["ben"]
    rid = trio["room"]["id"]
    resp = await send(server, ben_tok, rid, "I am the teacher now", kind="announcement", expect=403)
    assert_error(403, resp, 403, "forbidden")
    msg = await send(server, ana_tok, rid, "Exam moved", kind="announcement")
    assert msg["kind"] == "announcement"
    assert [m["kind"] for m in (await history(server, ben_tok, rid))["messages"]] == ["announcement"]
    # Room roles, not global roles, decide: ben becomes a room instructor and may announce.
    await server.http("POST", f"/api/rooms/{rid}/members", ana_tok, {"user_id": ben["id"], "role": "instructor"})
    assert (await send(server, ben_tok, rid, "Now I am", kind="announcement"))["kind"] == "announcement"


async def test_search_words_prefixes_room_scoped(server, trio):
    """Search finds whole words and prefixes, newest first, never deleted messages, only in the asked room."""
    _, ana_tok = trio["ana"]
    ben, ben_tok = trio["ben"]
    rid = trio["room"]["id"]
    other = await server.room(ana_tok, "group", "Elsewhere", members=[ben["id"]])
    fox = await send(server, ana_tok, rid, "The quick brown fox")
    quickly = await send(server, ben_tok, rid, "Come quickly, please!")
    await send(server, ana_tok, rid, "A slow turtle")
    gone = await send(server, ana_tok, rid, "quick but deleted")
    await server.http("DELETE", f"/api/messages/{gone['id']}", ana_tok)
    await send(server, ana_tok, other["id"], "quick in another room")

    async def search(q):
        status, body = await server.http("GET", f"/api/rooms/{rid}/messages/search?q={q}", ben_tok)
        assert status == 200, body
        return [m["id"] for m in body["messages"]]

    assert await search("quick") == [quickly["id"], fox["id"]]
    assert await search("QUI") == [quickly["id"], fox["id"]]
    assert await search("brown%20fox") == [fox["id"]]
    assert await search("brown%20turtle") == []
    assert await search("deleted") == []
    assert await search("another") == []
    assert await search("%22fox%22%20*%20%27%3A%26%7C(") == [fox["id"]]  # query syntax is not passed through
    # Edits are searchable at once and the old words no longer match.
    await server.http("PATCH", f"/api/messages/{quickly['id']}", ben_tok, {"content": "arrive soon"})
    assert await search("quickly") == []
    assert await search("soon") == [quickly["id"]]
    status, body = await server.http("GET", f"/api/rooms/{rid}/messages/search?q=quick&limit=1", ben_tok)
    assert [m["id"] for m in body["messages"]] == [fox["id"]]


@pytest.mark.parametrize("query", ["", "?q=", "?q=%20%20", "?q=quick&limit=0"])
async def test_search_rejects_empty_query(server, trio, query):
    """A missing or blank search query, or a bad limit, is 400."""
    status, body = await server.http("GET", f"/api/rooms/{trio['room']['id']}/messages/search{query}",
                                     trio["ana"][1])
    assert_error(status, body, 400, "bad_request")


async def test_statistics(server, trio):
    """Statistics count live messages by kind, by sender and per day, with first/last times."""
    ana, ana_tok = trio["ana"]
    ben, ben_tok = trio["ben"]
    rid = trio["room"]["id"]
    status, empty = await server.http("GET", f"/api/rooms/{rid}/statistics", ben_tok)
    assert status == 200 and empty["total"] == 0 and empty["first"] is None and empty["by_kind"] == {}
    first = await send(server, ana_tok, rid, "one")
    heads = await send(server, ana_tok, rid, "Heads up", kind="announcement")
    two = await send(server, ben_tok, rid, "two")
    gone = await send(server, ben_tok, rid, "three")
    last = await send(server, ana_tok, rid, "four")
    days: dict[str, int] = {}
    for m in (first, heads, two, last):
        days[m["created_at"][:10]] = days.get(m["created_at"][:10], 0) + 1
    await server.http("DELETE", f"/api/messages/{gone['id']}", ben_tok)
    status, stats = await server.http("GET", f"/api/rooms/{rid}/statistics", ben_tok)
    assert status == 200, stats
    assert stats["total"] == 4
    assert stats["by_kind"] == {"text": 3, "announcement": 1}
    assert stats["by_sender"] == [{"user_id": ana["id"], "display_name": ana["display_name"], "count": 3},
                                  {"user_id": ben["id"], "display_name": ben["display_name"], "count": 1}]
    assert stats["per_day"] == [{"day": d, "count": n} for d, n in sorted(days.items())]
    assert stats["first"] == first["created_at"] and stats["last"] == last["created_at"]


# -- users -----------------------------------------------------------------------------------
async def test_user_prefix_search(server):
    """GET /api/users?q= finds users by username or display-name prefix, case-insensitively, never recorders."""
    _, tok = await server.user("alice", display_name="Alice A")
    await server.user("alina")
    await server.user("zed", display_name="Albert Zed")
    await server.user("bob")
    await server.user("al_rec", "recorder")

    async def find(q):
        status, body = await server.http("GET", f"/api/users?q={q}", tok)
        assert status == 200, body
        return [u["username"] for u in body["users"]]

    assert await find("ali") == ["alice", "alina"]
    assert await find("AL") == ["alice", "alina", "zed"]
    assert await find("bo") == ["bob"]
    assert await find("lice") == []
    assert await find("%25") == []  # a literal %, not a wildcard
    assert await find("_") == []    # a literal _, not a wildcard
    assert len(await find("a&limit=2")) == 2
    status, body = await server.http("GET", "/api/users?q=al")
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
