"""Signed links follow access (issue 13.6): a link names its holder, and the download checks
that the holder may still read the file."""
from __future__ import annotations

from tests.files.test_files import fetch, link, upload


async def room_file(server):
    """ana (instructor) and ben (student) in a room, and a file of that room."""
    ana, a_tok = await server.user("ana", "instructor")
    ben, b_tok = await server.user("ben")
    room = (await server.room(a_tok, members=[ben["id"]]))["id"]
    [f] = await upload(server, a_tok, [("notes.txt", b"room notes")], {"room": room})
    assert f["room"] == room
    return room, f, (ana, a_tok), (ben, b_tok)


async def test_a_members_link_stops_when_they_are_removed_from_the_room(server):
    """ben's link works while he is a member and gives 403 once he is removed; ana's link goes on working."""
    room, f, (ana, a_tok), (ben, b_tok) = await room_file(server)
    ben_url, ana_url = await link(server, b_tok, f["id"]), await link(server, a_tok, f["id"])
    assert (await fetch(server, ben_url)).code == 200
    status, _ = await server.http("DELETE", f"/api/rooms/{room}/members/{ben['id']}", a_tok)
    assert status == 200
    r = await fetch(server, ben_url)
    assert r.code == 403 and b"no access" in r.body
    assert (await fetch(server, ana_url)).code == 200


async def test_a_link_stops_when_its_holder_leaves_the_room(server):
    """Leaving the room (removing yourself) revokes the links you minted for its files."""
    room, f, _, (ben, b_tok) = await room_file(server)
    url = await link(server, b_tok, f["id"], disposition="inline")
    assert (await fetch(server, url)).code == 200
    status, _ = await server.http("DELETE", f"/api/rooms/{room}/members/{ben['id']}", b_tok)
    assert status == 200
    assert (await fetch(server, url)).code == 403


async def test_a_link_cannot_be_moved_to_another_holder(server):
    """Rewriting the holder of a valid link to someone who still has access is refused (the holder is signed)."""
    room, f, (ana, a_tok), (ben, b_tok) = await room_file(server)
    url = await link(server, b_tok, f["id"])
    assert f"u={ben['id']}" in url
    assert (await fetch(server, url.replace(f"u={ben['id']}", f"u={ana['id']}"))).code == 403


async def test_a_deleted_file_and_a_deleted_holder_revoke_the_link(server):
    """Deleting the file gives 410 at once; the holder's account no longer existing gives 403."""
    room, f, (ana, a_tok), (ben, b_tok) = await room_file(server)
    url = await link(server, b_tok, f["id"])
    [g] = await upload(server, a_tok, [("more.txt", b"more")], {"room": room})
    other = await link(server, b_tok, g["id"])
    status, _ = await server.http("DELETE", f"/api/files/{f['id']}", a_tok)
    assert status == 204
    assert (await fetch(server, url)).code == 410
    from server.db.models import User  # the account goes away under the link

    async with server.deps.db.write() as s:
        await s.delete(await s.get(User, int(ben["id"])))
    assert (await fetch(server, other)).code == 403
