"""Audio: decode each Opus track onto the recording clock and mix them.

``AudioTrackReader.read(start, n)`` returns exactly ``n`` samples (48 kHz, packed float
stereo) of the track at recording-clock sample ``start``, silence where the track has nothing
(before it starts, in gaps, after it ends). Decoded frames are placed by their timestamps;
jitter under ``SNAP_S`` is absorbed so consecutive frames stay contiguous, larger gaps become
silence and overlaps are trimmed. ``Mixer`` sums the tracks in an FFmpeg filter graph
(``amix`` without normalisation, then ``alimiter`` with latency compensation so a loud sum
never clips and nothing shifts in time).
"""
from __future__ import annotations

import fractions
import logging
from collections.abc import Callable, Iterator

import av
import av.error

from media_worker.post.timeline import TrackInfo
from media_worker.post.trackfile import decode, open_track, packets

log = logging.getLogger("podium.worker.post")

RATE = 48000
BYTES_PER_SAMPLE = 8  # float32 stereo, packed
SNAP_S = 0.02
TIME_BASE = fractions.Fraction(1, RATE)


class AudioTrackReader:
    def __init__(self, info: TrackInfo):
        self.info = info
        self._gen: Iterator[tuple[int, bytes]] | None = None
        self._pending: tuple[int, bytes] | None = None  # (start sample, data) not yet used up
        self._cursor: int | None = None  # where the previous chunk ended
        self._done = False
        # Live segments (``segments.py``): packets ending before this recording-clock time
        # are not decoded (the segment's mix starts a pre-roll later).
        self.decode_from: float | None = None

    def _decoded(self) -> Iterator[tuple[int, bytes]]:
        """(recording-clock sample, packed float stereo bytes) per decoded frame."""
        container = open_track(self.info.path)
        if container is None:
            return
        with container:
            stream = container.streams[0]
            tb = stream.time_base
            resampler = av.AudioResampler(format="flt", layout="stereo", rate=RATE)
            offset = round(self.info.start_s * RATE)
            in_rate = None

            def out(frames, pts_s):
                for rf in frames:
                    yield pts_s, bytes(rf.planes[0])[:rf.samples * BYTES_PER_SAMPLE]
                    pts_s = None  # following frames of one input frame are contiguous

            skip = None if self.decode_from is None else self.decode_from - self.info.start_s
            for pkt in packets(container, self.info.path, from_s=skip):
                if skip is not None:
                    if float((pkt.pts + (pkt.duration or 0)) * tb) < skip:
                        continue
                    skip = None
                for frame in decode(stream, pkt, self.info.path):
                    if in_rate is not None and frame.sample_rate != in_rate:
                        resampler = av.AudioResampler(format="flt", layout="stereo", rate=RATE)
                    in_rate = frame.sample_rate
                    at = offset + round(float(frame.pts * tb) * RATE) if frame.pts is not None else None
                    frame.pts = None  # the resampler must not second-guess our placement
                    yield from out(resampler.resample(frame), at)
            for frame in decode(stream, None, self.info.path):
                frame.pts = None
                yield from out(resampler.resample(frame), None)
            yield from out(resampler.resample(None), None)

    def _next_chunk(self) -> tuple[int, bytes] | None:
        if self._done:
            return None
        if self._gen is None:
            self._gen = self._decoded()
        for at, data in self._gen:
            if not data:
                continue
            if at is None:
                at = self._cursor if self._cursor is not None else round(self.info.start_s * RATE)
            elif self._cursor is not None:
                if abs(at - self._cursor) <= SNAP_S * RATE:
                    at = self._cursor  # timestamp jitter: keep the samples contiguous
                elif at < self._cursor:  # overlap: drop what was already played
                    cut = (self._cursor - at) * BYTES_PER_SAMPLE
                    if cut >= len(data):
                        continue
                    data, at = data[cut:], self._cursor
            self._cursor = at + len(data) // BYTES_PER_SAMPLE
            return at, data
        self._done = True
        self._gen = None
        return None

    def read(self, start: int, n: int) -> bytes:
        """Samples ``[start, start + n)`` of the recording clock; calls must move forward."""
        out = bytearray(n * BYTES_PER_SAMPLE)
        end = start + n
        while True:
            chunk = self._pending or self._next_chunk()
            self._pending = None
            if chunk is None:
                break
            at, data = chunk
            if at >= end:
                self._pending = chunk
                break
            count = len(data) // BYTES_PER_SAMPLE
            lo, hi = max(at, start), min(at + count, end)
            if hi > lo:
                out[(lo - start) * BYTES_PER_SAMPLE:(hi - start) * BYTES_PER_SAMPLE] = \
                    data[(lo - at) * BYTES_PER_SAMPLE:(hi - at) * BYTES_PER_SAMPLE]
            if at + count > end:
                self._pending = chunk
                break
        return bytes(out)


def _frame(data: bytes, n: int, pts: int) -> av.AudioFrame:
    frame = av.AudioFrame(format="flt", layout="stereo", samples=n)
    frame.planes[0].update(data)
    frame.sample_rate = RATE
    frame.pts = pts
    frame.time_base = TIME_BASE
    return frame


class Mixer:
    """Sum of every reader, as fltp stereo frames on the recording clock."""

    def __init__(self, readers: list[AudioTrackReader], limit: float = 0.95,
                 on_read: Callable[[int, int, bytes], None] | None = None):
        """``on_read(i, start, samples)`` sees each chunk of reader ``i`` before it is mixed
        (the speaker levels are measured there, without decoding twice)."""
        self.readers = readers
        self._on_read = on_read
        self._sources = []
        if not readers:
            return
        graph = av.filter.Graph()
        self._sources = [graph.add_abuffer(sample_rate=RATE, format="flt", layout="stereo",
                                           time_base=TIME_BASE) for _ in readers]
        mix = graph.add("amix", f"inputs={len(readers)}:normalize=0:duration=longest:"
                                "dropout_transition=0")
        limiter = graph.add("alimiter", f"limit={limit}:level=0:latency=1")
        fmt = graph.add("aformat", "sample_fmts=fltp:channel_layouts=stereo")
        self._sink = graph.add("abuffersink")
        for i, src in enumerate(self._sources):
            src.link_to(mix, 0, i)
        mix.link_to(limiter)
        limiter.link_to(fmt)
        fmt.link_to(self._sink)
        graph.configure()
        self._graph = graph

    def _drain(self) -> list[av.AudioFrame]:
        frames = []
        while True:
            try:
                frames.append(self._sink.pull())
            except (av.error.BlockingIOError, av.error.EOFError):
                return frames

    def mix(self, start: int, n: int) -> list[av.AudioFrame]:
        """The mix of samples ``[start, start + n)``; output may lag input by the limiter's
        look-ahead, which ``flush`` returns at the end."""
        if not self.readers:
            silent = _frame(bytes(n * BYTES_PER_SAMPLE), n, start)
            return [silent]
        for i, (reader, src) in enumerate(zip(self.readers, self._sources)):
            data = reader.read(start, n)
            if self._on_read is not None:
                self._on_read(i, start, data)
            src.push(_frame(data, n, start))
        return self._drain()

    def flush(self) -> list[av.AudioFrame]:
        if not self.readers:
            return []
        for src in self._sources:
            src.push(None)
        return self._drain()
