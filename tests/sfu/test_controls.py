"""Enforced classroom controls in SFU calls (server/calls/controls.py, issue 14.4), with aiortc
peers through the real Janus in the test namespace: an instructor's mute stops the muted
publisher's audio at Janus (its video goes on) and holds it until the instructor allows the
participant to unmute; "mute all"; the hold survives publishing again and is visible to late
joiners. In a mesh call (Janus unreachable) call.mute stays a request."""
from __future__ import annotations

import asyncio

import pytest

from server.calls import notices as call_notices
from server.kernel.frames import event_frame
from server.realtime.notices import NoticeRouter, SessionMute, decode, encode
from tests.sfu.conftest import wait_until
from tests.sfu.test_signaling import (WsPublisher, WsSubscriber, class_of, code_of,  # noqa: F401
                                      config_overrides, database_url, publishers_listed, sqlite_template)

pytestmark = pytest.mark.slow
SETTLE_S = 0.6  # packets in flight when the mute lands, and the jitter buffer draining
WINDOW_S = 1.5


async def audio_video_over(sub: WsSubscriber, peer_id: str, window: float = WINDOW_S) -> tuple[int, int]:
    """(audio frames, video frames) ``sub`` decodes from ``peer_id`` during ``window`` seconds."""
    audio, video = sub.by_peer[(peer_id, "audio")], sub.by_peer[(peer_id, "video")]
    await asyncio.sleep(window)
    return sub.by_peer[(peer_id, "audio")] - audio, sub.by_peer[(peer_id, "video")] - video


async def audio_packets(sub: WsSubscriber, mid: str) -> int:
    """RTP packets received so far on the subscription's audio m-line ``mid`` (getStats)."""
    tr = next(t for t in sub.pc.getTransceivers() if t.mid == mid)
    stats = await tr.receiver.getStats()
    return sum(s.packetsReceived for s in stats.values() if s.type == "inbound-rtp")


def participant(ack_or_list, peer_id: str) -> dict:
    (p,) = [p for p in ack_or_list if p["peer_id"] == peer_id]
    return p


async def test_instructor_mute_stops_audio_at_janus_until_allowed(server):
    """call.mute of a publishing student: a subscriber stops receiving its audio RTP (video
    goes on); the student is told (enforced, not allowed to unmute) and everyone sees
    muted_by_instructor; its call.unmute_self and call.media audio are forbidden and change
    nothing; a late joiner sees the hold; once the instructor allows it (allow_unmute) the
    student unmutes and its audio flows again."""
    session, (t, t_ack), socks, room = await class_of(server, 2)
    (a, a_ack), (b, _) = socks
    a_id = a_ack["peer_id"]
    pub, sub = WsPublisher(a, session), WsSubscriber(b, session)
    try:
        await pub.publish()
        await sub.subscribe()
        await wait_until(lambda: sub.by_peer[(a_id, "audio")] >= 25 and sub.by_peer[(a_id, "video")] >= 10, 30)
        (audio_mid,) = [s["mid"] for s in sub.streams if s["type"] == "audio"]
        assert await t.request("call.mute", session=session, peer_id=a_id) == {}
        told = await a.next_event("call.mute_requested")
        teacher_user = participant(a_ack["participants"], t_ack["peer_id"])["user"]["id"]
        assert told == {"type": "call.mute_requested", "session": session, "by": teacher_user,
                        "enforced": True, "allow_unmute": False}
        seen = (await b.next_event("call.media_changed"))["participant"]
        assert seen["peer_id"] == a_id and seen["muted_by_instructor"] is True and seen["may_unmute"] is False
        assert seen["media"]["audio"] is False
        await asyncio.sleep(SETTLE_S)
        packets = await audio_packets(sub, audio_mid)
        audio, video = await audio_video_over(sub, a_id)
        assert audio == 0 and video >= 10, (audio, video)
        assert await audio_packets(sub, audio_mid) == packets  # no RTP at all, not just silence

        assert await code_of(a, "call.unmute_self", session=session) == "forbidden"
        assert await code_of(a, "call.media", session=session, audio=True) == "forbidden"
        late = await server.client(room["_token"])
        late_ack = await late.request("call.join", session=session)  # the instructor's second device
        held = participant(late_ack["participants"], a_id)
        assert held["muted_by_instructor"] is True and held["may_unmute"] is False
        assert (await audio_video_over(sub, a_id, 0.5))[0] == 0

        assert await t.request("call.mute", session=session, peer_id=a_id, allow_unmute=True) == {}
        assert (await a.next_event("call.mute_requested"))["allow_unmute"] is True
        assert (await audio_video_over(sub, a_id, 0.5))[0] == 0  # allowed, not unmuted
        me = (await a.request("call.unmute_self", session=session))["participant"]
        assert me["muted_by_instructor"] is False and me["may_unmute"] is True and me["media"]["audio"] is True
        await asyncio.sleep(SETTLE_S)
        audio, video = await audio_video_over(sub, a_id)
        assert audio >= 25 and video >= 10, (audio, video)
    finally:
        await pub.pc.close()
        await sub.close()


