"""Switching camera and microphone during an SFU call (web/js/call/devices.js switchDevice,
sfu.js replaceTrack): two Chromium users through the real Janus, inside the test's network
namespace (see test_sfu_call.py, whose fixtures this reuses)."""
from __future__ import annotations

import pytest

from tests.browser.test_sfu_call import (Call, config_overrides, database_url,  # noqa: F401  (fixtures)
                                         remote_videos_playing, sqlite_template)
from tests.browser.test_sfu_controls import received_over
from tests.sfu.conftest import in_netns, janus, netns  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(170)]

# What the publish connection sends, and how many connections the page has open.
PUBLISHED = """() => ({
  open: window.__pcs.filter(pc => pc.connectionState !== 'closed').length,
  pub: podium.app.calls.sfu.pub.pc.connectionState,
  senders: podium.app.calls.sfu.pub.pc.getSenders().filter(s => s.track)
    .map(s => ({kind: s.track.kind, id: s.track.id, label: s.track.label, live: s.track.readyState === 'live'})),
  preview: document.querySelector('[data-testid=local-video]').srcObject.getVideoTracks()[0].id,
})"""


async def test_switching_camera_and_microphone_in_an_sfu_call(server, janus, netns):  # noqa: F811
    """Ben switches his camera and, from the Devices menu, his microphone during an SFU call:
    his one publish connection sends the new tracks (no new connection, no renegotiation),
    his preview shows the new camera, and Ana keeps decoding his video and receiving his audio."""
    async with Call(server, netns) as call:
        a, b = await call.join(["ana", "ben"])
        for p in (a, b):
            await p.wait_for_function("() => podium.app.calls.state === 'live' && podium.app.calls.media === 'sfu'")
            await remote_videos_playing(p, 1)
        await b.wait_for_function("() => podium.app.calls.sfu.pub?.pc.connectionState === 'connected'")
        before = await b.evaluate(PUBLISHED)
        by_kind = {s["kind"]: s for s in before["senders"]}
        assert set(by_kind) == {"audio", "video"}, before

        # The camera (Chromium has one fake camera: opening it again gives a new track).
        camera_id = await b.evaluate("() => podium.app.calls.local.camera.getSettings().deviceId")
        assert await b.evaluate("id => podium.app.calls.devices.switchDevice('videoinput', id)", camera_id) is True
        # The microphone, from the Devices menu.
        await b.get_by_test_id("device-menu").click()
        # The menu fills its lists from enumerateDevices(), which can answer after it opens.
        await b.wait_for_function(
            "label => [...(document.querySelector('[data-testid=select-microphone]')?.options || [])]"
            ".some(o => o.textContent !== label)", arg=by_kind["audio"]["label"])
        mics = await b.get_by_test_id("select-microphone").evaluate("s => [...s.options].map(o => o.textContent)")
        other = [m for m in mics if m != by_kind["audio"]["label"]][0]
        await b.get_by_test_id("select-microphone").select_option(label=other)
        await b.wait_for_function(
            "other => podium.app.calls.sfu.pub.pc.getSenders().some(s => s.track && s.track.label === other)", arg=other)

        after = await b.evaluate(PUBLISHED)
        now = {s["kind"]: s for s in after["senders"]}
        assert now["video"]["id"] != by_kind["video"]["id"] and now["video"]["live"], (before, after)
        assert now["audio"]["label"] == other and now["audio"]["live"], (before, after)
        assert after["preview"] == now["video"]["id"]
        assert after["open"] == before["open"] and after["pub"] == "connected", (before, after)
        assert await b.evaluate("() => podium.app.calls.sfu.pub.pc.signalingState") == "stable"

        await a.wait_for_timeout(800)
        flowing = await received_over(a)
        assert flowing["audio"] >= 30 and flowing["video"] >= 5, flowing
        await remote_videos_playing(a, 1)
        assert not call.errors, call.errors
