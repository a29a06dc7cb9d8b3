"""Recording an SFU call (issue 14.5): aiortc participants publish the flash/beep pattern of
tests/mediapattern.py through the real Janus in the test namespace (``sfu.publish``); the real
media worker process, started inside the namespace, records them over one multistream
subscription (``sfu.record``/``sfu.answer``); the class video is downloaded and decoded, and
each participant's flashes must sit on their own beeps (the A/V alignment test of
tests/recordings/test_recording_e2e.py, whose helpers this reuses). Also: only the session's
recorder may subscribe as its recorder."""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import time

import av
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from media_worker.credential import mint_worker_token
from media_worker.post.layout import grid_for
from server.sfu.client import Handle
from tests.mediapattern import beep_times, decode_audio_mono, flash_times, mean_luma
from tests.patterntracks import PatternVideo, pattern_tracks
from tests.recordings.test_recording_e2e import (SYNC_LIMIT_S, download, frac_distance,
                                                 recording_start_t, wait_for)
from tests.sfu.netns import PEER_ADDR
from tests.sfu.peers import no_stun
from tests.sfu.test_signaling import code_of, database_url, sqlite_template  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow

# Whole frames at 10 fps and whole 20 ms packets (multiples of 0.1 s), as far apart as three
# such phases can be: at least 0.3 s, so a participant whose media reaches the recorder up to
# 0.15 s late (a loaded test process sends late) still fits their own phase better than a
# neighbour's (at 15 fps the grid is 0.2 s and cleo's 0.8 was 0.2 s from ana's 0.0: a 0.1 s
# delay made her cell look like ana's). The mix has three beeps a second, the closest 0.25 s
# of silence apart.
FPS = 10
PHASES = {"ana": 0.0, "ben": 0.3, "cleo": 0.6}
BEEP_GAP_S = 0.1


@pytest.fixture
def config_overrides(janus, in_netns) -> dict:
    """As tests/sfu/test_signaling.py's: the server uses the test's Janus and is built (and
    binds) inside the namespace; its own JWT secret keys the Janus room ids."""
    return {"janus_urls": (janus.url,), "janus_api_secret": janus.settings.api_secret,
            "janus_admin_key": janus.settings.room_admin_key, "redis_url": None,
            "jwt_secret": "sfu-rec-" + secrets.token_hex(24), "recording_start_timeout_s": 30.0,
            "recording_worker_grace_s": 30.0, "call_end_grace_s": 120.0}


class PatternPublisher:
    """An aiortc participant publishing the synchronised pattern through ``sfu.publish``."""

    def __init__(self, ws, session: str, phase: float):
        self.ws, self.session, self.phase = ws, session, phase
        self.pc = RTCPeerConnection(no_stun())

    async def publish(self) -> str:
        for track in pattern_tracks(self.phase, fps=FPS)():
            self.pc.addTrack(track)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        ack = await self.ws.request("sfu.publish", session=self.session, sdp=self.pc.localDescription.sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(ack["sdp"], "answer"))
        await self.ws.request("sfu.ice", session=self.session, target="publish", candidate=None)
        return ack["feed"]


def same_netns(pid: int, path: str) -> bool:
    return os.readlink(f"/proc/{pid}/ns/net") == os.readlink(path)


async def registered_worker(server, worker_procs, tmp_path):
    """A media worker process started from the test thread (so inside the namespace), once it
    has registered with the server."""
    worker = worker_procs(server.base_url, server.deps.config.worker_secret, tmp_path / "work",
                          extra_env={"WORKER_ICE_ADDRESSES": PEER_ADDR}).start()
    await wait_for(lambda: "test-worker" in server.deps.recordings.workers, 30, "the worker to register",
                   worker.log_tail)
    return worker