async def test_mute_all_holds_every_student_and_survives_publishing_again(server):
    """call.mute {all: true}: every student (not the instructor) is muted at Janus and held,
    while the instructor's audio flows on; a held student who leaves, rejoins and publishes
    again (a new Janus feed) is still muted: a fresh subscription gets its video and no audio."""
    session, (t, t_ack), socks, _ = await class_of(server, 3)
    (a, a_ack), (b, b_ack), (c, _) = socks
    t_id, a_id, b_id = t_ack["peer_id"], a_ack["peer_id"], b_ack["peer_id"]
    pubs = [WsPublisher(t, session), WsPublisher(a, session), WsPublisher(b, session)]
    subs = [WsSubscriber(c, session)]
    try:
        # one publisher at a time, each added to c's one subscription (Janus renegotiates it):
        # with aiortc's default bundlePolicy (balanced, as in WsSubscriber) the second audio
        # m-line of one offer never receives (docs/RECORDING.md "Two aiortc details")
        for n, p in enumerate(pubs, 1):
            await p.publish()
            await publishers_listed(server, session, n)
            await subs[0].subscribe()
        await wait_until(lambda: all(subs[0].by_peer[(p, "audio")] >= 25 for p in (t_id, a_id, b_id)), 30)
        assert await t.request("call.mute", session=session, all=True) == {}
        for s in (a, b, c):
            assert (await s.next_event("call.mute_requested"))["enforced"] is True
        assert await t.no_event("call.mute_requested", 0.2)
        await asyncio.sleep(SETTLE_S)
        before = {p: subs[0].by_peer[(p, "audio")] for p in (t_id, a_id, b_id)}
        await asyncio.sleep(WINDOW_S)
        got = {p: subs[0].by_peer[(p, "audio")] - before[p] for p in before}
        assert got[a_id] == 0 and got[b_id] == 0 and got[t_id] >= 25, got
        assert await code_of(b, "call.unmute_self", session=session) == "forbidden"

        # a leaves and rejoins (same socket, a new Janus session and feed) and publishes again;
        # b's subscription has the instructor first, then adds a's new feed
        await a.request("call.leave", session=session)
        await pubs[1].pc.close()
        subs.append(WsSubscriber(b, session))
        await subs[1].subscribe()
        rejoined = await a.request("call.join", session=session)
        assert rejoined["muted_by_instructor"] is True and rejoined["may_unmute"] is False
        assert participant(rejoined["participants"], b_id)["muted_by_instructor"] is True
        pubs[1] = WsPublisher(a, session)
        await pubs[1].publish()
        assert await code_of(a, "call.unmute_self", session=session) == "forbidden"
        await publishers_listed(server, session, 3)
        await subs[1].subscribe()
        await wait_until(lambda: subs[1].by_peer[(a_id, "video")] >= 10, 30)
        await asyncio.sleep(SETTLE_S)
        audio, video = await audio_video_over(subs[1], a_id)
        assert audio == 0 and video >= 10, (audio, video)
        assert (await audio_video_over(subs[1], t_id, 1.0))[0] >= 15  # the instructor is heard
        # allowed, a unmutes: its new feed's audio reaches b (the measure sees it when it flows)
        await t.request("call.mute", session=session, all=True, allow_unmute=True)
        await a.request("call.unmute_self", session=session)
        await asyncio.sleep(SETTLE_S)
        assert (await audio_video_over(subs[1], a_id))[0] >= 25
    finally:
        for p in pubs:
            await p.pc.close()
        for s in subs:
            await s.close()


async def test_mute_from_another_process_is_enforced_here(server):
    """The SessionMute notice another web process publishes for an enforced mute (read back
    through the bus codec and the calls' notice handler): this process tells its participant,
    mutes its audio at Janus and holds it; the user's own unmute elsewhere (a notice with mute
    false) releases it here."""
    session, (t, t_ack), socks, _ = await class_of(server, 2)
    (a, a_ack), (b, b_ack) = socks
    a_id = a_ack["peer_id"]
    a_user = int(participant(b_ack["participants"], a_id)["user"]["id"])
    pub, sub = WsPublisher(a, session), WsSubscriber(b, session)
    router = NoticeRouter()
    call_notices.register(router, server.deps.calls, server.deps.controls, server.deps.call_policy, server.deps.lobby)
    frame = event_frame({"type": "call.mute_requested", "session": session, "by": "1", "enforced": True,
                         "allow_unmute": False})
    try:
        await pub.publish()
        await sub.subscribe()
        await wait_until(lambda: sub.by_peer[(a_id, "audio")] >= 25, 30)
        router.route(*decode(encode(SessionMute(int(session), [a_user], False, True, origin="other"), frame)))
        assert (await a.next_event("call.mute_requested"))["enforced"] is True
        assert (await b.next_event("call.media_changed"))["participant"]["muted_by_instructor"] is True
        await asyncio.sleep(SETTLE_S)
        audio, video = await audio_video_over(sub, a_id)
        assert audio == 0 and video >= 10, (audio, video)
        assert await code_of(a, "call.unmute_self", session=session) == "forbidden"
        router.route(*decode(encode(SessionMute(int(session), [a_user], True, False, origin="other"), b"")))
        seen = (await b.next_event("call.media_changed"))["participant"]
        assert seen["muted_by_instructor"] is False and seen["may_unmute"] is True
        await asyncio.sleep(SETTLE_S)
        assert (await audio_video_over(sub, a_id))[0] >= 25
    finally:
        await pub.pc.close()
        await sub.close()


