"""SFU calls through Podium's own signaling (server/calls/sfu_signaling.py) against the real
Janus in the test namespace: the server (in-process, bound inside the namespace) relays SDP
between aiortc peers and Janus; only current participants of a session can publish into it
or subscribe to it."""
from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import Counter

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from server.config import Config
from server.kernel.frames import event_frame
from tests.dbutil import fresh_database, migrate
from tests.rtcpeer import PatternVideoTrack, ToneAudioTrack
from tests.sfu.conftest import wait_until
from tests.sfu.peers import no_stun
from tests.wsclient import WsClient

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory) -> str:
    """SQLite even in the PostgreSQL pass: the server runs inside the namespace, which cannot
    reach the machine's database or Redis."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sfu-db') / 'template.db'}"
    migrate(Config(database_url=url, jwt_secret="x" * 32))
    return url


@pytest.fixture
def database_url(sqlite_template, tmp_path) -> str:
    return fresh_database(sqlite_template, tmp_path)


@pytest.fixture
def config_overrides(janus, in_netns, request) -> dict:
    """The server uses the test's Janus; it is built (and binds) inside the namespace. Its
    own JWT secret keys the Janus room ids: session ids restart at 1 in every test database,
    and one test's rooms must not be the next one's."""
    url = getattr(request, "param", None) or janus.url  # a test may name another (unreachable) one
    return {"janus_urls": (url,), "janus_api_secret": janus.settings.api_secret,
            "janus_admin_key": janus.settings.room_admin_key, "redis_url": None,
            "jwt_secret": "sfu-test-" + secrets.token_hex(24)}


async def code_of(c: WsClient, type_: str, **fields) -> str | None:
    frame = await c.request_raw(type_, **fields)
    return frame.get("code") if frame["type"] == "error" else None


class WsPublisher:
    """An aiortc peer that publishes a pattern and a tone through ``sfu.publish``."""

    def __init__(self, ws: WsClient, session: str):
        self.ws, self.session = ws, session
        self.pc = RTCPeerConnection(no_stun())

    async def publish(self) -> str:
        self.pc.addTrack(PatternVideoTrack(320, 240, 15))
        self.pc.addTrack(ToneAudioTrack())
        await self.pc.setLocalDescription(await self.pc.createOffer())
        ack = await self.ws.request("sfu.publish", session=self.session, sdp=self.pc.localDescription.sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(ack["sdp"], "answer"))
        await self.ws.request("sfu.ice", session=self.session, target="publish", candidate=None)
        return ack["feed"]


class WsSubscriber:
    """An aiortc peer on one multistream subscription through ``sfu.subscribe``/``sfu.answer``."""

    def __init__(self, ws: WsClient, session: str):
        self.ws, self.session = ws, session
        self.pc = RTCPeerConnection(no_stun())
        self.frames: Counter = Counter()
        self.by_peer: Counter = Counter()  # (publisher peer_id, kind) → frames
        self.streams: list[dict] = []
        self._readers: list[asyncio.Future] = []
        self.pc.on("track", lambda track: self._readers.append(asyncio.ensure_future(self._read(track))))

    async def _read(self, track) -> None:
        mid = next((tr.mid for tr in self.pc.getTransceivers() if tr.receiver.track is track), None)
        peer = next((s["peer_id"] for s in self.streams if s["mid"] == mid), None)
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                self.frames[track.kind] += 1
                self.by_peer[(peer, track.kind)] += 1

    async def subscribe(self, timeout: float = 10) -> None:
        """Ask until Janus lists a publisher (its connection may still be coming up)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            ack = await self.ws.request("sfu.subscribe", session=self.session)
            if ack["sdp"]:
                break
            assert asyncio.get_running_loop().time() < deadline, "no publisher to subscribe to"
            await asyncio.sleep(0.2)
        self.streams = ack["streams"]
        await self.pc.setRemoteDescription(RTCSessionDescription(ack["sdp"], "offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self.ws.request("sfu.answer", session=self.session, sdp=self.pc.localDescription.sdp)

    async def close(self) -> None:
        await self.pc.close()
        for r in self._readers:
            r.cancel()


async def publishers_listed(server, session: str, n: int, timeout: float = 10) -> None:
    """Wait until Janus lists ``n`` publishers in the session's room (connections up)."""
    node = server.deps.sfu.node_for_session(int(session))
    spec = node.rooms.open_rooms[session]
    deadline = asyncio.get_running_loop().time() + timeout
    while len([p for p in await node.rooms.participants(spec) if p.get("publisher")]) < n:
        assert asyncio.get_running_loop().time() < deadline, f"fewer than {n} publishers"
        await asyncio.sleep(0.1)


async def class_of(server, students: int):
    """An instructor and ``students`` students in a room with a live session, all joined."""
    teacher, t_token = await server.user("teacher", "instructor")
    users = [await server.user(f"student{i}") for i in range(students)]
    room = await server.room(t_token, members=[u["id"] for u, _ in users])
    t = await server.client(t_token)
    session = (await t.request("call.start", room=room["id"]))["session"]["id"]
    ack = await t.request("call.join", session=session)
    socks = []
    for _, token in users:
        c = await server.client(token)
        socks.append((c, await c.request("call.join", session=session)))
    room["_token"] = t_token
    return session, (t, ack), socks, room


async def test_teacher_reaches_every_student_through_janus(server):
    """The join ack names the SFU; the teacher publishes once (sfu.publish) and each of three
    students receives its video and audio on one subscription (sfu.subscribe + sfu.answer)
    whose streams name the teacher's peer_id."""
    session, (t, t_ack), socks, _ = await class_of(server, 3)
    assert t_ack["media_path"] == "sfu" and all(a["media_path"] == "sfu" for _, a in socks)
    pub = WsPublisher(t, session)
    subs = [WsSubscriber(c, session) for c, _ in socks]
    try:
        feed = await pub.publish()
        for s in subs:
            await s.subscribe()
        assert all({(x["type"], x["peer_id"], x["feed"]) for x in s.streams}
                   == {("audio", t_ack["peer_id"], feed), ("video", t_ack["peer_id"], feed)} for s in subs)
        await wait_until(lambda: all(s.frames["video"] >= 15 and s.frames["audio"] >= 50 for s in subs), 30)
        # nothing new to subscribe to: no offer
        assert (await socks[0][0].request("sfu.subscribe", session=session))["sdp"] is None
    finally:
        await pub.pc.close()
        for s in subs:
            await s.close()


async def test_only_participants_can_publish_or_subscribe(server):
    """A room member who has not joined, a participant naming another session, and a user
    outside the room all get ``forbidden`` on every sfu.* op (publish, subscribe, answer, ice,
    configure, unpublish, record); the session's Janus room then holds no feed of theirs."""
    session, (t, _), socks, room = await class_of(server, 1)
    t_token = room["_token"]
    other_session, _, _, _ = await class_of_other(server)
    bystander_user, b_token = await server.user("bystander")
    status, _ = await server.http("POST", f"/api/rooms/{room['id']}/members", t_token,
                                  {"user_id": bystander_user["id"]})
    assert status in (200, 201)
    bystander = await server.client(b_token)  # a member of the room, not in the call
    outsider = await server.client((await server.user("outsider"))[1])
    student = socks[0][0]
    offer = "v=0\r\no=- 1 2 IN IP4 10.77.0.2\r\ns=-\r\nt=0 0\r\n"
    for c, sess in ((bystander, session), (outsider, session), (student, other_session)):
        assert await code_of(c, "sfu.publish", session=sess, sdp=offer) == "forbidden"
        assert await code_of(c, "sfu.subscribe", session=sess) == "forbidden"
        assert await code_of(c, "sfu.answer", session=sess, sdp=offer) == "forbidden"
        assert await code_of(c, "sfu.ice", session=sess, target="publish", candidate=None) == "forbidden"
        assert await code_of(c, "sfu.configure", session=sess, mid="0", send=False) == "forbidden"
        assert await code_of(c, "sfu.unpublish", session=sess, source="screen") == "forbidden"
        assert await code_of(c, "sfu.record", session=sess) == "forbidden"
    assert await code_of(student, "sfu.ice", session=session, target="sideways", candidate=None) == "bad_request"
    assert await code_of(student, "sfu.publish", session=session, sdp="") == "bad_request"
    node = server.deps.sfu.node_for_session(int(session))
    spec = await node.rooms.open(session)
    assert await node.rooms.participants(spec) == []


async def class_of_other(server):
    teacher, token = await server.user("teacher2", "instructor")
    room = await server.room(token, name="Other")
    t = await server.client(token)
    session = (await t.request("call.start", room=room["id"]))["session"]["id"]
    await t.request("call.join", session=session)
    return session, t, None, room


async def test_leaving_removes_the_feed_and_ending_destroys_the_room(server):
    """A publisher who leaves the call stops publishing at once and is gone from the Janus
    room within seconds; call.end destroys the room."""
    session, (t, _), socks, _ = await class_of(server, 1)
    student = socks[0][0]
    pub = WsPublisher(student, session)
    try:
        await pub.publish()
        node = server.deps.sfu.node_for_session(int(session))
        spec = node.rooms.open_rooms[session]
        assert len(await node.rooms.participants(spec)) == 1
        await student.request("call.leave", session=session)
        listed = await node.rooms.participants(spec)
        assert not [p for p in listed if p.get("publisher")]  # unpublished at once
        deadline = asyncio.get_running_loop().time() + 5
        while listed:  # and gone once Janus has torn its connection down
            assert asyncio.get_running_loop().time() < deadline, listed
            await asyncio.sleep(0.1)
            listed = await node.rooms.participants(spec)
        await t.request("call.end", session=session)
        await wait_until(lambda: session not in node.rooms.open_rooms, 5)
        with pytest.raises(Exception):
            await node.rooms.participants(spec)  # no such room
    finally:
        await pub.pc.close()




async def test_removed_participant_is_cut_off_at_janus(server):
    """call.remove of a publishing, subscribed student removes its feed and subscription from
    Janus (the other student receives nothing more of it); it cannot publish or subscribe again."""
    session, (t, t_ack), socks, _ = await class_of(server, 2)
    (a, a_ack), (b, _) = socks
    pub = WsPublisher(a, session)
    sub_a, sub_b = WsSubscriber(a, session), WsSubscriber(b, session)
    t_pub = WsPublisher(t, session)
    try:
        await pub.publish()
        await t_pub.publish()
        await publishers_listed(server, session, 2)
        await sub_b.subscribe()
        await sub_a.subscribe()
        await wait_until(lambda: sub_a.frames["video"] >= 10 and all(
            sub_b.by_peer[(p, "video")] >= 10 for p in (a_ack["peer_id"], t_ack["peer_id"])), 30)
        node = server.deps.sfu.node_for_session(int(session))
        spec = node.rooms.open_rooms[session]
        await t.request("call.remove", session=session, peer_id=a_ack["peer_id"])
        await a.next_event("call.removed")
        listed = await node.rooms.participants(spec)
        assert not [p for p in listed if p.get("display") == a_ack["peer_id"] and p.get("publisher")]
        await asyncio.sleep(0.5)
        removed, teacher = (a_ack["peer_id"], "video"), (t_ack["peer_id"], "video")
        seen = sub_a.frames["video"], sub_b.by_peer[removed], sub_b.by_peer[teacher]
        await asyncio.sleep(1.0)
        assert sub_a.frames["video"] == seen[0]  # its own subscription is gone
        assert sub_b.by_peer[removed] == seen[1]  # its feed is gone for the others
        assert sub_b.by_peer[teacher] >= seen[2] + 5  # while the teacher's flows on
        assert await code_of(a, "sfu.publish", session=session, sdp="v=0\r\n") == "forbidden"
        assert await code_of(a, "sfu.subscribe", session=session) == "forbidden"
    finally:
        for peer in (pub, t_pub):
            await peer.pc.close()
        for s in (sub_a, sub_b):
            await s.close()


async def test_room_destroyed_elsewhere_frees_the_participants_janus_sessions(server):
    """When the call ends in another web process (its room destroyed there, the notice
    ending it here), this process drops its participants' Janus sessions instead of keeping
    them alive with keepalives."""
    session, (t, _), socks, _ = await class_of(server, 1)
    pub, sub = WsPublisher(t, session), WsSubscriber(socks[0][0], session)
    try:
        await pub.publish()
        await sub.subscribe()
        sig = server.deps.sfu_signaling
        node = server.deps.sfu.node_for_session(int(session))
        held = {p.janus.id for p in sig.peers.values()}
        assert len(held) == 2 and held <= set(node.connection.sessions)
        live = server.deps.calls.live[int(session)]
        await node.rooms.close(session)  # what call.end in another process does, then its notice:
        server.deps.calls.ended_locally(live, event_frame({"type": "call.ended", "session": {"id": session}}))
        await wait_until(lambda: not sig.peers and not held & set(node.connection.sessions), 5)
    finally:
        await pub.pc.close()
        await sub.close()


async def test_new_publishers_are_announced_and_added_to_the_subscription(server):
    """A publisher's connection coming up is announced (sfu.feeds_changed) to the others; a
    student already subscribed to the teacher then adds a second student's feed to the same
    subscription connection (a new offer from Janus) and receives both."""
    session, (t, t_ack), socks, _ = await class_of(server, 2)
    (a, a_ack), (b, _) = socks
    t_pub, a_pub, sub = WsPublisher(t, session), WsPublisher(a, session), WsSubscriber(b, session)
    try:
        await t_pub.publish()
        assert (await b.next_event("sfu.feeds_changed", timeout=10))["peer_id"] == t_ack["peer_id"]
        await sub.subscribe()
        await wait_until(lambda: sub.by_peer[(t_ack["peer_id"], "video")] >= 5, 20)
        await a_pub.publish()
        assert (await b.next_event("sfu.feeds_changed", timeout=10))["peer_id"] == a_ack["peer_id"]
        await sub.subscribe()  # the same connection: Janus renegotiates it
        assert {s["peer_id"] for s in sub.streams} == {t_ack["peer_id"], a_ack["peer_id"]}
        assert len(sub.pc.getTransceivers()) == 4
        await wait_until(lambda: all(sub.by_peer[(p, k)] >= 10 for p in (t_ack["peer_id"], a_ack["peer_id"])
                                     for k in ("video", "audio")), 30)
    finally:
        for p in (t_pub, a_pub):
            await p.pc.close()
        await sub.close()

@pytest.mark.parametrize("config_overrides", ["ws://127.0.0.1:9"], indirect=True)
async def test_unreachable_janus_means_mesh(server, caplog):
    """With the configured Janus unreachable, call.join acks say mesh, sfu.* ops answer
    conflict, and the log says why (the mesh signaling still works)."""
    session, (t, t_ack), socks, _ = await class_of(server, 1)
    assert t_ack["media_path"] == "mesh" and socks[0][1]["media_path"] == "mesh"
    assert await code_of(t, "sfu.publish", session=session, sdp="v=0\r\n") == "conflict"
    assert await code_of(t, "sfu.subscribe", session=session) == "conflict"
    assert any("cannot connect to janus ws://127.0.0.1:9" in r.getMessage() and "browser mesh" in r.getMessage()
               for r in caplog.records)

async def test_janus_restart_tells_participants_to_start_again(server, janus):
    """Janus killed and restarted mid-call: Podium recreates the session's room, every
    participant receives sfu.restart, publishes and subscribes again, and media flows again
    (this test restarts the module's Janus: it runs last)."""
    session, (t, _), socks, _ = await class_of(server, 1)
    student = socks[0][0]
    pubs, subs = [WsPublisher(t, session)], [WsSubscriber(student, session)]
    try:
        await pubs[0].publish()
        await subs[0].subscribe()
        await wait_until(lambda: subs[0].frames["video"] >= 5, 20)
        janus.stop(kill=True)
        janus.start()
        await t.next_event("sfu.restart", timeout=20, session=session)
        await student.next_event("sfu.restart", session=session)
        pubs.append(WsPublisher(t, session))
        subs.append(WsSubscriber(student, session))
        await pubs[1].publish()
        await subs[1].subscribe()
        await wait_until(lambda: subs[1].frames["video"] >= 10 and subs[1].frames["audio"] >= 25, 30)
    finally:
        for p in pubs:
            await p.pc.close()
        for s in subs:
            await s.close()


async def test_a_class_of_twenty_receives_the_teacher_through_janus(server):
    """Issue 14: one aiortc publisher and twenty aiortc subscribers, each on its own
    subscription through Podium's signaling: every one of them decodes the teacher's video
    and audio, while the teacher uploads one stream of each."""
    session, (t, t_ack), socks, _ = await class_of(server, 20)
    pub = WsPublisher(t, session)
    subs = [WsSubscriber(c, session) for c, _ in socks]
    try:
        await pub.publish()
        for s in subs:
            await s.subscribe()
        await wait_until(lambda: all(s.by_peer[(t_ack["peer_id"], "video")] >= 10
                                     and s.by_peer[(t_ack["peer_id"], "audio")] >= 25 for s in subs), 90)
        senders = [tr.sender for tr in pub.pc.getTransceivers() if tr.sender.track is not None]
        assert sorted(s.track.kind for s in senders) == ["audio", "video"]
    finally:
        await pub.pc.close()
        for s in subs:
            await s.close()


async def answer(sub: WsSubscriber, sdp: str) -> None:
    await sub.pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
    await sub.pc.setLocalDescription(await sub.pc.createAnswer())
    await sub.ws.request("sfu.answer", session=sub.session, sdp=sub.pc.localDescription.sdp)


async def test_a_publisher_leaving_while_someone_subscribes_spoils_nothing(server):
    """Students keep joining and leaving: a publisher that leaves while another participant's
    sfu.subscribe is between Janus's list of publishers and its request (Janus: no such feed)
    must not fail that subscription, nor leave it unusable for the next publishers."""
    session, _, socks, _ = await class_of(server, 5)  # timing-dependent: 6 tries failed 1 run in 3 before
    p = socks[0][0]
    subs = [WsSubscriber(ws, session) for ws, _ in socks[1:]]
    pub = None
    try:
        for sub in subs:
            pub = WsPublisher(p, session)
            await pub.publish()
            await publishers_listed(server, session, 1)
            left, got = await asyncio.gather(p.request_raw("call.leave", session=session),
                                             sub.ws.request_raw("sfu.subscribe", session=session))
            assert left["type"] == "ack" and got["type"] == "ack", got
            if got["data"]["sdp"]:  # in time for the publisher: answered, as a browser does,
                await answer(sub, got["data"]["sdp"])
                # and so is Janus's offer without it once it has gone (sfu.offer)
                await answer(sub, (await sub.ws.next_event("sfu.offer", timeout=10))["sdp"])
            await pub.pc.close()
            await p.request("call.join", session=session)
        pub = WsPublisher(p, session)
        await pub.publish()
        await publishers_listed(server, session, 1)
        for sub in subs:  # each one's subscription works for the next publisher
            await sub.subscribe()
            assert [s["peer_id"] for s in sub.streams if s["type"] == "video"][-1:] != [None]
    finally:
        if pub is not None:
            await pub.pc.close()
        for sub in subs:
            await sub.close()
