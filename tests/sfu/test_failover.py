"""Several Janus (issue 14.6): two real Janus processes in the test namespace, Podium
configured with both (JANUS_URLS). Sessions are spread over them (least loaded); when one is
killed mid-call its participants get ``sfu.restart`` within seconds, publish and subscribe
again on the other, and media flows again; the call goes on; a session started meanwhile goes
to the live one; the killed Janus, restarted, does not take its sessions back."""
from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import shutil
import signal
import time

import pytest

from server.sfu.janus_config import settings_for, write_config
from server.sfu.protocol import JanusError
from tests.sfu.conftest import JanusProcess, wait_until
from tests.recordings.test_recording_e2e import wait_for
from tests.sfu.netns import JANUS_IFACE, PEER_ADDR
from tests.sfu.test_recording_sfu import PHASES, PatternPublisher, assert_two_cells_flash_on_beeps_after
from tests.sfu.test_signaling import (WsPublisher, WsSubscriber, class_of, class_of_other,  # noqa: F401
                                      database_url, sqlite_template)

pytestmark = pytest.mark.slow
GRACE_S = 3.0


@pytest.fixture(scope="module")
def januses(netns, tmp_path_factory):
    """Two Janus in the module's namespace: WebSocket ports 8188 and 8189, RTP ports
    20000-20999 and 21000-21999, the same secrets (Podium has one JANUS_API_SECRET)."""
    if shutil.which("janus") is None:
        pytest.fail("janus is not installed: run scripts/setup.sh --test")
    first = settings_for(tmp_path_factory.mktemp("janus-a"), ws_port=8188, rtp_port_range="20000-20999",
                         ice_enforce_list=JANUS_IFACE, reclaim_session_timeout_s=10)
    second = dataclasses.replace(first, folder=tmp_path_factory.mktemp("janus-b"), ws_port=8189,
                                 rtp_port_range="21000-21999")
    procs = []
    try:
        for s in (first, second):
            write_config(s)
            jp = JanusProcess(netns, s, s.folder / "janus.log")
            jp.start()
            procs.append(jp)
        yield {jp.url: jp for jp in procs}
    finally:
        for jp in procs:
            jp.stop()


@pytest.fixture
def config_overrides(januses, in_netns, request) -> dict:
    """Podium with both Janus; the grace is GRACE_S unless a test names another."""
    any_one = next(iter(januses.values())).settings
    grace = getattr(request, "param", None) or GRACE_S
    return {"janus_urls": tuple(januses), "janus_api_secret": any_one.api_secret,
            "janus_admin_key": any_one.room_admin_key, "redis_url": None,
            "janus_failover_grace_s": grace, "jwt_secret": "sfu-test-" + secrets.token_hex(24),
            "recording_start_timeout_s": 30.0, "recording_worker_grace_s": 30.0, "call_end_grace_s": 120.0}


async def solo_call(server, name: str):
    """A teacher alone in a new room's live call: (session, socket)."""
    _, token = await server.user(name, "instructor")
    room = await server.room(token, name=f"Room of {name}")
    c = await server.client(token)
    session = (await c.request("call.start", room=room["id"]))["session"]["id"]
    await c.request("call.join", session=session)
    return session, c


async def publishers_on(node, session: str) -> set[str]:
    """The displays (peer ids) of the publishers Janus ``node`` lists in the session's room."""
    listed = await node.rooms.participants(node.rooms.open_rooms[session])
    return {p.get("display") for p in listed if p.get("publisher")}


