"""Messages over HTTP (server/chat/handlers.py; PROTOCOL §3, docs/PROTOCOL-ADDITIONS.md):
history paging and filters, sending (idempotent per client_msg_id), edits and deletions,
announcements, search and statistics."""
from __future__ import annotations

import pytest

from server.db.models import Message
from tests.api import assert_error, history, send, trio  # noqa: F401  (trio is a fixture)


# -- history ----------------------------------------------------------------------------------
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


# -- sending ----------------------------------------------------------------------------------
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


# -- edits and deletions ----------------------------------------------------------------------
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


# -- search and statistics --------------------------------------------------------------------
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
