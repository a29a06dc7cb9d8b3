"""A recording being written live (media_worker/live/session.py), with real aiortc peers on
loopback: a recorder peer that offers recvonly writes each track's encoded frames, undecoded,
into a Matroska file that PyAV decodes fully, and the manifest to events.jsonl; keyframes are
requested when joining mid-GOP; files survive SIGKILL.

Run as ``python -m tests.worker.live.test_session crash-child DIR`` it is the recorder process
of the crash test (SDP offer on stdout, answer on stdin, records until killed).
"""
from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path

import pytest
from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCSessionDescription

from media_worker.live import LiveOptions, RecordingSession, TrackWriter, install_passthrough
from tests.rtcpeer import VIDEO_CLOCK, PatternVideoTrack
from tests.worker.live.helpers import (FPS, SwitchingVideoTrack, assert_monotonic, close_all, decode, negotiate,
                                       read_events, recorder_pc, sender_pc, wait_for)

pytestmark = pytest.mark.timeout(60)
REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("codec", ["vp8", "h264"])
async def test_call_is_recorded_without_transcoding(tmp_path, codec):
    """A ~3 s call (video switching 320x240 → 640x480 half-way, plus Opus) is recorded into one
    Matroska file per track holding the sender's own encoded frames: each decodes fully, starts
    with a keyframe, has ~30 fps × its duration frames with monotonic pts, lasts the wall time
    ±10 %, and events.jsonl tells the story (started, both tracks, both sizes, ended, stopped)."""
    directory = tmp_path / "rec-1"
    session = RecordingSession(directory, recording_id="1", session_id="s1", room_id="r1")
    session.start()
    video = SwitchingVideoTrack([(320, 240), (640, 480)], switch_after=45)
    rec, snd = recorder_pc(), sender_pc(video, codec=codec)
    session.attach("p1", rec)
    session.participant_joined("p1", {"id": 7, "display_name": "Ana", "role": "student"})
    session.media("p1", {"audio": True, "video": True, "screen": False})
    try:
        await negotiate(rec, snd)
        await wait_for(lambda: len([w for w in session.writers if w.frames]) == 2, 10, "two tracks")
        await asyncio.sleep(3.0)
        stop_wall = time.time()
        await session.stop("stop")
    finally:
        await close_all(rec, snd)

    events = read_events(directory)
    types = [e["type"] for e in events]
    assert types[0] == "recording_started" and types[-1] == "recording_stopped"
    assert events[0] | {"t": 0} == {"t": 0, "type": "recording_started", "recording": "1",
                                     "session": "s1", "room": "r1"}
    assert events[-1]["reason"] == "stop"
    assert {e["type"] for e in events} - {"track_clock"} == {
        "recording_started", "participant_joined", "media", "track_started", "video_size",
        "track_ended", "recording_stopped"}
    t0, t_end = events[0]["t"], events[-1]["t"]
    assert all(t0 <= e["t"] <= t_end for e in events if e["type"] != "track_clock")
    # A track_clock refines where pts 0 sits: earlier than the first frame's arrival, by less
    # than that frame's extra delay.
    first_seen = {e["track"]: e["t"] for e in events if e["type"] == "track_started"}
    for e in events:
        if e["type"] == "track_clock":
            assert 0 < first_seen[e["track"]] - e["t"] < 0.5, e

    started = {e["track"]: e for e in events if e["type"] == "track_started"}
    ended = {e["track"]: e for e in events if e["type"] == "track_ended"}
    assert set(started) == set(ended) == {"p1-video-0", "p1-audio-0"}
    for name, e in started.items():
        kind = name.split("-")[1]
        assert e | {"t": 0} == {"t": 0, "type": "track_started", "track": name, "peer_id": "p1",
                                "kind": kind, "codec": codec if kind == "video" else "opus",
                                "file": f"tracks/{name}.mkv"}

    # Video: every frame the writer wrote decodes, starting with a keyframe, at both sizes.
    v = decode(directory / "tracks/p1-video-0.mkv")
    writer = next(w for w in session.writers if w.kind == "video")
    assert v["codec"] == codec and v["packets"] == writer.frames == ended["p1-video-0"]["frames"]
    assert len(v["frames"]) == v["packets"]
    times = [f[0] for f in v["frames"]]
    assert times[0] == 0 and v["frames"][0][1]  # pts 0 is a keyframe
    assert_monotonic(times)
    wall = stop_wall - started["p1-video-0"]["t"]
    duration = times[-1] + 1 / FPS
    # ±10 % plus 0.5 s: on a loaded machine the sender's first (key)frame can reach the worker
    # a few hundred ms late while the media clock runs on; a timescale error is 2× or more.
    assert abs(duration - wall) <= 0.1 * wall + 0.5, (duration, wall)
    assert abs(ended["p1-video-0"]["duration_s"] - duration) < 0.05
    assert abs(len(times) - FPS * duration) <= 0.2 * FPS * duration, (len(times), duration)
    sizes = [(f[2], f[3]) for f in v["frames"]]
    switch = sizes.index((640, 480))
    assert set(sizes[:switch]) == {(320, 240)} and set(sizes[switch:]) == {(640, 480)}
    assert v["frames"][switch][1]  # the new size starts at a keyframe
    size_events = [e for e in events if e["type"] == "video_size"]
    assert [(e["width"], e["height"]) for e in size_events] == [(320, 240), (640, 480)]
    assert size_events[0]["pts"] == 0
    assert abs(size_events[1]["pts"] / VIDEO_CLOCK - times[switch]) < 0.002

    # Audio: Opus with an OpusHead, ~48000 samples per second of wall time.
    a = decode(directory / "tracks/p1-audio-0.mkv")
    assert a["codec"] == "opus" and a["extradata"][:8] == b"OpusHead"
    assert a["packets"] == ended["p1-audio-0"]["frames"] == len(a["frames"])
    assert_monotonic([f[0] for f in a["frames"]])
    audio_s = sum(f[1] for f in a["frames"]) / 48000
    wall = stop_wall - started["p1-audio-0"]["t"]
    assert abs(audio_s - wall) <= 0.1 * wall + 0.5, (audio_s, wall)


