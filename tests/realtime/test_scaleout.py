"""Several web processes on one PostgreSQL and one Redis (docs/SCALING.md): real server
processes, real WebSocket clients spread across them. Runs in the PostgreSQL + Redis pass of
.ci/run (several processes cannot share one SQLite file for writing)."""
from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.dbutil import test_database_url as database_under_test
from tests.ports import listens_on
from tests.procserver import free_port, procs  # noqa: F401  (fixture)
from tests.workerproc import worker_procs  # noqa: F401  (fixture)
from tests.wsclient import WsClient

pytestmark = pytest.mark.skipif(
    not (database_under_test() or "").startswith("postgresql") or not os.environ.get("TEST_REDIS_URL"),
    reason="several web processes need PostgreSQL and Redis (the second pass of .ci/run)")


class RedisServer:
    """A private redis-server on a free loopback port, so a test can kill and restart it."""

    def __init__(self, tmp: Path):
        self.port, self.tmp, self.proc = free_port(), tmp, None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen([exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.tmp)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not listens_on(self.proc.pid, self.port):  # ours, not another server on the port
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def redis_url():
    return os.environ["TEST_REDIS_URL"]


def cluster(procs, redis_url: str, n: int = 3, **env: str):  # noqa: F811
    prefix = "podium-scale-" + secrets.token_hex(4)
    return [procs.new(extra_env={"REDIS_URL": redis_url, "REDIS_PREFIX": prefix, **env}) for _ in range(n)]


async def class_room(servers, n_users: int) -> tuple[str, list[tuple[dict, str]]]:
    accounts = [await servers[0].register(f"u{secrets.token_hex(3)}{i}") for i in range(n_users)]
    room = (await servers[0].room(accounts[0][1], [u["id"] for u, _ in accounts[1:]]))["id"]
    return room, accounts


async def in_room(server, token: str, room: str) -> WsClient:
    """A client of ``server`` that has joined ``room``."""
    c = await WsClient.connect(server.ws_url, token)
    await c.request("room.join", room=room)
    return c


async def collect(client: WsClient, room: str, want: int, timeout: float) -> list[int]:
    """Seqs of every message.new the client receives in ``room`` until it has ``want``."""
    seqs: list[int] = []
    deadline = time.monotonic() + timeout
    while len(seqs) < want and time.monotonic() < deadline:
        try:
            ev = await client.next_event("message.new", timeout=max(0.05, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            break
        if ev["message"]["room"] == room:
            seqs.append(int(ev["message"]["seq"]))
    return seqs


async def test_clients_on_three_processes_each_get_every_message_once(procs, redis_url):  # noqa: F811
    """Three web processes: senders on each, receivers on each; every receiver gets every
    message exactly once and in seq order."""
    servers = cluster(procs, redis_url)
    room, accounts = await class_room(servers, 6)
    clients = []
    for i, (_, token) in enumerate(accounts):
        c = await in_room(servers[i % 3], token, room)
        clients.append(c)
    per_sender = 40
    await asyncio.sleep(0.3)  # every process's subscription is up (they start with the bus)

    async def sender(c: WsClient, tag: str) -> None:
        for k in range(per_sender):
            await c.request("message.send", room=room, client_msg_id=f"{tag}-{k}", kind="text", content=f"{tag} {k}")

    total = per_sender * 3
    receivers = [asyncio.ensure_future(collect(c, room, total, 30)) for c in clients]
    await asyncio.gather(*(sender(clients[i], f"s{i}") for i in range(3)))
    results = await asyncio.gather(*receivers)
    for i, seqs in enumerate(results):
        assert seqs == list(range(1, total + 1)), (i, servers[i % 3].port, len(seqs), seqs[:10])
    for c in clients:
        c.close()


async def test_redis_restart_mid_stream_loses_nothing(procs, tmp_path):  # noqa: F811
    """Redis dies while messages are being sent and comes back: every client still gets every
    message exactly once and in order (the gap is filled from SQL after the subscribers
    reconnect)."""
    redis = RedisServer(tmp_path).start()
    try:
        servers = cluster(procs, redis.url, 2)
        room, accounts = await class_room(servers, 4)
        clients = []
        for i, (_, token) in enumerate(accounts):
            c = await in_room(servers[i % 2], token, room)
            clients.append(c)
        await asyncio.sleep(0.3)
        total = 60
        receivers = [asyncio.ensure_future(collect(c, room, total, 60)) for c in clients]
        for k in range(total):
            sender = clients[k % 2]
            await sender.request("message.send", room=room, client_msg_id=f"m{k}", kind="text", content=str(k))
            if k == 20:
                redis.kill()  # notices published now are lost
            if k == 40:
                redis.start()
            await asyncio.sleep(0.02)
        results = await asyncio.gather(*receivers)
        for i, seqs in enumerate(results):
            assert seqs == list(range(1, total + 1)), (i, len(seqs), sorted(set(range(1, total + 1)) - set(seqs))[:10])
        for c in clients:
            c.close()
    finally:
        redis.kill()


async def test_killed_process_clients_reconnect_elsewhere_and_lose_nothing(procs, redis_url):  # noqa: F811
    """One web process is killed; its clients reconnect to another, sync from their last seq,
    and have every message, while the other process's clients saw no gap."""
    servers = cluster(procs, redis_url, 2)
    room, accounts = await class_room(servers, 2)
    a, b = await in_room(servers[0], accounts[0][1], room), await in_room(servers[1], accounts[1][1], room)
    await asyncio.sleep(0.3)
    for k in range(10):
        await a.request("message.send", room=room, client_msg_id=f"x{k}", kind="text", content=str(k))
    got_b = await collect(b, room, 10, 10)
    assert got_b == list(range(1, 11))
    servers[1].kill()
    for k in range(10, 25):
        await a.request("message.send", room=room, client_msg_id=f"x{k}", kind="text", content=str(k))
    b2 = await in_room(servers[0], accounts[1][1], room)
    synced = await b2.request("room.sync", room=room, since=got_b[-1], limit=100)
    assert [int(m["seq"]) for m in synced["messages"]] == list(range(11, 26)) and synced["complete"]
    for c in (a, b2):
        c.close()


async def test_presence_is_the_same_from_every_process(procs, redis_url):  # noqa: F811
    """A user online through one process is online for clients of the others; with sockets on
    two processes, closing one does not make them leave; closing the last one does."""
    servers = cluster(procs, redis_url, 3)
    room, accounts = await class_room(servers, 3)
    (ana, a_tok), (ben, b_tok), (_, c_tok) = accounts
    watcher = await in_room(servers[2], c_tok, room)
    a = await in_room(servers[0], a_tok, room)
    b1 = await in_room(servers[0], b_tok, room)
    b2 = await WsClient.connect(servers[1].ws_url, b_tok)
    ack = await b2.request("room.join", room=room)
    assert set(ack["online"]) == {ana["id"], ben["id"], accounts[2][0]["id"]}
    for srv in servers:
        c = await WsClient.connect(srv.ws_url, c_tok)
        listed = await c.request("presence.list", room=room)
        assert set(listed["online"]) == {ana["id"], ben["id"], accounts[2][0]["id"]}, srv.port
        c.close()
    joined = [await watcher.next_event("presence.joined") for _ in range(2)]
    assert sorted(e["user_id"] for e in joined) == sorted([ana["id"], ben["id"]])
    assert await watcher.no_event("presence.joined", 0.5)  # Ben's second socket: not "joined" again
    b1.close()
    assert await watcher.no_event("presence.left", 1.0)  # still online through process 2
    b2.close()
    left = await watcher.next_event("presence.left")
    assert left["user_id"] == ben["id"]
    for c in (watcher, a):
        c.close()


async def test_two_peers_on_different_processes_complete_a_call(procs, redis_url):  # noqa: F811
    """Two aiortc peers connected to different web processes join one call: each sees the
    other in its join ack or as a newcomer, their offers, answers and ICE cross processes, and
    real media flows both ways; leaving is seen across processes too."""
    from tests.rtcpeer import RtcPeer

    servers = cluster(procs, redis_url, 2)
    room, accounts = await class_room(servers, 2)
    (_, a_tok), (_, b_tok) = accounts
    ana = await RtcPeer.connect(servers[0].ws_url, a_tok, label="ana")
    ben = await RtcPeer.connect(servers[1].ws_url, b_tok, label="ben")
    try:
        session = (await ana.ws.request("call.start", room=room))["session"]["id"]
        await ana.join(session)
        ack = await ben.join(session)
        assert [p["peer_id"] for p in ack["participants"]] == [ana.peer_id]  # held by the other process
        await ben.wait_connected([ana.peer_id], timeout=20)
        await ana.wait_connected([ben.peer_id], timeout=20)
        link = await ben.wait_media(ana.peer_id, video=10, audio=10, timeout=20)
        assert link.video_frames >= 10
        link = await ana.wait_media(ben.peer_id, video=10, audio=10, timeout=20)
        assert link.video_frames >= 10
        await ben.ws.request("call.hand", session=session, raised=True)
        changed = await ana.next_event("call.hand_changed")
        assert changed["participant"]["peer_id"] == ben.peer_id and changed["participant"]["hand"]
        await ben.leave()
        left = await ana.next_event("call.participant_left")
        assert left["peer_id"] == ben.peer_id
    finally:
        await ana.close()
        await ben.close()


async def test_instructor_controls_reach_participants_on_other_processes(procs, redis_url):  # noqa: F811
    """Mute and remove work on a participant connected to another process; the removed user
    cannot rejoin through any process; someone removed from the room leaves the call in
    every process."""
    servers = cluster(procs, redis_url, 3)
    room, accounts = await class_room(servers, 3)
    (_, a_tok), (ben, b_tok), (cat, c_tok) = accounts
    ana = await WsClient.connect(servers[0].ws_url, a_tok)
    b1 = await WsClient.connect(servers[1].ws_url, b_tok)
    c1 = await WsClient.connect(servers[2].ws_url, c_tok)
    session = (await ana.request("call.start", room=room))["session"]["id"]
    await ana.request("call.join", session=session)
    b_peer = (await b1.request("call.join", session=session))["peer_id"]
    c_peer = (await c1.request("call.join", session=session))["peer_id"]

    await ana.request("call.mute", session=session, peer_id=b_peer)
    muted = await b1.next_event("call.mute_requested")
    assert muted["session"] == session

    await ana.request("call.remove", session=session, peer_id=b_peer)
    removed = await b1.next_event("call.removed")
    assert removed["session"] == session
    left = await ana.next_event("call.participant_left")
    assert left["peer_id"] == b_peer
    for srv in servers:  # banned everywhere, not just where the removal happened
        again = await WsClient.connect(srv.ws_url, b_tok)
        err = await again.request_raw("call.join", session=session)
        assert err["type"] == "error" and err["code"] == "forbidden", (srv.port, err)
        again.close()

    status, _ = await servers[0].http("DELETE", f"/api/rooms/{room}/members/{cat['id']}", a_tok)
    assert status in (200, 204), status
    gone = await c1.next_event("call.removed")
    assert gone["reason"] == "removed from the room"
    left = await ana.next_event("call.participant_left")
    assert left["peer_id"] == c_peer
    ack = await ana.request("call.join", session=session)
    assert ack["participants"] == []
    for c in (ana, b1, c1):
        c.close()


async def test_status_set_through_one_process_is_seen_through_the_others(procs, redis_url):  # noqa: F811
    """presence.status set on one process is listed by every process, and cleared once the
    user's last socket (anywhere) closes."""
    servers = cluster(procs, redis_url, 2)
    room, accounts = await class_room(servers, 2)
    (ana, a_tok), (_, b_tok) = accounts
    a1 = await in_room(servers[0], a_tok, room)
    a2 = await in_room(servers[1], a_tok, room)
    watcher = await in_room(servers[1], b_tok, room)
    await a1.request("presence.status", status="busy")
    changed = await watcher.next_event("presence.status")
    assert changed["user_id"] == ana["id"] and changed["status"] == "busy"
    for srv in servers:
        c = await WsClient.connect(srv.ws_url, b_tok)
        listed = await c.request("presence.list", room=room)
        assert listed["status"][ana["id"]] == "busy", srv.port
        c.close()
    a1.close()
    await asyncio.sleep(0.3)
    listed = await watcher.request("presence.list", room=room)
    assert listed["status"][ana["id"]] == "busy"  # still connected through process 2
    a2.close()
    await watcher.next_event("presence.left")
    a3 = await in_room(servers[0], a_tok, room)
    listed = await watcher.request("presence.list", room=room)
    assert listed["status"][ana["id"]] == "online"
    for c in (watcher, a3):
        c.close()


async def test_worker_on_one_process_records_a_call_held_by_the_other_two(procs, redis_url, worker_procs,  # noqa: F811
                                                                       tmp_path):
    """A media worker connected to process 1 records a call whose participants are on
    processes 2 and 3: the job, its signaling, the instructor's mark and stop all cross
    processes, and the class video is ready with both participants and the mark as a chapter.
    The start timeout (5 s) runs out in the process that asked while the recording is being
    made elsewhere, and must not fail it."""
    import av
    from tornado.httpclient import AsyncHTTPClient

    from tests.patterntracks import pattern_tracks
    from tests.procserver import WORKER_SECRET
    from tests.rtcpeer import RtcPeer

    servers = cluster(procs, redis_url, 3, RECORDING_START_TIMEOUT_S="5")
    worker = worker_procs(servers[0].base_url, WORKER_SECRET, tmp_path / "work").start()
    await asyncio.get_running_loop().run_in_executor(None, worker.wait_registered)
    room, accounts = await class_room(servers, 2)
    (_, a_tok), (_, b_tok) = accounts
    ana = await RtcPeer.connect(servers[1].ws_url, a_tok, label="ana", tracks=pattern_tracks(0.0))
    ben = await RtcPeer.connect(servers[2].ws_url, b_tok, label="ben", tracks=pattern_tracks(0.4))
    try:
        session = (await ana.ws.request("call.start", room=room))["session"]["id"]
        await ana.join(session)
        await ben.join(session)
        await ben.ws.request("room.join", room=room)  # Ben hears recording.* as a room member, Ana as a participant
        rid = (await ana.ws.request("recording.start", session=session))["recording"]["id"]
        for peer in (ana, ben):
            started = await peer.next_event("recording.started", timeout=30)
            assert started["recording"]["id"] == rid, worker.log_tail()
        deadline = time.monotonic() + 20
        while not (recorders := [p for p in ana.links if p != ben.peer_id]):
            assert time.monotonic() < deadline, worker.log_tail()
            await asyncio.sleep(0.05)
        for peer in (ana, ben):
            await peer.wait_connected(recorders, timeout=20)
        await asyncio.sleep(2.0)
        await ana.ws.request("recording.mark", session=session, label="Across processes")
        await asyncio.sleep(4.0)  # past the start timeout
        stopped = await ana.ws.request("recording.stop", session=session)
        assert stopped["recording"]["status"] == "processing"
        ready = await ana.next_event("recording.ready", timeout=120)
        assert ready["recording"]["id"] == rid, worker.log_tail()
    finally:
        await ana.close()
        await ben.close()
    status, body = await servers[2].http("GET", f"/api/recordings/{rid}", a_tok)
    assert status == 200 and body["recording"]["status"] == "ready", body
    assets = body["recording"]["assets"]
    assert sorted(a["kind"] for a in assets if a["kind"] in ("participant", "composite")) == \
        ["composite", "participant", "participant"], assets
    composite = next(a for a in assets if a["kind"] == "composite")
    from urllib.parse import urlsplit
    link = urlsplit(composite["url"])  # a signed link: any process serves it
    resp = await AsyncHTTPClient().fetch(f"{servers[1].base_url}{link.path}?{link.query}", request_timeout=60)
    path = tmp_path / "class.mp4"
    path.write_bytes(resp.body)
    with av.open(str(path)) as f:
        assert f.streams.video and f.streams.audio
        chapters = [ch["metadata"].get("title") for ch in f.chapters()]
    assert "Across processes" in chapters, chapters
    assert "registered with" in worker.log()


async def test_a_silent_subscriber_is_noticed_by_the_canary_and_catches_up(procs, redis_url):  # noqa: F811
    """Process 2's Redis subscription goes silent (open, but nothing arrives — a stuck NAT):
    no error tells it, but its canary does not come back, it resubscribes and catches up
    from SQL, so its client gets every message sent meanwhile, in order."""
    from tests.tcpproxy import SilencingProxy

    redis_port = int(redis_url.split("://", 1)[1].split("/")[0].rsplit(":", 1)[1])
    proxy = SilencingProxy(redis_port)
    try:
        prefix = "podium-scale-" + secrets.token_hex(4)
        a_srv = procs.new(extra_env={"REDIS_URL": redis_url, "REDIS_PREFIX": prefix})
        b_srv = procs.new(extra_env={"REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0", "REDIS_PREFIX": prefix})
        room, accounts = await class_room([a_srv, b_srv], 2)
        a, b = await in_room(a_srv, accounts[0][1], room), await in_room(b_srv, accounts[1][1], room)
        await asyncio.sleep(0.3)
        await a.request("message.send", room=room, client_msg_id="m0", kind="text", content="before")
        assert await collect(b, room, 1, 5) == [1]
        assert proxy.silence_subscribers() >= 1
        total = 10
        for k in range(1, total):
            await a.request("message.send", room=room, client_msg_id=f"m{k}", kind="text", content=str(k))
        got = await collect(b, room, total - 1, 20)  # canary timeout 6 s + resubscribe + catch-up
        assert got == list(range(2, total + 1)), (got, b_srv.log_tail())
        assert "no canary back from Redis" in b_srv.log
        a.close()
        b.close()
    finally:
        proxy.close()


async def test_recording_fails_clearly_when_the_process_holding_its_worker_dies(procs, redis_url, worker_procs,  # noqa: F811
                                                                              tmp_path):
    """The web process a recording's worker is connected to is killed and the worker cannot
    come back (it only knows that process): the surviving process notices — the dead
    process's timers died with it — and fails the recording with a reason the instructor
    sees, instead of leaving it "recording" forever."""
    from tests.procserver import WORKER_SECRET
    from tests.rtcpeer import RtcPeer

    servers = cluster(procs, redis_url, 2, RECORDING_WORKER_GRACE_S="3")
    worker = worker_procs(servers[0].base_url, WORKER_SECRET, tmp_path / "work").start()
    await asyncio.get_running_loop().run_in_executor(None, worker.wait_registered)
    room, accounts = await class_room(servers, 1)
    ana = await RtcPeer.connect(servers[1].ws_url, accounts[0][1], label="ana")
    try:
        session = (await ana.ws.request("call.start", room=room))["session"]["id"]
        await ana.join(session)
        rid = (await ana.ws.request("recording.start", session=session))["recording"]["id"]
        await ana.next_event("recording.started", timeout=30)
        servers[0].kill()
        failed = await ana.next_event("recording.failed", timeout=45)  # liveness TTL 15 s + grace 3 s
        assert failed["recording"]["id"] == rid and "worker" in failed["reason"], failed
        status, body = await servers[1].http("GET", f"/api/recordings/{rid}", accounts[0][1])
        assert body["recording"]["status"] == "failed", body
    finally:
        await ana.close()


async def test_edits_deletions_and_reactions_made_while_redis_is_down_still_arrive(procs, tmp_path):  # noqa: F811
    """Redis is down while a message is edited, another deleted and a third reacted to through
    process 1: once Redis is back, the client on process 2 gets each message's current state
    (from SQL), and later changes flow as usual."""
    redis = RedisServer(tmp_path).start()
    try:
        servers = cluster(procs, redis.url, 2)
        room, accounts = await class_room(servers, 2)
        a, b = await in_room(servers[0], accounts[0][1], room), await in_room(servers[1], accounts[1][1], room)
        await asyncio.sleep(0.3)
        ids = []
        for k in range(3):
            ids.append((await a.request("message.send", room=room, client_msg_id=f"m{k}", kind="text",
                                        content=f"draft {k}"))["message"]["id"])
        assert await collect(b, room, 3, 5) == [1, 2, 3]
        redis.kill()
        await a.request("message.edit", message_id=ids[0], content="final 0")
        await a.request("message.delete", message_id=ids[1])
        await a.request("message.react", message_id=ids[2], emoji="👍", on=True)
        redis.start()
        seen: dict[str, dict] = {}
        deadline = time.monotonic() + 30
        while len(seen) < 3 and time.monotonic() < deadline:
            try:
                ev = await b.next_event(timeout=max(0.05, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                break
            if ev["type"] in ("message.updated", "message.deleted"):
                seen[ev["message"]["id"]] = ev
            elif ev["type"] == "message.reaction":
                seen[ev["message_id"]] = ev
        assert set(seen) == set(ids), seen
        assert seen[ids[0]]["message"]["content"] == "final 0"
        assert seen[ids[1]]["type"] == "message.deleted"
        r = seen[ids[2]]
        reactions = r["message"]["reactions"] if r["type"] == "message.updated" else r["reactions"]
        assert reactions == {"👍": [accounts[0][0]["id"]]}, r
        await a.request("message.edit", message_id=ids[0], content="after")  # the live path again
        ev = await b.next_event("message.updated", timeout=10)
        assert ev["message"]["content"] == "after"
        a.close()
        b.close()
    finally:
        redis.kill()


async def test_a_hundred_sockets_closing_at_once_leave_presence_right(procs, redis_url):  # noqa: F811
    """120 users close their sockets on one process at the same moment (a laptop lid, a
    proxy restart): every presence update waits for a Redis connection from the bounded pool
    instead of failing with "Too many connections", so the watcher on the other process
    sees every one of them leave."""
    n = 120
    # n + 1 sign-ups from one address: over the default SIGNUPS_PER_ADDRESS_PER_HOUR (100).
    servers = cluster(procs, redis_url, 2, SIGNUPS_PER_ADDRESS_PER_HOUR=str(n + 1))
    accounts = [await servers[0].register(f"p{secrets.token_hex(3)}{i}") for i in range(n + 1)]
    room = (await servers[0].room(accounts[0][1], [u["id"] for u, _ in accounts[1:]]))["id"]
    watcher = await in_room(servers[1], accounts[0][1], room)
    clients = []
    for _, token in accounts[1:]:
        c = await in_room(servers[0], token, room)
        clients.append(c)
    listed = await watcher.request("presence.list", room=room)
    assert len(listed["online"]) == n + 1
    for c in clients:
        c.close()
    left = set()
    deadline = time.monotonic() + 30
    while len(left) < n and time.monotonic() < deadline:
        try:
            ev = await watcher.next_event("presence.left", timeout=max(0.05, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            break
        left.add(ev["user_id"])
    assert left == {u["id"] for u, _ in accounts[1:]}, (len(left), servers[0].log_tail())
    assert "Too many connections" not in servers[0].log
    listed = await watcher.request("presence.list", room=room)
    assert listed["online"] == [accounts[0][0]["id"]]
    watcher.close()
