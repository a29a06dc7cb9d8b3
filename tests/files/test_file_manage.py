"""The teacher controls what was shared (issue 15.5): rename a file, rename/move/delete a folder
with everything in it, and a deleted file's links dead at once (docs/FILES.md)."""
from __future__ import annotations

from tests.api import assert_error
from tests.files.test_files import PDF, fetch, link, stored_blobs, upload


async def _class(server):
    """An instructor, a student member and an outsider, and their course room."""
    ana, ana_tok = await server.user("man_ana", "instructor")
    ben, ben_tok = await server.user("man_ben")
    _, carl_tok = await server.user("man_carl")
    room = await server.room(ana_tok, members=[ben["id"]])
    return room["id"], ana_tok, ben_tok, carl_tok


async def names(server, tok, room, folder=None):
    q = f"/api/files?room={room}" + (f"&folder={folder}" if folder is not None else "")
    _, body = await server.http("GET", q, tok)
    return sorted((f["folder"], f["name"]) for f in body["files"])


async def test_rename_keeps_extension_and_links_and_refuses_bad_names(server):
    """A rename keeps the extension, sanitises the name, keeps links working (under the new
    name); empty or non-string names are 400, a name taken in the folder 409."""
    room, ana_tok, ben_tok, carl_tok = await _class(server)
    [f, g] = await upload(server, ana_tok, [("notes.txt", b"chapter one"), ("other.txt", b"x")],
                          {"room": room, "folder": "week 1"})
    url = await link(server, ben_tok, f["id"])
    status, body = await server.http("PATCH", f"/api/files/{f['id']}", ana_tok, {"name": "  Chapter: 1  "})
    assert status == 200 and body["file"]["name"] == "Chapter_ 1.txt" and body["file"]["folder"] == "week 1"
    r = await fetch(server, url)
    assert r.code == 200 and r.body == b"chapter one" and "Chapter_%201.txt" in r.headers["Content-Disposition"]
    status, body = await server.http("PATCH", f"/api/files/{f['id']}", ana_tok, {"name": "final.TXT"})
    assert body["file"]["name"] == "final.TXT"
    for bad in ({"name": ""}, {"name": "   "}, {"name": 5}, {}):
        status, resp = await server.http("PATCH", f"/api/files/{f['id']}", ana_tok, bad)
        assert_error(status, resp, 400, "bad_request")
    status, resp = await server.http("PATCH", f"/api/files/{f['id']}", ana_tok, {"name": "OTHER"})
    assert_error(status, resp, 409, "conflict")
    # A student renames only their own files; an outsider cannot see the file at all.
    status, resp = await server.http("PATCH", f"/api/files/{f['id']}", ben_tok, {"name": "mine"})
    assert_error(status, resp, 403, "forbidden")
    status, resp = await server.http("PATCH", f"/api/files/{f['id']}", carl_tok, {"name": "mine"})
    assert_error(status, resp, 404, "not_found")
    assert await names(server, ana_tok, room) == [("week 1", "final.TXT"), ("week 1", "other.txt")]
    assert g["name"] == "other.txt"


async def test_move_into_a_folder_holding_the_same_name_is_a_conflict(server):
    room, ana_tok, _, _ = await _class(server)
    [a] = await upload(server, ana_tok, [("a.txt", b"1")], {"room": room, "folder": "x"})
    [b] = await upload(server, ana_tok, [("A.txt", b"2")], {"room": room, "folder": "y"})
    status, resp = await server.http("POST", f"/api/files/{a['id']}/move", ana_tok, {"folder": "y"})
    assert_error(status, resp, 409, "conflict")
    status, body = await server.http("POST", f"/api/files/{a['id']}/move", ana_tok, {"folder": "z/new"})
    assert status == 200 and body["file"]["folder"] == "z/new"  # a new folder comes into being


