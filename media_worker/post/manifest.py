"""Read a recording directory's ``events.jsonl`` (docs/RECORDING.md) into typed records.

Guarantees: every complete JSON line is used; a truncated or otherwise unparsable line (the
last line after a crash) is skipped and counted in ``Manifest.skipped_lines``, never raised.
Only a directory with no usable event at all raises ``ManifestError``. Times are kept as the
worker's wall clock (``t``) and also given on the recording clock (seconds since
``recording_started``, the ``*_s`` fields).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("podium.worker.post")

EVENTS_FILE = "events.jsonl"


class ManifestError(Exception):
    """The recording directory has no usable events.jsonl."""


@dataclass
class User:
    id: str
    display_name: str
    role: str = ""


@dataclass
class Peer:
    """One connection of a participant in the call (a leave and rejoin is a new peer)."""

    peer_id: str
    user: User
    joined_s: float | None = None
    left_s: float | None = None


@dataclass
class Track:
    """One ``tracks/<track>.mkv`` as announced by ``track_started``."""

    name: str
    peer_id: str
    kind: str  # "audio" | "video"
    codec: str
    file: str  # relative to the recording directory
    offset_s: float  # where pts = 0 lands on the recording clock
    ended_s: float | None = None
    frames: int | None = None  # from track_ended, when the line exists
    sizes: list[tuple[float, int, int]] = field(default_factory=list)  # (pts seconds, w, h)
    # "camera" | "screen" when the live path knew (an SFU feed); None: the participant's video,
    # a screen while their ``media`` events say ``screen`` (a mesh call replaces the camera).
    source: str | None = None
    # where ``track_started`` put it (its first frame's arrival), never refined: what the grid
    # order reads, so that a later ``track_clock`` cannot swap two cells
    started_s: float | None = None

    def __post_init__(self) -> None:
        if self.started_s is None:
            self.started_s = self.offset_s


@dataclass
class Chat:
    t_s: float
    seq: int | None
    user: User
    text: str


@dataclass
class Mark:
    t_s: float
    label: str
    by: str


@dataclass
class MediaState:
    t_s: float
    peer_id: str
    audio: bool
    video: bool
    screen: bool


@dataclass
class Manifest:
    started_t: float  # wall clock of the recording clock's zero
    stopped_s: float | None  # recording_stopped on the recording clock, None after a crash
    stop_reason: str | None
    ids: dict[str, str]  # recording, session, room
    events: list[dict[str, Any]]
    peers: dict[str, Peer]
    tracks: list[Track]
    chats: list[Chat]
    marks: list[Mark]
    media: list[MediaState]
    last_event_s: float
    skipped_lines: int = 0

    def user_of(self, peer_id: str) -> User:
        """The user behind ``peer_id``; a peer with no ``participant_joined`` line (lost in a
        crash) stands for itself."""
        peer = self.peers.get(peer_id)
        return peer.user if peer else User(id=peer_id, display_name=peer_id)


def _user(obj: Any, fallback: str) -> User:
    if not isinstance(obj, dict):
        return User(id=fallback, display_name=fallback)
    uid = str(obj.get("id") or fallback)
    return User(id=uid, display_name=str(obj.get("display_name") or uid),
                role=str(obj.get("role") or ""))


def read_events(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The complete event lines of ``path`` in file order, and how many lines were skipped."""
    events: list[dict[str, Any]] = []
    skipped = 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                ev = json.loads(raw)
                t = float(ev["t"])
                kind = ev["type"]
            except (ValueError, KeyError, TypeError):  # truncated by a crash, or garbage
                skipped += 1
                log.warning("%s:%d: skipping unparsable event line (%d bytes)", path, lineno, len(raw))
                continue
            if not isinstance(kind, str):
                skipped += 1
                continue
            ev["t"] = t
            events.append(ev)
    return events, skipped