async def test_worker_records_an_sfu_call_into_an_aligned_class_video(server, worker_procs, netns, tmp_path):
    """Ana and Ben publish through Janus; Record; Cleo joins and publishes during the recording
    (``sfu.feeds_changed`` adds her to the recorder's subscription) and leaves before the stop
    (her tracks end). The recording is ready; the class video (H.264 + AAC) lasts the span, has
    the chat as subtitles and the mark as a chapter, and shows three cells whose flashes each
    sit on one participant's pattern and within 80 ms of a beep of the mix; every participant
    has a decodable file; the recorder's video came at Janus's top layer request."""
    worker = await registered_worker(server, worker_procs, tmp_path)
    assert same_netns(worker.proc.pid, netns.path)  # started from the test thread, inside
    (_, a_tok), (ben_user, b_tok), (cleo_user, c_tok) = [
        await server.user("ana", "instructor"), await server.user("ben"), await server.user("cleo")]
    room = await server.room(a_tok, members=[ben_user["id"], cleo_user["id"]])
    ana, ben, cleo = [await server.client(t) for t in (a_tok, b_tok, c_tok)]
    session = (await ana.request("call.start", room=room["id"]))["session"]["id"]
    acks = {"ana": await ana.request("call.join", session=session),
            "ben": await ben.request("call.join", session=session)}
    assert acks["ana"]["media_path"] == "sfu"
    pubs = {"ana": PatternPublisher(ana, session, PHASES["ana"]), "ben": PatternPublisher(ben, session, PHASES["ben"])}
    tracks_dir = tmp_path / "work"
    try:
        for p in pubs.values():
            await p.publish()
        rid = (await ana.request("recording.start", session=session))["recording"]["id"]
        started = await ana.next_event("recording.started", timeout=30)
        assert started["recording"]["id"] == rid, worker.log_tail()
        tracks_dir = tmp_path / "work" / f"rec-{rid}" / "tracks"
        await wait_for(lambda: len(list(tracks_dir.glob("*.mkv"))) >= 4, 20, "the recorder to write 4 tracks",
                       worker.log_tail)
        # A newcomer publishes during the recording: the recorder adds her to its subscription.
        acks["cleo"] = await cleo.request("call.join", session=session)
        pubs["cleo"] = PatternPublisher(cleo, session, PHASES["cleo"])
        await pubs["cleo"].publish()
        cleo_peer = acks["cleo"]["peer_id"]
        await wait_for(lambda: len(list(tracks_dir.glob(f"{cleo_peer}-*.mkv"))) == 2, 20,
                       "the recorder to record the newcomer", worker.log_tail)
        await asyncio.sleep(2.0)
        await ben.request("message.send", room=room["id"], client_msg_id="c1", kind="text",
                          content="Is F = ma the whole story?")
        await ana.request("recording.mark", session=session, label="Questions")
        await asyncio.sleep(3.0)
        await cleo.request("call.leave", session=session)  # a departure mid-recording
        await pubs.pop("cleo").pc.close()
        await asyncio.sleep(2.5)
        stopped = await ana.request("recording.stop", session=session)
        span = stopped["recording"]["duration_s"]
        ready = await ana.next_event("recording.ready", timeout=120)
        assert ready["recording"]["id"] == rid
    finally:
        for p in pubs.values():
            await p.pc.close()
    log = worker.log()
    assert "subscribed through Janus" in log and "rtc.offer" not in log

    status, body = await server.http("GET", f"/api/recordings/{rid}", a_tok)
    rec = body["recording"]
    assert status == 200 and rec["status"] == "ready", (rec, worker.log_tail())
    kinds = sorted(a["kind"] for a in rec["assets"])
    assert kinds == ["chat", "composite", "manifest"] + ["participant"] * 3 + ["speakers", "thumbnail"], kinds
    files = {}
    for a in rec["assets"]:
        files.setdefault(a["kind"], []).append(await download(server, a, tmp_path / a["name"]))
    manifest = json.loads(files["manifest"][0].read_text())
    t0 = recording_start_t(manifest)
    events = manifest["events"]
    peers = {name: acks[name]["peer_id"] for name in acks}
    assert {e["peer_id"] for e in events if e["type"] == "track_started"} == set(peers.values())
    # Cameras, not screens: the SFU route marks every video track's source (docs/RECORDING.md).
    assert {e.get("source") for e in events if e["type"] == "track_started" and e["kind"] == "video"} == {"camera"}
    left = [e for e in events if e["type"] == "participant_left"]
    assert [e["peer_id"] for e in left] == [peers["cleo"]]
    cleo_span = (next(e["t"] for e in events if e["type"] == "track_started" and e["peer_id"] == peers["cleo"]) - t0,
                 left[0]["t"] - t0)

    mp4 = files["composite"][0]
    with av.open(str(mp4)) as f:
        assert f.streams.video[0].codec_context.name == "h264"
        assert f.streams.audio[0].codec_context.name == "aac"
        duration = f.duration / 1e6
        subs = [sub.dialogue.decode() for pkt in f.demux(f.streams.subtitles[0]) for sub in pkt.decode()
                if sub.dialogue]
        chapters = [ch["metadata"].get("title") for ch in f.chapters()]
    assert abs(duration - span) <= 0.05 * span, (duration, span)
    assert subs == ["Ben: Is F = ma the whole story?"], subs
    assert "Questions" in chapters, chapters

    with av.open(str(mp4)) as f:
        frames = [(float(fr.time), fr) for fr in f.decode(video=0)]
    w, h = frames[0][1].width, frames[0][1].height
    grid = grid_for(3, (320, 240))
    assert (grid.width, grid.height) == (w, h)
    samples, start = decode_audio_mono(mp4)
    beeps = [start + b for b in beep_times(samples, min_gap_s=BEEP_GAP_S)]
    audio_end = start + len(samples) / 48000
    offsets, owners = [], []
    # Cells are in the composite's order (participants by first frame, as manifest.json lists
    # them); each must show its own participant's flashes, on their phase.
    names = [p["display_name"].lower() for p in manifest["participants"]]
    assert sorted(names) == ["ana", "ben", "cleo"], names
    for cell, owner in zip(grid.cells, names):
        flashes = [t for t in flash_times(frames, (cell.x, cell.y, cell.w, cell.h)) if 0.5 < t < audio_end - 0.3]
        assert len(flashes) >= 3, (owner, cell, flashes, [e for e in events if e.get("type") != "chat"],
                                   worker.log())
        owners.append(min(PHASES, key=lambda n: sum(frac_distance(t0 + t, PHASES[n]) for t in flashes)))
        expected = span if owner != "cleo" else cleo_span[1] - cleo_span[0]
        assert len(flashes) >= int(expected) - 2, (owner, flashes, expected)
        for t in flashes:
            assert frac_distance(t0 + t, PHASES[owner]) < 0.15, (owner, t, t0)
            if owner == "cleo":  # her cell is black once she left
                assert cleo_span[0] - 0.2 <= t <= cleo_span[1] + 0.2, (t, cleo_span)
            offset = min(abs(t - b) for b in beeps)
            offsets.append(offset)
            assert offset < SYNC_LIMIT_S, (owner, t, offset, [round(b, 3) for b in beeps], cleo_span)
    assert owners == names, (owners, names)  # and no other participant's phase fits them better
    print(f"SFU recording, A/V offsets over {len(offsets)} flashes: max {max(offsets) * 1000:.0f} ms, "
          f"median {sorted(offsets)[len(offsets) // 2] * 1000:.0f} ms")

    # Each participant's own file holds their media only: its beeps are all on their phase
    # (two publishers' audio arriving on one m-line would put another phase in).
    name_of = {p["user_id"]: p["display_name"].lower() for p in manifest["participants"]}
    for path in files["participant"]:
        owner = name_of[path.name.split("-")[1]]
        with av.open(str(path)) as f:
            assert f.streams.video and f.streams.audio, path.name
            assert sum(1 for _ in f.decode(video=0)) >= FPS * 2, path.name
        own, start = decode_audio_mono(path)
        own_beeps = [start + b for b in beep_times(own, min_gap_s=BEEP_GAP_S)]
        assert len(own_beeps) >= 3, (path.name, own_beeps)
        assert all(frac_distance(t0 + b, PHASES[owner]) < 0.15 for b in own_beeps), (owner, own_beeps, t0)


