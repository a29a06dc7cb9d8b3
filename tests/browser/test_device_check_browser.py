"""The device check before a call and device switching during it (web/js/views/device-check.js,
device-menu.js, web/js/call/devices.js): real Chromium with two fake cameras, fake microphones
(a beeping tone) and fake speakers, two users in a mesh call against the real server.
"""
from __future__ import annotations

import json
import os

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.test_call_browser import MEDIA_TIMEOUT, remote_video_playing
from tests.browser.test_recording_browser import start_call

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

# Two fake cameras (fake_device_0, fake_device_1); Chromium's fake audio is three inputs and three outputs.
ARGS = [a for a in CHROMIUM_ARGS if a != "--use-fake-device-for-media-stream"] + [
    "--use-fake-device-for-media-stream=device-count=2"]

SENT_LABELS = """kind => [...podium.app.calls.peers.values()].flatMap(p => p.pc.getSenders())
  .filter(s => s.track && s.track.kind === kind).map(s => s.track.label)"""


@pytest.fixture(scope="module")
def browser(template_db):
    """One Chromium per module, with two fake cameras."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Chromium not found at {CHROMIUM} (set PODIUM_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def preview_playing(page: Page) -> None:
    """The dialog's camera preview shows decoded frames whose time advances."""
    page.wait_for_function(
        "() => { const v = document.querySelector('[data-testid=device-preview]');"
        " return v && v.videoWidth > 0 && v.currentTime > 0 && !v.paused; }", timeout=MEDIA_TIMEOUT)
    t0 = page.get_by_test_id("device-preview").evaluate("v => v.currentTime")
    page.wait_for_timeout(800)
    assert page.get_by_test_id("device-preview").evaluate("v => v.currentTime") > t0 + 0.3


def meter_peak(page: Page, ms: int = 3000) -> float:
    """The highest value the microphone level meter shows over `ms` (sampled every 50 ms)."""
    return page.evaluate("""ms => new Promise(done => {
      const m = document.querySelector('[data-testid=mic-level]'); let peak = 0;
      const t = setInterval(() => { peak = Math.max(peak, m.value); }, 50);
      setTimeout(() => { clearInterval(t); done(peak); }, ms); })""", ms)


def option_labels(page: Page, testid: str, at_least: int = 2) -> list[str]:
    """The select's option labels once it lists ``at_least`` devices: the dialog fills its
    lists from enumerateDevices(), which can answer after the dialog shows."""
    page.wait_for_function(
        "([id, n]) => [...(document.querySelector(`[data-testid=${id}]`)?.options || [])]"
        ".filter(o => o.value).length >= n", arg=[testid, at_least])
    return page.get_by_test_id(testid).evaluate("s => [...s.options].map(o => o.textContent)")


def test_device_check_preview_meter_choices_and_joining_muted(api, open_page):
    """Start call and Join open the device check: a playing preview, a moving level meter, the
    fake devices listed; Cancel starts nothing; the camera picked is the one the call sends and
    is remembered; a student who joins with the microphone off arrives muted for the others."""
    ana = api.register("ana", "Ana Lima")
    ben = api.register("ben", "Ben Okafor")
    room = api.course(ana, "Physics 201", [ben])
    _, a = open_page(ana, f"/#/rooms/{room['id']}", device_check=True)

    a.get_by_test_id("start-call").click()
    dialog = a.get_by_test_id("device-check")
    expect(dialog).to_be_visible()
    preview_playing(a)
    peak = meter_peak(a)
    assert peak > 0.05, f"the level meter did not move with the fake microphone's beep (peak {peak})"
    assert option_labels(a, "select-camera") == ["fake_device_0", "fake_device_1"]
    assert len(option_labels(a, "select-microphone")) >= 2
    expect(a.get_by_test_id("select-speaker")).to_be_visible()  # Chromium has setSinkId
    assert len(option_labels(a, "select-speaker")) >= 2
    a.screenshot(path="/tmp/device-check.png")

    # Cancel: no call, the camera is released.
    a.get_by_test_id("device-check-cancel").click()
    expect(dialog).to_have_count(0)
    expect(a.get_by_test_id("call-stage")).to_have_count(0)
    expect(a.get_by_test_id("start-call")).to_be_visible()

    # Again, with the second camera: the preview switches and the call sends it.
    a.get_by_test_id("start-call").click()
    expect(dialog).to_be_visible()
    preview_playing(a)
    a.get_by_test_id("select-camera").select_option(label="fake_device_1")
    a.wait_for_function("() => document.querySelector('[data-testid=device-preview]').srcObject"
                        "?.getVideoTracks()[0]?.label === 'fake_device_1'")
    preview_playing(a)
    a.get_by_test_id("device-check-join").click()
    expect(a.get_by_test_id("call-stage")).to_be_visible()
    assert a.evaluate("() => podium.app.calls.local.camera.label") == "fake_device_1"
    expect(a.get_by_test_id("toggle-mic")).to_have_attribute("data-state", "on")
    prefs = json.loads(a.evaluate("() => localStorage.getItem('podium.devices')"))
    assert prefs["camera"] == a.evaluate("() => podium.app.calls.local.camera.getSettings().deviceId")
    assert prefs["micOff"] is False and prefs["check"] is True

    # Ben joins with his microphone off: Ana sees him muted from the start.
    _, b = open_page(ben, f"/#/rooms/{room['id']}", device_check=True)
    b.get_by_test_id("join-call").click()
    expect(b.get_by_test_id("device-check")).to_be_visible()
    expect(b.get_by_test_id("device-check-join")).to_be_enabled()
    b.get_by_test_id("join-mic-off").check()
    b.get_by_test_id("device-check-join").click()
    expect(b.get_by_test_id("call-stage")).to_be_visible()
    expect(b.get_by_test_id("toggle-mic")).to_have_attribute("data-state", "off")
    assert b.evaluate("() => podium.app.calls.local.audio.enabled") is False
    ben_tile = a.locator("[data-testid=video-tile]:not(.local)")
    expect(ben_tile).to_contain_text("Ben Okafor")
    expect(ben_tile).to_have_attribute("data-audio", "off")
    expect(ben_tile.get_by_test_id("mic-indicator")).to_be_visible()
    remote_video_playing(a)  # the camera is on
    # He unmutes: the others hear him.
    b.get_by_test_id("toggle-mic").click()
    expect(ben_tile).to_have_attribute("data-audio", "on")
    assert b.evaluate("() => podium.app.calls.local.audio.enabled") is True

    # Remembered: next time the dialog opens with the microphone box ticked.
    b.get_by_test_id("leave-call").click()
    expect(b.get_by_test_id("call-stage")).to_have_count(0)
    b.get_by_test_id("join-call").click()
    expect(b.get_by_test_id("join-mic-off")).to_be_checked()
    b.get_by_test_id("device-check-close").click()
    expect(b.get_by_test_id("call-stage")).to_have_count(0)


