"""The encoded-frame tap (media_worker/live/passthrough.py): the private aiortc API it relies on
is pinned, and only the receivers it taps stop decoding."""
from __future__ import annotations

import asyncio
import itertools

import av
import pytest
from aiortc import MediaStreamTrack

from media_worker.bitstreams import vp8
from media_worker.live import EncodedFrame, install_passthrough
from media_worker.live.passthrough import PINNED_AIORTC, aiortc_internals_problems
from tests.rtcpeer import VIDEO_CLOCK, PatternVideoTrack
from tests.worker.live.helpers import FPS, close_all, negotiate, recorder_pc, sender_pc, wait_for

pytestmark = pytest.mark.timeout(60)


def test_aiortc_internals_still_match_the_passthrough():
    """The private aiortc API the passthrough patches (decoder queue, PLI method, track queue)
    is exactly what aiortc 1.16 has: an aiortc upgrade fails here, loudly, first."""
    import aiortc
    assert aiortc.__version__ == PINNED_AIORTC
    assert aiortc_internals_problems() == []


async def test_passthrough_is_per_receiver():
    """Only tapped receivers yield encoded frames: on one connection the tapped video receiver
    yields EncodedFrames (a VP8 keyframe first) while the untapped audio receiver still decodes
    to av.AudioFrame, so decoding peers in the same process are unaffected."""
    rec, snd = recorder_pc(), sender_pc(PatternVideoTrack(320, 240, FPS))
    got: dict[str, list] = {"video": [], "audio": []}

    async def read(track: MediaStreamTrack) -> None:
        while len(got[track.kind]) < 10:
            got[track.kind].append(await track.recv())

    tasks = []

    @rec.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        receiver = next(t.receiver for t in rec.getTransceivers() if t.receiver.track is track)
        if track.kind == "video":
            install_passthrough(receiver)
        tasks.append(asyncio.ensure_future(read(track)))

    try:
        await negotiate(rec, snd)
        await wait_for(lambda: len(tasks) == 2, 5, "both tracks")
        await asyncio.wait_for(asyncio.gather(*tasks), 15)
    finally:
        await close_all(rec, snd)
    video, audio = got["video"], got["audio"]
    assert all(isinstance(f, EncodedFrame) and f.codec == "vp8" for f in video)
    assert video[0].keyframe and vp8.keyframe_size(video[0].data) == (320, 240)
    steps = [b.timestamp - a.timestamp for a, b in itertools.pairwise(video)]
    assert all(abs(d - VIDEO_CLOCK // FPS) <= 1 for d in steps), steps  # RTP time, rounded
    assert all(isinstance(f, av.AudioFrame) for f in audio)
