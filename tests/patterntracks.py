"""aiortc tracks that send the synchronised test pattern of tests/mediapattern.py in real time:
a white flash on video at the same wall-clock instant as a 1 kHz beep on audio, once a second
(shifted by ``phase``, which must be a whole number of video frames and audio packets, e.g.
0.4 s at 15 fps), so a recording's audio-to-video offset can be measured from its output.

Both tracks take their content from the wall clock (``time.time()``), not from when they
started, so two tracks of one sender agree however their first frames are timed."""
from __future__ import annotations

import asyncio
import fractions
import math
import time

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from tests.mediapattern import AUDIO_RATE, VIDEO_CLOCK, audio_frame_at, video_frame_at

AUDIO_SAMPLES = 960  # 20 ms


class _Paced(MediaStreamTrack):
    def __init__(self, period: float):
        super().__init__()
        self.period = period
        self._n = 0
        self._start: float | None = None

    async def _next_time(self) -> float:
        """Wall-clock time of the next frame, sleeping until it is due."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            # On the pattern's grid (a whole number of periods since the epoch), so the frame
            # that shows a flash starts exactly at the beep's instant instead of up to one
            # frame period before it.
            self._start = math.ceil(time.time() / self.period) * self.period
        due = self._start + self._n * self.period
        wait = due - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        self._n += 1
        return due


class PatternVideo(_Paced):
    kind = "video"

    def __init__(self, width: int = 320, height: int = 240, fps: int = 15, phase: float = 0.0):
        super().__init__(1 / fps)
        self.width, self.height, self.fps, self.phase = width, height, fps, phase

    async def recv(self):
        t = await self._next_time()
        frame = video_frame_at(t, self.width, self.height, self.fps, self.phase)
        frame.pts = (self._n - 1) * VIDEO_CLOCK // self.fps
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        return frame


class PatternAudio(_Paced):
    kind = "audio"

    def __init__(self, phase: float = 0.0):
        super().__init__(AUDIO_SAMPLES / AUDIO_RATE)
        self.phase = phase

    async def recv(self):
        t = await self._next_time()
        frame = audio_frame_at(t, AUDIO_SAMPLES, AUDIO_RATE, self.phase)
        frame.pts = (self._n - 1) * AUDIO_SAMPLES
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        return frame


def pattern_tracks(phase: float = 0.0, width: int = 320, height: int = 240, fps: int = 15):
    """A factory for ``RtcPeer(tracks=...)``: fresh video and audio pattern tracks per link."""
    return lambda: (PatternVideo(width, height, fps, phase), PatternAudio(phase))
