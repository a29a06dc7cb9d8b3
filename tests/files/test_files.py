"""Files (PROTOCOL §3 "Files"): streaming upload with limits and content checks, access rules,
signed download links with Range/ETag, and revocation by delete."""
from __future__ import annotations

import asyncio
import hashlib
import os
import time
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from server.files import links
from server.storage import check_key
from tests.s3server import storage_settings  # noqa: F401  (every test here runs on disk and on S3)
from tests.api import assert_error

KB = 1024
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00" + bytes(200)
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
HTML = b"<!doctype html><html><script>alert(document.cookie)</script></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'


@pytest.fixture
def config_overrides():
    return {"file_limits": {"document": 256 * KB, "image": 64 * KB, "video": 4 * 1024 * KB,
                            "audio": 256 * KB, "archive": 256 * KB},
            "upload_max_request_bytes": 8 * 1024 * KB, "upload_max_files": 10}


def multipart(files: list[tuple[str, bytes]], fields: dict[str, str] | None = None,
              boundary: str = "podiumtestboundary") -> tuple[bytes, str]:
    """A real multipart/form-data body: fields first, then one ``file`` part per file."""
    out = bytearray()
    for name, value in (fields or {}).items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                f"{value}\r\n").encode()
    for filename, data in files:
        fn = filename.replace("\\", "\\\\").replace('"', '\\"')
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{fn}\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


async def upload(server, token, files, fields=None, expect=201):
    body, ctype = multipart(files, fields)
    status, resp = await server.http("POST", "/api/files", token, raw_body=body,
                                     headers={"Content-Type": ctype})
    assert status == expect, (status, resp)
    return resp["files"] if status == 201 else resp


async def stored_blobs(server) -> list[str]:
    """Everything the storage backend holds: committed objects, disk temporaries and incomplete
    S3 multipart uploads."""
    return await server.deps.storage.inventory()


async def fetch(server, url: str, headers: dict | None = None, method: str = "GET"):
    path = url if url.startswith("/") else urlsplit(url)._replace(scheme="", netloc="").geturl()
    req = HTTPRequest(server.base_url + path, method=method, headers=headers or {},
                      request_timeout=30)
    return await AsyncHTTPClient().fetch(req, raise_error=False)


async def link(server, token, file_id, disposition="attachment", expires_in=300) -> str:
    status, body = await server.http("POST", f"/api/files/{file_id}/signed-url", token,
                                     {"disposition": disposition, "expires_in": expires_in})
    assert status == 200, body
    return body["url"]


