"""The instructor's enforced mute in the browser (web/js/views/call-participants.js,
call-controls.js, call/notices.js): two Chromium users in an SFU call through the real Janus,
inside the test's network namespace (see test_sfu_call.py, whose fixtures this reuses)."""
from __future__ import annotations

import pytest

from tests.browser.test_sfu_call import (Call, config_overrides, database_url,  # noqa: F401  (fixtures)
                                         remote_videos_playing, sqlite_template)
from tests.sfu.conftest import in_netns, janus, netns  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(170)]

# RTP packets received (audio) and frames decoded (video) per publisher on the subscription.
RECEIVED = """async () => {
  const sfu = podium.app.calls.sfu;
  const out = {};
  for (const tr of sfu.sub.getTransceivers()) {
    const s = sfu.streams.find(x => String(x.mid) === String(tr.mid));
    if (!s) continue;
    const rtp = [...(await tr.receiver.getStats()).values()].find(x => x.type === 'inbound-rtp');
    out[s.type] = (out[s.type] || 0) + (s.type === 'video' ? (rtp?.framesDecoded || 0) : (rtp?.packetsReceived || 0));
  }
  return out;
}"""


async def received_over(page, ms: int = 1500) -> dict:
    before = await page.evaluate(RECEIVED)
    await page.wait_for_timeout(ms)
    after = await page.evaluate(RECEIVED)
    return {k: after.get(k, 0) - before.get(k, 0) for k in ("audio", "video")}


async def test_instructor_mutes_holds_and_allows_a_student(server, janus, netns):  # noqa: F811
    """Ana (instructor) presses Mute on Ben's row: Ben sees "The instructor muted you", his
    microphone button is disabled, and Ana's page receives no more of his audio RTP while his
    video plays on; Ana's row for Ben offers "Allow to unmute"; once pressed, Ben's button
    works again and his audio reaches Ana; "Mute all" holds him again."""
    async with Call(server, netns) as call:
        a, b = await call.join(["ana", "ben"])
        for p in (a, b):
            await p.wait_for_function("() => podium.app.calls.state === 'live' && podium.app.calls.media === 'sfu'")
            await remote_videos_playing(p, 1)
        if not await a.get_by_test_id("participant-list").is_visible():
            await a.get_by_test_id("call-people").click()
        ben_row = a.get_by_test_id("participant-list").get_by_test_id("participant").filter(has_text="Ben")
        mic = b.get_by_test_id("toggle-mic")
        assert await mic.get_attribute("data-state") == "on"
        flowing = await received_over(a)
        assert flowing["audio"] >= 30 and flowing["video"] >= 5, flowing

        await ben_row.get_by_test_id("mute-participant").click()
        await b.get_by_test_id("call-notice").filter(has_text="The instructor muted you").wait_for()
        await b.wait_for_function("() => { const m = document.querySelector('[data-testid=toggle-mic]');"
                                  " return m.disabled && m.dataset.held === 'true' && m.dataset.state === 'off'; }")
        await ben_row.get_by_test_id("allow-unmute").wait_for()
        await ben_row.get_by_test_id("held-indicator").wait_for()
        await a.wait_for_timeout(600)
        muted = await received_over(a)
        assert muted["audio"] == 0 and muted["video"] >= 5, muted
        # even a page that unmutes its track itself reaches nobody (the mute is at Janus)
        await b.evaluate("() => { podium.app.calls.devices.local.audio.enabled = true; }")
        assert (await received_over(a, 1000))["audio"] == 0

        await ben_row.get_by_test_id("allow-unmute").click()
        await b.get_by_test_id("call-notice").filter(has_text="allowed you to unmute").wait_for()
        await b.wait_for_function("() => !document.querySelector('[data-testid=toggle-mic]').disabled")
        await mic.click()
        await b.wait_for_function("() => document.querySelector('[data-testid=toggle-mic]').dataset.state === 'on'")
        await a.wait_for_timeout(600)
        assert (await received_over(a))["audio"] >= 30

        await a.get_by_test_id("mute-all").click()
        await b.wait_for_function("() => document.querySelector('[data-testid=toggle-mic]').disabled")
        await a.wait_for_timeout(600)
        assert (await received_over(a))["audio"] == 0
        assert not call.errors, call.errors
