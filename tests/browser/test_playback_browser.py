"""The playback page of a recording (issue 15.1; web/js/views/playback-page.js) in real
Chromium against the real server subprocess. A protocol-level media worker (a real WebSocket
client with a worker token, as in tests/recordings/test_recordings.py) records a call of the
real server while the chat and marks happen, then uploads a small real H.264 MP4 made with
PyAV, the chat as WebVTT built from the server's timeline (as the worker does) and a speaker
timeline, and completes: the room hears it is ready, with a link to the page.
"""
from __future__ import annotations

import asyncio
import json
import math
import re
import threading
from fractions import Fraction
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from server.accounts.tokens import issue_worker_token
from server.config import Config
from tests.procserver import JWT_SECRET, WORKER_SECRET
from tests.wsclient import WsClient

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

GAP_S = 0.7  # between the events of the recorded call (marks within 0.5 s would merge)
NOTES = 24  # quick messages after the question: the chat list must scroll to follow
LINES = 3 + NOTES
SPEAKERS = lambda ana, ben: {"speakers": [  # noqa: E731
    {"user_id": ana, "display_name": "Ana Lima", "segments": [[0.0, 1.4], [3.0, 4.0]]},
    {"user_id": ben, "display_name": "Ben Okafor", "segments": [[1.5, 2.9]]}]}