async def test_only_the_sessions_recorder_subscribes_as_recorder(server, monkeypatch):
    """``sfu.record`` is the session's recorder's: its instructor and students (participants),
    a room member outside the call and a recorder that joined another session get
    ``forbidden`` and hold no subscription at Janus; the recorder gets the publishers, and
    Podium asks Janus for the top simulcast layer of each video on the recorder's subscription
    (the requests to Janus are watched on their way, not replaced)."""
    sent: list[tuple[int, dict]] = []
    real_message = Handle.message

    async def watched(self, body, jsep=None, timeout=None):
        sent.append((self.id, body))
        return await real_message(self, body, jsep, timeout)
    monkeypatch.setattr(Handle, "message", watched)
    (_, a_tok), (ben_user, b_tok), (bob_user, o_tok) = [
        await server.user("ana", "instructor"), await server.user("ben"), await server.user("bob")]
    room = await server.room(a_tok, members=[ben_user["id"], bob_user["id"]])
    ana, ben, bystander = [await server.client(t) for t in (a_tok, b_tok, o_tok)]
    session = (await ana.request("call.start", room=room["id"]))["session"]["id"]
    ana_peer = (await ana.request("call.join", session=session))["peer_id"]
    await ben.request("call.join", session=session)
    other_room = await server.room(a_tok, name="Other")
    other = (await ana.request("call.start", room=other_room["id"]))["session"]["id"]
    token = mint_worker_token(server.deps.config.worker_secret)
    recorder, elsewhere = await server.client(token), await server.client(token)
    rec_peer = (await recorder.request("call.join", session=session))["peer_id"]
    await elsewhere.request("call.join", session=other)
    pub = PatternPublisher(ana, session, 0.0)
    try:
        await pub.publish()
        for c, name in ((ana, "instructor"), (ben, "student"), (bystander, "bystander"), (elsewhere, "other recorder")):
            assert await code_of(c, "sfu.record", session=session) == "forbidden", name
        sig = server.deps.sfu_signaling
        assert all(p.subscriber is None for p in sig.peers.values()), "a refused sfu.record subscribed"
        deadline = asyncio.get_running_loop().time() + 10
        while not (ack := await recorder.request("sfu.record", session=session))["sdp"]:
            assert asyncio.get_running_loop().time() < deadline, "the recorder found no publisher"
            await asyncio.sleep(0.2)
        assert {(s["type"], s["peer_id"]) for s in ack["streams"]} == {("audio", ana_peer), ("video", ana_peer)}
        video_mid = next(s["mid"] for s in ack["streams"] if s["type"] == "video")
        handle = sig.peers[(int(session), rec_peer)].subscriber.id
        assert {"request": "configure", "streams": [{"mid": video_mid, "substream": 2, "temporal": 2}]} in [
            body for hid, body in sent if hid == handle], sent
    finally:
        await pub.pc.close()


