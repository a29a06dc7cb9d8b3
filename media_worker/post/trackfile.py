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


def packets(container: av.container.InputContainer, path: Path) -> Iterator[av.Packet]:
    """The packets of the container's first stream with a timestamp and data, in file order,
    stopping quietly (logged) at a damaged or truncated tail."""
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


def probe_track(path: Path, kind: str) -> TrackProbe:
    """Count packets and find the last timestamp; for video also every frame size, by decoding
    keyframes only (a WebRTC resolution change always starts at a keyframe)."""
    probe = TrackProbe()
    container = open_track(path)
    if container is None:
        probe.error = "unreadable"
        return probe
    with container:
        stream = container.streams[0]
        probe.codec = stream.codec_context.name if stream.codec_context else None
        tb = stream.time_base
        video = kind == "video" and stream.type == "video"
        if video:
            stream.codec_context.skip_frame = "NONKEY"
            if stream.codec_context.width and stream.codec_context.height:
                probe.sizes.add((stream.codec_context.width, stream.codec_context.height))
        for pkt in packets(container, path):
            probe.packets += 1
            start = float(pkt.pts * tb)
            probe.last_s = start
            probe.end_s = max(probe.end_s or 0.0, start + float((pkt.duration or 0) * tb))
            if video:
                for frame in decode(stream, pkt, path):
                    _saw_size(probe, start, frame)
        if video:
            for frame in decode(stream, None, path):
                _saw_size(probe, probe.last_s or 0.0, frame)
    return probe


def _saw_size(probe: TrackProbe, at: float, frame: av.VideoFrame) -> None:
    size = (frame.width, frame.height)
    probe.sizes.add(size)
    if not probe.size_changes or probe.size_changes[-1][1:] != size:
        t = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else at
        probe.size_changes.append((t, *size))
