"""Recording a live call from the browser client (web/), against the real server subprocess:
the Record / Mark controls, the badge everyone in the call sees, the failure an instructor is
told about, and the room's Recordings panel — and, end to end, a real ``python -m media_worker``
process recording two Chromium users (fake camera and microphone) whose class video is
downloaded through its signed link and decoded with PyAV.

Everything runs on loopback (the worker gathers ICE candidates on 127.0.0.1 only).
"""
from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from types import SimpleNamespace

import av
import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_call_browser import remote_video_playing
from tests.procserver import WORKER_SECRET, ServerProcess
from tests.workerproc import WorkerProcess

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

START_TIMEOUT_S = 5  # RECORDING_START_TIMEOUT_S for the test without a worker
RECORD_S = 10  # how long the end-to-end test records
READY_TIMEOUT_MS = 45_000  # stop → ready: post-processing, upload, complete
LINK_TTL_S = 6  # SIGNED_URL_MAX_TTL_S in the end-to-end test: the panel must sign links again

# Records every status and progress value the Recordings panel shows (from before they change).
RECORD_PANEL = """() => {
  window.__recStates = [];
  const note = (el) => {
    const t = el.dataset && el.dataset.testid;
    if (t === 'recording-item') window.__recStates.push(['status', el.dataset.status]);
    if (t === 'recording-progress' && el.dataset.percent) window.__recStates.push(['percent', Number(el.dataset.percent)]);
  };
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === 'attributes') note(r.target);
      for (const n of r.addedNodes || []) if (n.nodeType === 1) { note(n); n.querySelectorAll('[data-testid]').forEach(note); }
    }
  }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-status', 'data-percent'] });
}"""


@pytest.fixture
def media_worker(podium: ServerProcess, tmp_path, worker_procs):
    return worker_procs(podium.base_url, WORKER_SECRET, tmp_path / "worker",
                        worker_id=f"browser-test-{uuid.uuid4().hex[:8]}").start()


def diagnostics(podium: ServerProcess, worker: WorkerProcess | None = None) -> str:
    """Logs for an assertion message: the worker's and the server's last lines."""
    parts = []
    if worker is not None:
        parts.append(f"--- media worker log ({worker.log_path}) ---\n{worker.log_tail(80)}")
    parts.append(f"--- server log ---\n{podium.log_tail(40)}")
    return "\n".join(parts)


def start_call(api, open_page, *, ben_joins: bool = True):
    """Instructor Ana starts a call in her course; student Ben opens the room (and joins)."""
    ana = api.register("ana", "Ana Lima")
    ben = api.register("ben", "Ben Okafor")
    room = api.course(ana, "Physics 201", [ben])
    _, a = open_page(ana, f"/#/rooms/{room['id']}")
    _, b = open_page(ben, f"/#/rooms/{room['id']}")
    a.get_by_test_id("start-call").click()
    expect(a.get_by_test_id("call-stage")).to_be_visible()
    expect(b.get_by_test_id("join-call")).to_be_visible()
    if ben_joins:
        join(b)
    return SimpleNamespace(ana=ana, ben=ben, room=room, a=a, b=b)


def join(page: Page) -> None:
    page.get_by_test_id("join-call").click()
    expect(page.get_by_test_id("call-stage")).to_be_visible()


def open_recordings(page: Page):
    page.get_by_test_id("open-recordings").click()
    panel = page.get_by_test_id("recordings-panel")
    expect(panel).to_be_visible()
    return panel


def download(url: str) -> tuple[int, dict, bytes]:
    with urllib.request.urlopen(url, timeout=20) as resp:
        return resp.status, dict(resp.headers), resp.read()


