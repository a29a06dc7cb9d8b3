"""Folders, move, copy and file statistics (PROTOCOL §3 "Files"), on disk and on S3."""
from __future__ import annotations

import hashlib
from urllib.parse import quote

from tests.s3server import storage_settings  # noqa: F401  (every test here runs on disk and on S3)
from tests.files.test_files import PDF, PNG, config_overrides, fetch, link, stored_blobs, upload  # noqa: F401
from tests.api import assert_error


async def _class(server):
    """An instructor, a student member and an outsider, and their course room."""
    ana, ana_tok = await server.user("fold_ana", "instructor")
    ben, ben_tok = await server.user("fold_ben")
    _, carl_tok = await server.user("fold_carl")
    room = await server.room(ana_tok, members=[ben["id"]])
    return room, ana_tok, ben_tok, carl_tok


async def test_move_changes_folder_and_keeps_links(server):
    """A move changes only the folder and keeps its signed link working; a missing or traversal folder is 400."""
    _, tok = await server.user("ana")
    [f] = await upload(server, tok, [("notes.txt", b"chapter one")], {"folder": "inbox"})
    url = await link(server, tok, f["id"])
    status, body = await server.http("POST", f"/api/files/{f['id']}/move", tok, {"folder": " week 1 / notes "})
    assert status == 200 and body["file"] == {**f, "folder": "week 1/notes"}
    _, listed = await server.http("GET", "/api/files?folder=week%201/notes", tok)
    assert [x["id"] for x in listed["files"]] == [f["id"]]
    _, listed = await server.http("GET", "/api/files?folder=inbox", tok)
    assert listed["files"] == []
    r = await fetch(server, url)
    assert r.code == 200 and r.body == b"chapter one"
    for bad in ({"folder": "a/../b"}, {}, {"folder": 5}):
        status, resp = await server.http("POST", f"/api/files/{f['id']}/move", tok, bad)
        assert_error(status, resp, 400, "bad_request")


async def test_move_permissions(server):
    """In a room a student moves only their own files, the instructor any; an outsider gets 404."""
    room, ana_tok, ben_tok, carl_tok = await _class(server)
    [mine] = await upload(server, ana_tok, [("syllabus.pdf", PDF)], {"room": room["id"]})
    [hw] = await upload(server, ben_tok, [("hw.txt", b"answers")], {"room": room["id"]})
    status, resp = await server.http("POST", f"/api/files/{mine['id']}/move", ben_tok, {"folder": "x"})
    assert_error(status, resp, 403, "forbidden")
    status, resp = await server.http("POST", f"/api/files/{mine['id']}/move", carl_tok, {"folder": "x"})
    assert_error(status, resp, 404, "not_found")
    status, body = await server.http("POST", f"/api/files/{hw['id']}/move", ben_tok, {"folder": "homework"})
    assert status == 200 and body["file"]["folder"] == "homework"
    status, body = await server.http("POST", f"/api/files/{hw['id']}/move", ana_tok, {"folder": "graded"})
    assert status == 200 and body["file"]["folder"] == "graded"
    _, gone = await server.http("DELETE", f"/api/files/{hw['id']}", ana_tok)
    status, resp = await server.http("POST", f"/api/files/{hw['id']}/move", ana_tok, {"folder": "x"})
    assert_error(status, resp, 404, "not_found")


async def test_copy_is_an_independent_file(server):
    """A copy has its own id and blob (same bytes and hash), owned by the copier; each survives the other's deletion."""
    _, tok = await server.user("ana")
    data = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(range(256)) * 4000
    [orig] = await upload(server, tok, [("lecture.mp4", data)], {"folder": "drafts"})
    status, body = await server.http("POST", f"/api/files/{orig['id']}/copy", tok, {"folder": "published"})
    assert status == 201
    copy = body["file"]
    assert copy["id"] != orig["id"] and copy["folder"] == "published"
    assert {k: copy[k] for k in ("name", "size", "sha256", "category", "content_type", "owner", "room")} == \
        {k: orig[k] for k in ("name", "size", "sha256", "category", "content_type", "owner", "room")}
    assert len(await stored_blobs(server)) == 2
    copy_url = await link(server, tok, copy["id"])
    status, _ = await server.http("DELETE", f"/api/files/{orig['id']}", tok)
    assert status == 204
    r = await fetch(server, copy_url)
    assert r.code == 200 and hashlib.sha256(r.body).hexdigest() == orig["sha256"]
    assert len(await stored_blobs(server)) == 1
    status, body = await server.http("POST", f"/api/files/{copy['id']}/copy", tok, {"folder": "again"})
    second = body["file"]
    await server.http("DELETE", f"/api/files/{copy['id']}", tok)
    r = await fetch(server, await link(server, tok, second["id"]))
    assert r.code == 200 and r.body == data


