"""Live calls with real WebRTC (PROTOCOL §2.2): aiortc peers (tests/rtcpeer.py) join sessions
through the real server, negotiate over ``/ws`` (offer/answer and trickled ICE: the candidates
are taken out of the SDP, so nothing connects unless the server relays ``rtc.ice``), reach
``connected`` on loopback and decode each other's real VP8/Opus media."""
from __future__ import annotations

import asyncio


from tests.rtcpeer import PeerGroup
from tests.calls.helpers import call_room, calls_settle  # noqa: F401 (autouse fixture)

VIDEO_FRAMES = 20  # ~1.3 s of the 15 fps pattern
AUDIO_FRAMES = 50  # 1 s of 20 ms Opus frames


def assert_media_from(link, video: int = VIDEO_FRAMES, audio: int = AUDIO_FRAMES) -> None:
    """Real decoded media: the 320x240 moving pattern (many distinct frames) and a loud tone."""
    assert link.video_frames >= video and link.audio_frames >= audio, (link.video_frames, link.audio_frames)
    assert link.video_sizes == {(320, 240)}, link.video_sizes
    assert len(link.distinct_video) >= video // 2, len(link.distinct_video)
    assert link.audio_peak > 3000, link.audio_peak  # the 440 Hz tone at amplitude 12000, not silence
    assert link.end_of_candidates and link.ice_received >= 2  # trickled candidates + null


async def test_two_peers_exchange_real_audio_and_video(server):
    """Two aiortc peers join through the server, exchange offer/answer/ICE over /ws, reach
    connected, and each decodes at least N real video and audio frames from the other."""
    session, [(_, a_tok), (_, b_tok)] = await call_room(server, "ana", "ben")
    async with PeerGroup(server.ws_url) as g:
        a = await g.peer(a_tok, label="ana")
        b = await g.peer(b_tok, label="ben")
        await a.join(session)
        ack = await b.join(session)  # the newcomer offers to everyone already present
        assert [p["peer_id"] for p in ack["participants"]] == [a.peer_id]
        await b.wait_connected([a.peer_id])
        await a.wait_connected([b.peer_id])
        assert b.links[a.peer_id].offerer and not a.links[b.peer_id].offerer
        la = await a.wait_media(b.peer_id, VIDEO_FRAMES, AUDIO_FRAMES)
        lb = await b.wait_media(a.peer_id, VIDEO_FRAMES, AUDIO_FRAMES)
        assert_media_from(la)
        assert_media_from(lb)
        assert la.negotiation_id == lb.negotiation_id  # carried through offer, answer and ICE
        assert not a.signal_errors and not b.signal_errors


async def test_mesh_of_three_third_joins_later(server):
    """A third peer joining a running two-peer call offers to both, connects to both, and
    every one of the three pairs carries real media both ways."""
    session, users = await call_room(server, "ana", "ben", "cat")
    async with PeerGroup(server.ws_url) as g:
        a, b, c = [await g.peer(tok, label=u["username"]) for u, tok in users]
        await a.join(session)
        await b.join(session)
        await a.wait_connected([b.peer_id])
        await a.wait_media(b.peer_id, 5, 10)
        ack = await c.join(session)
        assert {p["peer_id"] for p in ack["participants"]} == {a.peer_id, b.peer_id}
        for other in (a, b):
            await other.next_event("call.participant_joined", where=lambda e: e["participant"]["peer_id"] == c.peer_id)
        await c.wait_connected([a.peer_id, b.peer_id])
        await a.wait_connected([c.peer_id])
        await b.wait_connected([c.peer_id])
        assert c.links[a.peer_id].offerer and c.links[b.peer_id].offerer
        for me, others in ((a, (b, c)), (b, (a, c)), (c, (a, b))):
            for other in others:
                assert_media_from(await me.wait_media(other.peer_id, VIDEO_FRAMES, AUDIO_FRAMES))
        assert not (a.signal_errors or b.signal_errors or c.signal_errors)


async def test_removed_peer_signals_are_refused(server):
    """After call.remove the removed peer's connections are closed, the others see it leave,
    and its rtc.offer / rtc.ice to a remaining participant are refused with forbidden."""
    session, [(_, a_tok), (_, b_tok), (cat, c_tok)] = await call_room(server, "ana", "ben", "cat")
    async with PeerGroup(server.ws_url) as g:
        a = await g.peer(a_tok, label="ana")
        b = await g.peer(b_tok, label="ben")
        c = await g.peer(c_tok, label="cat")
        await a.join(session)
        await b.join(session)
        await c.join(session)
        await c.wait_connected([a.peer_id, b.peer_id])
        await b.wait_media(c.peer_id, 3, 5)
        await a.ws.request("call.remove", session=session, peer_id=c.peer_id)
        removed = await c.next_event("call.removed")
        assert removed["session"] == session
        for other in (a, b):
            left = await other.next_event("call.participant_left", peer_id=c.peer_id)
            assert left["session"] == session
        # The removed peer tries to come back in through signaling: refused, nothing relayed.
        offer = b.links[a.peer_id].pc.localDescription or a.links[b.peer_id].pc.localDescription
        before = len(b.signals)
        for kind, fields in (("rtc.offer", {"sdp": offer.sdp}),
                             ("rtc.answer", {"sdp": offer.sdp}),
                             ("rtc.ice", {"candidate": None})):
            err = await c.signal(kind, b.peer_id, negotiation_id="again", **fields)
            assert err["type"] == "error" and err["code"] == "forbidden", err
        await asyncio.sleep(0.3)
        assert len(b.signals) == before  # nothing from the removed peer was relayed
        # ... and cannot rejoin that session either.
        rejoin = await c.ws.request_raw("call.join", session=session)
        assert rejoin["type"] == "error" and rejoin["code"] == "forbidden"
        # The two remaining peers keep their call.
        assert b.links[a.peer_id].pc.connectionState == "connected"
        assert c.peer_id not in a.links and c.peer_id not in b.links
