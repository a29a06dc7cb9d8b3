"""Per-participant files: each participant's encoded tracks copied, not re-encoded, into
``participant-<user id>-<n>.mkv``.

``n`` counts the participant's connections (peers) in join order, from 0: a leave and rejoin
gives a second file. Inside one file, consecutive tracks of the same kind and codec parameters
(a camera turned off and on) continue one stream; tracks that overlap or differ become separate
streams. Timestamps are on the recording clock (``track offset + pts``), so the files line up
with ``class.mp4`` and with each other; a participant who joined at 5:00 has a file starting at
5:00.
"""
from __future__ import annotations

import heapq
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import av.error

from media_worker.post.timeline import Participant, Timeline, TrackInfo
from media_worker.post.trackfile import open_track, packets

log = logging.getLogger("podium.worker.post")

CHAIN_GAP_S = 0.05


@dataclass
class ParticipantFile:
    path: Path
    user_id: str
    n: int
    start_s: float
    end_s: float
    has_video: bool
    tracks: list[str]

    @property
    def duration_s(self) -> float:
        return max(0.0, self.end_s - self.start_s)


def safe_name(text: str) -> str:
    """``text`` usable in a file name: letters, digits, ``_`` and ``-`` only."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)[:64] or "_"


@dataclass
class _Chain:
    kind: str
    signature: tuple
    end_s: float
    template: av.stream.Stream
    tracks: list[TrackInfo] = field(default_factory=list)
    out: av.stream.Stream | None = None
    last_dts: int | None = None


def _signature(stream: av.stream.Stream) -> tuple:
    cc = stream.codec_context
    extra = bytes(cc.extradata) if cc.extradata else b""
    if stream.type == "audio":
        return (stream.type, cc.name, extra, cc.sample_rate, cc.channels)
    return (stream.type, cc.name, extra)


def _stints(part: Participant) -> list[list[TrackInfo]]:
    """The participant's tracks grouped by peer, peers in order of their first track."""
    by_peer: dict[str, list[TrackInfo]] = {}
    for info in sorted(part.tracks, key=lambda i: i.start_s):
        by_peer.setdefault(info.track.peer_id, []).append(info)
    return list(by_peer.values())


def _timed(info: TrackInfo, container, chain: _Chain, order: int) -> Iterator[tuple]:
    tb = container.streams[0].time_base
    for i, pkt in enumerate(packets(container, info.path)):
        yield (info.start_s + float(pkt.pts * tb), order, i, pkt, chain, info)


def _write(stint: list[TrackInfo], path: Path, title: str) -> ParticipantFile | None:
    containers = []
    chains: list[_Chain] = []
    sources = []
    try:
        for info in stint:
            container = open_track(info.path)
            if container is None:
                continue
            containers.append(container)
            stream = container.streams[0]
            sig = _signature(stream)
            chain = next((c for c in chains if c.signature == sig
                          and info.start_s >= c.end_s - CHAIN_GAP_S), None)
            if chain is None:
                chain = _Chain(stream.type, sig, info.end_s, stream)
                chains.append(chain)
            chain.tracks.append(info)
            chain.end_s = max(chain.end_s, info.end_s)
            sources.append(_timed(info, container, chain, len(sources)))
        if not chains:
            return None
        with av.open(str(path), "w", format="matroska") as output:
            output.metadata["title"] = title
            for chain in chains:
                chain.out = output.add_stream_from_template(chain.template)
                chain.out.metadata["title"] = ",".join(t.track.name for t in chain.tracks)
            start, end, wrote = None, 0.0, 0
            for t, _, _, pkt, chain, info in heapq.merge(*sources, key=lambda x: x[:3]):
                tb = pkt.time_base
                shift = round(info.start_s / tb)
                pkt.pts += shift
                pkt.dts = pkt.pts if pkt.dts is None else pkt.dts + shift
                if chain.last_dts is not None and pkt.dts <= chain.last_dts:
                    # Two chained tracks meeting within a tick of rounding: nudge forward.
                    pkt.dts = chain.last_dts + 1
                    pkt.pts = max(pkt.pts, pkt.dts)
                chain.last_dts = pkt.dts
                pkt.stream = chain.out
                output.mux(pkt)
                wrote += 1
                start = t if start is None else start
                end = max(end, t + float((pkt.duration or 0) * tb))
        if wrote == 0:
            path.unlink(missing_ok=True)
            return None
        return ParticipantFile(path, "", 0, start or 0.0, end, any(c.kind == "video" for c in chains),
                               [i.track.name for i in stint])
    finally:
        for container in containers:
            container.close()


def remux_participants(timeline: Timeline, out_dir: Path) -> list[ParticipantFile]:
    files: list[ParticipantFile] = []
    used: set[str] = set()
    for part in timeline.participants:
        n = 0
        for stint in _stints(part):
            name = f"participant-{safe_name(part.user.id)}-{n}.mkv"
            while name in used:  # two ids that differ only in characters safe_name replaces
                name = name[:-4] + "_.mkv"
            used.add(name)
            path = out_dir / name
            try:
                result = _write(stint, path, part.user.display_name)
            except av.error.FFmpegError as exc:
                log.error("participant file %s failed: %s", path.name, exc)
                path.unlink(missing_ok=True)
                continue
            if result is None:
                continue
            result.user_id, result.n = part.user.id, n
            files.append(result)
            n += 1
    return files
