"""Per-participant files (media_worker/post/remux.py): packets copied, placed on the recording
clock."""
from __future__ import annotations

import av


def test_participant_files_decode_on_the_recording_clock(class_recording):
    """Each participant file holds their video and audio, copied frame for frame and placed
    at their track offsets."""
    path, _, _ = class_recording
    for user, codec, offset in (("u1", "vp8", 0.2), ("u2", "h264", 2.37)):
        with av.open(str(path / "out" / f"participant-{user}-0.mkv")) as c:
            v, a = c.streams.video[0], c.streams.audio[0]
            assert (v.codec_context.name, a.codec_context.name) == (codec, "opus")
            times = [float(f.time) for f in c.decode(v)]
        with av.open(str(path / "tracks" / f"p{'A' if user == 'u1' else 'B'}-video-0.mkv")) as src:
            src_frames = sum(1 for _ in src.decode(video=0))
        assert len(times) == src_frames
        assert abs(times[0] - offset) < 0.002
        with av.open(str(path / "out" / f"participant-{user}-0.mkv")) as c:
            assert sum(f.samples for f in c.decode(audio=0)) / 48000 > (8.0 - offset) * 0.95