async def test_a_dead_janus_moves_its_calls_to_the_other_and_does_not_take_them_back(server, januses):
    sfu, loop = server.deps.sfu, asyncio.get_running_loop()
    await wait_until(lambda: len(sfu.live()) == 2, 15)
    session, (t, t_ack), socks, room = await class_of(server, 1)
    other, t2, _, _ = await class_of_other(server)
    student = socks[0][0]
    pubs, subs = [WsPublisher(t, session)], [WsSubscriber(student, session)]
    try:
        # placed on a first sfu.* op: the two sessions on different Janus (least loaded)
        await pubs[0].publish()
        assert (await t2.request("sfu.subscribe", session=other))["sdp"] is None  # nobody publishes yet
        x_url = await sfu.placement.store.get(int(session))
        y_url = await sfu.placement.store.get(int(other))
        assert {x_url, y_url} == set(januses)
        x, y = sfu.node(x_url), sfu.node(y_url)
        await subs[0].subscribe()
        await wait_until(lambda: subs[0].frames["video"] >= 5, 20)
        assert await publishers_on(x, session) == {t_ack["peer_id"]}

        januses[x_url].stop(kill=True)  # Janus X dies mid-call
        killed = loop.time()
        await t.next_event("sfu.restart", timeout=GRACE_S + 10, session=session)
        await student.next_event("sfu.restart", session=session)
        told_after = loop.time() - killed
        assert told_after < GRACE_S + 5, told_after
        assert await sfu.placement.store.get(int(session)) == y_url  # moved to Y
        assert await t2.no_event("sfu.restart", within=0.5)  # Y's own call is not disturbed
        # the call itself goes on: same session, both still in it
        assert set(server.deps.calls.live[int(session)].participants) >= {t_ack["peer_id"], socks[0][1]["peer_id"]}

        # both start again, landing on Y, and media flows again
        pubs.append(WsPublisher(t, session))
        subs.append(WsSubscriber(student, session))
        await pubs[1].publish()
        await subs[1].subscribe()
        await wait_until(lambda: subs[1].frames["video"] >= 10 and subs[1].frames["audio"] >= 25, 30)
        assert await publishers_on(y, session) == {t_ack["peer_id"]}
        moved_at = loop.time() - killed

        # a session started while X is dead goes to Y
        third, t3 = await solo_call(server, "teacher3")
        assert (await t3.request("sfu.subscribe", session=third))["sdp"] is None
        assert await sfu.placement.store.get(int(third)) == y_url

        # X comes back: it does not take the session back (no restart, media stays on Y) ...
        januses[x_url].start()
        await wait_until(lambda: x.connection.connected.is_set() and x_url not in sfu.failed, 20)
        assert await t.no_event("sfu.restart", within=1.5)
        assert await sfu.placement.store.get(int(session)) == y_url
        assert session not in x.rooms.open_rooms
        seen = subs[1].frames["video"]
        await wait_until(lambda: subs[1].frames["video"] >= seen + 5, 10)
        # a latecomer to that call lands on Y too, where the teacher publishes
        late_user, late_token = await server.user("latecomer")
        status, _ = await server.http("POST", f"/api/rooms/{room['id']}/members", room["_token"],
                                      {"user_id": late_user["id"]})
        assert status in (200, 201)
        late = await server.client(late_token)
        await late.request("call.join", session=session)
        subs.append(WsSubscriber(late, session))
        await subs[2].subscribe()
        await wait_until(lambda: subs[2].by_peer[(t_ack["peer_id"], "video")] >= 5, 20)
        # ... and, now the least loaded, takes the next new session
        fourth, t4 = await solo_call(server, "teacher4")
        assert (await t4.request("sfu.subscribe", session=fourth))["sdp"] is None
        assert await sfu.placement.store.get(int(fourth)) == x_url
        print(f"\nfailover: sfu.restart {told_after:.1f}s after the kill (grace {GRACE_S}s); "
              f"media again {moved_at:.1f}s after it")
    finally:
        for p in pubs:
            await p.pc.close()
        for s in subs:
            await s.close()


async def test_a_hung_janus_fails_over_and_loses_the_moved_rooms_when_it_wakes(server, januses):
    """Janus X hangs (SIGSTOP: its socket stays open, no reset): the WebSocket pings go
    unanswered, the connection counts as down, and past the grace the call moves to Y
    (sfu.restart, publish again on Y). When X wakes up it still has the session's room with the
    old publisher in it; Podium reconnects and destroys that room (the old participants there
    are cut off), and the session stays on Y."""
    sfu = server.deps.sfu
    await wait_until(lambda: len(sfu.live()) == 2, 15)
    session, (t, t_ack), _, _ = await class_of(server, 1)
    pubs = [WsPublisher(t, session)]
    x_url = frozen = None
    try:
        await pubs[0].publish()
        x_url = await sfu.placement.store.get(int(session))
        (y_url,) = set(januses) - {x_url}
        x, y = sfu.node(x_url), sfu.node(y_url)
        deadline = asyncio.get_running_loop().time() + 10
        while await publishers_on(x, session) != {t_ack["peer_id"]}:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.1)
        room = x.rooms.open_rooms[session]
        frozen = januses[x_url].proc.pid
        os.killpg(frozen, signal.SIGSTOP)
        hung = asyncio.get_running_loop().time()
        await t.next_event("sfu.restart", timeout=GRACE_S + 15, session=session)
        told_after = asyncio.get_running_loop().time() - hung
        # unanswered ping (≤ 2 pings) + Tornado's wait for a close frame (5 s) + the grace
        assert told_after < 2 * x.connection.ping_s + 5 + GRACE_S + 3, told_after
        assert await sfu.placement.store.get(int(session)) == y_url
        assert all(p.node is not x for p in server.deps.sfu_signaling.peers.values())  # stale peers dropped
        pubs.append(WsPublisher(t, session))
        await pubs[1].publish()
        deadline = asyncio.get_running_loop().time() + 10
        while await publishers_on(y, session) != {t_ack["peer_id"]}:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.1)

        os.killpg(frozen, signal.SIGCONT)
        frozen = None
        await wait_until(lambda: x.connection.connected.is_set() and x_url not in sfu.failed, 20)
        deadline = asyncio.get_running_loop().time() + 10
        while True:  # the old room on X goes
            try:
                await x.rooms.participants_of_room(room.room)
            except JanusError:
                break
            assert asyncio.get_running_loop().time() < deadline, "the moved session's room is still on X"
            await asyncio.sleep(0.2)
        assert await sfu.placement.store.get(int(session)) == y_url
        assert await publishers_on(y, session) == {t_ack["peer_id"]}
        assert await t.no_event("sfu.restart", within=1.0)
        print(f"\nhung janus: sfu.restart {told_after:.1f}s after SIGSTOP (ping {x.connection.ping_s}s, grace {GRACE_S}s)")
    finally:
        if frozen is not None:
            os.killpg(frozen, signal.SIGCONT)
        for p in pubs:
            await p.pc.close()