async def test_recorder_follows_departures_and_newcomers(server, worker_procs, netns, tmp_path):
    """Ana publishes and is recorded; Ben joins, publishes and leaves; then Cleo joins and
    publishes (Janus may give her Ben's freed m-lines). The recorder ends Ben's tracks when he
    leaves and records Cleo on the same subscription; the recording is ready with a decodable
    file for each of the three."""
    worker = await registered_worker(server, worker_procs, tmp_path)
    (_, a_tok), (ben_user, b_tok), (cleo_user, c_tok) = [
        await server.user("ana", "instructor"), await server.user("ben"), await server.user("cleo")]
    room = await server.room(a_tok, members=[ben_user["id"], cleo_user["id"]])
    ana, ben, cleo = [await server.client(t) for t in (a_tok, b_tok, c_tok)]
    session = (await ana.request("call.start", room=room["id"]))["session"]["id"]
    await ana.request("call.join", session=session)
    pubs = [PatternPublisher(ana, session, 0.0)]
    try:
        await pubs[0].publish()
        rid = (await ana.request("recording.start", session=session))["recording"]["id"]
        await ana.next_event("recording.started", timeout=30)
        tracks = tmp_path / "work" / f"rec-{rid}" / "tracks"
        await wait_for(lambda: len(list(tracks.glob("*.mkv"))) == 2, 20, "Ana's tracks", worker.log_tail)
        peers = {}
        for name, ws in (("ben", ben), ("cleo", cleo)):
            peers[name] = (await ws.request("call.join", session=session))["peer_id"]
            pubs.append(PatternPublisher(ws, session, 0.4))
            await pubs[-1].publish()
            await wait_for(lambda: len(list(tracks.glob(f"{peers[name]}-*.mkv"))) == 2, 20,
                           f"{name}'s tracks", worker.log_tail)
            await asyncio.sleep(2.0)
            if name == "ben":
                await ben.request("call.leave", session=session)
                await pubs.pop().pc.close()
                await asyncio.sleep(1.0)
        await ana.request("recording.stop", session=session)
        ready = await ana.next_event("recording.ready", timeout=120)
        assert ready["recording"]["id"] == rid
    finally:
        for p in pubs:
            await p.pc.close()
    status, body = await server.http("GET", f"/api/recordings/{rid}", a_tok)
    assets = body["recording"]["assets"]
    manifest = json.loads((await download(server, next(a for a in assets if a["kind"] == "manifest"),
                                          tmp_path / "manifest.json")).read_text())
    events = manifest["events"]
    ended = {e["track"]: e["t"] for e in events if e["type"] == "track_ended"}
    started = {e["track"]: e["t"] for e in events if e["type"] == "track_started"}
    ben_left = next(e["t"] for e in events if e["type"] == "participant_left" and e["peer_id"] == peers["ben"])
    for kind in ("audio", "video"):
        assert ended[f"{peers['ben']}-{kind}-0"] <= ben_left + 0.5  # ended when he left
        assert started[f"{peers['cleo']}-{kind}-0"] > ben_left
    participant_files = [a for a in assets if a["kind"] == "participant"]
    assert len(participant_files) == 3
    for a in participant_files:
        path = await download(server, a, tmp_path / a["name"])
        with av.open(str(path)) as f:
            assert f.streams.video and f.streams.audio, a["name"]
            assert sum(1 for _ in f.decode(video=0)) >= FPS, a["name"]


