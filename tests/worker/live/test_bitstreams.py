"""The bitstream readers (media_worker/bitstreams/vp8.py, h264.py, opus.py): keyframes and picture
sizes from the bytes alone, Opus packet durations from the TOC."""
from __future__ import annotations

from media_worker.bitstreams import h264, opus, vp8
from tests.worker.live.helpers import encoded_video


def test_bitstream_parsers_find_keyframes_and_sizes():
    """VP8 and H.264 keyframes are recognised from the bytes alone (as PyAV's encoders mark
    them) and their picture size is read from the VP8 header / the H.264 SPS, cropping
    included; a keyframe that lost its head gives no size (so no writer starts from it). Opus
    packet durations come from the TOC."""
    for w, h in [(320, 240), (640, 360), (1280, 720), (322, 182)]:
        for codec, mod in (("vp8", vp8), ("h264", h264)):
            pk = encoded_video(codec, w, h, 3)
            assert [mod.is_keyframe(d) for d, _ in pk] == [k for _, k in pk] == [True, False, False]
            assert mod.keyframe_size(pk[0][0]) == (w, h)
            assert mod.keyframe_size(pk[1][0]) is None
            truncated = pk[0][0][len(pk[0][0]) // 2:]  # lost its first packets
            assert mod.keyframe_size(truncated) is None  # so the writer cannot start from it
    assert not vp8.is_keyframe(encoded_video("vp8", 320, 240, 1)[0][0][7:])
    assert h264.nal_types(encoded_video("h264", 320, 240, 1)[0][0])[:2] == [h264.NAL_SPS, h264.NAL_PPS]
    assert opus.packet_samples(bytes([31 << 3])) == 960  # CELT FB 20 ms
    assert opus.packet_samples(bytes([(0 << 3) | 1, 0])) == 960  # SILK NB 2 x 10 ms
    assert opus.packet_samples(bytes([(19 << 3) | 3, 3])) == 2880  # CELT NB 3 x 20 ms
    assert opus.packet_samples(b"") == 0
