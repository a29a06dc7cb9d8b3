"""Everything in order (media_worker/post/run.py): manifest.json, and every output from a
recording shaped by a crash."""
from __future__ import annotations

import json

import av
import pytest

from media_worker.post import run
from media_worker.post.composite import EncodeSettings, compose
from media_worker.post.manifest import load_manifest
from media_worker.post.timeline import build_timeline
from tests.mediapattern import RecordingDir, decode_audio_mono, truncate_file
from tests.worker.post.helpers import by_kind, decode_video, parse_vtt


def test_manifest_json_lists_tracks_and_outputs(class_recording):
    """manifest.json has the events, each track's offset, and the other outputs."""
    path, assets, _ = class_recording
    doc = json.loads((path / "out" / "manifest.json").read_text())
    offsets = {t["track"]: t["offset_s"] for t in doc["tracks"]}
    assert offsets["pB-video-0"] == pytest.approx(2.37, abs=1e-3)
    assert doc["duration_s"] == 8.0 and doc["stopped"] is True
    assert [o["file"] for o in doc["outputs"]] == [a["file"] for a in assets[:-1]]
    assert len(doc["events"]) == len((path / "events.jsonl").read_text().splitlines())


def test_crash_shaped_recording_still_produces_valid_outputs(tmp_path):
    """A truncated track file, a truncated last event line and no track_ended or
    recording_stopped lines: outputs are complete up to the last frame."""
    rec = RecordingDir(tmp_path / "rec-crash")
    rec.join(0.0, "pA", "u1", "Alice")
    rec.video_track("pA", 0, "vp8", 0.2, 6.0, ended=False)
    rec.audio_track("pA", 0, 0.2, 6.0, ended=False)
    rec.join(0.5, "pB", "u2", "Bob")
    rec.video_track("pB", 0, "h264", 1.0, 6.0, ended=False)
    rec.chat(5.0, 1, "u2", "Bob", "still here")
    rec.chat(5.9, 2, "u2", "Bob", "this line is cut by the crash")
    path = rec.write(truncate_last_line=True)
    truncate_file(path / "tracks/pB-video-0.mkv", 0.6)

    assets = run(path, None)
    assert load_manifest(path).skipped_lines == 1
    kinds = by_kind(assets)
    composite = path / "out" / kinds["composite"][0]["file"]
    frames = decode_video(composite)
    assert abs(len(frames) / 30 - 6.0) <= 0.05 * 6.0
    samples, _ = decode_audio_mono(composite)
    assert abs(len(samples) / 48000 - 6.0) <= 0.05 * 6.0
    for a in kinds["participant"]:
        with av.open(str(path / "out" / a["file"])) as c:
            decoded = {s.index: 0 for s in c.streams}
            for pkt in c.demux():
                decoded[pkt.stream.index] += len(pkt.decode())
        assert all(decoded.values()), (a["file"], decoded)
    cues = parse_vtt((path / "out" / "chat.vtt").read_text())
    assert [c["voices"] for c in cues] == [[("Bob", "still here")]]
    with av.open(str(path / "out" / "thumbnail.jpg")) as c:
        next(c.decode(video=0))


def test_the_class_video_is_sized_from_what_cameras_usually_send(tmp_path):
    """Three cameras that start at 1280x720 for half a second and settle on 640x480 make a
    1280x960 class video (2x2 cells of 640x480), not 1920x1080 from their first frames."""
    rec = RecordingDir(tmp_path / "rec-sizes")
    for i, peer in enumerate(("pA", "pB", "pC")):
        rec.join(0.0, peer, f"u{i}", f"User {i}")
        rec.video_track(peer, 0, "vp8", 0.1, 3.0, sizes=[(0.0, 1280, 720), (0.6, 640, 480)], fps=5)
    rec.stop(3.0)
    path = rec.write()
    grid, _, _ = compose(build_timeline(path, load_manifest(path)), EncodeSettings())
    assert (grid.width, grid.height) == (1280, 960)