async def test_recording_goes_on_across_a_janus_restart(server, worker_procs, janus, tmp_path):
    """Janus killed and restarted mid-recording: everyone gets sfu.restart, the participants
    publish again and the recorder subscribes again from scratch (new track files); the
    recording is ready and its class video shows both participants' flashes, on their beeps,
    after the restart too. (This test restarts the module's Janus: it runs last.)"""
    worker = await registered_worker(server, worker_procs, tmp_path)
    (_, a_tok), (ben_user, b_tok) = [await server.user("ana", "instructor"), await server.user("ben")]
    room = await server.room(a_tok, members=[ben_user["id"]])
    ana, ben = [await server.client(t) for t in (a_tok, b_tok)]
    session = (await ana.request("call.start", room=room["id"]))["session"]["id"]
    peers = {"ana": (await ana.request("call.join", session=session))["peer_id"],
             "ben": (await ben.request("call.join", session=session))["peer_id"]}
    socks = {"ana": ana, "ben": ben}
    pubs = [PatternPublisher(socks[n], session, PHASES[n]) for n in ("ana", "ben")]
    try:
        for p in pubs:
            await p.publish()
        rid = (await ana.request("recording.start", session=session))["recording"]["id"]
        await ana.next_event("recording.started", timeout=30)
        tracks = tmp_path / "work" / f"rec-{rid}" / "tracks"
        await wait_for(lambda: len(list(tracks.glob("*-0.mkv"))) == 4, 20, "the first tracks", worker.log_tail)
        await asyncio.sleep(2.0)
        janus.stop(kill=True)
        restarted_at = time.time()
        janus.start()
        for name in ("ana", "ben"):
            await socks[name].next_event("sfu.restart", timeout=20, session=session)
            pubs.append(PatternPublisher(socks[name], session, PHASES[name]))
            await pubs[-1].publish()
        await wait_for(lambda: len(list(tracks.glob("*-1.mkv"))) == 4, 30, "the tracks after the restart",
                       worker.log_tail)
        await asyncio.sleep(3.0)
        span = (await ana.request("recording.stop", session=session))["recording"]["duration_s"]
        ready = await ana.next_event("recording.ready", timeout=120)
        assert ready["recording"]["id"] == rid
    finally:
        for p in pubs:
            await p.pc.close()
    assert "Janus restarted; subscribing again" in worker.log()
    await assert_two_cells_flash_on_beeps_after(server, a_tok, rid, tmp_path, span, restarted_at + 1.0)


