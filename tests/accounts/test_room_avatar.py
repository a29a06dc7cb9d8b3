"""A group or course room's picture (issue 19.2; server/accounts/avatar_store.py
set_room_avatar): its instructors set, replace and remove it; it is in the room wire and
served like a user's avatar; everyone in the room hears room.updated; students, direct rooms,
and what is not an image are refused with nothing stored."""
from __future__ import annotations

from tests.accounts.test_avatars import fetch, png_bomb, picture
from tests.calls.helpers import room_with
from tests.files.test_files import PDF


async def put_room_avatar(server, token: str, room: str, data: bytes) -> tuple[int, dict]:
    return await server.http("PUT", f"/api/rooms/{room}/avatar", token, raw_body=data,
                             headers={"Content-Type": "image/png"})


async def test_instructors_set_replace_and_remove_a_room_picture(server):
    rid, [(_, a_tok), (_, b_tok)] = await room_with(server, "ana", "ben")
    b = await server.client(b_tok)
    await b.request("room.join", room=rid)
    status, body = await put_room_avatar(server, a_tok, rid, picture())
    assert status == 200, body
    first = body["avatar"]
    assert set(first) == {"small", "large"}
    updated = await b.next_event("room.updated")
    assert updated["room"] == {"id": rid, "avatar": first}
    resp = await fetch(server, first["small"])
    assert resp.code == 200 and resp.headers["Content-Type"] == "image/webp"
    status, got = await server.http("GET", f"/api/rooms/{rid}", b_tok)
    assert got["room"]["avatar"] == first
    status, rooms = await server.http("GET", "/api/rooms", b_tok)
    assert next(r for r in rooms["rooms"] if r["id"] == rid)["avatar"] == first
    status, body = await put_room_avatar(server, a_tok, rid, picture("JPEG"))
    assert status == 200 and body["avatar"] != first
    assert (await fetch(server, first["small"])).code == 404  # the old one is gone
    status, body = await server.http("DELETE", f"/api/rooms/{rid}/avatar", a_tok)
    assert status == 200 and body == {"avatar": None}
    status, got = await server.http("GET", f"/api/rooms/{rid}", a_tok)
    assert got["room"]["avatar"] is None


async def test_room_pictures_refused_for_students_direct_rooms_and_bad_images(server):
    rid, [(_, a_tok), (_, b_tok)] = await room_with(server, "ana", "ben")
    status, _ = await put_room_avatar(server, b_tok, rid, picture())
    assert status == 403
    did, [(_, d_tok), _] = await room_with(server, "dora", "dan", kind="direct")
    status, _ = await put_room_avatar(server, d_tok, did, picture())
    assert status in (403, 409)
    status, _ = await put_room_avatar(server, a_tok, rid, PDF)
    assert status == 415
    status, _ = await put_room_avatar(server, a_tok, rid, png_bomb())
    assert status == 413
    status, got = await server.http("GET", f"/api/rooms/{rid}", a_tok)
    assert got["room"]["avatar"] is None  # nothing was stored