def link_works(url: str) -> bool:
    """True while a signed link answers 2xx (a Range of one byte); False once refused (403/410)."""
    req = urllib.request.Request(url, headers={"Range": "bytes=0-0"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status in (200, 206)
    except urllib.error.HTTPError as e:
        assert e.code in (403, 410), e.code
        return False


@pytest.mark.parametrize("server_env", [{"RECORDING_START_TIMEOUT_S": str(START_TIMEOUT_S)}])
def test_pending_then_failed_without_a_worker(api, open_page):
    """No media worker: Record shows "Starting recording…" (also to a student who joins then, from
    the join ack); after RECORDING_START_TIMEOUT_S the instructor is told why it failed, the
    badges go, and the Recordings panel lists the failed recording with its reason."""
    call = start_call(api, open_page, ben_joins=False)
    a, b = call.a, call.b
    record = a.get_by_test_id("record-call")
    expect(a.get_by_test_id("mark-recording")).to_be_disabled()  # nothing to mark yet
    expect(b.get_by_test_id("record-call")).to_have_count(0)  # no stage yet for Ben

    record.click()
    badge = a.get_by_test_id("recording-badge")
    expect(badge).to_be_visible()
    expect(badge).to_have_attribute("data-status", "pending")
    expect(badge).to_have_text("Starting recording…")
    expect(record).to_have_attribute("data-state", "on")
    expect(a.get_by_test_id("mark-recording")).to_be_disabled()  # marks only while recording

    # Ben joins while the recording is pending: his join ack carries it.
    join(b)
    expect(b.get_by_test_id("recording-badge")).to_have_attribute("data-status", "pending")
    expect(b.get_by_test_id("record-call")).to_be_hidden()  # students cannot record
    expect(b.get_by_test_id("mark-recording")).to_be_hidden()

    # No worker joins: the recording fails and Ana reads why.
    notice = a.get_by_test_id("call-notice")
    expect(notice).to_contain_text("Recording failed", timeout=START_TIMEOUT_S * 1000 + 5000)
    expect(notice).to_contain_text(f"no recording worker joined the call within {START_TIMEOUT_S} s")
    expect(notice).to_have_attribute("data-topic", "recording")
    expect(notice).to_have_attribute("data-kind", "error")
    for page in (a, b):
        expect(page.get_by_test_id("recording-badge")).to_be_hidden()
    expect(record).to_have_attribute("data-state", "off")
    expect(b.get_by_test_id("call-notice")).to_be_hidden()  # the student is not bothered
    a.screenshot(path="/tmp/recording-failed.png")

    # Pressing Record and withdrawing it before a worker joins is not a failure to report.
    record.click()
    expect(badge).to_have_attribute("data-status", "pending")
    record.click()
    expect(badge).to_be_hidden()
    expect(notice).to_contain_text("canceled before it started")
    expect(notice).to_have_attribute("data-kind", "info")

    # The panel lists both attempts, newest first, failed, with the reason.
    panel = open_recordings(a)
    items = panel.get_by_test_id("recording-item")
    expect(items).to_have_count(2)
    for i in range(2):
        expect(items.nth(i)).to_have_attribute("data-status", "failed")
        expect(items.nth(i).get_by_test_id("recording-status")).to_have_text("Failed")
    expect(items.nth(0).get_by_test_id("recording-reason")).to_contain_text("stopped before recording began")
    expect(items.nth(1).get_by_test_id("recording-reason")).to_contain_text("no recording worker joined")
    expect(panel.get_by_test_id("download-class-video")).to_have_count(0)
    a.screenshot(path="/tmp/recordings-panel-failed.png")
    panel.get_by_test_id("close-recordings").click()
    expect(panel).to_have_count(0)


@pytest.mark.parametrize("server_env", [{"RECORDING_START_TIMEOUT_S": "30", "SIGNED_URL_MAX_TTL_S": str(LINK_TTL_S)}])
def test_record_mark_stop_and_download_the_class_video(api, open_page, podium, media_worker, tmp_path):
    """End to end with a real media worker: both users see the badge, chat and a mark land in the
    recording, Stop → the panel shows progress then ready, and the class video downloaded
    through its signed link decodes to video and audio of the recorded length showing both
    participants' moving cameras; once its links expire the panel offers fresh ones."""
    media_worker.wait_registered()

    def logs() -> str:
        return diagnostics(podium, media_worker)

    call = start_call(api, open_page)
    a, b = call.a, call.b
    remote_video_playing(a)
    remote_video_playing(b)

    # Ben watches the Recordings panel from the start (students see every recording's status).
    b.evaluate(RECORD_PANEL)
    # Ana records; the worker joins the call as the recorder and everyone sees the badge.
    a.get_by_test_id("record-call").click()
    try:
        for page in (a, b):
            expect(page.get_by_test_id("recording-badge")).to_have_attribute("data-status", "recording", timeout=20_000)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{logs()}") from None
    started = time.monotonic()
    for page in (a, b):
        expect(page.get_by_test_id("recording-badge")).to_have_text("Recording")
        expect(page.get_by_test_id("video-tile")).to_have_count(2)  # no tile for the recorder
        # Consent: everyone in the call is told, and the room gets a system message.
        expect(page.get_by_test_id("call-notice")).to_contain_text("This call is now being recorded")
        expect(page.get_by_test_id("message-content").get_by_text("Recording started: this call is being recorded")).to_be_visible()
        expect(page.get_by_test_id("participant-list")).to_contain_text("Recorder")

    # Ben asks in the chat; Ana marks the moment; everyone in the call sees the mark.
    b.get_by_test_id("composer").fill("Is F = ma?")
    b.get_by_test_id("send").click()
    expect(a.get_by_test_id("message-content").filter(has_text="Is F = ma?")).to_be_visible()
    a.get_by_test_id("mark-recording").click()
    a.get_by_test_id("mark-label-input").fill("Newton's second law")
    a.get_by_test_id("mark-save").click()
    expect(a.get_by_test_id("mark-form")).to_be_hidden()
    for page in (a, b):
        expect(page.get_by_test_id("mark-toast")).to_contain_text("Newton's second law")
        expect(page.get_by_test_id("mark-toast")).to_contain_text("Ana Lima")
    b.screenshot(path="/tmp/recording-student.png")
    a.screenshot(path="/tmp/recording-instructor.png")

    # Ben opens the Recordings panel while it records: he follows it to the end from there.
    panel_b = open_recordings(b)
    item_b = panel_b.get_by_test_id("recording-item").first
    expect(item_b).to_have_attribute("data-status", "recording")
    expect(item_b.get_by_test_id("recording-status")).to_have_text("Recording now")

    a.wait_for_timeout(max(0, RECORD_S - (time.monotonic() - started)) * 1000)
    a.get_by_test_id("record-call").click()
    # Stopping asks first: Cancel keeps recording, then confirm.
    a.get_by_test_id("confirm-cancel").click()
    expect(a.get_by_test_id("record-call")).to_have_attribute("data-state", "on")
    a.get_by_test_id("record-call").click()
    a.get_by_test_id("confirm-ok").click()
    recorded = time.monotonic() - started  # as the page saw it (the confirmations take time too)
    expect(a.get_by_test_id("record-call")).to_have_attribute("data-state", "off")
    for page in (a, b):
        expect(page.get_by_test_id("recording-badge")).to_be_hidden()
    span = a.evaluate("() => podium.app.calls.recording && podium.app.calls.recording.duration_s")
    assert span and RECORD_S - 1 <= span <= recorded + 5, (span, recorded)  # the server's started → stopped

    # Both panels: processing (with progress on Ben's, open since before the stop), then ready.
    panel_a = open_recordings(a)
    item_a = panel_a.get_by_test_id("recording-item").first
    try:
        for item in (item_a, item_b):
            expect(item).to_have_attribute("data-status", "ready", timeout=READY_TIMEOUT_MS)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{logs()}") from None
    states = b.evaluate("() => window.__recStates")
    assert ["status", "processing"] in states, f"{states}"
    percents = [v for k, v in states if k == "percent"]
    assert percents and all(0 <= p <= 100 for p in percents), (states, logs())
    assert percents == sorted(percents), states  # progress only moves forward
    expect(item_b.get_by_test_id("recording-progress")).to_be_hidden()

    # What each sees: students the class video and the chat; instructors each participant too.
    expect(item_b.get_by_test_id("download-class-video")).to_have_count(1)
    expect(item_b.get_by_test_id("download-chat")).to_have_count(1)
    expect(item_b.get_by_test_id("download-participant")).to_have_count(0)
    participants = item_a.get_by_test_id("download-participant")
    expect(participants.filter(has_text="Ana Lima")).not_to_have_count(0)
    expect(participants.filter(has_text="Ben Okafor")).not_to_have_count(0)
    duration_text = item_a.get_by_test_id("recording-duration").inner_text()
    assert duration_text.startswith("0:"), duration_text
    thumb = item_a.get_by_test_id("recording-thumbnail")
    expect(thumb).to_be_visible()
    a.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle(), timeout=10_000)
    a.screenshot(path="/tmp/recordings-panel-ready.png")

    # The class video, through the signed link the panel offers, as a browser download.
    link = item_a.get_by_test_id("download-class-video")
    first_href = link.get_attribute("href")
    assert "/dl/" in first_href and "sig=" in first_href, first_href
    with a.expect_download(timeout=20_000) as dl:
        link.click()
    video_path = tmp_path / "class.mp4"
    dl.value.save_as(video_path)
    check_class_video(video_path, span, "Newton's second law", logs)

    # The chat subtitles carry Ben's question, spoken by him.
    status, _, vtt = download(item_b.get_by_test_id("download-chat").get_attribute("href"))
    text = vtt.decode("utf-8")
    assert status == 200 and text.startswith("WEBVTT"), text[:200]
    assert "Is F = ma?" in text and "Ben Okafor" in text, text

    # The links expire (SIGNED_URL_MAX_TTL_S): the open panel fetches the recording again and
    # offers working ones, and the download still works.
    deadline = time.monotonic() + LINK_TTL_S + 5
    while link_works(first_href):
        assert time.monotonic() < deadline, "the first link never expired"
        time.sleep(0.5)
    expect(link).not_to_have_attribute("href", first_href)
    with a.expect_download(timeout=20_000) as dl:
        link.click()
    again = tmp_path / "class-again.mp4"
    dl.value.save_as(again)
    assert again.read_bytes() == video_path.read_bytes()

    # Management (issue 15.2): the default title is the room and the date; the download is
    # named after it; Ana renames it (Ben's list follows) and deletes it, after confirming.
    title_a = item_a.get_by_test_id("recording-title")
    assert title_a.inner_text().startswith("Physics 201 — "), title_a.inner_text()
    expect(item_b.get_by_test_id("recording-rename")).to_be_hidden()  # instructors only
    assert dl.value.suggested_filename == f"{title_a.inner_text()}.mp4", dl.value.suggested_filename
    item_a.get_by_test_id("recording-rename").click()
    item_a.get_by_test_id("recording-title-input").fill("Week 3 - forces")
    item_a.get_by_test_id("recording-title-save").click()
    expect(title_a).to_have_text("Week 3 - forces")
    expect(item_b.get_by_test_id("recording-title")).to_have_text("Week 3 - forces")
    with a.expect_download(timeout=20_000) as dl:
        item_a.get_by_test_id("download-class-video").click()
    assert dl.value.suggested_filename == "Week 3 - forces.mp4", dl.value.suggested_filename
    item_a.get_by_test_id("recording-delete").click()
    a.get_by_test_id("confirm-ok").click()
    for panel in (panel_a, panel_b):
        expect(panel.get_by_test_id("recording-item")).to_have_count(0)


def check_class_video(path: Path, span: float, mark: str, logs) -> None:
    """Decodable video and audio, about ``span`` seconds long, with ``mark`` as a chapter, in
    which two separate regions of the picture move (each participant's fake camera animates)."""
    with av.open(str(path)) as container:
        kinds = {s.type for s in container.streams}
        assert {"video", "audio"} <= kinds, (kinds, logs())
        titles = [c.get("metadata", {}).get("title", "") for c in container.chapters()]
        assert any(mark in t for t in titles), (titles, logs())
        duration = container.duration / 1_000_000 if container.duration else None
        assert duration is not None and abs(duration - span) <= 3.0, (duration, span, logs())
        vstream = container.streams.video[0]
        width, height = vstream.codec_context.width, vstream.codec_context.height
        samples = []  # (t, small grey picture as bytes)
        audio_samples = 0
        cols, rows = 32, max(2, round(32 * height / width))
        for frame in container.decode(video=0, audio=0):
            if isinstance(frame, av.AudioFrame):
                audio_samples += frame.samples
                continue
            t = float(frame.pts * frame.time_base)
            if not samples or t - samples[-1][0] >= 0.5:
                small = frame.reformat(width=cols, height=rows, format="gray")
                plane = small.planes[0]
                data = bytes(plane)
                samples.append((t, [data[r * plane.line_size:r * plane.line_size + cols] for r in range(rows)]))
    assert audio_samples > 0.5 * span * 8000, (audio_samples, logs())  # at least some seconds of sound
    assert len(samples) >= span, (len(samples), logs())

    # Per block: is it lit (not letterbox black) and does it change over time?
    moving = [[False] * cols for _ in range(rows)]
    for r in range(rows):
        for c in range(cols):
            values = [pic[r][c] for _, pic in samples]
            moving[r][c] = sum(values) / len(values) > 20 and max(values) - min(values) >= 25
    picture = "\n".join("".join("#" if m else "." for m in row) for row in moving)
    # Two participants make a grid of two cells (side by side or stacked). Chromium's fake camera
    # animates at the centre of its picture, so the centre of each half of the canvas moves; a
    # single picture filling the canvas would move only at the canvas's centre.
    def centre_moves(r0: int, r1: int, c0: int, c1: int) -> bool:
        h3, w3 = (r1 - r0) / 3, (c1 - c0) / 3
        return any(moving[r][c] for r in range(round(r0 + h3), round(r1 - h3))
                   for c in range(round(c0 + w3), round(c1 - w3)))

    side_by_side = centre_moves(0, rows, 0, cols // 2) and centre_moves(0, rows, cols // 2, cols)
    stacked = centre_moves(0, rows // 2, 0, cols) and centre_moves(rows // 2, rows, 0, cols)
    assert side_by_side or stacked, (
        f"expected both participants' cameras moving in the {width}x{height} class video; moving blocks:\n"
        f"{picture}\n{logs()}")