def class_video(seconds: int, path: Path) -> bytes:
    """A real H.264 MP4 of ``seconds`` (160×90, 10 fps, moov first) whose shade changes over time."""
    import av

    with av.open(str(path), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 90, "yuv420p"
        stream.gop_size = 10
        stream.codec_context.options = {"preset": "ultrafast"}
        for i in range(seconds * 10):
            frame = av.VideoFrame(160, 90, "yuv420p")
            for plane, value in zip(frame.planes, (i * 4 % 256, 128, 128)):
                plane.update(bytes([value]) * plane.buffer_size)
            frame.pts, frame.time_base = i, Fraction(1, 10)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return Path(path).read_bytes()


def vtt_time(s: float) -> str:
    return f"{int(s // 60):02d}:{s % 60:06.3f}"


def chat_vtt(chat: list[dict]) -> bytes:
    """The chat as the worker writes it: a cue per message for 4 s or until the next."""
    lines = ["WEBVTT", ""]
    for i, m in enumerate(chat):
        end = min(m["offset_s"] + 4, chat[i + 1]["offset_s"]) if i + 1 < len(chat) else m["offset_s"] + 4
        lines += [f"chat-{m['seq']}", f"{vtt_time(m['offset_s'])} --> {vtt_time(end)}",
                  f"<v {m['user']['display_name']}>{m['text']}</v>", ""]
    return "\n".join(lines).encode()


def record_a_class(podium, ana, ben, room_id: str, tmp_path: Path) -> tuple[str, int]:
    """Ana starts a call and records it; a worker joins; Ana marks "Welcome" at once and
    "Newton's laws" later, Ben and Ana chat in between; Ana stops; the worker uploads a
    class video as long as the recording (and two seconds), chat.vtt and speakers.json and
    completes. Returns the recording id and the video's length in seconds."""
    result: dict = {}

    async def http(method: str, path: str, token: str, body=None, raw: bytes | None = None, worker: bool = False):
        headers = {"Authorization": f"Bearer {token}"}
        if worker:
            headers["X-Worker-Id"] = "pb-worker"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if body is not None:
            headers["Content-Type"] = "application/json"
        r = await AsyncHTTPClient().fetch(HTTPRequest(podium.base_url + path, method=method, body=data, headers=headers,
                                                      request_timeout=20), raise_error=False)
        assert r.code in (200, 201), (method, path, r.code, r.body[:300])
        return json.loads(r.body or b"null")

    async def scenario() -> None:
        w_tok = issue_worker_token(Config(jwt_secret=JWT_SECRET, worker_secret=WORKER_SECRET), "Recorder")
        a = await WsClient.connect(podium.ws_url, ana.token)
        w = await WsClient.connect(podium.ws_url, w_tok)
        try:
            await w.request("worker.register", capacity=1, worker_id="pb-worker", recordings=[])
            session = (await a.request("call.start", room=room_id))["session"]["id"]
            await a.request("call.join", session=session)
            rid = (await a.request("recording.start", session=session))["recording"]["id"]
            await w.next_event("recording.job", timeout=10)
            await w.request("call.join", session=session)
            await a.next_event("recording.started", timeout=10)
            await a.request("recording.mark", session=session, label="Welcome")
            await asyncio.sleep(GAP_S)
            await http("POST", f"/api/rooms/{room_id}/messages", ben.token,
                       {"client_msg_id": "pb-1", "kind": "text", "content": "Hello everyone"})
            await asyncio.sleep(GAP_S)
            await a.request("recording.mark", session=session, label="Newton's laws")
            await asyncio.sleep(GAP_S)
            await http("POST", f"/api/rooms/{room_id}/messages", ben.token,
                       {"client_msg_id": "pb-2", "kind": "text", "content": "Is F = ma?"})
            for i in range(NOTES):
                await http("POST", f"/api/rooms/{room_id}/messages", ben.token,
                           {"client_msg_id": f"pb-note-{i}", "kind": "text", "content": f"Note {i + 1}"})
            await asyncio.sleep(GAP_S)
            await http("POST", f"/api/rooms/{room_id}/messages", ana.token,
                       {"client_msg_id": "pb-3", "kind": "text", "content": "Yes, exactly"})
            stopped = (await a.request("recording.stop", session=session))["recording"]
            video_s = math.ceil(stopped["duration_s"]) + 2  # on a busy machine the class takes longer
            video = class_video(video_s, tmp_path / "class.mp4")
            timeline = await http("GET", f"/api/recordings/{rid}/timeline", w_tok)
            assets = {"class.mp4": ("composite", video), "chat.vtt": ("chat", chat_vtt(timeline["chat"])),
                      "speakers.json": ("speakers", json.dumps(SPEAKERS(ana.user["id"], ben.user["id"])).encode())}
            for name, (_, data) in assets.items():
                await http("PUT", f"/api/recordings/{rid}/assets/{name}", w_tok, raw=data, worker=True)
            await http("POST", f"/api/recordings/{rid}/complete", w_tok, worker=True, body={
                "assets": [{"name": n, "kind": k, "duration_s": video_s if k == "composite" else None}
                           for n, (k, _) in assets.items()], "duration_s": video_s})
            await a.request("call.end", session=session)
            result["id"], result["video_s"] = rid, video_s
        finally:
            a.close()
            w.close()

    def run() -> None:
        try:
            asyncio.run(scenario())
        except BaseException as e:  # handed to the test's thread
            result["error"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join(60)
    if "error" in result:
        raise result["error"]
    return result["id"], result["video_s"]


def current_time(page: Page) -> float:
    return page.evaluate("() => document.querySelector('[data-testid=playback-video]').currentTime")


def wait_time(page: Page, t: float, tol: float = 0.15) -> None:
    page.wait_for_function("([t, tol]) => { const v = document.querySelector('[data-testid=playback-video]');"
                           " return v && v.readyState >= 1 && Math.abs(v.currentTime - t) <= tol; }", arg=[t, tol],
                           timeout=5000)


def current_line(page: Page):
    """The chat line shown as the current one (highlighted, and so announced)."""
    return page.locator("[data-testid=playback-chat-line].is-current[aria-current=true]")


def no_horizontal_scroll(page: Page) -> None:
    sizes = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert sizes[0] <= sizes[1], f"the page is {sizes[0]} px wide in a {sizes[1]} px window"


def test_watch_a_recording_chapters_chat_speakers_captions_speed_links(api, open_page, podium, tmp_path):
    ana = api.register("ana", "Ana Lima")
    ben = api.register("ben", "Ben Okafor")
    room = api.course(ana, "Physics 201", [ben])
    _, b = open_page(ben, f"/#/rooms/{room['id']}")
    expect(b.get_by_test_id("composer")).to_be_visible()

    rid, video_s = record_a_class(podium, ana, ben, room["id"], tmp_path)

    # The room is told, with a link: Ben follows it to the playback page.
    link = b.get_by_test_id("recording-link")
    expect(link).to_have_count(1, timeout=10_000)
    expect(b.get_by_test_id("message-content").filter(has=link)).to_contain_text("Recording ready: Physics 201 — ")
    link.click()
    page = b.get_by_test_id("playback-page")
    expect(page).to_be_visible()
    assert b.evaluate("() => location.hash") == f"#/recordings/{rid}"
    expect(b.get_by_test_id("playback-title")).to_contain_text("Physics 201 — ")
    expect(b.get_by_test_id("playback-shortcuts")).to_contain_text("Play / pause")
    expect(b).to_have_title(re.compile(r"^Physics 201 — .+ · Podium$"))
    video = b.get_by_test_id("playback-video")
    b.wait_for_function("() => document.querySelector('[data-testid=playback-video]').readyState >= 1", timeout=10_000)
    assert abs(b.evaluate("() => document.querySelector('[data-testid=playback-video]').duration") - video_s) < 0.2

    # Chapters: a list and marks on the timeline; a click seeks there.
    chapters = b.get_by_test_id("playback-chapter")
    expect(chapters).to_have_count(2)
    expect(chapters.nth(0)).to_contain_text("Welcome")
    expect(chapters.nth(1)).to_contain_text("Newton's laws")
    expect(b.get_by_test_id("playback-chapter-mark")).to_have_count(2)
    newton = float(chapters.nth(1).get_attribute("data-start"))
    assert 2 * GAP_S - 0.2 <= newton < video_s, newton
    chapters.nth(1).click()
    wait_time(b, newton, 0.05)
    expect(chapters.nth(1)).to_have_class("pb-chapter is-current")
    # The chat replay follows: the last message before that moment is the current one.
    lines = b.get_by_test_id("playback-chat-line")
    expect(lines).to_have_count(LINES)
    expect(current_line(b)).to_contain_text("Hello everyone")
    expect(lines.nth(2)).to_have_class("pb-line is-future")
    # A chapter mark on the timeline seeks too.
    b.get_by_test_id("playback-chapter-mark").nth(0).click()
    wait_time(b, 0, 0.05)
    expect(current_line(b)).to_have_count(0)  # before the first message

    # Later in the class the list scrolls (itself, not the page) to keep the current line in view.
    chat_list = b.get_by_test_id("playback-chat")
    assert chat_list.evaluate("l => l.scrollTop") == 0
    last_t = float(lines.filter(has_text="Yes, exactly").get_attribute("data-t"))
    video.evaluate("(v, t) => { v.currentTime = t; }", last_t + 0.1)  # as if it had played on
    expect(current_line(b)).to_contain_text("Yes, exactly")
    b.wait_for_function("""() => {
      const list = document.querySelector('[data-testid=playback-chat]');
      const line = list.querySelector('.is-current');
      const l = list.getBoundingClientRect(), r = line.getBoundingClientRect();
      return list.scrollTop > 0 && r.top >= l.top - 1 && r.bottom <= l.bottom + 1;
    }""", timeout=3000)

    # Click a message: the video goes to its time and it is the current line.
    question = lines.filter(has_text="Is F = ma?")
    q_at = float(question.get_attribute("data-t"))
    question.locator("button").click()
    wait_time(b, q_at, 0.05)
    expect(current_line(b)).to_contain_text("Is F = ma?")

    # Playing (the K shortcut) advances time and the highlight with it.
    b.get_by_test_id("playback-chapter").nth(0).click()
    wait_time(b, 0, 0.05)
    video.evaluate("v => { v.muted = true; }")
    b.keyboard.press("k")
    hello_at = float(lines.nth(0).get_attribute("data-t"))
    expect(current_line(b)).to_contain_text("Hello everyone", timeout=8000)
    assert current_time(b) >= hello_at - 0.01
    b.keyboard.press("k")
    b.wait_for_function("() => document.querySelector('[data-testid=playback-video]').paused")
    # Arrows and J/L move by 5 and 10 s (within the video).
    b.get_by_test_id("playback-chapter").nth(0).click()
    wait_time(b, 0, 0.05)
    b.keyboard.press("ArrowRight")
    wait_time(b, 5, 0.05)
    b.keyboard.press("j")
    wait_time(b, 0, 0.05)

    # Search filters the chat (by text or name).
    search = b.get_by_test_id("playback-chat-search")
    search.fill("f = MA")
    expect(lines.locator("visible=true")).to_have_count(1)
    expect(b.get_by_test_id("playback-chat-count")).to_have_text(f"1 of {LINES} messages")
    search.fill("ana")
    expect(lines.locator("visible=true")).to_have_count(1)
    expect(lines.locator("visible=true")).to_contain_text("Yes, exactly")
    search.fill("")
    expect(lines.locator("visible=true")).to_have_count(LINES)

    # Speed.
    b.get_by_test_id("playback-speed").select_option("1.5")
    assert video.evaluate("v => v.playbackRate") == 1.5
    b.evaluate("() => document.activeElement.blur()")  # keys typed into the list are the list's
    b.keyboard.press(">")
    assert video.evaluate("v => v.playbackRate") == 1.75
    expect(b.get_by_test_id("playback-speed")).to_have_value("1.75")

    # Captions from chat.vtt, as a text track: off, on (button), off (C).
    track_mode = "v => v.textTracks.length ? v.textTracks[0].mode : null"
    assert video.evaluate(track_mode) == "hidden"
    b.wait_for_function("() => { const t = document.querySelector('[data-testid=playback-video]').textTracks[0];"
                        f" return t.cues && t.cues.length === {LINES}; }}", timeout=5000)
    b.get_by_test_id("playback-captions").click()
    assert video.evaluate(track_mode) == "showing"
    expect(b.get_by_test_id("playback-captions")).to_have_attribute("aria-pressed", "true")
    assert "Is F = ma?" in video.evaluate("v => [...v.textTracks[0].cues].map(c => c.text).join('|')")
    b.keyboard.press("c")
    assert video.evaluate(track_mode) == "hidden"

    # Who spoke when: a row per speaker; a turn seeks to its start.
    speakers = b.get_by_test_id("playback-speaker")
    expect(speakers).to_have_count(2)
    expect(speakers.nth(1)).to_contain_text("Ben Okafor")
    speakers.nth(1).get_by_test_id("playback-speaker-segment").click()
    wait_time(b, 1.5, 0.05)

    # A link at the current moment.
    b.get_by_test_id("playback-chapter-mark").nth(1).click()
    wait_time(b, newton, 0.05)
    b.get_by_test_id("playback-copy-link").click()
    shared = b.get_by_test_id("playback-link")
    expect(shared).to_be_visible()
    assert shared.input_value() == f"{podium.base_url}/#/recordings/{rid}?t={int(newton)}s", shared.input_value()
    b.screenshot(path="/tmp/playback-desktop.png")
    # A link to another moment of the page being watched seeks there (no reload).
    b.evaluate(f"() => {{ location.hash = '#/recordings/{rid}#t=0:03'; }}")
    wait_time(b, 3, 0.05)
    # The forms a moment may take in a link (web/js/playback.js).
    forms = b.evaluate("""async () => {
      const m = await import('/js/playback.js');
      return [['90', '1m30s', '1:30', '1h2m3s', '12.5', '0:01:05', 'soon', ''].map(m.parseMoment),
              [0, 7, 90, 3725].map(m.momentParam),
              ['#/recordings/12?t=1m30s', '#/recordings/12#t=90', '#/recordings/12&t=1:30', '#/rooms/3'].map((h) => m.parsePlaybackRoute(h))];
    }""")
    assert forms[0] == [90, 90, 90, 3723, 12.5, 65, None, None], forms[0]
    assert forms[1] == ["0s", "7s", "1m30s", "1h2m5s"], forms[1]
    assert forms[2] == [{"id": "12", "t": 90}] * 3 + [None], forms[2]

    # On a phone, that link opens the page at that moment, nothing wider than the screen.
    at = int(last_t) + 1  # after the last message
    _, phone = open_page(ana, f"/#/recordings/{rid}?t={at}s", viewport=(390, 844))
    expect(phone.get_by_test_id("playback-page")).to_be_visible()
    wait_time(phone, at, 0.05)
    expect(phone.get_by_test_id("playback-chapter")).to_have_count(2)
    expect(current_line(phone)).to_contain_text("Yes, exactly")
    no_horizontal_scroll(phone)
    phone.screenshot(path="/tmp/playback-phone.png", full_page=True)
    # Back in the room, the Recordings panel's Watch opens the same page.
    phone.get_by_test_id("playback-back").click()
    expect(phone.get_by_test_id("playback-page")).to_have_count(0)
    phone.get_by_test_id("open-recordings").click()
    phone.get_by_test_id("recording-watch").click()
    expect(phone.get_by_test_id("recordings-panel")).to_have_count(0)
    expect(phone.get_by_test_id("playback-title")).to_be_visible()
    no_horizontal_scroll(phone)

    # Renamed, then deleted, by Ana while Ben watches: his page follows.
    status, _ = api.call("PATCH", f"/api/recordings/{rid}", ana.token, {"title": "Week 3 - forces"})
    assert status == 200
    expect(b.get_by_test_id("playback-title")).to_have_text("Week 3 - forces")
    expect(b).to_have_title("Week 3 - forces · Podium")
    status, _ = api.call("DELETE", f"/api/recordings/{rid}", ana.token)
    assert status == 200
    expect(b.get_by_test_id("playback-error")).to_contain_text("This recording was deleted")
    expect(b.get_by_test_id("playback-video")).to_have_count(0)
