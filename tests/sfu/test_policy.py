"""Students' cameras and screens turned off by the instructor in an SFU call
(server/calls/policy.py, issue 16.4), with aiortc peers through the real Janus: Janus stops
relaying a publishing student's video (its audio goes on) and relays it again when allowed;
a student publishing while cameras are off is moderated as it publishes; a student's screen
publish is refused while screens are off."""
from __future__ import annotations

import asyncio

import pytest

from tests.sfu.conftest import wait_until
from tests.sfu.test_controls import SETTLE_S, audio_video_over
from tests.sfu.test_signaling import (WsPublisher, WsSubscriber, class_of, code_of,  # noqa: F401
                                      config_overrides, database_url, publishers_listed, sqlite_template)

pytestmark = pytest.mark.slow


async def test_students_cameras_off_stops_their_video_at_janus_and_on_again(server):
    session, (t, t_ack), socks, _ = await class_of(server, 2)
    (a, a_ack), (b, b_ack) = socks
    a_id = a_ack["peer_id"]
    pub, sub = WsPublisher(a, session), WsSubscriber(t, session)
    late = WsPublisher(b, session)
    try:
        await pub.publish()
        await sub.subscribe()
        await wait_until(lambda: sub.by_peer[(a_id, "video")] >= 10 and sub.by_peer[(a_id, "audio")] >= 25, 30)
        ack = await t.request("call.permissions", session=session, video=False, screen=False)
        assert ack["session"]["students_video"] is False
        await a.next_event("call.permissions_changed")
        await asyncio.sleep(SETTLE_S)
        audio, video = await audio_video_over(sub, a_id)
        assert video == 0 and audio >= 25, (audio, video)
        # A student's screen share is refused; publishing a camera now is moderated at once.
        assert await code_of(a, "sfu.publish", session=session, sdp="v=0\r\n", source="screen") == "forbidden"
        await late.publish()
        await publishers_listed(server, session, 2)
        await sub.subscribe()
        b_id = b_ack["peer_id"]
        await wait_until(lambda: sub.by_peer[(b_id, "audio")] >= 25, 30)
        assert sub.by_peer[(b_id, "video")] == 0
        await t.request("call.permissions", session=session, video=True)
        await asyncio.sleep(SETTLE_S)
        audio, video = await audio_video_over(sub, a_id)
        assert video >= 10 and audio >= 25, (audio, video)
        await wait_until(lambda: sub.by_peer[(b_id, "video")] >= 10, 15)
    finally:
        for p in (pub, late):
            await p.pc.close()
        await sub.close()
