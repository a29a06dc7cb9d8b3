"""What a browser's tiles ask of its subscription, through Podium against the real Janus:
``sfu.configure`` (a stream's layer, and whether it is relayed at all — last-N), the talking
events Janus raises on the room (``sfu.talking``) and a screen share as a second published
stream (``sfu.publish {source: "screen"}`` / ``sfu.unpublish``). aiortc peers cannot send
simulcast, so the layer switch itself is shown by tests/browser/test_sfu_call.py."""
from __future__ import annotations

import asyncio

import av
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from tests.rtcpeer import PatternVideoTrack, ToneAudioTrack
from tests.sfu.conftest import wait_until
from tests.sfu.peers import no_stun
from tests.sfu.test_signaling import (  # noqa: F401  (fixtures: the server inside the namespace)
    WsPublisher, WsSubscriber, class_of, code_of, config_overrides, database_url, publishers_listed,
    sqlite_template)

pytestmark = pytest.mark.slow


class GatedTone(ToneAudioTrack):
    """The tone, or silence while ``silent`` (the audio-level extension follows the samples)."""

    def __init__(self) -> None:
        super().__init__()
        self.silent = False

    async def recv(self) -> av.AudioFrame:
        frame = await super().recv()
        if self.silent:
            frame.planes[0].update(bytes(frame.samples * 2))
        return frame


async def video_mid(sub: WsSubscriber, peer_id: str) -> str:
    return next(s["mid"] for s in sub.streams if s["peer_id"] == peer_id and s["type"] == "video")


async def test_configure_stops_and_resumes_a_video_and_checks_its_input(server):
    """``send: false`` on the teacher's video mid stops Janus relaying that video (audio goes
    on), ``send: true`` brings it back; a substream is accepted. Bad fields are ``bad_request``;
    a mid the subscription does not have, or no subscription yet, ``conflict``; anyone not in
    the call, ``forbidden``."""
    session, (t, t_ack), socks, _ = await class_of(server, 2)
    (a, _), (b, _) = socks
    pub, sub = WsPublisher(t, session), WsSubscriber(a, session)
    try:
        assert await code_of(a, "sfu.configure", session=session, mid="1", send=False) == "conflict"
        await pub.publish()
        await sub.subscribe()
        mid = await video_mid(sub, t_ack["peer_id"])
        await wait_until(lambda: sub.frames["video"] >= 10, 20)

        for bad in ({}, {"mid": 1, "send": False}, {"mid": "", "send": False}, {"mid": mid},
                    {"mid": mid, "substream": 3}, {"mid": mid, "substream": True},
                    {"mid": mid, "substream": "2"}, {"mid": mid, "send": "no"}, {"mid": "x" * 40, "send": True}):
            assert await code_of(a, "sfu.configure", session=session, **bad) == "bad_request", bad
        assert await code_of(a, "sfu.configure", session=session, mid="99", send=False) == "conflict"
        assert await code_of(b, "sfu.configure", session=session, mid=mid, send=False) == "conflict"  # not subscribed
        outsider = await server.client((await server.user("outsider"))[1])
        assert await code_of(outsider, "sfu.configure", session=session, mid=mid, send=False) == "forbidden"

        assert await a.request("sfu.configure", session=session, mid=mid, send=False) == {}
        await asyncio.sleep(0.5)  # what was in flight arrives
        video, audio = sub.frames["video"], sub.frames["audio"]
        await asyncio.sleep(1.5)
        assert sub.frames["video"] <= video + 1, (video, sub.frames)  # no more video
        assert sub.frames["audio"] >= audio + 40, (audio, sub.frames)  # the audio goes on

        assert await a.request("sfu.configure", session=session, mid=mid, send=True, substream=0) == {}
        await wait_until(lambda: sub.frames["video"] >= video + 10, 15)
    finally:
        await pub.pc.close()
        await sub.close()


async def test_talking_events_reach_the_session(server):
    """The teacher's tone makes Janus raise ``talking``: everyone in the session hears
    ``sfu.talking {peer_id: teacher, talking: true}``; silence → ``talking: false``."""
    session, (t, t_ack), socks, _ = await class_of(server, 1)
    a = socks[0][0]
    tone = GatedTone()
    pc = RTCPeerConnection(no_stun())
    try:
        tone.silent = True
        pc.addTrack(PatternVideoTrack(160, 120, 10))
        pc.addTrack(tone)
        await pc.setLocalDescription(await pc.createOffer())
        ack = await t.request("sfu.publish", session=session, sdp=pc.localDescription.sdp)
        await pc.setRemoteDescription(RTCSessionDescription(ack["sdp"], "answer"))
        await publishers_listed(server, session, 1)
        await asyncio.sleep(1.0)
        tone.silent = False
        ev = await a.next_event("sfu.talking", timeout=15)
        assert ev == {"type": "sfu.talking", "session": session, "peer_id": t_ack["peer_id"], "talking": True}
        assert (await t.next_event("sfu.talking"))["talking"] is True  # the talker too
        tone.silent = True
        ev = await a.next_event("sfu.talking", timeout=15)
        assert ev["peer_id"] == t_ack["peer_id"] and ev["talking"] is False
    finally:
        await pc.close()


async def test_screen_share_is_a_second_published_stream(server):
    """``sfu.publish {source: "screen"}`` publishes beside the camera: a student's
    subscription gets the camera's streams as the teacher's ``peer_id`` and the screen as
    ``<peer_id>:screen``, and decodes both; the teacher is not subscribed to its own screen;
    ``sfu.unpublish {source: "screen"}`` takes it out of the room."""
    session, (t, t_ack), socks, _ = await class_of(server, 1)
    a = socks[0][0]
    me = t_ack["peer_id"]
    cam = WsPublisher(t, session)
    screen_pc = RTCPeerConnection(no_stun())
    sub = WsSubscriber(a, session)
    try:
        await cam.publish()
        screen_pc.addTrack(PatternVideoTrack(320, 240, 10))
        await screen_pc.setLocalDescription(await screen_pc.createOffer())
        ack = await t.request("sfu.publish", session=session, sdp=screen_pc.localDescription.sdp, source="screen")
        await screen_pc.setRemoteDescription(RTCSessionDescription(ack["sdp"], "answer"))
        assert await t.request("sfu.ice", session=session, target="screen", candidate=None) == {}
        await publishers_listed(server, session, 2)
        await sub.subscribe()
        assert {(s["peer_id"], s["type"]) for s in sub.streams} == {
            (me, "audio"), (me, "video"), (f"{me}:screen", "video")}
        await wait_until(lambda: sub.by_peer[(f"{me}:screen", "video")] >= 10
                         and sub.by_peer[(me, "video")] >= 10, 30)
        assert (await t.request("sfu.subscribe", session=session))["sdp"] is None  # never its own screen
        assert await code_of(t, "sfu.publish", session=session, sdp="v=0\r\n", source="window") == "bad_request"
        assert await code_of(t, "sfu.unpublish", session=session, source="camera") == "bad_request"

        assert await t.request("sfu.unpublish", session=session, source="screen") == {}
        node = server.deps.sfu.node_for_session(int(session))
        spec = node.rooms.open_rooms[session]
        listed = await node.rooms.participants(spec)
        assert [p["display"] for p in listed if p.get("publisher")] == [me]
    finally:
        await cam.pc.close()
        await screen_pc.close()
        await sub.close()