async def test_copy_between_rooms_needs_membership(server):
    """Copying into a room needs membership (403, nothing stored, otherwise); room: null gives a private copy."""
    room, ana_tok, ben_tok, carl_tok = await _class(server)
    [lesson] = await upload(server, ana_tok, [("week1.pdf", PDF)], {"folder": "library"})
    status, body = await server.http("POST", f"/api/files/{lesson['id']}/copy", ana_tok,
                                     {"folder": "week 1", "room": room["id"]})
    assert status == 201 and body["file"]["room"] == room["id"]
    shared = body["file"]
    status, _ = await server.http("GET", f"/api/files/{shared['id']}", ben_tok)
    assert status == 200
    status, _ = await server.http("GET", f"/api/files/{lesson['id']}", ben_tok)
    assert status == 404  # the personal original stays private
    before = await stored_blobs(server)
    [carls] = await upload(server, carl_tok, [("c.txt", b"c")])
    status, resp = await server.http("POST", f"/api/files/{carls['id']}/copy", carl_tok,
                                     {"folder": "x", "room": room["id"]})
    assert_error(status, resp, 403, "forbidden")
    assert len(await stored_blobs(server)) == len(before) + 1
    status, body = await server.http("POST", f"/api/files/{shared['id']}/copy", ben_tok,
                                     {"folder": "saved", "room": None})
    assert status == 201 and body["file"]["room"] is None and body["file"]["owner"] != shared["owner"]
    status, _ = await server.http("GET", f"/api/files/{body['file']['id']}", ana_tok)
    assert status == 404


async def test_folders_and_folder_size(server):
    """Folders list their direct files and bytes; a folder's size counts subfolders, not prefix siblings; %/_ are literal."""
    _, tok = await server.user("ana")
    await upload(server, tok, [("a.txt", b"a" * 10), ("b.txt", b"b" * 20)], {"folder": "week 1"})
    await upload(server, tok, [("c.txt", b"c" * 40)], {"folder": "week 1/slides"})
    await upload(server, tok, [("d.txt", b"d" * 80)], {"folder": "week 10"})
    await upload(server, tok, [("e.txt", b"e" * 160)], {"folder": "100%_done"})
    await upload(server, tok, [("f.txt", b"f" * 320)])
    status, body = await server.http("GET", "/api/folders", tok)
    assert status == 200 and body["folders"] == [
        {"folder": "", "files": 1, "bytes": 320}, {"folder": "100%_done", "files": 1, "bytes": 160},
        {"folder": "week 1", "files": 2, "bytes": 30}, {"folder": "week 1/slides", "files": 1, "bytes": 40},
        {"folder": "week 10", "files": 1, "bytes": 80}]
    sizes = {}
    for folder in ("week 1", "week 1/slides", "week 10", "100%_done", "100", "nothing here"):
        status, body = await server.http("GET", f"/api/folders/{quote(folder, safe='')}/size", tok)
        assert status == 200 and body["folder"] == folder
        sizes[folder] = (body["files"], body["bytes"])
    assert sizes == {"week 1": (3, 70), "week 1/slides": (1, 40), "week 10": (1, 80),
                     "100%_done": (1, 160), "100": (0, 0), "nothing here": (0, 0)}
    status, resp = await server.http("GET", f"/api/folders/{quote('a/../b', safe='')}/size", tok)
    assert_error(status, resp, 400, "bad_request")


async def test_room_folders_and_statistics(server):
    """Room folders and statistics are for members; every category listed with zeros; deleted files do not count."""
    room, ana_tok, ben_tok, carl_tok = await _class(server)
    await upload(server, ana_tok, [("s.pdf", PDF), ("p.png", PNG)], {"room": room["id"], "folder": "week 1"})
    [hw] = await upload(server, ben_tok, [("hw.txt", b"x" * 100)], {"room": room["id"], "folder": "homework"})
    [gone] = await upload(server, ben_tok, [("old.txt", b"y" * 1000)], {"room": room["id"]})
    await server.http("DELETE", f"/api/files/{gone['id']}", ben_tok)
    await upload(server, ben_tok, [("private.txt", b"z" * 7)])
    status, body = await server.http("GET", f"/api/folders?room={room['id']}", ben_tok)
    assert status == 200 and body["folders"] == [
        {"folder": "homework", "files": 1, "bytes": 100},
        {"folder": "week 1", "files": 2, "bytes": len(PDF) + len(PNG)}]
    status, stats = await server.http("GET", f"/api/files/statistics?room={room['id']}", ana_tok)
    assert status == 200
    assert (stats["room"], stats["files"], stats["bytes"]) == (room["id"], 3, len(PDF) + len(PNG) + 100)
    assert stats["by_category"] == [
        {"category": "document", "files": 2, "bytes": len(PDF) + 100},
        {"category": "image", "files": 1, "bytes": len(PNG)},
        {"category": "video", "files": 0, "bytes": 0}, {"category": "audio", "files": 0, "bytes": 0},
        {"category": "archive", "files": 0, "bytes": 0}]
    assert stats["by_folder"] == body["folders"]
    status, mine = await server.http("GET", "/api/files/statistics", ben_tok)
    assert status == 200 and (mine["room"], mine["files"], mine["bytes"]) == (None, 2, 107)
    for path in (f"/api/files/statistics?room={room['id']}", f"/api/folders?room={room['id']}",
                 f"/api/folders/homework/size?room={room['id']}"):
        status, resp = await server.http("GET", path, carl_tok)
        assert_error(status, resp, 403, "forbidden")
    status, size = await server.http("GET", f"/api/folders/homework/size?room={room['id']}", ana_tok)
    assert size == {"folder": "homework", "files": 1, "bytes": 100}
    assert hw["folder"] == "homework"
    status, resp = await server.http("GET", "/api/files/statistics")
    assert status == 401
