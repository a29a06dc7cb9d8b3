"""The class video shows the class (issue 15.3): two Chromium users in a recorded mesh call,
the instructor shares her screen for a while, and the class video (a real media worker,
downloaded through its signed link) switches to the presenter layout for that span — a frame
check — and back to the grid.

Chromium's fake screen and fake camera draw the same green picture, so frames are told apart by
geometry: in the presenter layout the screen (16:9, the tallest picture, so the canvas's
height) fills the stage to the top edge while the strip beside it is black above its camera
cells; in the grid the top edge is the same all across (the cameras letterboxed, or filling it).
"""
from __future__ import annotations

import time

import av
import pytest
from PIL import ImageStat
from playwright.sync_api import expect

from media_worker.post.layout import presenter_in
from tests.browser.test_recording_browser import (diagnostics, download, media_worker,  # noqa: F401
                                                  open_recordings, start_call)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(120)]

READY_TIMEOUT_MS = 60_000


def layouts(path) -> list[tuple[float, str]]:
    """(time, "presenter" | "grid" | "?") every 0.25 s of the class video."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        w, h = stream.codec_context.width, stream.codec_context.height
        edge = presenter_in(2, w, h, (640, 480)).stage.w  # the strip's left edge
        stage_top = (16, 4, edge - 32, 12)
        strip_top = (edge + 8, 4, w - edge - 16, 12)
        centre = (w // 4, h // 3, w // 2, h // 3)
        out = []
        for frame in container.decode(video=0):
            t = float(frame.pts * frame.time_base)
            if out and t - out[-1][0] < 0.25:
                continue
            grey = frame.to_image().convert("L")  # what a viewer sees

            def lit(region, grey=grey) -> bool:
                x, y, rw, rh = region
                return ImageStat.Stat(grey.crop((x, y, x + rw, y + rh))).mean[0] > 30

            stage_lit, strip_lit = lit(stage_top), lit(strip_top)
            kind = "?"
            if stage_lit and not strip_lit:
                kind = "presenter"
            elif stage_lit == strip_lit and lit(centre):
                kind = "grid"
            out.append((t, kind))
    return out


def test_a_shared_screen_is_the_stage_of_the_class_video(api, open_page, podium, media_worker, tmp_path):  # noqa: F811
    """Ana records, shares her screen for about 3 s, stops sharing: the class video is the grid,
    then the presenter layout (her screen on the stage up to the top edge, the cameras in the
    strip), then the grid again."""
    media_worker.wait_registered()

    def logs() -> str:
        return diagnostics(podium, media_worker)

    call = start_call(api, open_page)
    a = call.a
    a.get_by_test_id("record-call").click()
    expect(a.get_by_test_id("recording-badge")).to_have_attribute("data-status", "recording", timeout=20_000)
    a.wait_for_timeout(2000)
    shared_at = time.monotonic()
    a.get_by_test_id("share-screen").click()
    expect(a.get_by_test_id("share-screen")).to_have_attribute("data-state", "on")
    on_at = time.monotonic()
    a.wait_for_timeout(3000)
    off_clicked_at = time.monotonic()
    a.get_by_test_id("share-screen").click()
    expect(a.get_by_test_id("share-screen")).to_have_attribute("data-state", "off")
    # The share surely ran from "on" to the second click, and at most from the first click to
    # "off" (on a loaded machine each click can take a second or more to take effect).
    inner_s = off_clicked_at - on_at
    outer_s = time.monotonic() - shared_at
    a.wait_for_timeout(2000)
    a.get_by_test_id("record-call").click()
    a.get_by_test_id("confirm-ok").click()
    expect(a.get_by_test_id("record-call")).to_have_attribute("data-state", "off")

    item = open_recordings(a).get_by_test_id("recording-item").first
    try:
        expect(item).to_have_attribute("data-status", "ready", timeout=READY_TIMEOUT_MS)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{logs()}") from None
    status, _, body = download(item.get_by_test_id("download-class-video").get_attribute("href"))
    assert status == 200
    path = tmp_path / "class.mp4"
    path.write_bytes(body)

    seen = layouts(path)
    runs = []  # (layout, first t, last t) of consecutive samples
    for t, kind in seen:
        if kind == "?":
            continue
        if runs and runs[-1][0] == kind:
            runs[-1][2] = t
        else:
            runs.append([kind, t, t])
    kinds = [r[0] for r in runs if r[2] - r[1] >= 0.5]  # ignore a lone transition frame
    assert kinds == ["grid", "presenter", "grid"], (seen, logs())
    presenter = next(r for r in runs if r[0] == "presenter" and r[2] - r[1] >= 0.5)
    # Samples are about 0.25 s apart, and the screen's first frame reaches the recorder a
    # little after the page says "on".
    shown_s = presenter[2] - presenter[1]
    assert inner_s - 1.5 < shown_s < outer_s + 1.0, (presenter, inner_s, outer_s)
