"""Files in the browser client (web/) against the real server, in real headless Chromium:
attaching with upload progress and cancel, previews and players through signed links (with
Range requests), the room's Files panel, and refused uploads.

Each test starts its own server process over a fresh database; one browser context per user.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import struct
import urllib.error
import urllib.request
import uuid
import zlib
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Account, Api

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

MB = 1000 * 1000
IMAGE_LIMIT_MB = 1  # small, so a refused-as-too-large image is cheap to make
VIDEO_SECONDS = 90
VIDEO_FPS = 15
DL_LINK = re.compile(r"^https?://[^/]+/dl/")

# Records every value an upload progress bar takes (as [value, max]), from before the upload.
RECORD_PROGRESS = """() => {
  window.__progress = [];
  new MutationObserver((records) => {
    for (const r of records) {
      const el = r.target;
      if (el.dataset && el.dataset.testid === 'upload-progress' && el.hasAttribute('value')) {
        window.__progress.push([Number(el.getAttribute('value')), Number(el.max)]);
      }
    }
  }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['value'] });
}"""


@pytest.fixture
def server_env() -> dict[str, str]:
    """Environment for the server process; a small image limit, to provoke a 413."""
    return {"FILE_MAX_MB_IMAGE": str(IMAGE_LIMIT_MB)}


@pytest.fixture(scope="session")
def lecture_video(tmp_path_factory) -> Path:
    """A 90 s H.264 MP4 of ~28 MB (noise at 320×240, a keyframe every second, moov first
    with faststart), made with PyAV; Debian's Chromium plays H.264."""
    import av

    path = tmp_path_factory.mktemp("media") / "lecture.mp4"
    out = av.open(str(path), "w", options={"movflags": "faststart"})
    stream = out.add_stream("libx264", rate=VIDEO_FPS)
    stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
    stream.bit_rate = 2_500_000
    stream.gop_size = VIDEO_FPS
    stream.codec_context.options = {"preset": "ultrafast"}
    # Noise does not compress: a few random frames repeated give the size without the cost.
    pool = []
    for _ in range(8):
        frame = av.VideoFrame(320, 240, "yuv420p")
        for plane in frame.planes:
            plane.update(os.urandom(plane.buffer_size))
        pool.append(frame)
    for i in range(VIDEO_SECONDS * VIDEO_FPS):
        frame = pool[i % len(pool)]
        frame.pts = i
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    assert path.stat().st_size >= 20 * MB
    return path


