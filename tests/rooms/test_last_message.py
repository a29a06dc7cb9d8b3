"""The room list's last message (issue 19.3; server/db/messages.last_messages,
rooms.wire.last_message_wire; docs/PROTOCOL-ADDITIONS.md "Objects"): each room carries its
newest message nobody deleted — sender, one-line preview, "📎 file" for attachments, time —
in GET /api/rooms, GET /api/rooms/{id} and the room.join ack, read in one query for all rooms."""
from __future__ import annotations

import contextlib

from sqlalchemy import event

from tests.api import send, trio  # noqa: F401  (trio is a fixture)
from tests.files.test_files import PNG, upload


async def listed(server, token: str) -> dict[str, dict]:
    """GET /api/rooms as ``{room id: room}``."""
    status, body = await server.http("GET", "/api/rooms", token)
    assert status == 200, body
    return {r["id"]: r for r in body["rooms"]}


async def last_of(server, token: str, room_id: str) -> dict | None:
    return (await listed(server, token))[room_id]["last_message"]


@contextlib.contextmanager
def counted_statements(server):
    """Count the SQL statements the server's engine runs inside the block."""
    seen: list[str] = []
    engine = server.deps.db.engine.sync_engine

    def count(conn, cursor, statement, *args):
        seen.append(statement)
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def test_room_without_messages_has_no_last_message(server, trio):
    """A fresh room lists ``last_message: null`` in the list, the room and the room.join ack."""
    rid = trio["room"]["id"]
    _, ben_tok = trio["ben"]
    assert await last_of(server, ben_tok, rid) is None
    status, body = await server.http("GET", f"/api/rooms/{rid}", ben_tok)
    assert status == 200 and body["room"]["last_message"] is None
    c = await server.client(ben_tok)
    assert (await c.request("room.join", room=rid))["room"]["last_message"] is None


async def test_last_message_carries_sender_one_line_preview_and_time(server, trio):
    """The newest message is listed with its sender, seq, kind, time and its text on one line."""
    rid = trio["room"]["id"]
    ana, ana_tok = trio["ana"]
    _, ben_tok = trio["ben"]
    await send(server, ana_tok, rid, "first")
    sent = await send(server, ana_tok, rid, "Read  chapter 2\n\nbefore\tThursday ")
    last = await last_of(server, ben_tok, rid)
    assert last == {"id": sent["id"], "seq": sent["seq"], "kind": "text",
                    "sender": {"id": ana["id"], "display_name": ana["display_name"]},
                    "preview": "Read chapter 2 before Thursday",
                    "created_at": sent["created_at"], "edited_at": None}
    status, body = await server.http("GET", f"/api/rooms/{rid}", ben_tok)
    assert body["room"]["last_message"] == last
    c = await server.client(ben_tok)
    assert (await c.request("room.join", room=rid))["room"]["last_message"] == last


async def test_long_text_is_cut_to_one_short_line(server, trio):
    """A 16 KiB message previews as its first 119 characters and "…"; the rest is not sent."""
    rid = trio["room"]["id"]
    _, ana_tok = trio["ana"]
    words = ("lorem ipsum dolor " * 1000)[:16000]
    await send(server, ana_tok, rid, words)
    preview = (await last_of(server, ana_tok, rid))["preview"]
    assert len(preview) == 120 and preview.endswith("…")
    assert preview[:-1] == words[:119].rstrip()


async def test_attachment_previews_as_file(server, trio):
    """A message with an attachment previews as "📎 file", whatever its caption."""
    rid = trio["room"]["id"]
    ben, ben_tok = trio["ben"]
    (f,) = await upload(server, ben_tok, [("diagram.png", PNG)])
    await send(server, ben_tok, rid, "secret caption", kind="image", file_id=f["id"])
    last = await last_of(server, trio["ana"][1], rid)
    assert last["preview"] == "📎 file" and last["kind"] == "image"
    assert last["sender"]["id"] == ben["id"]


async def test_deleted_message_falls_back_to_the_previous_one_or_none(server, trio):
    """Deleting the newest message lists the one before it; deleting every message lists none;
    a deleted message's text is in no room wire."""
    rid = trio["room"]["id"]
    _, ana_tok = trio["ana"]
    _, ben_tok = trio["ben"]
    first = await send(server, ben_tok, rid, "keep me")
    second = await send(server, ben_tok, rid, "regret this")
    status, _ = await server.http("DELETE", f"/api/messages/{second['id']}", ben_tok)
    assert status == 200
    last = await last_of(server, ana_tok, rid)
    assert last["id"] == first["id"] and last["preview"] == "keep me"
    status, _ = await server.http("DELETE", f"/api/messages/{first['id']}", ana_tok)  # the instructor
    assert status == 200
    rooms = await listed(server, ben_tok)
    assert rooms[rid]["last_message"] is None
    assert rooms[rid]["last_seq"] == second["seq"]  # unread counting is unchanged
    status, body = await server.http("GET", f"/api/rooms/{rid}", ben_tok)
    assert body["room"]["last_message"] is None and "regret" not in str(body)