async def test_folder_rename_and_move_carry_subfolders_and_keep_links(server):
    """Moving a folder moves every file in it and below it; links keep working; bad input is
    refused and nothing changes."""
    room, ana_tok, ben_tok, carl_tok = await _class(server)
    [f1] = await upload(server, ana_tok, [("a.txt", b"aaa")], {"room": room, "folder": "week 1"})
    [f2] = await upload(server, ben_tok, [("b.txt", b"bbb")], {"room": room, "folder": "week 1/labs"})
    await upload(server, ana_tok, [("c.txt", b"ccc")], {"room": room, "folder": "week 10"})
    await upload(server, ana_tok, [("d.txt", b"ddd")], {"room": room, "folder": "archive"})
    url = await link(server, ben_tok, f2["id"])
    before = await names(server, ana_tok, room)
    for body, code, status in (
            ({"folder": "week 1", "to": "week 10"}, "conflict", 409),  # no merging
            ({"folder": "week 1", "to": "week 1/labs/deeper"}, "bad_request", 400),  # into itself
            ({"folder": "week 1", "to": ""}, "bad_request", 400),  # the top level has no name
            ({"folder": "", "to": "x"}, "bad_request", 400),
            ({"folder": "week 1"}, "bad_request", 400),
            ({"folder": "week 1", "to": "a/../b"}, "bad_request", 400),
            ({"folder": "nowhere", "to": "x"}, "not_found", 404),  # a folder with no files
            ({"folder": "week", "to": "x"}, "not_found", 404)):  # a prefix is not a folder
        st, resp = await server.http("POST", "/api/folders/move", ana_tok, {"room": room, **body})
        assert_error(st, resp, status, code)
    st, resp = await server.http("POST", "/api/folders/move", ben_tok, {"room": room, "folder": "week 1", "to": "x"})
    assert_error(st, resp, 403, "forbidden")  # students do not move everyone's files
    st, resp = await server.http("POST", "/api/folders/move", carl_tok, {"room": room, "folder": "week 1", "to": "x"})
    assert_error(st, resp, 403, "forbidden")
    assert await names(server, ana_tok, room) == before
    st, body = await server.http("POST", "/api/folders/move", ana_tok,
                                 {"room": room, "folder": "week 1", "to": "archive/2026/Week one"})
    assert st == 200 and body == {"folder": "archive/2026/Week one", "files": 2}
    assert await names(server, ana_tok, room) == [
        ("archive", "d.txt"), ("archive/2026/Week one", "a.txt"), ("archive/2026/Week one/labs", "b.txt"),
        ("week 10", "c.txt")]
    r = await fetch(server, url)
    assert r.code == 200 and r.body == b"bbb"
    _, one = await server.http("GET", f"/api/files/{f1['id']}", ana_tok)
    assert one["file"]["folder"] == "archive/2026/Week one"


async def test_folder_delete_deletes_its_files_and_their_links(server):
    """Deleting a folder deletes every file in it and below it: blobs gone, links 410 with the
    page for people; the rest of the room stays."""
    room, ana_tok, ben_tok, _ = await _class(server)
    await upload(server, ana_tok, [("a.txt", b"aaa")], {"room": room, "folder": "old"})
    [deep] = await upload(server, ben_tok, [("b.txt", b"bbb")], {"room": room, "folder": "old/labs"})
    [keep] = await upload(server, ana_tok, [("k.pdf", PDF)], {"room": room, "folder": "older"})
    url = await link(server, ben_tok, deep["id"])
    st, resp = await server.http("POST", "/api/folders/delete", ben_tok, {"room": room, "folder": "old"})
    assert_error(st, resp, 403, "forbidden")
    st, resp = await server.http("POST", "/api/folders/delete", ana_tok, {"room": room, "folder": ""})
    assert_error(st, resp, 400, "bad_request")
    st, resp = await server.http("POST", "/api/folders/delete", ana_tok, {"room": room})
    assert_error(st, resp, 400, "bad_request")
    st, body = await server.http("POST", "/api/folders/delete", ana_tok, {"room": room, "folder": "old"})
    assert st == 200 and body == {"folder": "old", "files": 2}
    assert await names(server, ana_tok, room) == [("older", "k.pdf")]
    assert len(await stored_blobs(server)) == 1
    r = await fetch(server, url)
    assert r.code == 410 and b"deleted" in r.body
    r = await fetch(server, url, {"Accept": "text/html"})
    assert r.code == 410 and b"This link no longer works" in r.body and b"bbb" not in r.body
    st, resp = await server.http("POST", "/api/folders/delete", ana_tok, {"room": room, "folder": "old"})
    assert_error(st, resp, 404, "not_found")
    assert (await fetch(server, await link(server, ana_tok, keep["id"]))).code == 200