async def test_keyframe_is_requested_when_joining_mid_gop(tmp_path):
    """A writer that starts after the sender's only keyframe (aiortc's VP8 encoder makes one
    per 3000 frames unless asked) drops the delta frames, sends a PLI, the sender's encoder is
    asked for a keyframe, and the file starts with that keyframe within half a second."""
    directory = tmp_path / "rec-2"
    session = RecordingSession(directory, recording_id="2", session_id="s", room_id="r")
    session.start()
    rec, snd = recorder_pc(), sender_pc(PatternVideoTrack(320, 240, FPS), audio=False)
    seen: list[bool] = []
    joined: dict[str, object] = {}

    async def join_late(track: MediaStreamTrack, receiver: RTCRtpReceiver) -> None:
        deadline = None
        while deadline is None or time.monotonic() < deadline:
            seen.append((await track.recv()).keyframe)
            deadline = deadline or time.monotonic() + 1.0
        joined["t"] = time.time()
        joined["writer"] = session.on_track("p1", track, receiver)

    tasks = []

    @rec.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        receiver = next(t.receiver for t in rec.getTransceivers() if t.receiver.track is track)
        install_passthrough(receiver)
        tasks.append(asyncio.ensure_future(join_late(track, receiver)))

    asked: list[float] = []
    try:
        await negotiate(rec, snd)
        sender = next(s for s in snd.getSenders() if s.track is not None and s.track.kind == "video")
        send_keyframe = sender._send_keyframe  # observe the encoder being asked (private, test only)
        sender._send_keyframe = lambda: (asked.append(time.time()), send_keyframe())
        await wait_for(lambda: "writer" in joined, 10, "the late join")
        writer: TrackWriter = joined["writer"]
        await wait_for(lambda: writer.frames >= 15, 5, "frames after the keyframe")
        await session.stop("call_ended")
    finally:
        for t in tasks:
            t.cancel()
        await close_all(rec, snd)

    assert seen[0] and seen.count(True) == 1, seen  # we really skipped the only keyframe
    assert writer.dropped >= 1 and writer.keyframe_requests >= 1 and asked
    events = read_events(directory)
    started = next(e for e in events if e["type"] == "track_started")
    assert 0 <= started["t"] - joined["t"] < 0.5
    assert asked[0] >= joined["t"]
    v = decode(directory / "tracks/p1-video-0.mkv")
    assert v["frames"][0][0] == 0 and v["frames"][0][1]
    assert len(v["frames"]) == v["packets"] == writer.frames
    assert events[-1] | {"t": 0} == {"t": 0, "type": "recording_stopped", "reason": "call_ended"}


