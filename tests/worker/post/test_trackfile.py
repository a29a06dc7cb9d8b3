"""Reading a track file as the live path writes it (media_worker/post/trackfile.py): the probe
reads keyframe sizes from the bitstream (VP8 header, the SPS of a length-prefixed H.264 sample)
and ``packets(from_s=…)`` starts at the keyframe before a time by seeking, in a file still
being written (no index yet) as in a finished one — so what a live segment reads does not grow
with the class's length."""
from __future__ import annotations

import time

import pytest

from media_worker.bitstreams import h264
from media_worker.live import disk
from media_worker.live.matroska import MatroskaTrackFile
from media_worker.post.trackfile import open_track, packets, probe_track
from tests.worker.live.helpers import FPS, encoded_video

STEP = 90000 // FPS


def write_track(path, codec: str, sizes, frames_each: int, gop: int, close: bool = True):
    """Keyframes every ``gop`` frames, ``frames_each`` frames at each (width, height) in turn."""
    out = MatroskaTrackFile(path, codec, width=sizes[0][0], height=sizes[0][1], cluster_ms=200)
    k = 0
    for w, h in sizes:
        for data, key in encoded_video(codec, w, h, frames_each, gop=gop):
            out.write(data, k * STEP, key)
            k += 1
    if close:
        out.close().result(10)
    return out, k


@pytest.mark.parametrize("codec", ["vp8", "h264"])
def test_the_probe_reads_every_size_from_the_keyframes(tmp_path, codec):
    path = tmp_path / f"{codec}.mkv"
    write_track(path, codec, [(320, 240), (640, 360)], frames_each=2 * FPS, gop=FPS)
    probe = probe_track(path, "video")
    assert probe.packets == 4 * FPS and probe.codec == codec
    assert probe.sizes == {(320, 240), (640, 360)}
    assert [(round(t, 3), w, h) for t, w, h in probe.size_changes] == [(0.0, 320, 240), (2.0, 640, 360)]
    if codec == "h264":  # stored as length-prefixed samples (Matroska), SPS in band
        container = open_track(path)
        with container:
            key = next(p for p in packets(container, path) if p.is_keyframe)
            assert h264.length_prefixed_units(bytes(key)) is not None
            assert h264.sample_size(bytes(key)) == (320, 240)


@pytest.mark.parametrize("finished", [True, False])
def test_packets_from_a_time_start_at_the_keyframe_before_it(tmp_path, finished):
    path = tmp_path / "v.mkv"
    out, n = write_track(path, "vp8", [(320, 240)], frames_each=6 * FPS, gop=FPS, close=finished)
    while disk.queued_bytes():  # what the muxer handed over is on disk (the file stays open)
        time.sleep(0.01)
    try:
        def read(from_s=None):
            container = open_track(path)
            with container:
                tb = container.streams[0].time_base
                return [(float(p.pts * tb), p.is_keyframe) for p in packets(container, path, from_s=from_s)]

        everything = read()
        assert len(everything) >= 5 * FPS
        for from_s in (0.0, 2.5, 4.0, 4.99):
            got = read(from_s)
            start = max(i for i, (t, key) in enumerate(everything) if key and t <= from_s)
            assert got == everything[start:], from_s
            assert got[0] == (float(int(from_s)), True)
        # Past the end of what is written: from its last keyframe.
        last_key = max(i for i, (_, key) in enumerate(everything) if key)
        assert read(999.0) == everything[last_key:]
    finally:
        if not finished:
            out.close().result(10)


def test_a_length_prefixed_sample_that_does_not_add_up_is_not_one():
    assert h264.length_prefixed_units(b"\x00\x00\x00\x05abc") is None
    assert h264.length_prefixed_units(b"\x00\x00\x00\x02ab\x00\x00\x00\x01c") == [b"ab", b"c"]
    annex_b = encoded_video("h264", 320, 240, 1)[0][0]
    assert h264.length_prefixed_units(annex_b) is None and h264.sample_size(annex_b) == (320, 240)
