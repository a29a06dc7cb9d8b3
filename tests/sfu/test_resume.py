"""Resuming an SFU call (server/calls/sfu_resume.py, issue 14.2 "session reclaim after a Podium
restart"), with aiortc peers through the real Janus in the test namespace: a participant whose
socket drops keeps its Janus session — its camera and microphone keep reaching the class — and
takes it back with its resume token, in the same web process or in a new one after the old one
was killed or stopped; without a resume within the grace its feed leaves the room."""
from __future__ import annotations

import asyncio
import secrets

import pytest
from sqlalchemy import select

from server.db.models import SfuPeer
from tests.procserver import ServerProcess
from tests.sfu.conftest import started_janus, wait_until
from tests.sfu.test_signaling import (WsPublisher, WsSubscriber, database_url,  # noqa: F401
                                      publishers_listed, sqlite_template)
from tests.wsclient import WsClient

pytestmark = pytest.mark.slow
GRACE_S = 3.0


@pytest.fixture(scope="module")
def janus(netns, tmp_path_factory):
    """As tests/sfu/conftest.py's, but Janus keeps a closed socket's sessions for 30 s, as the
    config Podium generates does (the other tests' Janus: 10 s): a ``python -m server``
    restarted on a loaded machine took 18 s to listen again, and its claims then found no
    session."""
    jp = started_janus(netns, tmp_path_factory, reclaim_session_timeout_s=30)
    yield jp
    jp.stop()


@pytest.fixture
def config_overrides(janus, in_netns) -> dict:
    """As tests/sfu/test_signaling.py's, with a short resume grace."""
    return {"janus_urls": (janus.url,), "janus_api_secret": janus.settings.api_secret,
            "janus_admin_key": janus.settings.room_admin_key, "redis_url": None,
            "jwt_secret": "sfu-test-" + secrets.token_hex(24), "call_resume_grace_s": GRACE_S}


async def flows(sub: WsSubscriber, peer_id: str, seconds: float = 1.5, at_least: int = 8) -> bool:
    """Does ``sub`` decode at least ``at_least`` video frames of ``peer_id`` in ``seconds``?"""
    before = sub.by_peer[(peer_id, "video")]
    await asyncio.sleep(seconds)
    return sub.by_peer[(peer_id, "video")] - before >= at_least


async def publisher_feeds(server, session: str) -> list[int]:
    node = server.deps.sfu.node_for_session(int(session))
    spec = node.rooms.open_rooms[session]
    return sorted(int(p["id"]) for p in await node.rooms.participants(spec) if p.get("publisher"))


async def stored(server, session: str) -> list[str]:
    async with server.deps.db.read() as s:
        return list((await s.execute(select(SfuPeer.peer_id).where(SfuPeer.session_id == int(session)))).scalars())


async def teacher_publishing_to_student(server):
    """A call of a teacher (publishing) and a student (subscribed); ``tokens``: theirs."""
    (_, t_tok), (student, s_tok) = await server.user("teacher", "instructor"), await server.user("student")
    room = await server.room(t_tok, members=[student["id"]])
    t = await server.client(t_tok)
    session = (await t.request("call.start", room=room["id"]))["session"]["id"]
    t_ack = await t.request("call.join", session=session)
    s = await server.client(s_tok)
    s_ack = await s.request("call.join", session=session)
    pub = WsPublisher(t, session)
    feed = int(await pub.publish())
    await publishers_listed(server, session, 1)
    sub = WsSubscriber(s, session)
    await sub.subscribe()
    await wait_until(lambda: sub.by_peer[(t_ack["peer_id"], "video")] > 5, 15)
    return session, (t, t_ack, pub, feed), (s, s_ack, sub), (t_tok, s_tok)


async def test_a_dropped_socket_keeps_publishing_and_resumes_its_janus_session(server, janus):
    session, (t, t_ack, pub, feed), (s, s_ack, sub), (t_tok, s_tok) = await teacher_publishing_to_student(server)
    teacher = t_ack["peer_id"]
    key = (int(session), teacher)
    janus_session = server.deps.sfu_signaling.peers[key].janus.id
    t.close()
    assert (await s.next_event("call.participant_left", timeout=10))["peer_id"] == teacher
    # No socket holds the teacher now, yet the class still sees and hears them.
    assert await flows(sub, teacher)
    assert await publisher_feeds(server, session) == [feed]
    t2 = await server.client(t_tok)
    again = await t2.request("call.join", session=session, resume=t_ack["resume"])
    assert again["peer_id"] == teacher and again["resumed"] is True
    assert again["sfu_resumed"] == {"publish": True, "screen": False}
    joined = await s.next_event("call.participant_joined")
    assert joined["participant"]["peer_id"] == teacher
    peer = server.deps.sfu_signaling.peers[key]
    assert peer.janus.id == janus_session and peer.feed == feed  # the same Janus session and feed
    assert pub.pc.connectionState == "connected"  # never published again
    assert await flows(sub, teacher)
    assert await publisher_feeds(server, session) == [feed]
    # The grace has run out by now: the resumed session was not destroyed at its end.
    await asyncio.sleep(GRACE_S + 0.5)
    assert await flows(sub, teacher) and await publisher_feeds(server, session) == [feed]
    # The resumed participant is a full one: its ops go to the same Janus session.
    assert (await t2.request("sfu.subscribe", session=session)) == {"sdp": None, "streams": []}
    # Leaving for good ends it: the feed leaves the room and its row goes.
    await t2.request("call.leave", session=session)
    await wait_until_async(lambda: publisher_feeds(server, session), [], 10)
    assert teacher not in await stored(server, session)
    await pub.pc.close()
    await sub.close()