def test_switching_devices_during_a_call(api, open_page):
    """The in-call device menu switches camera, microphone and speaker: the connection sends the
    new tracks (no renegotiation needed), the preview shows the new camera, the other side's
    video keeps playing and the old camera is released; the choices are remembered."""
    call = start_call(api, open_page)
    a, b = call.a, call.b
    remote_video_playing(a)
    b.wait_for_function(f"() => ({SENT_LABELS})('video').length === 1")
    assert b.evaluate(SENT_LABELS, "video") == ["fake_device_0"]
    old_mic = b.evaluate(SENT_LABELS, "audio")
    old_camera = b.evaluate_handle("() => podium.app.calls.local.camera")

    b.get_by_test_id("device-menu").click()
    expect(b.get_by_test_id("device-menu-dialog")).to_be_visible()
    assert option_labels(b, "select-camera") == ["fake_device_0", "fake_device_1"]
    b.get_by_test_id("select-camera").select_option(label="fake_device_1")
    b.wait_for_function(f"() => ({SENT_LABELS})('video').join() === 'fake_device_1'")
    assert b.evaluate("() => document.querySelector('[data-testid=local-video]').srcObject.getVideoTracks()[0].label") == "fake_device_1"
    assert old_camera.evaluate("t => t.readyState") == "ended"
    assert b.evaluate("() => [...podium.app.calls.peers.values()].every(p => p.pc.signalingState === 'stable')")
    remote_video_playing(a)  # Ana still sees Ben, now from the other camera
    b.screenshot(path="/tmp/device-menu.png")

    # Another microphone: the connection sends it, still unmuted.
    mics = option_labels(b, "select-microphone")
    other = next(m for m in mics if m not in old_mic)
    b.get_by_test_id("select-microphone").select_option(label=other)
    b.wait_for_function(f"other => ({SENT_LABELS})('audio').join() === other", arg=other)
    assert b.evaluate("() => podium.app.calls.local.audio.enabled") is True
    expect(a.locator("[data-testid=video-tile]:not(.local)")).to_have_attribute("data-audio", "on")

    # Another speaker: the remote video plays on it.
    speakers = b.get_by_test_id("select-speaker").evaluate("s => [...s.options].map(o => o.value)")
    target = next(s for s in speakers if s != "default")
    b.get_by_test_id("select-speaker").select_option(value=target)
    b.wait_for_function("id => document.querySelector('[data-testid=remote-video]').sinkId === id", arg=target)
    menu_prefs = json.loads(b.evaluate("() => localStorage.getItem('podium.devices')"))
    assert menu_prefs["speaker"] == target and menu_prefs["mic"] and menu_prefs["camera"]
    # The check before joining was off (open_page): the menu turns it back on.
    expect(b.get_by_test_id("device-menu-check")).not_to_be_checked()
    b.get_by_test_id("device-menu-check").check()
    b.get_by_test_id("device-menu-done").click()
    expect(b.get_by_test_id("device-menu-dialog")).to_have_count(0)
    b.get_by_test_id("leave-call").click()
    b.get_by_test_id("join-call").click()
    expect(b.get_by_test_id("device-check")).to_be_visible()
    expect(b.get_by_test_id("select-camera")).to_have_value(menu_prefs["camera"])  # remembered
    b.get_by_test_id("device-check-cancel").click()
    expect(b.get_by_test_id("call-stage")).to_have_count(0)

    # A remembered camera that has gone (unplugged): the default one opens instead.
    b.evaluate("""() => { const p = JSON.parse(localStorage.getItem('podium.devices'));
      p.camera = 'no-such-camera'; localStorage.setItem('podium.devices', JSON.stringify(p)); }""")
    b.get_by_test_id("join-call").click()
    preview_playing(b)
    assert b.get_by_test_id("device-preview").evaluate("v => v.srcObject.getVideoTracks()[0].label") == "fake_device_0"
    b.get_by_test_id("device-check-cancel").click()
