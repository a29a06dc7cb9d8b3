"""Reading one track file (``tracks/<track>.mkv``) safely.

A track file may be empty, hold only a header, or end in a truncated cluster after a crash.
These helpers turn all of that into "fewer packets": they never raise for a damaged file, they
log what they stopped at. Packet times are in seconds of the track's own clock (``pts = 0`` is
the first frame); add ``Track.offset_s`` for the recording clock.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import av.error

from media_worker.bitstreams import h264, vp8

log = logging.getLogger("podium.worker.post")


@dataclass
class TrackProbe:
    """What one pass over a track's packets found (demux only, plus keyframe decodes for video
    sizes)."""

    packets: int = 0
    last_s: float | None = None  # start of the last packet
    end_s: float | None = None  # end of the last packet (start + duration)
    sizes: set[tuple[int, int]] = field(default_factory=set)
    # (track time, width, height) at every keyframe whose size differs from the previous one
    size_changes: list[tuple[float, int, int]] = field(default_factory=list)
    codec: str | None = None
    error: str | None = None  # why reading stopped early, if it did


def open_track(path: Path) -> av.container.InputContainer | None:
    """The opened container, or None (logged) if the file is missing, empty or unreadable."""
    try:
        container = av.open(str(path), "r")
    except (FileNotFoundError, av.error.FFmpegError) as exc:
        log.warning("track %s unreadable: %s", path, exc)
        return None
    if not container.streams or container.streams[0].codec_context is None:
        container.close()
        log.warning("track %s has no decodable stream", path)
        return None
    return container


def packets(container: av.container.InputContainer, path: Path,
            from_s: float | None = None) -> Iterator[av.Packet]:
    """The packets of the container's first stream with a timestamp and data, in file order,
    stopping quietly (logged) at a damaged or truncated tail. With ``from_s`` (track time) they
    start at the keyframe at or before it, found by the demuxer's seek (Matroska without an
    index yet, a file still being written, is scanned cluster by cluster in C: a class's hour
    in a fraction of a second, against seconds of Python per packet); where the seek fails
    they start at the beginning."""
    stream = container.streams[0]
    if from_s is not None and from_s > 0:
        try:
            container.seek(int(from_s / stream.time_base), stream=stream, backward=True, any_frame=False)
            after_seek = _demux(container, path)
            first = next(after_seek, None)
        except (av.error.FFmpegError, OverflowError, ValueError) as exc:
            log.info("track %s: no seek to %.3f s (%s): reading from the start", path, from_s, exc)
            first = None
        if first is not None and float(first.pts * stream.time_base) <= from_s:
            yield first
            yield from after_seek
            return
        # the seek failed or went past the time asked for: from the start
        container.seek(0, stream=stream, backward=True)
    yield from _demux(container, path)


def _demux(container: av.container.InputContainer, path: Path) -> Iterator[av.Packet]:
    stream = container.streams[0]
    try:
        for pkt in container.demux(stream):
            if pkt.size == 0 or pkt.pts is None:
                continue  # the demuxer's end-of-stream marker, or a block with no time
            yield pkt
    except av.error.FFmpegError as exc:
        log.warning("track %s: stopped reading at a damaged tail: %s", path, exc)


_LOGGED_ERRORS = 3
_decode_errors: dict[Path, int] = {}


def decode(stream: av.stream.Stream, pkt: av.Packet | None, path: Path) -> list[av.frame.Frame]:
    """Decode one packet (None flushes); a corrupt packet yields no frame, so one bad frame
    never ends a track. The first few errors per file are logged, then a note that more were
    suppressed."""
    try:
        return stream.codec_context.decode(pkt)
    except av.error.FFmpegError as exc:
        count = _decode_errors[path] = _decode_errors.get(path, 0) + 1
        if count <= _LOGGED_ERRORS:
            log.warning("track %s: dropped an undecodable packet: %s", path, exc)
        if count == _LOGGED_ERRORS:
            log.warning("track %s: further decode errors are not logged", path)
        return []


_KEYFRAME_SIZE = {"vp8": vp8.keyframe_size, "h264": h264.sample_size}


def probe_track(path: Path, kind: str) -> TrackProbe:
    """Count packets and find the last timestamp; for video also every frame size, from the
    keyframes only (a WebRTC resolution change always starts at a keyframe): read from the
    keyframe's header (VP8) or SPS (H.264, Annex B) where it can be, else by decoding it."""
    probe = TrackProbe()
    container = open_track(path)
    if container is None:
        probe.error = "unreadable"
        return probe
    with container:
        stream = container.streams[0]
        probe.codec = stream.codec_context.name if stream.codec_context else None
        tb = float(stream.time_base)  # (a Fraction multiplied per packet cost more than the demuxing)
        video = kind == "video" and stream.type == "video"
        parse = _KEYFRAME_SIZE.get(probe.codec or "")
        if video:
            stream.codec_context.skip_frame = "NONKEY"
            if stream.codec_context.width and stream.codec_context.height:
                probe.sizes.add((stream.codec_context.width, stream.codec_context.height))
        for pkt in packets(container, path):
            probe.packets += 1
            start = pkt.pts * tb
            probe.last_s = start
            probe.end_s = max(probe.end_s or 0.0, start + (pkt.duration or 0) * tb)
            if video and pkt.is_keyframe:
                size = parse(bytes(pkt)) if parse is not None else None
                if size is not None:
                    _saw_size(probe, start, *size)
                    continue
                for frame in decode(stream, pkt, path):
                    _saw_frame(probe, start, frame)
        if video:
            for frame in decode(stream, None, path):
                _saw_frame(probe, probe.last_s or 0.0, frame)
            if probe.packets and not probe.size_changes:  # no packet flagged as a keyframe
                container.seek(0, stream=stream, backward=True)
                for pkt in packets(container, path):
                    for frame in decode(stream, pkt, path):
                        _saw_frame(probe, pkt.pts * tb, frame)
    return probe


def _saw_frame(probe: TrackProbe, at: float, frame: av.VideoFrame) -> None:
    t = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else at
    _saw_size(probe, t, frame.width, frame.height)


def _saw_size(probe: TrackProbe, t: float, width: int, height: int) -> None:
    probe.sizes.add((width, height))
    if not probe.size_changes or probe.size_changes[-1][1:] != (width, height):
        probe.size_changes.append((t, width, height))