async def test_a_subscriber_resumes_on_a_new_subscription_and_the_old_one_goes(server, janus):
    session, (t, t_ack, pub, feed), (s, s_ack, sub), (t_tok, s_tok) = await teacher_publishing_to_student(server)
    teacher, student = t_ack["peer_id"], s_ack["peer_id"]
    old_handle = server.deps.sfu_signaling.peers[(int(session), student)].subscriber.id
    s.close()
    assert (await t.next_event("call.participant_left", timeout=10))["peer_id"] == student
    assert await flows(sub, teacher)  # the old subscription plays on meanwhile
    s3 = await server.client(s_tok)
    again = await s3.request("call.join", session=session, resume=s_ack["resume"])
    assert again["peer_id"] == student and again["sfu_resumed"] == {"publish": False, "screen": False}
    new = WsSubscriber(s3, session)
    await new.subscribe()
    await wait_until(lambda: new.by_peer[(teacher, "video")] > 5, 15)
    peer = server.deps.sfu_signaling.peers[(int(session), student)]
    assert peer.subscriber.id != old_handle and peer.stale_subscriber is None
    # The subscription of before was detached once the new one was answered: it stops.
    await asyncio.sleep(1.0)
    assert not await flows(sub, teacher, at_least=1)
    assert await flows(new, teacher)
    for p in (pub, sub, new):
        await p.pc.close()


async def test_without_a_resume_within_the_grace_the_feed_leaves_the_room(server, janus):
    session, (t, t_ack, pub, feed), (s, s_ack, sub), (t_tok, s_tok) = await teacher_publishing_to_student(server)
    teacher = t_ack["peer_id"]
    t.close()
    await s.next_event("call.participant_left", timeout=10)
    assert await publisher_feeds(server, session) == [feed]
    await wait_until_async(lambda: publisher_feeds(server, session), [], GRACE_S + 10)
    assert teacher not in await stored(server, session)
    assert not await flows(sub, teacher, at_least=1)
    # A late rejoin is the same participant again, with nothing to take back: it publishes anew.
    t2 = await server.client(t_tok)
    again = await t2.request("call.join", session=session, resume=t_ack["resume"])
    assert again["peer_id"] == teacher and again["resumed"] is True and again["sfu_resumed"] is None
    await pub.pc.close()
    await sub.close()


async def wait_until_async(read, expected, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (got := await read()) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"still {got!r}, not {expected!r}"
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("stop", ["kill", "term"])
async def test_a_restarted_web_process_claims_the_janus_sessions_and_media_never_stops(
        janus, in_netns, database_url, tmp_path, stop):
    """``python -m server`` in the namespace is killed (SIGKILL) or stopped (SIGTERM, a
    deploy) mid-call and started again on the same database: meanwhile Janus keeps relaying
    the teacher to the student; both rejoin with their resume tokens, the new process claims
    their Janus sessions (the teacher's feed is the same, never published again) and the
    student's new subscription, made through the new process, receives the teacher."""
    srv = ServerProcess(database_url, tmp_path, extra_env={
        "JANUS_URLS": janus.url, "JANUS_API_SECRET": janus.settings.api_secret,
        "JANUS_ADMIN_KEY": janus.settings.room_admin_key, "JWT_SECRET": "sfu-proc-" + secrets.token_hex(24),
        "CALL_RESUME_GRACE_S": "20"})
    try:
        await srv.astart()
        (_, t_tok), (student, s_tok) = await srv.register("teacher1"), await srv.register("student1")
        status, body = await srv.http("POST", "/api/rooms", t_tok,
                                      {"kind": "group", "name": "Lab", "members": [student["id"]]})
        assert status == 201, body
        t, s = await WsClient.connect(srv.ws_url, t_tok), await WsClient.connect(srv.ws_url, s_tok)
        session = (await t.request("call.start", room=body["room"]["id"]))["session"]["id"]
        t_ack, s_ack = await t.request("call.join", session=session), await s.request("call.join", session=session)
        assert t_ack["media_path"] == "sfu"
        teacher = t_ack["peer_id"]
        pub = WsPublisher(t, session)
        feed = await pub.publish()
        sub = WsSubscriber(s, session)
        await sub.subscribe(timeout=15)
        await wait_until(lambda: sub.by_peer[(teacher, "video")] > 5, 15)
        if stop == "kill":
            srv.kill()
        else:
            srv.terminate()
            await srv.await_exit(25)
        assert await flows(sub, teacher), "the class lost the teacher while no web process ran"
        await srv.astart()
        t2, s2 = await WsClient.connect(srv.ws_url, t_tok), await WsClient.connect(srv.ws_url, s_tok)
        again = await t2.request("call.join", session=session, resume=t_ack["resume"])
        assert again["peer_id"] == teacher and again["sfu_resumed"] == {"publish": True, "screen": False}
        s_again = await s2.request("call.join", session=session, resume=s_ack["resume"])
        assert s_again["sfu_resumed"] == {"publish": False, "screen": False}
        assert "(claimed)" in srv.log
        new = WsSubscriber(s2, session)
        await new.subscribe(timeout=15)
        assert [x["feed"] for x in new.streams if x["peer_id"] == teacher and x["type"] == "video"] == [feed]
        await wait_until(lambda: new.by_peer[(teacher, "video")] > 5, 15)
        assert pub.pc.connectionState == "connected"
        await asyncio.sleep(1.0)  # the old subscription was detached when the new one was answered
        assert not await flows(sub, teacher, at_least=1)
        for p in (pub, sub, new):
            await p.pc.close()
    finally:
        srv.stop()