def _crash_child(directory: str) -> None:
    """The recorder process of the crash test: offer on stdout, answer on stdin, record forever."""
    async def main() -> None:
        session = RecordingSession(Path(directory), recording_id="3", session_id="s", room_id="r",
                                   options=LiveOptions(cluster_ms=500))
        session.start()
        pc = recorder_pc()
        session.attach("parent", pc)
        await pc.setLocalDescription(await pc.createOffer())
        print(json.dumps({"sdp": pc.localDescription.sdp}), flush=True)
        line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        await pc.setRemoteDescription(RTCSessionDescription(json.loads(line)["sdp"], "answer"))
        await asyncio.sleep(120)  # until SIGKILL
    asyncio.run(main())


async def test_files_survive_sigkill_of_the_recorder(tmp_path):
    """A recorder process killed with SIGKILL ~2 s into a call leaves track files that decode
    (from a keyframe) up to at most ~1 s before the kill, and an events.jsonl whose every line
    is valid JSON, without track_ended or recording_stopped."""
    directory, child_log = tmp_path / "rec-3", tmp_path / "child.log"
    snd = sender_pc(PatternVideoTrack(320, 240, FPS))
    with child_log.open("wb") as stderr:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.worker.live.test_session", "crash-child", str(directory),
            cwd=REPO, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=stderr)
    try:
        offer = json.loads(await asyncio.wait_for(child.stdout.readline(), 20))
        await snd.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await snd.setLocalDescription(await snd.createAnswer())
        child.stdin.write(json.dumps({"sdp": snd.localDescription.sdp}).encode() + b"\n")
        await child.stdin.drain()

        def tracks_started() -> int:
            path = directory / "events.jsonl"
            return path.exists() and path.read_text().count('"track_started"')
        try:
            await wait_for(lambda: tracks_started() == 2, 15, "both tracks to start in the child")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; child log:\n{child_log.read_text()[-3000:]}") from None
        await asyncio.sleep(2.0)
        killed_at = time.time()
        child.send_signal(signal.SIGKILL)
        await asyncio.wait_for(child.wait(), 5)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        await snd.close()

    assert child.returncode == -signal.SIGKILL
    events = read_events(directory)  # every line parses
    types = [e["type"] for e in events]
    assert types[0] == "recording_started" and types.count("track_started") == 2
    assert "track_ended" not in types and "recording_stopped" not in types
    started = {e["track"]: e["t"] for e in events if e["type"] == "track_started"}
    for name, t in started.items():
        got = decode(directory / "tracks" / f"{name}.mkv", tolerate_truncation=True)
        assert got["frames"], name
        last = got["frames"][-1][0]
        recorded = killed_at - t
        assert recorded >= 1.9 and last >= recorded - 1.0, (name, last, recorded)
        assert_monotonic([f[0] for f in got["frames"]])
        if name.startswith("parent-video"):
            assert got["frames"][0][1] and {(f[2], f[3]) for f in got["frames"]} == {(320, 240)}


if __name__ == "__main__" and sys.argv[1:2] == ["crash-child"]:
    _crash_child(sys.argv[2])