async def assert_two_cells_flash_on_beeps_after(server, a_tok: str, rid: str, tmp_path, span: float,
                                                since: float) -> None:
    """The ready class video of a two-person recording ``rid``: its length matches ``span``, and
    each cell shows at least two of its participant's flashes after wall-clock time ``since``,
    each on its own phase and on a beep (the recording went on across a restart or failover)."""
    status, body = await server.http("GET", f"/api/recordings/{rid}", a_tok)
    assets = {a["kind"]: a for a in body["recording"]["assets"]}
    manifest = json.loads((await download(server, assets["manifest"], tmp_path / "manifest.json")).read_text())
    t0 = recording_start_t(manifest)
    mp4 = await download(server, assets["composite"], tmp_path / "class.mp4")
    with av.open(str(mp4)) as f:
        duration = f.duration / 1e6
        frames = [(float(fr.time), fr) for fr in f.decode(video=0)]
    assert abs(duration - span) <= 0.05 * span, (duration, span)
    samples, start = decode_audio_mono(mp4)
    beeps = [start + b for b in beep_times(samples, min_gap_s=BEEP_GAP_S)]
    w, h = frames[0][1].width, frames[0][1].height
    names = [p["display_name"].lower() for p in manifest["participants"]]
    after = since - t0
    for (x, cell_w), owner in zip(((0, w // 2), (w // 2, w // 2)), names):
        flashes = flash_times(frames, (x, 0, cell_w, h))
        late = [t for t in flashes if after < t < start + len(samples) / 48000 - 0.3]
        assert len(late) >= 2, (owner, flashes, after)
        for t in late:
            assert frac_distance(t0 + t, PHASES[owner]) < 0.15, (owner, t)
            assert min(abs(t - b) for b in beeps) < SYNC_LIMIT_S, (owner, t, beeps)


class ScreenPublisher:
    """An aiortc participant's shared screen: a second, video-only publisher
    (``sfu.publish {source: "screen"}``, Janus display ``<peer_id>:screen``) of a 640x360
    picture."""

    def __init__(self, ws, session: str):
        self.ws, self.session = ws, session
        self.pc = RTCPeerConnection(no_stun())

    async def publish(self) -> None:
        self.pc.addTrack(PatternVideo(640, 360, fps=FPS))
        await self.pc.setLocalDescription(await self.pc.createOffer())
        ack = await self.ws.request("sfu.publish", session=self.session, sdp=self.pc.localDescription.sdp,
                                    source="screen")
        await self.pc.setRemoteDescription(RTCSessionDescription(ack["sdp"], "answer"))
        await self.ws.request("sfu.ice", session=self.session, target="screen", candidate=None)

    async def stop(self) -> None:
        await self.ws.request("sfu.unpublish", session=self.session, source="screen")
        await self.pc.close()


async def test_a_shared_screen_is_recorded_as_a_screen_and_takes_the_stage(server, worker_procs, netns, tmp_path):
    """Ana shares her screen (her second publisher) during the recording: the recorder adds it
    to its subscription and writes it as her track with ``source: "screen"``; the class video is
    the presenter layout while it lasts (the screen on the stage, black above the strip's two
    camera cells) and the grid before and after."""
    worker = await registered_worker(server, worker_procs, tmp_path)
    (_, a_tok), (ben_user, b_tok) = [await server.user("ana", "instructor"), await server.user("ben")]
    room = await server.room(a_tok, members=[ben_user["id"]])
    ana, ben = [await server.client(t) for t in (a_tok, b_tok)]
    session = (await ana.request("call.start", room=room["id"]))["session"]["id"]
    ana_peer = (await ana.request("call.join", session=session))["peer_id"]
    await ben.request("call.join", session=session)
    pubs = [PatternPublisher(ana, session, PHASES["ana"]), PatternPublisher(ben, session, PHASES["ben"])]
    screen = ScreenPublisher(ana, session)
    try:
        for p in pubs:
            await p.publish()
        rid = (await ana.request("recording.start", session=session))["recording"]["id"]
        await ana.next_event("recording.started", timeout=30)
        tracks = tmp_path / "work" / f"rec-{rid}" / "tracks"
        await wait_for(lambda: len(list(tracks.glob("*.mkv"))) >= 4, 20, "the recorder to write 4 tracks",
                       worker.log_tail)
        await asyncio.sleep(1.5)
        await screen.publish()
        await wait_for(lambda: (tracks / f"{ana_peer}-video-1.mkv").exists(), 20, "the screen's track",
                       worker.log_tail)
        await asyncio.sleep(3.0)
        await screen.stop()
        await asyncio.sleep(2.5)
        await ana.request("recording.stop", session=session)
        ready = await ana.next_event("recording.ready", timeout=120)
        assert ready["recording"]["id"] == rid
    finally:
        await screen.pc.close()
        for p in pubs:
            await p.pc.close()
    status, body = await server.http("GET", f"/api/recordings/{rid}", a_tok)
    assets = {a["kind"]: a for a in body["recording"]["assets"]}
    manifest = json.loads((await download(server, assets["manifest"], tmp_path / "manifest.json")).read_text())
    t0 = recording_start_t(manifest)
    video_tracks = {e["track"]: e for e in manifest["events"]
                    if e["type"] == "track_started" and e["kind"] == "video"}
    assert video_tracks[f"{ana_peer}-video-1"].get("source") == "screen", video_tracks
    assert sorted(e.get("source") for e in video_tracks.values()) == ["camera", "camera", "screen"]
    shared = video_tracks[f"{ana_peer}-video-1"]["t"] - t0
    unshared = next(e["t"] for e in manifest["events"]
                    if e["type"] == "track_ended" and e["track"] == f"{ana_peer}-video-1") - t0
    # A camera's cell is black until its first frame (track_started's t): under load Ben's may
    # come after the video's first half second, which is neither layout's doing.
    cameras_in = max(e["t"] for e in video_tracks.values() if e.get("source") == "camera") - t0
    assert cameras_in < shared - 1.2, (cameras_in, shared)

    mp4 = await download(server, assets["composite"], tmp_path / "class.mp4")
    with av.open(str(mp4)) as f:
        w, h = f.streams.video[0].codec_context.width, f.streams.video[0].codec_context.height
        # Two 320x240 cameras and a 640x360 screen: 800x360, the strip's cells 160x120 from y=60.
        assert (w, h) == (800, 360), (w, h)
        above_strip = (648, 36, 144, 16)
        kinds = []
        for fr in f.decode(video=0):
            t = float(fr.time)
            if 0.5 < t and (not kinds or t - kinds[-1][0] >= 0.25):
                dark = mean_luma(fr, above_strip) < 25
                kinds.append((t, "presenter" if dark else "grid"))
    during = [k for t, k in kinds if shared + 0.5 < t < unshared - 0.5]
    assert len(during) >= 6 and set(during) == {"presenter"}, (kinds, shared, unshared)
    before = [k for t, k in kinds if cameras_in + 0.3 < t < shared - 0.3]
    after = [k for t, k in kinds if t > unshared + 0.3]
    assert len(before) >= 2 and len(after) >= 4, (kinds, cameras_in, shared, unshared)
    assert set(before) == set(after) == {"grid"}, (kinds, cameras_in, shared, unshared)