def load_manifest(recording_dir: Path) -> Manifest:
    """Parse ``<recording_dir>/events.jsonl``. Raises ``ManifestError`` if it is missing or has
    no complete event."""
    path = Path(recording_dir) / EVENTS_FILE
    try:
        events, skipped = read_events(path)
    except FileNotFoundError:
        raise ManifestError(f"{path} does not exist") from None
    if not events:
        raise ManifestError(f"{path} holds no complete event")

    start_ev = next((e for e in events if e["type"] == "recording_started"), None)
    # Without its first line (never seen, but cheap to survive) the earliest event is zero.
    started_t = start_ev["t"] if start_ev else min(e["t"] for e in events)
    ids = {k: str(start_ev.get(k, "")) for k in ("recording", "session", "room")} if start_ev else {}

    def rel(ev: dict[str, Any]) -> float:
        return ev["t"] - started_t

    peers: dict[str, Peer] = {}
    tracks: dict[str, Track] = {}
    chats: list[Chat] = []
    marks: list[Mark] = []
    media: list[MediaState] = []
    stopped_s: float | None = None
    stop_reason: str | None = None

    for ev in events:
        kind = ev["type"]
        try:
            if kind == "participant_joined":
                pid = str(ev["peer_id"])
                peers[pid] = Peer(pid, _user(ev.get("user"), pid), joined_s=rel(ev))
            elif kind == "participant_left":
                pid = str(ev["peer_id"])
                peer = peers.setdefault(pid, Peer(pid, _user(None, pid)))
                peer.left_s = rel(ev)
            elif kind == "track_started":
                name = str(ev["track"])
                tracks[name] = Track(
                    name=name, peer_id=str(ev["peer_id"]), kind=str(ev["kind"]),
                    codec=str(ev.get("codec", "")),
                    file=str(ev.get("file") or f"tracks/{name}.mkv"), offset_s=rel(ev),
                    source=ev["source"] if ev.get("source") in ("camera", "screen") else None)
            elif kind == "track_clock":  # a better estimate of where pts 0 is (live path)
                tr = tracks.get(str(ev["track"]))
                if tr is not None:
                    tr.offset_s = rel(ev)
            elif kind == "video_size":
                tr = tracks.get(str(ev["track"]))
                if tr is not None:
                    tr.sizes.append((float(ev.get("pts", 0)) / 90000, int(ev["width"]),
                                     int(ev["height"])))
            elif kind == "track_ended":
                tr = tracks.get(str(ev["track"]))
                if tr is not None:
                    tr.ended_s = rel(ev)
                    tr.frames = int(ev["frames"]) if ev.get("frames") is not None else None
            elif kind == "media":
                m = ev.get("media") or {}
                media.append(MediaState(rel(ev), str(ev["peer_id"]), bool(m.get("audio")),
                                        bool(m.get("video")), bool(m.get("screen"))))
            elif kind == "chat":
                user = _user(ev.get("user"), "unknown")
                seq = ev.get("seq")
                chats.append(Chat(rel(ev), int(seq) if seq is not None else None, user,
                                  str(ev.get("text", ""))))
            elif kind == "mark":
                by = ev.get("by") or {}
                marks.append(Mark(rel(ev), str(ev.get("label") or "Mark"),
                                  str(by.get("display_name", "")) if isinstance(by, dict) else ""))
            elif kind == "recording_stopped":
                stopped_s = rel(ev)
                stop_reason = str(ev.get("reason", ""))
        except (KeyError, TypeError, ValueError) as exc:
            # A complete line with a missing field: keep going, the rest of the manifest is good.
            log.warning("%s: ignoring malformed %s event: %r", path, kind, exc)

    return Manifest(
        started_t=started_t, stopped_s=stopped_s, stop_reason=stop_reason, ids=ids,
        events=events, peers=peers, tracks=sorted(tracks.values(), key=lambda t: t.offset_s),
        chats=sorted(chats, key=lambda c: (c.t_s, c.seq or 0)),
        marks=sorted(marks, key=lambda m: m.t_s), media=media,
        last_event_s=max(rel(e) for e in events), skipped_lines=skipped)