def png(width: int, height: int) -> bytes:
    """A real (decodable) RGB PNG: a colour gradient."""
    rows = b"".join(b"\x00" + b"".join(bytes((x * 255 // width, y * 255 // height, 160)) for x in range(width))
                    for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def upload(api: Api, owner: Account, name: str, data: bytes, room: str | None = None, folder: str = "") -> dict:
    """POST /api/files over plain HTTP (setup that is not under test)."""
    boundary = uuid.uuid4().hex
    body = bytearray()
    for field, value in (("room", room), ("folder", folder)):
        if value:
            body += f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n{value}\r\n'.encode()
    body += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
             "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(api.base_url + "/api/files", data=bytes(body), method="POST", headers={
        "Authorization": f"Bearer {owner.token}", "Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 201
        return json.loads(resp.read())["files"][0]


def room_files(api: Api, reader: Account, room_id: str) -> list[dict]:
    status, body = api.call("GET", f"/api/files?room={room_id}", reader.token)
    assert status == 200, (status, body)
    return body["files"]


def download(url: str) -> tuple[dict, bytes]:
    """GET a signed link with no other credential."""
    with urllib.request.urlopen(url, timeout=30) as resp:
        assert resp.status == 200
        return {k.lower(): v for k, v in resp.headers.items()}, resp.read()


def course(api: Api) -> tuple[Account, Account, dict]:
    ana = api.register("ana", "Ana Lima")
    ben = api.register("ben", "Ben Okafor")
    return ana, ben, api.course(ana, "Biology 101", [ben])


def open_room(open_page, account: Account, room: dict) -> Page:
    _, page = open_page(account, f"/#/rooms/{room['id']}")
    expect(page.get_by_test_id("composer")).to_be_visible()
    expect(page.get_by_text("No messages yet")).to_be_visible()  # history synced
    return page


def test_upload_shows_progress_and_cancels_then_others_download_it(api, open_page, tmp_path):
    """A student's attachment shows a progress bar passing through intermediate values (a
    canceled one leaves nothing behind); the instructor gets a file message whose chip, a
    signed link, downloads exactly the uploaded bytes."""
    ana, ben, room = course(api)
    data = b"PK\x03\x04" + os.urandom(8 * MB)  # a .zip needs only its magic bytes
    path = tmp_path / "lab-data.zip"
    path.write_bytes(data)
    a = open_room(open_page, ana, room)
    b = open_room(open_page, ben, room)
    # Over loopback a file is sent in one burst; Chromium's network emulation (DevTools
    # throttling) sends it at ~10 MB/s instead, as over a real link, so progress is visible.
    cdp = b.context.new_cdp_session(b)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 10 * MB})

    # Canceled half-way: the row goes away, and nothing is stored or sent.
    b.get_by_test_id("attach-input").set_input_files(str(path))
    row = b.get_by_test_id("upload-item")
    expect(row).to_have_attribute("data-status", "uploading")
    expect(row.get_by_test_id("upload-name")).to_have_text("lab-data.zip")
    b.wait_for_function("() => Number(document.querySelector('[data-testid=upload-progress]')?.dataset.percent) > 5")
    row.get_by_test_id("upload-cancel").click()
    expect(row).to_have_count(0)

    b.evaluate(RECORD_PROGRESS)
    b.get_by_test_id("attach-input").set_input_files(str(path))
    expect(b.get_by_test_id("upload-progress")).to_be_visible()
    msg = a.locator("[data-testid=message][data-kind=file]")
    chip = msg.get_by_test_id("file-chip")
    expect(chip).to_have_attribute("href", DL_LINK, timeout=20_000)
    expect(b.get_by_test_id("upload-item")).to_have_count(0)

    values = b.evaluate("window.__progress")
    total = values[-1][1]
    intermediate = sorted({v for v, m in values if 0 < v < m})
    assert total >= len(data) and values[-1][0] == total, values
    assert len(intermediate) >= 3, values  # the bar moved, not just jumped to done
    assert [v for v, _ in values] == sorted(v for v, _ in values), values  # never backwards

    expect(chip.get_by_test_id("file-name")).to_have_text("lab-data.zip")
    expect(chip.get_by_test_id("file-size")).to_contain_text("8.0 MB")
    headers, body = download(chip.get_attribute("href"))
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(data).hexdigest()
    assert headers["content-disposition"].startswith("attachment")
    expect(b.locator("[data-testid=message][data-kind=file]").get_by_test_id("file-chip")).to_have_attribute("href", DL_LINK)

    (stored,) = room_files(api, ana, room["id"])  # the canceled upload left nothing
    assert stored["name"] == "lab-data.zip" and stored["size"] == len(data)
    (sent,) = [m for m in api.messages(ana, room["id"]) if m["kind"] != "system"]
    assert sent["kind"] == "file" and sent["file_id"] == stored["id"] and sent["sender"]["id"] == ben.user["id"]


def test_large_video_seeks_and_plays_for_another_user(api, open_page, lecture_video):
    """A 90 s, ~28 MB lecture video attached by the instructor plays in the student's <video>:
    seeking to the middle and playing advances past the seek point without error, the bytes
    coming by Range requests (206) on a signed link."""
    ana, ben, room = course(api)
    a = open_room(open_page, ana, room)
    b = open_room(open_page, ben, room)
    ranges: list[tuple[int, str]] = []
    b.on("response", lambda r: ranges.append((r.status, r.request.headers.get("range", "")))
         if "/dl/" in r.url else None)

    a.get_by_test_id("attach-input").set_input_files(str(lecture_video))
    video = b.locator("[data-testid=message][data-kind=video]").get_by_test_id("attachment-video")
    expect(video).to_have_attribute("src", DL_LINK, timeout=30_000)
    duration = video.evaluate("""v => new Promise((resolve, reject) => {
      if (v.readyState >= 1) return resolve(v.duration);
      v.addEventListener('loadedmetadata', () => resolve(v.duration), { once: true });
      v.addEventListener('error', () => reject(new Error(`media error ${v.error && v.error.code}`)), { once: true });
    })""")
    assert abs(duration - VIDEO_SECONDS) < 1, duration

    middle = video.evaluate("""async v => {
      v.muted = true;  // autoplay rules: a muted element may play without a gesture
      const seeked = new Promise((resolve) => v.addEventListener('seeked', resolve, { once: true }));
      v.currentTime = v.duration / 2;
      await seeked;
      await v.play();
      return v.currentTime;
    }""")
    assert abs(middle - VIDEO_SECONDS / 2) < 2, middle
    b.wait_for_function(
        "t => { const v = document.querySelector('[data-testid=attachment-video]'); return v.currentTime > t + 1.5; }",
        arg=middle, timeout=20_000)
    state = video.evaluate("v => ({error: v.error && v.error.code, paused: v.paused, t: v.currentTime})")
    assert state["error"] is None and not state["paused"], state

    partial = [rng for status, rng in ranges if status == 206]
    assert partial, ranges
    # Seeking to the middle fetched from the middle of the file, not from the start.
    starts = [int(m.group(1)) for rng in partial if (m := re.match(r"bytes=(\d+)-", rng))]
    assert any(s > lecture_video.stat().st_size // 4 for s in starts), ranges
    expect(b.locator("[data-testid=message][data-kind=video]").get_by_test_id("file-name")).to_have_text("lecture.mp4")


def test_dropped_image_shows_as_a_preview(api, open_page):
    """An image dropped on the chat is uploaded and posted; both users see it rendered
    (decoded, naturalWidth > 0) from an inline signed link."""
    ana, ben, room = course(api)
    a = open_room(open_page, ana, room)
    b = open_room(open_page, ben, room)
    image = png(64, 40)

    transfer = b.evaluate_handle("""([name, b64]) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], name, { type: 'image/png' }));
      return dt;
    }""", ["cell-diagram.png", base64.b64encode(image).decode()])
    chat = b.locator("section.chat")
    chat.dispatch_event("dragenter", {"dataTransfer": transfer})
    expect(b.get_by_test_id("drop-overlay")).to_be_visible()
    b.get_by_test_id("message-list").dispatch_event("drop", {"dataTransfer": transfer})
    expect(b.get_by_test_id("drop-overlay")).to_be_hidden()

    for page in (a, b):
        img = page.locator("[data-testid=message][data-kind=image]").get_by_test_id("attachment-image")
        expect(img).to_have_attribute("src", re.compile(r"/dl/.*disp=inline"), timeout=15_000)
        page.wait_for_function("""() => {
          const img = document.querySelector('[data-testid=attachment-image]');
          return img && img.complete && img.naturalWidth > 0;
        }""")
        assert img.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [64, 40]
        expect(img).to_have_attribute("alt", "cell-diagram.png")


def test_files_panel_groups_by_folder_and_uploads_into_one(api, open_page, tmp_path):
    """The Files panel lists the room's files under their folders with signed download links,
    and a file uploaded there into a folder joins that folder without a chat message."""
    ana, ben, room = course(api)
    rid = room["id"]
    upload(api, ana, "syllabus.txt", b"Course outline\n", room=rid)
    upload(api, ana, "reading.txt", b"Chapter 1\n", room=rid, folder="week 1")
    upload(api, ana, "lab.txt", b"Microscopes\n", room=rid, folder="week 2")
    upload(api, ana, "private.txt", b"not in the room\n")  # Ana's own, not the room's
    a = open_room(open_page, ana, room)

    a.get_by_test_id("open-files").click()
    panel = a.get_by_test_id("files-panel")
    expect(panel).to_be_visible()
    folders = panel.get_by_test_id("files-folder")
    expect(folders).to_have_count(3)
    expect(panel.get_by_test_id("files-folder-name")).to_have_text(["Not in a folder", "week 1", "week 2"])
    assert folders.evaluate_all("els => els.map(e => e.dataset.folder)") == ["", "week 1", "week 2"]
    expect(panel.locator("[data-folder='week 1'] [data-testid=files-item] [data-testid=file-name]")).to_have_text(["reading.txt"])
    expect(panel.locator("[data-folder=''] [data-testid=files-item] [data-testid=file-name]")).to_have_text(["syllabus.txt"])

    link = panel.locator("[data-folder='week 2'] [data-testid=files-download]")
    expect(link).to_have_attribute("href", DL_LINK)
    headers, body = download(link.get_attribute("href"))
    assert body == b"Microscopes\n" and headers["content-disposition"].startswith("attachment")

    notes = tmp_path / "notes.md"
    notes.write_text("# Lab notes\n", encoding="utf-8")
    panel.get_by_test_id("files-folder-input").fill("week 2")
    panel.get_by_test_id("files-upload-input").set_input_files(str(notes))
    expect(panel.locator("[data-folder='week 2'] [data-testid=file-name]")).to_have_text(["lab.txt", "notes.md"])
    expect(panel.get_by_test_id("upload-item")).to_have_count(0)

    # A student sees the same grouping; uploading into a folder posted nothing in the chat.
    b = open_room(open_page, ben, room)
    b.get_by_test_id("open-files").click()
    expect(b.get_by_test_id("files-panel").get_by_test_id("files-folder-name")).to_have_text(["Not in a folder", "week 1", "week 2"])
    assert [m for m in api.messages(ana, rid) if m["kind"] != "system"] == []
    by_name = {f["name"]: f for f in room_files(api, ben, rid)}
    assert by_name["notes.md"]["folder"] == "week 2" and "private.txt" not in by_name


def test_refused_uploads_show_why_and_send_nothing(api, open_page, tmp_path):
    """An .exe (415) and an image over the limit (413) each show a clear error on their row;
    no message is sent or pending and nothing is stored."""
    _, ben, room = course(api)
    b = open_room(open_page, ben, room)
    exe = tmp_path / "setup.exe"
    exe.write_bytes(b"MZ" + os.urandom(20_000))
    big = tmp_path / "poster.png"
    big.write_bytes(png(8, 8)[:-12] + os.urandom(int(1.5 * IMAGE_LIMIT_MB * MB)))

    b.get_by_test_id("attach-input").set_input_files(str(exe))
    row = b.locator("[data-testid=upload-item][data-file-name='setup.exe']")
    expect(row).to_have_attribute("data-status", "failed")
    expect(row.get_by_test_id("upload-error")).to_have_text(re.compile(r"“setup\.exe” can’t be shared: .*\.exe.*not allowed"))
    expect(row.get_by_test_id("upload-retry")).to_have_count(0)  # the same bytes would be refused again

    b.get_by_test_id("attach-input").set_input_files(str(big))
    row2 = b.locator("[data-testid=upload-item][data-file-name='poster.png']")
    expect(row2).to_have_attribute("data-status", "failed")
    expect(row2.get_by_test_id("upload-error")).to_have_text(re.compile(r"“poster\.png” is too large to upload.*1(\.0)? MB"))

    b.wait_for_timeout(300)
    expect(b.get_by_test_id("pending-message")).to_have_count(0)
    expect(b.get_by_test_id("message")).to_have_count(0)
    assert api.messages(ben, room["id"]) == []
    assert room_files(api, ben, room["id"]) == []
    row.get_by_test_id("upload-dismiss").click()
    expect(b.get_by_test_id("upload-item")).to_have_count(1)


@pytest.mark.parametrize("server_env", [{"SIGNED_URL_MAX_TTL_S": "3"}])
def test_expired_links_are_signed_again(api, open_page, lecture_video, tmp_path):
    """With 3-second links, a download chip whose link expired fetches a fresh one when
    clicked (and the download is the file), and a video whose link expired recovers with a
    fresh link and plays on from where it was asked to."""
    ana, ben, room = course(api)
    a = open_room(open_page, ana, room)
    b = open_room(open_page, ben, room)
    notes = tmp_path / "notes.txt"
    notes.write_text("Bring a lab coat.\n", encoding="utf-8")
    a.get_by_test_id("attach-input").set_input_files(str(notes))
    chip = b.locator("[data-testid=message][data-kind=file]").get_by_test_id("file-chip")
    expect(chip).to_have_attribute("href", DL_LINK)
    first = chip.get_attribute("href")
    b.wait_for_timeout(3500)
    with pytest.raises(urllib.error.HTTPError) as refused:
        download(first)
    assert refused.value.code in (403, 410)  # expired
    with b.expect_download() as info:
        chip.click()
    assert Path(info.value.path()).read_bytes() == b"Bring a lab coat.\n"
    assert chip.get_attribute("href") != first

    a.get_by_test_id("attach-input").set_input_files(str(lecture_video))
    video = b.locator("[data-testid=message][data-kind=video]").get_by_test_id("attachment-video")
    expect(video).to_have_attribute("src", DL_LINK, timeout=30_000)
    b.wait_for_function("() => document.querySelector('[data-testid=attachment-video]').readyState >= 1")
    old_src = video.get_attribute("src")
    b.wait_for_timeout(3500)  # the link the player holds has expired
    video.evaluate("v => { v.muted = true; v.currentTime = 75; v.play().catch(() => {}); }")
    b.wait_for_function(
        "() => { const v = document.querySelector('[data-testid=attachment-video]'); return !v.paused && v.currentTime > 76; }",
        timeout=20_000)
    assert video.get_attribute("src") != old_src
    assert video.evaluate("v => v.error") is None
