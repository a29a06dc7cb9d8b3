"""Decoding video tracks in recording-clock order, holding the last frame.

``VideoTrackReader.advance(t)`` decodes forward until the next frame would be later than
``t`` and returns the latest frame at or before ``t``: with a fixed output rate, each output
frame shows, per track, the newest decoded picture (frames are repeated or skipped as the
input rate differs). The file is opened only when the track is about to start, and closed at
its end.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator

import av

from media_worker.post.timeline import TrackInfo
from media_worker.post.trackfile import decode, open_track, packets

log = logging.getLogger("podium.worker.post")

OPEN_AHEAD_S = 1.0
# Matroska stores milliseconds and wall-clock offsets carry float noise: a frame this close
# after an output instant counts as "at" it.
TOLERANCE_S = 0.001


class VideoTrackReader:
    def __init__(self, info: TrackInfo):
        self.info = info
        self.current: tuple[float, av.VideoFrame] | None = None
        self.serial = 0  # counts frames taken, so a caller can tell "same picture as before"
        self._gen: Iterator[tuple[float, av.VideoFrame]] | None = None
        self._next: tuple[float, av.VideoFrame] | None = None
        self.exhausted = False
        # Live segments (``segments.py``): packets before this recording-clock time are not
        # decoded; set it to a keyframe's time so decoding starts there.
        self.decode_from: float | None = None

    def _frames(self) -> Iterator[tuple[float, av.VideoFrame]]:
        container = open_track(self.info.path)
        if container is None:
            return
        with container:
            stream = container.streams[0]
            stream.codec_context.thread_type = "AUTO"
            offset, last = self.info.start_s, None
            tb = stream.time_base

            def timed(frames):
                nonlocal last
                for f in frames:
                    t = offset + float(f.pts * tb) if f.pts is not None else None
                    if t is None or (last is not None and t < last):
                        t = last if last is not None else offset  # keep the clock monotonic
                    last = t
                    yield t, f

            skip = None if self.decode_from is None else self.decode_from - offset - TOLERANCE_S
            for pkt in packets(container, self.info.path, from_s=skip):
                if skip is not None:
                    if float(pkt.pts * tb) < skip:
                        continue
                    skip = None
                yield from timed(decode(stream, pkt, self.info.path))
            yield from timed(decode(stream, None, self.info.path))

    def advance(self, t: float) -> tuple[float, av.VideoFrame] | None:
        """The latest frame (recording time, frame) at or before ``t``; None before the first."""
        if self.exhausted and self._next is None:
            return self.current
        if self._gen is None:
            if t < self.info.start_s - OPEN_AHEAD_S:
                return None
            self._gen = self._frames()
            self._next = next(self._gen, None)
        while self._next is not None and self._next[0] <= t + TOLERANCE_S:
            self.current = self._next
            self.serial += 1
            self._next = next(self._gen, None)
        if self._next is None and not self.exhausted:
            self.exhausted = True
            self._gen = None  # closes the container (generator finalised)
        return self.current
