"""Recording end to end, with real media: aiortc participants send the synchronised pattern of
tests/mediapattern.py (a flash on video at the same wall-clock instant as a beep on audio, once
a second) through a real call; a real ``python -m media_worker`` process records it; the class
video and the other assets are downloaded through their signed links and decoded.

Also: SIGKILL of the worker mid-recording (files readable up to the kill; the restarted worker
recovers the recording from them), and a web-server restart during a recording (it goes on).
"""
from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import av
import pytest

from server.app import make_app
from server.deps import Deps
from server.http.serve import http_server
from tests.conftest import LiveServer
from tests.mediapattern import beep_times, decode_audio_mono, flash_times
from tests.patterntracks import pattern_tracks
from tests.rtcpeer import RtcPeer
from tests.calls.helpers import room_with
from tests.files.test_files import fetch

SYNC_LIMIT_S = 0.080
PHASES = {"ana": 0.0, "ben": 0.4}  # whole frames at 15 fps and whole 20 ms packets


@pytest.fixture
def config_overrides():
    return {"recording_start_timeout_s": 30.0, "recording_worker_grace_s": 30.0, "call_end_grace_s": 120.0}


# -- helpers ------------------------------------------------------------------------------------
async def wait_for(predicate, timeout: float, what: str, log=lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{log()}")
        await asyncio.sleep(0.05)


async def event(peer: RtcPeer, type_: str, timeout: float, worker=None) -> dict:
    try:
        return await peer.next_event(type_, timeout=timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"no {type_} within {timeout} s\n{worker.log_tail() if worker else ''}") from None


class Class:
    """Ana (instructor) and Ben in a live call, both sending the pattern, plus a worker."""

    def __init__(self, server, ana: RtcPeer, ben: RtcPeer, room: str, session: str, worker, tokens):
        self.server, self.ana, self.ben, self.room, self.session, self.worker = server, ana, ben, room, session, worker
        self.ana_tok, self.ben_tok = tokens

    @classmethod
    async def start(cls, server, worker, ben_joins: bool = True) -> "Class":
        room, [(_, a_tok), (_, b_tok)] = await room_with(server, "ana", "ben")
        ana = await RtcPeer.connect(server.ws_url, a_tok, label="ana", tracks=pattern_tracks(PHASES["ana"]))
        ben = await RtcPeer.connect(server.ws_url, b_tok, label="ben", tracks=pattern_tracks(PHASES["ben"]))
        session = (await ana.ws.request("call.start", room=room))["session"]["id"]
        await ana.join(session)
        c = cls(server, ana, ben, room, session, worker, (a_tok, b_tok))
        if ben_joins:
            await c.ben_joins()
        return c

    async def ben_joins(self) -> None:
        await self.ben.join(self.session)
        await self.ben.ws.request("room.join", room=self.room)

    async def recorder_connected(self, peer: RtcPeer) -> None:
        """Wait until the recorder has offered to ``peer`` and their connection is up."""
        try:
            await peer.wait_connected([self.recorder], timeout=20)
        except asyncio.TimeoutError:
            raise AssertionError(f"{peer.label} never connected to the recorder\n{self.worker.log_tail()}") from None

    recorder: str | None = None

    async def record(self) -> tuple[str, str]:
        """Press Record; wait until the recorder is connected to everyone in the call;
        (recording id, recorder peer id)."""
        ack = await self.ana.ws.request("recording.start", session=self.session)
        rid = ack["recording"]["id"]
        started = await event(self.ana, "recording.started", 30, self.worker)
        assert started["recording"]["id"] == rid
        live = self.server.deps.calls.live[int(self.session)]
        await wait_for(lambda: any(p.recorder for p in live.participants.values()), 10,
                       "the recorder to join the call", self.worker.log_tail)
        self.recorder = recorder = next(p.peer_id for p in live.participants.values() if p.recorder)
        for p in (self.ana, self.ben) if self.ben.session else (self.ana,):
            await self.recorder_connected(p)
        return rid, recorder

    async def chat(self, text: str) -> None:
        await self.ben.ws.request("message.send", room=self.room, client_msg_id=f"c{time.monotonic_ns()}",
                                  kind="text", content=text)

    async def close(self) -> None:
        for p in (self.ana, self.ben):
            await p.close()


async def download(server, asset: dict, dest: Path) -> Path:
    r = await fetch(server, asset["url"])
    assert r.code == 200, (r.code, r.body[:200])
    dest.write_bytes(r.body)
    return dest


def recording_start_t(manifest: dict) -> float:
    """The worker's wall clock at the recording's zero, from manifest.json."""
    def walk(x):
        if isinstance(x, dict):
            if x.get("type") == "recording_started" and "t" in x:
                yield float(x["t"])
            for v in x.values():
                yield from walk(v)
        elif isinstance(x, list):
            for v in x:
                yield from walk(v)
    found = list(walk(manifest))
    assert found, "manifest.json has no recording_started event"
    return found[0]


def frac_distance(t: float, phase: float) -> float:
    d = (t - phase) % 1.0
    return min(d, 1.0 - d)


# -- the class video ------------------------------------------------------------------------------
async def test_worker_records_a_class_into_an_aligned_video_with_subtitles_and_chapters(
        server, worker_procs, tmp_path):
    """Two participants sending the flash/beep pattern are recorded by a real worker process
    (the second joins after the recording started, as a newcomer): the class video decodes (H.264 + AAC), lasts the recorded span (±5 %), each participant's
    flashes sit within 80 ms of their own beeps, the chat sent while recording is a subtitle
    stream, the instructor's marks are chapters; per-participant files decode fully; the chat
    .vtt and thumbnail are there; students get only the class video, chat and thumbnail."""
    worker = worker_procs(server.base_url, server.deps.config.worker_secret, tmp_path / "work").start()
    await wait_for(lambda: "test-worker" in server.deps.recordings.workers, 30, "the worker to register",
                   worker.log_tail)
    c = await Class.start(server, worker, ben_joins=False)
    try:
        rid, _ = await c.record()
        await c.ben_joins()  # a newcomer: the recorder offers to them too
        await c.recorder_connected(c.ben)
        await asyncio.sleep(2.0)
        await c.chat("Is F = ma the whole story?")
        await c.ana.ws.request("recording.mark", session=c.session, label="Questions")
        await asyncio.sleep(3.0)
        await c.chat("Thanks!")
        await asyncio.sleep(1.5)
        stopped = await c.ana.ws.request("recording.stop", session=c.session)
        span = stopped["recording"]["duration_s"]
        ready = await event(c.ana, "recording.ready", 120, worker)
        assert ready["recording"]["id"] == rid
    finally:
        await c.close()
    status, body = await server.http("GET", f"/api/recordings/{rid}", c.ana_tok)
    rec = body["recording"]
    assert status == 200 and rec["status"] == "ready", (rec, worker.log_tail())
    kinds = sorted(a["kind"] for a in rec["assets"])
    assert kinds == ["chat", "composite", "manifest", "participant", "participant", "speakers", "thumbnail"], kinds
    by_kind = {}
    for a in rec["assets"]:
        by_kind.setdefault(a["kind"], []).append(await download(server, a, tmp_path / a["name"]))
    mp4 = by_kind["composite"][0]
    manifest = json.loads(by_kind["manifest"][0].read_text())
    t0 = recording_start_t(manifest)
    speakers = json.loads(by_kind["speakers"][0].read_text())  # docs/RECORDING.md's contract
    assert set(speakers) == {"speakers"} and isinstance(speakers["speakers"], list)

    with av.open(str(mp4)) as f:
        assert f.streams.video[0].codec_context.name == "h264"
        assert f.streams.audio[0].codec_context.name == "aac"
        duration = f.duration / 1e6
        subs = []
        for pkt in f.demux(f.streams.subtitles[0]):
            for sub in pkt.decode():
                if sub.dialogue:
                    subs.append(sub.dialogue.decode())
        chapters = [ch["metadata"].get("title") for ch in f.chapters()]
    assert abs(duration - span) <= 0.05 * span, (duration, span)
    assert [s for s in subs] == ["Ben: Is F = ma the whole story?", "Ben: Thanks!"], subs
    assert "Questions" in chapters, chapters

    with av.open(str(mp4)) as f:
        frames = [(float(fr.time), fr) for fr in f.decode(video=0)]
    w, h = frames[0][1].width, frames[0][1].height
    cells = [(0, 0, w // 2, h), (w // 2, 0, w // 2, h)]  # grid order: who sent media first
    samples, start = decode_audio_mono(mp4)
    beeps = [start + b for b in beep_times(samples)]
    assert len(beeps) >= 2 * int(span) - 3, (len(beeps), span)
    audio_end = start + len(samples) / 48000
    offsets, owners = [], []
    for region in cells:
        # Flashes where both tracks were running (tracks start and stop a few ms apart).
        flashes = [t for t in flash_times(frames, region) if 0.5 < t < audio_end - 0.3]
        assert len(flashes) >= int(span) - 2, (region, flashes)
        # Whose cell: the flashes sit on one participant's pattern phase (on the wall clock) ...
        owner = min(PHASES, key=lambda n: sum(frac_distance(t0 + t, PHASES[n]) for t in flashes))
        owners.append(owner)
        for t in flashes:
            assert frac_distance(t0 + t, PHASES[owner]) < 0.15, (owner, t, t0)
            # ... and each has a beep of the mix within 80 ms of it.
            offset = min(abs(t - b) for b in beeps)
            offsets.append(offset)
            assert offset < SYNC_LIMIT_S, (owner, t, offset)
    assert sorted(owners) == ["ana", "ben"], owners
    print(f"A/V offsets over {len(offsets)} flashes: max {max(offsets) * 1000:.0f} ms, "
          f"median {sorted(offsets)[len(offsets) // 2] * 1000:.0f} ms")

    for path in by_kind["participant"]:
        with av.open(str(path)) as f:
            assert f.streams.video and f.streams.audio
            n_video = sum(1 for _ in f.decode(video=0))
        with av.open(str(path)) as f:
            n_audio = sum(1 for _ in f.decode(audio=0))
        assert n_video >= 15 * (span - 2) * 0.6 and n_audio >= 50 * (span - 2) * 0.8, (path.name, n_video, n_audio)
    vtt = by_kind["chat"][0].read_text()
    assert vtt.startswith("WEBVTT") and "Is F = ma the whole story?" in vtt
    with av.open(str(by_kind["thumbnail"][0])) as f:
        assert next(f.decode(video=0)).width > 0

    status, body = await server.http("GET", f"/api/recordings/{rid}", c.ben_tok)
    assert sorted(a["kind"] for a in body["recording"]["assets"]) == ["chat", "composite", "thumbnail"]


# -- crash safety ---------------------------------------------------------------------------------
async def test_sigkill_mid_recording_leaves_readable_files_and_is_recovered(server, worker_procs, tmp_path):
    """SIGKILL of the worker mid-recording leaves track files readable up to the kill; the
    worker restarted (same WORKER_ID and WORKER_DIR) within RECORDING_WORKER_GRACE_S reclaims
    the recording and finishes it from what was written: ready, with a class video as long as
    what was recorded before the kill."""
    work = tmp_path / "work"
    worker = worker_procs(server.base_url, server.deps.config.worker_secret, work).start()
    await wait_for(lambda: "test-worker" in server.deps.recordings.workers, 30, "the worker to register",
                   worker.log_tail)
    c = await Class.start(server, worker)
    try:
        rid, _ = await c.record()
        await asyncio.sleep(4.0)
        worker.kill()
        killed_at = time.monotonic()
        tracks = sorted((work / f"rec-{rid}" / "tracks").glob("*.mkv"))
        assert len(tracks) == 4, tracks  # two participants × audio and video
        for track in tracks:
            with av.open(str(track)) as f:
                stream = f.streams[0]
                times = [float(fr.time) for fr in f.decode(stream)]
            assert times and times[-1] >= 2.5, (track.name, times[-1:])  # media up to the kill
        worker.start()
        ready = await event(c.ana, "recording.ready", 120, worker)
        assert ready["recording"]["id"] == rid
        assert time.monotonic() - killed_at < 120
    finally:
        await c.close()
    status, body = await server.http("GET", f"/api/recordings/{rid}", c.ana_tok)
    composite = next(a for a in body["recording"]["assets"] if a["kind"] == "composite")
    mp4 = await download(server, composite, tmp_path / "class.mp4")
    with av.open(str(mp4)) as f:
        duration = f.duration / 1e6
        n = sum(1 for _ in f.decode(video=0))
    assert 3.0 <= duration <= 6.0 and n > 30, (duration, n)
    assert "reclaiming" in worker.log()


# -- web-server restart -----------------------------------------------------------------------------
async def test_web_server_restart_does_not_end_the_recording(config, worker_procs, tmp_path):
    """The web process restarts (new process state, same database and port) during a
    recording: the worker reconnects and keeps the recording, media keeps flowing peer to
    peer, and after the instructor comes back and stops it the class video covers the whole
    span, before and after the restart."""
    from tornado.testing import bind_unused_port

    sock, port = bind_unused_port("127.0.0.1")
    deps = Deps.build(config)
    http = http_server(make_app(deps), deps.config)
    http.add_sockets([sock])
    server = LiveServer(deps, port)
    worker = worker_procs(server.base_url, server.deps.config.worker_secret, tmp_path / "work").start()
    await wait_for(lambda: "test-worker" in deps.recordings.workers, 30, "the worker to register", worker.log_tail)
    c = await Class.start(server, worker)
    second = None
    try:
        rid, _ = await c.record()
        await asyncio.sleep(3.0)
        # Restart: stop serving, drop every connection, and start anew on the same port.
        http.stop()
        for ws in list(deps.sockets):  # a dead process's sockets: closed under every client
            ws.ws_connection.stream.close()
        await http.close_all_connections()
        await deps.close()
        second = Deps.build(config)
        await second.calls.recover()
        await second.recordings.recover()
        http = http_server(make_app(second), second.config)
        http.listen(port, "127.0.0.1")
        server2 = LiveServer(second, port)
        await wait_for(lambda: "test-worker" in second.recordings.workers, 30, "the worker to re-register",
                       worker.log_tail)
        await asyncio.sleep(3.0)  # recording goes on across the restart
        ana = await server2.client(c.ana_tok)
        await ana.request("call.join", session=c.session)
        status, body = await server2.http("GET", f"/api/recordings/{rid}", c.ana_tok)
        assert body["recording"]["status"] == "recording", body
        stopped = await ana.request("recording.stop", session=c.session)
        span = stopped["recording"]["duration_s"]
        assert span >= 5.5
        ready = await ana.next_event("recording.ready", timeout=120)
        assert ready["recording"]["id"] == rid
        status, body = await server2.http("GET", f"/api/recordings/{rid}", c.ana_tok)
        composite = next(a for a in body["recording"]["assets"] if a["kind"] == "composite")
        mp4 = await download(server2, composite, tmp_path / "class.mp4")
        with av.open(str(mp4)) as f:
            duration = f.duration / 1e6
            frames = [(float(fr.time), fr) for fr in f.decode(video=0)]
        assert abs(duration - span) <= 0.1 * span, (duration, span)
        w, h = frames[0][1].width, frames[0][1].height
        late = [t for t in flash_times(frames, (0, 0, w // 2, h)) if t > span - 2.5]
        assert late, "no media from after the restart"
        ana.close()
    finally:
        await c.close()
        http.stop()
        await http.close_all_connections()
        if second is not None:
            await second.close()


# -- worker shutdown --------------------------------------------------------------------------------
async def test_sigterm_stops_the_recording_and_finishes_it_before_exiting(server, worker_procs, tmp_path):
    """SIGTERM to the worker mid-recording stops the recording (recording.stopped), and the
    worker builds and uploads the assets before it exits (code 0): the recording is ready."""
    worker = worker_procs(server.base_url, server.deps.config.worker_secret, tmp_path / "work").start()
    await wait_for(lambda: "test-worker" in server.deps.recordings.workers, 30, "the worker to register",
                   worker.log_tail)
    c = await Class.start(server, worker)
    try:
        rid, _ = await c.record()
        await asyncio.sleep(3.0)
        worker.proc.send_signal(signal.SIGTERM)
        stopped = await event(c.ana, "recording.stopped", 10, worker)
        assert stopped["recording"]["id"] == rid
        ready = await event(c.ana, "recording.ready", 60, worker)
        assert ready["recording"]["id"] == rid and ready["recording"]["duration_s"] >= 2.5
        assert await worker.await_exit(30) == 0, worker.log_tail()
    finally:
        await c.close()
    assert not (tmp_path / "work" / f"rec-{rid}").exists()  # finished: nothing left to reclaim