@pytest.mark.parametrize("config_overrides", [15.0], indirect=True)
async def test_a_janus_restarted_within_the_grace_keeps_its_sessions(server, januses):
    """With a 15 s grace, Janus X killed and started again 1.5 s later: nothing moves; the room
    is recreated on X, the participants get sfu.restart (today's restart path) and publish
    again on X."""
    sfu = server.deps.sfu
    await wait_until(lambda: len(sfu.live()) == 2, 15)
    session, (t, t_ack), _, _ = await class_of(server, 1)
    pubs = [WsPublisher(t, session)]
    try:
        await pubs[0].publish()
        x_url = await sfu.placement.store.get(int(session))
        x = sfu.node(x_url)
        januses[x_url].stop(kill=True)
        await asyncio.sleep(1.5)  # down for a while (start() blocks the loop: not before this)
        assert not x.connection.connected.is_set()
        januses[x_url].start()
        await t.next_event("sfu.restart", timeout=15, session=session)
        assert x_url not in sfu.failed and await sfu.placement.store.get(int(session)) == x_url
        assert session in x.rooms.open_rooms  # recreated there
        pubs.append(WsPublisher(t, session))
        await pubs[1].publish()
        deadline = asyncio.get_running_loop().time() + 10
        while await publishers_on(x, session) != {t_ack["peer_id"]}:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.1)
    finally:
        for p in pubs:
            await p.pc.close()


async def test_recording_goes_on_when_its_janus_dies(server, worker_procs, januses, tmp_path):
    """A call recorded through Janus X; X is killed (not restarted): the participants and the
    media worker get sfu.restart, publish and subscribe again on Y (new track files), and the
    recording is one class video whose cells show both participants' flashes, on their beeps,
    after the failover too. (This test leaves X dead: it runs last.)"""
    worker = worker_procs(server.base_url, server.deps.config.worker_secret, tmp_path / "work",
                          extra_env={"WORKER_ICE_ADDRESSES": PEER_ADDR}).start()
    sfu = server.deps.sfu
    await wait_until(lambda: len(sfu.live()) == 2, 15)
    await wait_for(lambda: "test-worker" in server.deps.recordings.workers, 30, "the worker to register",
                   worker.log_tail)
    (_, a_tok), (ben_user, b_tok) = [await server.user("ana", "instructor"), await server.user("ben")]
    room = await server.room(a_tok, members=[ben_user["id"]])
    ana, ben = [await server.client(t) for t in (a_tok, b_tok)]
    session = (await ana.request("call.start", room=room["id"]))["session"]["id"]
    for ws in (ana, ben):
        await ws.request("call.join", session=session)
    socks = {"ana": ana, "ben": ben}
    pubs = [PatternPublisher(socks[n], session, PHASES[n]) for n in ("ana", "ben")]
    try:
        for p in pubs:
            await p.publish()
        x_url = await sfu.placement.store.get(int(session))
        (y_url,) = set(januses) - {x_url}
        rid = (await ana.request("recording.start", session=session))["recording"]["id"]
        await ana.next_event("recording.started", timeout=30)
        tracks = tmp_path / "work" / f"rec-{rid}" / "tracks"
        await wait_for(lambda: len(list(tracks.glob("*-0.mkv"))) == 4, 20, "the first tracks", worker.log_tail)
        await asyncio.sleep(2.0)
        januses[x_url].stop(kill=True)
        killed_at = time.time()
        for name in ("ana", "ben"):
            await socks[name].next_event("sfu.restart", timeout=GRACE_S + 10, session=session)
            pubs.append(PatternPublisher(socks[name], session, PHASES[name]))
            await pubs[-1].publish()
        assert await sfu.placement.store.get(int(session)) == y_url
        await wait_for(lambda: len(list(tracks.glob("*-1.mkv"))) == 4, 30, "the tracks after the failover",
                       worker.log_tail)
        await asyncio.sleep(5.0)  # a few flashes after the failover, also when re-publishing was slow
        span = (await ana.request("recording.stop", session=session))["recording"]["duration_s"]
        ready = await ana.next_event("recording.ready", timeout=120)
        assert ready["recording"]["id"] == rid
    finally:
        for p in pubs:
            await p.pc.close()
    await assert_two_cells_flash_on_beeps_after(server, a_tok, rid, tmp_path, span, killed_at + GRACE_S + 1.0)