async def test_edit_shows_in_the_preview(server, trio):
    """An edited newest message is listed with its new text and ``edited_at``."""
    rid = trio["room"]["id"]
    _, ben_tok = trio["ben"]
    m = await send(server, ben_tok, rid, "teh answer")
    status, body = await server.http("PATCH", f"/api/messages/{m['id']}", ben_tok, {"content": "the answer"})
    assert status == 200
    last = await last_of(server, trio["ana"][1], rid)
    assert last["preview"] == "the answer" and last["edited_at"] == body["message"]["edited_at"]


async def test_system_messages_have_no_sender(server, trio):
    """A system message (a member added) is listed with a null sender id."""
    rid = trio["room"]["id"]
    _, ana_tok = trio["ana"]
    carl, _ = trio["carl"]
    status, _ = await server.http("POST", f"/api/rooms/{rid}/members", ana_tok, {"user_id": carl["id"]})
    assert status == 201
    last = await last_of(server, ana_tok, rid)
    assert last["kind"] == "system" and last["sender"]["id"] is None
    assert "added" in last["preview"]


async def test_each_room_shows_only_its_own_last_message_to_its_members(server, trio):
    """Every room lists its own newest message; a non-member sees neither the room nor it."""
    rid = trio["room"]["id"]
    ana, ana_tok = trio["ana"]
    ben, ben_tok = trio["ben"]
    _, carl_tok = trio["carl"]
    other = await server.room(ana_tok, "group", "Lab", members=[])
    direct = await server.room(ben_tok, "direct", "", members=[ana["id"]])
    await send(server, ana_tok, rid, "course news")
    await send(server, ana_tok, other["id"], "lab only")
    await send(server, ben_tok, direct["id"], "hi ana")
    mine = await listed(server, ana_tok)
    assert {k: v["last_message"]["preview"] for k, v in mine.items()} == {
        rid: "course news", other["id"]: "lab only", direct["id"]: "hi ana"}
    assert list(mine) == [direct["id"], other["id"], rid]  # newest activity first, as before
    bens = await listed(server, ben_tok)
    assert set(bens) == {rid, direct["id"]}
    assert "lab only" not in str(bens)
    status, body = await server.http("GET", "/api/rooms", carl_tok)
    assert body["rooms"] == []
    # Creating the existing direct room again answers with its last message too.
    status, body = await server.http("POST", "/api/rooms", ana_tok,
                                     {"kind": "direct", "name": "", "members": [ben["id"]]})
    assert body["room"]["id"] == direct["id"] and body["room"]["last_message"]["preview"] == "hi ana"


async def test_one_statement_reads_the_last_messages_of_all_rooms(server, trio):
    """GET /api/rooms runs the same number of SQL statements for 2 rooms as for 12."""
    _, ana_tok = trio["ana"]

    async def statements_for_list() -> int:
        with counted_statements(server) as seen:
            await listed(server, ana_tok)
        return len([s for s in seen if s.lstrip().upper().startswith("SELECT")])

    g0 = await server.room(ana_tok, "group", "G0")
    await send(server, ana_tok, trio["room"]["id"], "x")
    await send(server, ana_tok, g0["id"], "m0")
    few = await statements_for_list()
    for i in range(1, 11):
        room = await server.room(ana_tok, "group", f"G{i}")
        await send(server, ana_tok, room["id"], f"m{i}")
    rooms = await listed(server, ana_tok)
    assert len(rooms) == 12 and all(r["last_message"] for r in rooms.values())
    assert await statements_for_list() == few


async def test_room_list_follows_live_events(server, trio):
    """Each message.new / message.updated / message.deleted a member's socket receives is
    already reflected by the room list when it arrives (so a client reloading on an event sees
    the new preview)."""
    rid = trio["room"]["id"]
    _, ana_tok = trio["ana"]
    _, ben_tok = trio["ben"]
    watcher = await server.client(ana_tok)
    await watcher.request("room.join", room=rid)
    sender = await server.client(ben_tok)
    await sender.request("message.send", room=rid, client_msg_id="l1", kind="text", content="one")
    new = await watcher.next_event("message.new")
    assert (await last_of(server, ana_tok, rid))["id"] == new["message"]["id"]
    await sender.request("message.send", room=rid, client_msg_id="l2", kind="text", content="two")
    two = (await watcher.next_event("message.new"))["message"]
    assert two["content"] == "two" and (await last_of(server, ana_tok, rid))["preview"] == "two"
    await sender.request("message.edit", message_id=two["id"], content="two, edited")
    await watcher.next_event("message.updated")
    assert (await last_of(server, ana_tok, rid))["preview"] == "two, edited"
    await sender.request("message.delete", message_id=two["id"])
    await watcher.next_event("message.deleted")
    last = await last_of(server, ana_tok, rid)
    assert last["id"] == new["message"]["id"] and last["preview"] == "one"
