"""The recording as post-processing sees it: tracks with what their files really hold, the
participants who sent media, and the span to render.

Built from the manifest plus one demux pass over every track file (``trackfile.probe_track``).
A track with zero readable frames is kept in ``Timeline.tracks`` (the manifest lists it) but
belongs to no participant's media.
"""
from __future__ import annotations

import bisect
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

from media_worker.post.manifest import Manifest, MediaState, Peer, Track, User
from media_worker.post.trackfile import TrackProbe, probe_track

log = logging.getLogger("podium.worker.post")


@dataclass
class TrackInfo:
    track: Track
    path: Path
    probe: TrackProbe
    user: User

    @property
    def has_media(self) -> bool:
        return self.probe.packets > 0

    @property
    def start_s(self) -> float:
        return self.track.offset_s

    @property
    def end_s(self) -> float:
        """Where the track's last frame ends on the recording clock."""
        return self.track.offset_s + (self.probe.end_s or 0.0)


@dataclass
class Participant:
    """One user who sent audio or video, across all their peers (rejoins) and tracks."""

    user: User
    peers: list[Peer]
    tracks: list[TrackInfo]  # only tracks with media, by start time
    media: dict[str, list[MediaState]] = field(default_factory=dict)  # per peer, by time

    @property
    def video_tracks(self) -> list[TrackInfo]:
        return [t for t in self.tracks if t.track.kind == "video"]

    @property
    def audio_tracks(self) -> list[TrackInfo]:
        return [t for t in self.tracks if t.track.kind == "audio"]

    def present_at(self, t: float) -> bool:
        """In the call at ``t``: inside a join/leave interval, or sending a track."""
        for peer in self.peers:
            joined = peer.joined_s if peer.joined_s is not None else math.inf
            left = peer.left_s if peer.left_s is not None else math.inf
            if joined <= t < left:
                return True
        return any(tr.start_s <= t < tr.end_s for tr in self.tracks)

    def camera_on_at(self, peer_id: str, t: float) -> bool:
        """What the peer last said it sends (``media`` events); True when it never said."""
        states = self.media.get(peer_id)
        if not states:
            return True
        i = bisect.bisect_right([s.t_s for s in states], t) - 1
        return True if i < 0 else (states[i].video or states[i].screen)


@dataclass
class Timeline:
    manifest: Manifest
    duration_s: float
    tracks: list[TrackInfo]
    participants: list[Participant]
    largest_size: tuple[int, int] | None  # the largest video frame seen, by area
    duration_source: str  # "recording_stopped" or "last_frame"


MIN_DURATION_S = 0.1


def build_timeline(recording_dir: Path, manifest: Manifest) -> Timeline:
    """Probe every announced track file and group media by participant (user id)."""
    recording_dir = Path(recording_dir)
    infos: list[TrackInfo] = []
    for tr in manifest.tracks:
        path = recording_dir / tr.file
        probe = probe_track(path, tr.kind)
        if probe.packets == 0:
            log.warning("track %s has no readable frame; left out of the outputs", tr.name)
        infos.append(TrackInfo(tr, path, probe, manifest.user_of(tr.peer_id)))

    by_user: dict[str, Participant] = {}
    order: list[str] = []
    for peer in sorted(manifest.peers.values(),
                       key=lambda p: p.joined_s if p.joined_s is not None else math.inf):
        if peer.user.id not in by_user:
            by_user[peer.user.id] = Participant(peer.user, [], [])
        by_user[peer.user.id].peers.append(peer)
    for info in infos:
        if not info.has_media:
            continue
        part = by_user.setdefault(info.user.id, Participant(info.user, [], []))
        part.tracks.append(info)
        if info.user.id not in order:
            order.append(info.user.id)
    for state in manifest.media:
        part = by_user.get(manifest.user_of(state.peer_id).id)
        if part is not None:
            part.media.setdefault(state.peer_id, []).append(state)
    for part in by_user.values():
        for states in part.media.values():
            states.sort(key=lambda s: s.t_s)

    # Grid order: by when each participant first sent media.
    participants = sorted((by_user[u] for u in order), key=lambda p: min(t.start_s for t in p.tracks))

    last_frame = max((i.end_s for i in infos if i.has_media), default=0.0)
    if manifest.stopped_s is not None:
        duration, source = manifest.stopped_s, "recording_stopped"
    else:
        duration, source = max(last_frame, manifest.last_event_s), "last_frame"
        log.warning("no recording_stopped line: rendering up to the last frame or event (%.2f s)",
                    duration)

    sizes: list[tuple[int, int]] = []
    for info in infos:
        if info.has_media and info.track.kind == "video":
            sizes.extend(info.probe.sizes)
            sizes.extend((w, h) for _, w, h in info.track.sizes)
    sizes = [(w, h) for w, h in sizes if w > 0 and h > 0]
    largest = max(sizes, key=lambda s: (s[0] * s[1], s[0])) if sizes else None

    return Timeline(manifest, max(duration, MIN_DURATION_S), infos, participants, largest, source)
