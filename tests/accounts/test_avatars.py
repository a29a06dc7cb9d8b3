"""Avatars (issue 19.2; server/accounts/avatars.py, avatar_store.py, docs/PROTOCOL-ADDITIONS.md):
an uploaded picture becomes 64 and 256 pixel square WebP images in the file storage (disk and
S3), served without credentials at an unguessable URL and shown wherever the user is; what is
not an image, too big or too many pixels is refused with a clear 4xx and nothing is stored."""
from __future__ import annotations

import io
import struct
import time
import zlib

import pytest
from PIL import Image
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from tests.api import assert_error
from tests.files.test_files import PDF, PNG
from tests.s3server import storage_settings  # noqa: F401  (every test here runs on disk and on S3)


def picture(fmt: str = "PNG", size: tuple[int, int] = (300, 200), exif_orientation: int | None = None) -> bytes:
    """A real image: left half red, right half blue."""
    img = Image.new("RGB", size, (220, 30, 30))
    img.paste((30, 30, 220), (size[0] // 2, 0, size[0], size[1]))
    buf = io.BytesIO()
    kw = {}
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kw["exif"] = exif
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def png_bomb(side: int = 20000) -> bytes:
    """A 1-bit PNG of ``side``×``side`` zeros: about 50 KB that decode to ``side``² pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = b"\x00" * (1 + (side + 7) // 8)
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


async def put_avatar(server, token: str, data: bytes, ctype: str = "image/png") -> tuple[int, dict]:
    return await server.http("PUT", "/api/me/avatar", token, raw_body=data, headers={"Content-Type": ctype})


async def fetch(server, path: str):
    """GET without any credential, as an <img> does."""
    return await AsyncHTTPClient().fetch(HTTPRequest(server.base_url + path), raise_error=False)


async def test_upload_makes_small_and_large_square_webp_served_without_credentials(server):
    """A 300×200 PNG becomes 64×64 and 256×256 WebP images (centre crop), served at the user's avatar URLs."""
    _, tok = await server.user("ana")
    status, body = await put_avatar(server, tok, picture())
    assert status == 200, body
    avatar = body["user"]["avatar"]
    assert set(avatar) == {"small", "large"}
    for url, side in ((avatar["small"], 64), (avatar["large"], 256)):
        resp = await fetch(server, url)
        assert resp.code == 200 and resp.headers["Content-Type"] == "image/webp"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        img = Image.open(io.BytesIO(resp.body))
        assert img.format == "WEBP" and img.size == (side, side)
        left, right = img.convert("RGB").getpixel((2, side // 2)), img.convert("RGB").getpixel((side - 3, side // 2))
        assert left[0] > 150 > left[2] and right[2] > 150 > right[0]  # the crop kept both halves
    assert (await server.http("GET", "/api/me", tok))[1]["user"]["avatar"] == avatar
    assert len(await server.deps.storage.inventory()) == 2


async def test_exif_orientation_is_applied(server):
    """A JPEG whose EXIF says "rotate 90°" is stored upright (red on top, blue below)."""
    _, tok = await server.user("ana")
    status, body = await put_avatar(server, tok, picture("JPEG", (200, 200), exif_orientation=6), "image/jpeg")
    assert status == 200, body
    img = Image.open(io.BytesIO((await fetch(server, body["user"]["avatar"]["large"])).body)).convert("RGB")
    top, bottom = img.getpixel((128, 5)), img.getpixel((128, 250))
    assert top[0] > 150 > top[2] and bottom[2] > 150 > bottom[0]


@pytest.mark.parametrize("data,what", [
    (b"just some text, not a picture", "text"), (PDF, "pdf"), (PNG, "a damaged png"),
    (picture()[:200], "a truncated png"), (b"", "nothing"),
])
async def test_not_an_image_is_415_and_nothing_is_stored(server, data, what):
    """Bytes that are not a PNG/JPEG/GIF/WebP image, or a damaged one, are refused with 415; nothing is stored."""
    _, tok = await server.user("ana")
    status, body = await put_avatar(server, tok, data)
    assert_error(status, body, 415, "unsupported_media_type")
    assert await server.deps.storage.inventory() == []
    assert (await server.http("GET", "/api/me", tok))[1]["user"]["avatar"] is None


async def test_too_many_bytes_is_413_and_nothing_is_stored(server):
    """A body over 5 MB is refused with 413 before it is read; nothing is stored."""
    _, tok = await server.user("ana")
    status, body = await put_avatar(server, tok, b"\x89PNG" + bytes(5 * 1024 * 1024))
    assert_error(status, body, 413, "too_large")
    assert await server.deps.storage.inventory() == []


@pytest.mark.parametrize("data", [png_bomb(20000), picture("PNG", (9000, 10))], ids=["bomb", "too-wide"])
async def test_huge_dimensions_are_413_without_decoding(server, data):
    """A decompression bomb (50 KB → 400 megapixels) or a side over 8,000 pixels is refused with
    413 naming the size, at once (nothing decoded) and with nothing stored."""
    _, tok = await server.user("ana")
    started = time.monotonic()
    status, body = await put_avatar(server, tok, data)
    assert_error(status, body, 413, "too_large")
    assert "pixels" in body["error"]["reason"]
    assert time.monotonic() - started < 2
    assert await server.deps.storage.inventory() == []


async def test_replacing_and_removing_delete_the_old_images(server):
    """A new avatar gets new URLs and the old ones answer 404 with their images deleted; DELETE removes it."""
    _, tok = await server.user("ana")
    first = (await put_avatar(server, tok, picture()))[1]["user"]["avatar"]
    status, body = await put_avatar(server, tok, picture("GIF", (64, 64)), "image/gif")
    assert status == 200, body
    second = body["user"]["avatar"]
    assert second["small"] != first["small"]
    assert (await fetch(server, first["small"])).code == 404
    assert (await fetch(server, second["small"])).code == 200
    assert len(await server.deps.storage.inventory()) == 2
    status, body = await server.http("DELETE", "/api/me/avatar", tok)
    assert status == 200 and body["user"]["avatar"] is None
    assert (await fetch(server, second["large"])).code == 404
    assert await server.deps.storage.inventory() == []


@pytest.mark.parametrize("path", ["/avatars/x/64", "/avatars/" + "a" * 32 + "/64",
                                  "/avatars/" + "a" * 32 + "/128", "/avatars/../../etc/64"])
async def test_only_current_avatars_are_served(server, path):
    """Unknown tokens and other sizes are 404 (a path climbing out is refused by the static
    files, 403); an avatar token with another size too."""
    _, tok = await server.user("ana")
    avatar = (await put_avatar(server, tok, picture()))[1]["user"]["avatar"]
    assert (await fetch(server, path)).code == (403 if ".." in path else 404)
    assert (await fetch(server, avatar["small"].replace("/64", "/128"))).code == 404


async def test_avatar_shows_in_member_lists_and_reaches_roommates_live(server):
    """Roommates see the avatar in GET /api/rooms/{id} members and the room.join ack, and an open
    socket of theirs gets ``user.updated`` (avatar and name changes); an outsider gets nothing."""
    ana, ana_tok = await server.user("ana", "instructor")
    ben, ben_tok = await server.user("ben")
    _, carl_tok = await server.user("carl")
    room = await server.room(ana_tok, members=[ben["id"]])
    watcher = await server.client(ana_tok)
    await watcher.request("room.join", room=room["id"])
    outsider = await server.client(carl_tok)
    avatar = (await put_avatar(server, ben_tok, picture()))[1]["user"]["avatar"]
    ev = await watcher.next_event("user.updated")
    assert ev["user"]["id"] == ben["id"] and ev["user"]["avatar"] == avatar
    status, _ = await server.http("PATCH", "/api/me", ben_tok, {"display_name": "Ben O."})
    ev = await watcher.next_event("user.updated")
    assert ev["user"]["display_name"] == "Ben O." and ev["user"]["avatar"] == avatar
    assert await outsider.no_event("user.updated")
    _, detail = await server.http("GET", f"/api/rooms/{room['id']}", ana_tok)
    assert {m["user"]["id"]: m["user"]["avatar"] for m in detail["members"]} == {ana["id"]: None, ben["id"]: avatar}
    ack = await watcher.request("room.join", room=room["id"])
    assert {m["id"]: m["avatar"] for m in ack["members"]} == {ana["id"]: None, ben["id"]: avatar}