async def test_remove_kicks_a_feed_published_through_another_process(server):
    """call.remove kicks the removed user's feeds out of the Janus room even when this process
    does not hold their Janus session (published through another web process, or one that
    died): here the publisher's Podium-side state is taken away before the removal, so only
    the kick by the room's secret can end its feed; the other student stops receiving it."""
    session, (t, _), socks, _ = await class_of(server, 2)
    (a, a_ack), (b, _) = socks
    a_id = a_ack["peer_id"]
    pub, sub = WsPublisher(a, session), WsSubscriber(b, session)
    sig = server.deps.sfu_signaling
    elsewhere = None
    try:
        await pub.publish()
        await sub.subscribe()
        await wait_until(lambda: sub.by_peer[(a_id, "video")] >= 10, 30)
        elsewhere = sig.peers.pop((int(session), a_id))  # as if another process held it
        node = server.deps.sfu.node_for_session(int(session))
        spec = node.rooms.open_rooms[session]
        await t.request("call.remove", session=session, peer_id=a_id)
        listed = await node.rooms.participants(spec)
        assert not [p for p in listed if p.get("display") == a_id and p.get("publisher")], listed
        await asyncio.sleep(SETTLE_S)
        assert (await audio_video_over(sub, a_id, 1.0)) == (0, 0)
    finally:
        if elsewhere is not None:
            await elsewhere.janus.destroy()
        await pub.pc.close()
        await sub.close()


async def test_students_cannot_mute_and_bad_input_is_refused(server):
    """A student's call.mute (one or all) is forbidden and mutes nobody; malformed call.mute
    fields are bad_request; an unknown peer not_found; call.unmute_self from outside the call
    forbidden."""
    session, (t, t_ack), socks, room = await class_of(server, 2)
    (a, a_ack), (b, b_ack) = socks
    assert await code_of(a, "call.mute", session=session, peer_id=b_ack["peer_id"]) == "forbidden"
    assert await code_of(a, "call.mute", session=session, all=True) == "forbidden"
    assert await b.no_event("call.mute_requested", 0.2)
    for fields in ({}, {"all": "yes"}, {"peer_id": b_ack["peer_id"], "allow_unmute": 1},
                   {"all": True, "peer_id": b_ack["peer_id"]}, {"peer_id": 7}, {"all": False}):
        assert await code_of(t, "call.mute", session=session, **fields) == "bad_request", fields
    assert await code_of(t, "call.mute", session=session, peer_id="nobody") == "not_found"
    outsider = await server.client((await server.user("outsider"))[1])
    assert await code_of(outsider, "call.unmute_self", session=session) == "forbidden"
    assert await code_of(outsider, "call.mute", session=session, all=True) == "forbidden"
    # nobody was held by any of that
    ack = await (await server.client(room["_token"])).request("call.join", session=session)
    assert not any(p["muted_by_instructor"] for p in ack["participants"])
    assert await a.request("call.unmute_self", session=session)


@pytest.mark.parametrize("config_overrides", ["ws://127.0.0.1:9"], indirect=True)
async def test_mesh_mute_stays_a_request(server):
    """In a mesh call (no Janus reachable) call.mute is a request as before: the target gets
    call.mute_requested {session, by} without enforced fields, nobody is held, and the target
    unmutes itself freely; mute all asks every student."""
    session, (t, t_ack), socks, _ = await class_of(server, 2)
    (a, a_ack), (b, _) = socks
    assert t_ack["media_path"] == "mesh"
    await t.request("call.mute", session=session, peer_id=a_ack["peer_id"])
    ev = await a.next_event("call.mute_requested")
    assert set(ev) == {"type", "session", "by"}
    me = (await a.request("call.media", session=session, audio=True))["participant"]
    assert me["muted_by_instructor"] is False and me["media"]["audio"] is True
    await t.request("call.mute", session=session, all=True)
    for s in (a, b):
        assert set(await s.next_event("call.mute_requested")) == {"type", "session", "by"}
    assert await t.no_event("call.mute_requested", 0.2)
    assert (await a.request("call.unmute_self", session=session))["participant"]["media"]["audio"] is True