async def test_own_folders_outside_rooms(server):
    """Without a room, folder operations act on the caller's own files only."""
    _, a_tok = await server.user("solo_a")
    _, b_tok = await server.user("solo_b")
    await upload(server, a_tok, [("a.txt", b"a")], {"folder": "mine"})
    await upload(server, b_tok, [("b.txt", b"b")], {"folder": "mine"})
    st, body = await server.http("POST", "/api/folders/move", a_tok, {"folder": "mine", "to": "renamed"})
    assert st == 200 and body["files"] == 1
    _, listed = await server.http("GET", "/api/files", b_tok)
    assert [f["folder"] for f in listed["files"]] == ["mine"]
    st, body = await server.http("POST", "/api/folders/delete", b_tok, {"folder": "mine", "room": None})
    assert st == 200 and body["files"] == 1
    _, listed = await server.http("GET", "/api/files", a_tok)
    assert [f["folder"] for f in listed["files"]] == ["renamed"]


async def test_members_hear_when_the_rooms_files_change(server):
    """files.changed {room, action, files} reaches the room's sockets for a rename, a move, a
    folder move and deletes, so open Files panels follow."""
    room, ana_tok, ben_tok, _ = await _class(server)
    [f, g] = await upload(server, ana_tok, [("a.txt", b"a"), ("b.txt", b"b")], {"room": room, "folder": "x"})
    b = await server.client(ben_tok)
    await b.request("room.join", room=room)
    await server.http("PATCH", f"/api/files/{f['id']}", ana_tok, {"name": "c"})
    assert await b.next_event("files.changed") == {"type": "files.changed", "room": room, "action": "renamed", "files": [f["id"]]}
    await server.http("POST", "/api/folders/move", ana_tok, {"room": room, "folder": "x", "to": "y"})
    ev = await b.next_event("files.changed")
    assert ev["action"] == "moved" and sorted(ev["files"]) == sorted([f["id"], g["id"]])
    await server.http("DELETE", f"/api/files/{g['id']}", ana_tok)
    assert (await b.next_event("files.changed"))["files"] == [g["id"]]
    await server.http("POST", "/api/folders/delete", ana_tok, {"room": room, "folder": "y"})
    assert await b.next_event("files.changed") == {"type": "files.changed", "room": room, "action": "deleted", "files": [f["id"]]}


async def test_a_link_handed_out_before_the_delete_is_dead_at_once(server):
    """A student's link obtained before the instructor deletes the file: 410 with the friendly
    page, never the bytes."""
    room, ana_tok, ben_tok, _ = await _class(server)
    [f] = await upload(server, ben_tok, [("essay.txt", b"secret essay")], {"room": room})
    url = await link(server, ben_tok, f["id"])
    assert (await fetch(server, url)).body == b"secret essay"
    st, _ = await server.http("DELETE", f"/api/files/{f['id']}", ana_tok)
    assert st == 204
    r = await fetch(server, url, {"Accept": "text/html"})
    assert r.code == 410 and b"secret essay" not in r.body
    assert r.headers["Content-Type"].startswith("text/html") and b"Back to Podium" in r.body