async def raw_request(server, head: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(head)
    await writer.drain()
    return reader, writer


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


# -- upload ------------------------------------------------------------------------------------
async def test_upload_reports_sha256_and_info(server):
    """A multipart upload of two files answers 201 {files} with name, folder, category, size and the SHA-256 of the bytes; GET and list return the same."""
    ana, tok = await server.user("ana")
    text = "héllo, wörld\n".encode() * 1000
    files = await upload(server, tok, [("notes.txt", text), ("dot.png", PNG)], {"folder": "week 1/"})
    assert [f["name"] for f in files] == ["notes.txt", "dot.png"]
    f = files[0]
    assert f["sha256"] == hashlib.sha256(text).hexdigest() and f["size"] == len(text)
    assert f["category"] == "document" and f["content_type"] == "text/plain"
    assert files[1]["category"] == "image" and files[1]["content_type"] == "image/png"
    assert f["folder"] == "week 1" and f["room"] is None and f["owner"] == ana["id"]
    assert set(f) == {"id", "name", "folder", "room", "content_type", "category", "size",
                      "sha256", "created_at", "owner"}
    status, body = await server.http("GET", f"/api/files/{f['id']}", tok)
    assert status == 200 and body["file"] == f
    status, body = await server.http("GET", "/api/files?folder=week%201", tok)
    assert status == 200 and {x["id"] for x in body["files"]} == {x["id"] for x in files}
    status, body = await server.http("GET", "/api/files?folder=other", tok)
    assert status == 200 and body["files"] == []


async def test_content_length_too_large_refused_before_reading(server):
    """A Content-Length above the request limit is answered 413 before any body byte is sent, and nothing is stored."""
    _, tok = await server.user("ana")
    reader, writer = await raw_request(server, (
        "POST /api/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 10000000000\r\n\r\n").encode())
    response = await asyncio.wait_for(reader.read(65536), 10)
    writer.close()
    assert status_of(response) == 413, response
    assert b'"too_large"' in response
    assert await stored_blobs(server) == []


async def test_chunked_oversized_upload_aborted(server):
    """A chunked body whose image part outgrows the image limit is answered 413 mid-stream and leaves no file, partial or whole, in storage or the database."""
    _, tok = await server.user("ana")
    reader, writer = await raw_request(server, (
        "POST /api/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\n"
        "Content-Type: multipart/form-data; boundary=bnd\r\nTransfer-Encoding: chunked\r\n\r\n").encode())

    def chunk(data: bytes) -> bytes:
        return b"%x\r\n%s\r\n" % (len(data), data)

    # A complete small file first: it is committed, then must be removed with the rest.
    first = (b"--bnd\r\nContent-Disposition: form-data; name=\"file\"; filename=\"ok.txt\"\r\n\r\n"
             b"fine\r\n--bnd\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.png\"\r\n\r\n" + PNG)
    writer.write(chunk(first))
    response = b""
    for _ in range(64):  # up to 1 MiB, far above the 64 KiB image limit
        try:
            writer.write(chunk(bytes(16 * KB)))
            await writer.drain()
        except (ConnectionError, BrokenPipeError):
            break
        try:
            response = await asyncio.wait_for(reader.read(65536), 0.05)
        except asyncio.TimeoutError:
            continue
        if response:
            break
    if not response:
        response = await asyncio.wait_for(reader.read(65536), 10)
    writer.close()
    assert status_of(response) == 413, response
    await asyncio.sleep(0.1)
    assert await stored_blobs(server) == []
    status, body = await server.http("GET", "/api/files", tok)
    assert body["files"] == []


@pytest.mark.parametrize("name,data", [
    ("x.svg", SVG), ("x.html", HTML), ("x.exe", b"MZ" + bytes(100)), ("noext", b"abc"),
    ("png-as.pdf", PNG), ("html-as.png", HTML), ("pdf-as.docx", PDF), ("bin-as.txt", b"\xff\xfe\x00\x01"),
])
async def test_disallowed_or_spoofed_content_is_415(server, name, data):
    """Extensions off the allow-list (SVG, HTML, EXE, none) and content that does not match its extension are refused 415 with nothing stored."""
    _, tok = await server.user("ana")
    resp = await upload(server, tok, [("fine.txt", b"ok"), (name, data)], expect=415)
    assert resp["error"]["code"] == "unsupported_media_type"
    assert await stored_blobs(server) == []


async def test_traversal_shaped_names_are_sanitised(server):
    """Path components, control and bidi characters and leading dots are stripped from display names; blobs live only under their random keys."""
    _, tok = await server.user("ana")
    files = await upload(server, tok, [("../../etc/passwd.txt", b"a"), ("..\\..\\win.ini.txt", b"b"),
                                       ("\u202egnp.txt", b"c"), ("...hidden.md", b"d"),
                                       ("a" * 500 + ".csv", b"x,y")])
    names = [f["name"] for f in files]
    assert names[:4] == ["passwd.txt", "win.ini.txt", "gnp.txt", "hidden.md"]
    assert len(names[4]) == 200 and names[4].endswith(".csv")
    blobs = await stored_blobs(server)
    assert len(blobs) == 5
    for name in blobs:  # "<fan>/<token>" on disk, "<prefix>/<fan>/<token>" on S3: random keys only
        assert check_key("/".join(name.split("/")[-2:])) and name.count("/") <= 2


async def test_too_many_parts_is_400(server):
    """More file parts than the per-request bound is a 400, and nothing is kept."""
    _, tok = await server.user("ana")
    resp = await upload(server, tok, [(f"f{i}.txt", b"x") for i in range(11)], expect=400)
    assert resp["error"]["code"] == "bad_request"
    assert await stored_blobs(server) == []


async def test_room_upload_requires_membership(server):
    """Uploading into a room needs membership (403 otherwise, nothing stored); room files are visible to members only; the owner's unattached files to the owner only."""
    ana, ana_tok = await server.user("ana", "instructor")
    ben, ben_tok = await server.user("ben")
    _, carl_tok = await server.user("carl")
    room = await server.room(ana_tok, members=[ben["id"]])
    resp = await upload(server, carl_tok, [("x.txt", b"x")], {"room": room["id"]}, expect=403)
    assert resp["error"]["code"] == "forbidden"
    assert await stored_blobs(server) == []
    body, ctype = multipart([("late.txt", b"x")])  # room field after the file part
    body = body.replace(b"--podiumtestboundary--", b"--podiumtestboundary\r\nContent-Disposition: "
                        b"form-data; name=\"room\"\r\n\r\n" + room["id"].encode() + b"\r\n--podiumtestboundary--")
    status, resp = await server.http("POST", "/api/files", carl_tok, raw_body=body, headers={"Content-Type": ctype})
    assert_error(status, resp, 403, "forbidden")
    assert await stored_blobs(server) == []
    [f] = await upload(server, ben_tok, [("hw.txt", b"homework")], {"room": room["id"]})
    assert f["room"] == room["id"]
    status, _ = await server.http("GET", f"/api/files/{f['id']}", ana_tok)
    assert status == 200
    status, resp = await server.http("GET", f"/api/files/{f['id']}", carl_tok)
    assert_error(status, resp, 404, "not_found")
    status, resp = await server.http("GET", f"/api/files?room={room['id']}", carl_tok)
    assert_error(status, resp, 403, "forbidden")
    status, resp = await server.http("GET", f"/api/files?room={room['id']}", ana_tok)
    assert [x["id"] for x in resp["files"]] == [f["id"]]
    [mine] = await upload(server, ana_tok, [("private.txt", b"p")])
    status, _ = await server.http("GET", f"/api/files/{mine['id']}", ben_tok)
    assert status == 404
    # Deleting: a student may not delete another's room file; the room instructor may.
    [other] = await upload(server, ana_tok, [("a.txt", b"a")], {"room": room["id"]})
    status, resp = await server.http("DELETE", f"/api/files/{other['id']}", ben_tok)
    assert_error(status, resp, 403, "forbidden")
    status, _ = await server.http("DELETE", f"/api/files/{f['id']}", ana_tok)
    assert status == 204


# -- download ----------------------------------------------------------------------------------
async def test_signed_url_round_trip_with_ranges(server):
    """A signed link works without credentials: 200 with ETag (the SHA-256), Accept-Ranges and nosniff; a Range gives 206, an unsatisfiable one 416; If-Range and If-None-Match behave; HEAD has no body."""
    _, tok = await server.user("ana")
    data = bytes(range(256)) * 8
    data = ("".join(chr(65 + b % 26) for b in data)).encode()
    [f] = await upload(server, tok, [("story.txt", data)])
    url = await link(server, tok, f["id"], "inline")
    etag = f'"{f["sha256"]}"'
    r = await fetch(server, url)
    assert r.code == 200 and r.body == data
    assert r.headers["ETag"] == etag and r.headers["Accept-Ranges"] == "bytes"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert r.headers["Content-Disposition"].startswith("inline;")
    r = await fetch(server, url, {"Range": "bytes=10-19"})
    assert r.code == 206 and r.body == data[10:20]
    assert r.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    r = await fetch(server, url, {"Range": "bytes=-5"})
    assert r.code == 206 and r.body == data[-5:]
    r = await fetch(server, url, {"Range": f"bytes={len(data)}-"})
    assert r.code == 416 and r.headers["Content-Range"] == f"bytes */{len(data)}"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    r = await fetch(server, url, {"Range": "bytes=0-3", "If-Range": '"stale"'})
    assert r.code == 200 and r.body == data
    r = await fetch(server, url, {"Range": "bytes=0-3", "If-Range": etag})
    assert r.code == 206 and r.body == data[:4]
    r = await fetch(server, url, {"If-None-Match": etag})
    assert r.code == 304 and r.body == b"" and r.headers["X-Content-Type-Options"] == "nosniff"
    r = await fetch(server, url, method="HEAD")
    assert r.code == 200 and r.body == b"" and r.headers["Content-Length"] == str(len(data))


async def test_large_download_streams_in_chunks(server):
    """A file larger than one storage chunk downloads intact, whole and by a range across the chunk boundary."""
    _, tok = await server.user("ana")
    data = os.urandom(3 * 1024 * KB // 2)
    body = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + data[24:]
    [f] = await upload(server, tok, [("big.mp4", body)])
    url = await link(server, tok, f["id"])
    r = await fetch(server, url)
    assert r.code == 200 and hashlib.sha256(r.body).hexdigest() == f["sha256"]
    assert r.headers["Content-Disposition"].startswith("attachment;")
    r = await fetch(server, url, {"Range": f"bytes={1024 * KB - 10}-{1024 * KB + 9}"})
    assert r.code == 206 and r.body == body[1024 * KB - 10:1024 * KB + 10]


async def test_tampered_or_expired_links_are_403(server):
    """Changing the signature, name, expiry, disposition or key id gives 403; an authentic but expired link gives 403 too."""
    ana, tok = await server.user("ana")
    [f] = await upload(server, tok, [("a.txt", b"secret")])
    url = await link(server, tok, f["id"])
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    base = f"/dl/{f['id']}/a.txt"
    assert (await fetch(server, f"{base}?{urlencode(q)}")).code == 200
    for change in ({"sig": q["sig"][:-1] + ("A" if q["sig"][-1] != "A" else "B")},
                   {"exp": str(int(q["exp"]) + 1)}, {"disp": "inline"}, {"kid": "other"},
                   {"u": str(int(q["u"]) + 1)}):
        r = await fetch(server, f"{base}?{urlencode({**q, **change})}")
        assert r.code == 403, change
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert (await fetch(server, f"/dl/{f['id']}/b.txt?{urlencode(q)}")).code == 403
    assert (await fetch(server, base)).code == 403
    past = int(time.time()) - 10
    forged = links.sign(server.deps.signing, "GET", f["id"], "a.txt", past, "attachment", int(ana["id"]))
    r = await fetch(server, f"{base}?{urlencode(forged)}")
    assert r.code == 403 and b"expired" in r.body
    assert r.headers["Content-Type"].startswith("application/json")  # programs get JSON
    # A person opening it in a browser gets a page that says what to do (issue 15.8).
    r = await fetch(server, f"{base}?{urlencode(forged)}", {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert r.code == 403 and r.headers["Content-Type"].startswith("text/html")
    assert b"This link no longer works" in r.body and b"Ask for a fresh link" in r.body and b'href="/"' in r.body
    assert b"expired" in r.body and "Content-Disposition" not in r.headers


async def test_signed_url_lifetime_is_capped(server):
    """expires_in above SIGNED_URL_MAX_TTL_S is cut to the cap; expires_at is an ISO time."""
    _, tok = await server.user("ana")
    [f] = await upload(server, tok, [("a.txt", b"x")])
    status, body = await server.http("POST", f"/api/files/{f['id']}/signed-url", tok,
                                     {"disposition": "attachment", "expires_in": 10 ** 9})
    assert status == 200 and body["expires_at"].endswith("Z")
    exp = int(parse_qs(urlsplit(body["url"]).query)["exp"][0])
    assert exp <= time.time() + 3601
    status, resp = await server.http("POST", f"/api/files/{f['id']}/signed-url", tok, {"disposition": "evil"})
    assert_error(status, resp, 400, "bad_request")


async def test_delete_revokes_links_and_blob(server):
    """Deleting a file makes its signed links fail, its info 404 and removes its blob."""
    _, tok = await server.user("ana")
    _, other_tok = await server.user("ben")
    [f] = await upload(server, tok, [("a.txt", b"bye")])
    url = await link(server, tok, f["id"])
    assert (await fetch(server, url)).code == 200
    status, _ = await server.http("DELETE", f"/api/files/{f['id']}", other_tok)
    assert status == 404
    status, _ = await server.http("DELETE", f"/api/files/{f['id']}", tok)
    assert status == 204
    r = await fetch(server, url)
    assert r.code in (403, 410)
    status, _ = await server.http("GET", f"/api/files/{f['id']}", tok)
    assert status == 404
    assert await stored_blobs(server) == []


async def test_only_safe_types_are_inline(server):
    """Plain text asked inline is served inline; a PDF asked inline is still an attachment (SVG and HTML cannot even be uploaded)."""
    _, tok = await server.user("ana")
    files = await upload(server, tok, [("t.txt", b"text"), ("d.pdf", PDF), ("p.png", PNG)])
    dispositions = []
    for f in files:
        r = await fetch(server, await link(server, tok, f["id"], "inline"))
        assert r.code == 200 and r.headers["X-Content-Type-Options"] == "nosniff"
        dispositions.append(r.headers["Content-Disposition"].split(";")[0])
    assert dispositions == ["inline", "attachment", "inline"]
    await upload(server, tok, [("x.svg", SVG)], expect=415)
    await upload(server, tok, [("x.html", HTML)], expect=415)


async def test_unicode_name_round_trip(server):
    """A non-ASCII name is signed and served under its percent-encoded form, with an RFC 5987 filename*."""
    _, tok = await server.user("ana")
    [f] = await upload(server, tok, [("Résumé ü 100%.txt", b"cv")])
    url = await link(server, tok, f["id"])
    assert quote("Résumé ü 100%.txt", safe="") in url
    r = await fetch(server, url)
    assert r.code == 200 and r.body == b"cv"
    assert "filename*=UTF-8''R%C3%A9sum%C3%A9" in r.headers["Content-Disposition"]


async def test_ten_thousand_part_body_is_refused_quickly(server):
    """A 10,000-part multipart body is refused quickly with 400, storing nothing; the server keeps serving."""
    import time

    _, tok = await server.user("ana")
    boundary = "manyparts"
    part = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"folder\"\r\n\r\nx\r\n").encode()
    body = part * 10_000 + f"--{boundary}--\r\n".encode()
    t0 = time.monotonic()
    status, resp = await server.http("POST", "/api/files", tok, raw_body=body,
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 400 and resp["error"]["code"] == "bad_request", (status, resp)
    assert time.monotonic() - t0 < 10
    assert await stored_blobs(server) == []
    status, health = await server.http("GET", "/healthz")
    assert status == 200 and health["status"] == "ok"
