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
    def camera_tracks(self) -> list[TrackInfo]:
        """Video tracks that may show in the participant's cell: all but screen feeds."""
        return [t for t in self.video_tracks if t.track.source != "screen"]

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
        state = self.media_at(peer_id, t)
        return True if state is None else (state.video or state.screen)

    def media_at(self, peer_id: str, t: float) -> MediaState | None:
        """The peer's latest ``media`` event at or before ``t``, if any."""
        states = self.media.get(peer_id)
        if not states:
            return None
        i = bisect.bisect_right([s.t_s for s in states], t) - 1
        return None if i < 0 else states[i]


@dataclass
class Share:
    """A screen shared from ``start_s`` to ``end_s``: ``track`` shows it (an SFU screen feed,
    or in a mesh call the participant's one video track while ``media`` says ``screen``)."""

    participant: Participant
    track: TrackInfo
    start_s: float
    end_s: float


def screen_shares(participants: list[Participant], end_s: float) -> list[Share]:
    """Every screen share of the recording, by start time. A ``source: "screen"`` track is a
    share from its start until it ends, its publisher leaves or says ``screen: false``; an
    unmarked video track (mesh) is one while its peer's ``media`` events say ``screen``."""
    shares = []
    for part in participants:
        for info in part.video_tracks:
            peer_id = info.track.peer_id
            left = min((p.left_s for p in part.peers if p.peer_id == peer_id and p.left_s is not None),
                       default=math.inf)
            stop = min(info.track.ended_s if info.track.ended_s is not None else info.end_s,
                       left, end_s)
            states = [m for m in part.media.get(peer_id, []) if m.t_s < stop]
            if info.track.source == "screen":
                off = [m.t_s for m in states if m.t_s > info.start_s and not m.screen]
                spans = [(info.start_s, min([stop, *off]))]
            elif info.track.source is None:
                spans, since = [], None
                for m in states:
                    if m.screen and since is None:
                        since = m.t_s
                    elif not m.screen and since is not None:
                        spans.append((since, m.t_s))
                        since = None
                if since is not None:
                    spans.append((since, stop))
                spans = [(max(a, info.start_s), min(b, stop)) for a, b in spans]
            else:
                spans = []
            shares.extend(Share(part, info, a, b) for a, b in spans if b > a)
    return sorted(shares, key=lambda sh: sh.start_s)


def share_at(shares: list[Share], t: float) -> Share | None:
    """The share on stage at ``t``: the latest started of those under way."""
    best = None
    for sh in shares:
        if sh.start_s <= t < sh.end_s and (best is None or sh.start_s >= best.start_s):
            best = sh
    return best


HELD_FRACTION = 0.25  # a size counts for the canvas when held this share of a track's time…
HELD_S = 30.0  # …or this long


def usual_size(info: TrackInfo) -> tuple[int, int] | None:
    """The largest size ``info`` held long enough to count (``HELD_FRACTION`` of its time or
    ``HELD_S``): a browser's first second at 1280x720 before it settles on 640x480 does not
    size the canvas. Sizes come from the file's keyframes, else the manifest's ``video_size``."""
    changes = list(info.probe.size_changes) or [(pts, w, h) for pts, w, h in info.track.sizes]
    changes = [(t, w, h) for t, w, h in changes if w > 0 and h > 0]
    if not changes:
        sizes = [s for s in info.probe.sizes if s[0] > 0 and s[1] > 0]
        return max(sizes, key=_area) if sizes else None
    end = max(info.probe.end_s or 0.0, changes[-1][0])
    held: dict[tuple[int, int], float] = {}
    for (t, w, h), nxt in zip(changes, [c[0] for c in changes[1:]] + [end]):
        held[(w, h)] = held.get((w, h), 0.0) + max(0.0, nxt - t)
    total = sum(held.values())
    enough = [s for s, d in held.items() if d >= min(HELD_S, HELD_FRACTION * total)]
    return max(enough, key=_area) if enough else max(held, key=lambda s: (held[s], _area(s)))


def _area(size: tuple[int, int]) -> tuple[int, int]:
    return size[0] * size[1], size[0]


@dataclass
class Timeline:
    manifest: Manifest
    duration_s: float
    tracks: list[TrackInfo]
    participants: list[Participant]
    largest_size: tuple[int, int] | None  # the largest video frame seen, by area
    duration_source: str  # "recording_stopped" or "last_frame"
    camera_size: tuple[int, int] | None = None  # the largest ``usual_size`` of camera tracks
    shares: list[Share] = field(default_factory=list)
    screen_size: tuple[int, int] | None = None  # the largest ``usual_size`` of shared screens


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

    # Grid order: by when each participant first sent media (as first announced: the clock
    # refinements that come later move a track by milliseconds, and must not swap two cells).
    participants = sorted((by_user[u] for u in order), key=lambda p: min(t.track.started_s for t in p.tracks))

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

    duration = max(duration, MIN_DURATION_S)
    shares = screen_shares(participants, duration)
    on_stage = {id(sh.track) for sh in shares}
    cameras = [usual_size(t) for p in participants for t in p.camera_tracks
               if t.track.source == "camera" or id(t) not in on_stage]
    screens = [usual_size(sh.track) for sh in shares]
    camera = max((s for s in cameras if s), key=_area, default=None)
    screen = max((s for s in screens if s), key=_area, default=None)
    if camera is None:  # everyone's video was a shared screen (mesh): size cells from it
        camera = max((s for s in (usual_size(t) for p in participants for t in p.camera_tracks)
                      if s), key=_area, default=None)
    return Timeline(manifest, duration, infos, participants, largest, source,
                    camera_size=camera, shares=shares, screen_size=screen)
