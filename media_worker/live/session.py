"""A recording being written live: the recording directory, its manifest and one
:class:`TrackWriter` per received track (docs/RECORDING.md)."""
from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpReceiver
from aiortc.mediastreams import MediaStreamTrack

from media_worker.live.events import EVENTS_FILE, EventLog
from media_worker.live.passthrough import install_passthrough
from media_worker.live.track_writer import LiveOptions, TrackWriter

log = logging.getLogger("podium.worker.live")

STOP_REASONS = ("stop", "call_ended", "worker_shutdown")


class RecordingSession:
    """Owns ``directory`` (``<WORKER_DIR>/rec-<recording id>/``) while a recording runs.

    Lifecycle: ``start()`` once, then the participant events (joined, left, media) and
    :meth:`attach` / :meth:`on_track` as the call goes on, then ``await stop(reason)`` once,
    which returns when every file is complete on disk. Every method runs on the event loop and returns quickly: no decoding or
    encoding, manifest lines are small direct appends, and track files are written by a
    background thread (``disk.py``). The peer connections stay the caller's: this class taps
    their receivers but never closes them. Chat and marks are not logged here: the job appends
    them from the server's timeline after the stop (``media_worker.timeline``).

    Raises ``OSError`` from :meth:`start` when the directory or the manifest cannot be written,
    and from the event methods when a manifest line cannot be written.
    """

    def __init__(self, directory: Path, *, recording_id: str, session_id: str, room_id: str,
                 options: LiveOptions | None = None, fsync_events: bool = False,
                 clock: Callable[[], float] = time.time):
        self.directory = Path(directory)
        self.recording_id = str(recording_id)
        self.session_id = str(session_id)
        self.room_id = str(room_id)
        self.options = options or LiveOptions()
        self.writers: list[TrackWriter] = []
        self.events: EventLog | None = None
        self._fsync = fsync_events
        self._clock = clock
        self._counters: dict[tuple[str, str], itertools.count] = defaultdict(itertools.count)
        self._stopped = False

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Create the directory and ``events.jsonl``; log ``recording_started``."""
        (self.directory / "tracks").mkdir(parents=True, exist_ok=True)
        self.events = EventLog(self.directory / EVENTS_FILE, fsync=self._fsync, clock=self._clock)
        self.events.write("recording_started", recording=self.recording_id,
                          session=self.session_id, room=self.room_id)
        log.info("recording %s started in %s", self.recording_id, self.directory)

    async def stop(self, reason: str = "stop") -> None:
        """Finish every track file (``track_ended``), log ``recording_stopped`` and close the
        manifest. Idempotent. ``reason`` is one of ``STOP_REASONS``."""
        if reason not in STOP_REASONS:
            raise ValueError(f"unknown stop reason {reason!r}")
        if self._stopped or self.events is None:
            return
        self._stopped = True
        for writer in self.writers:
            writer.close()
        await asyncio.gather(*(w.wait() for w in self.writers))  # writers log their own errors
        self.events.write("recording_stopped", reason=reason)
        self.events.close()
        log.info("recording %s stopped (%s): %d tracks", self.recording_id, reason,
                 sum(1 for w in self.writers if w.frames))

    @property
    def stopped(self) -> bool:
        return self._stopped

    # -- media ------------------------------------------------------------------------------
    def attach(self, peer_id: str, pc: RTCPeerConnection) -> None:
        """Record every track ``pc`` receives from ``peer_id``. Call right after creating
        ``pc`` (before any description is set): its receivers are tapped now, and the ones
        created later from the ``track`` event."""
        for transceiver in pc.getTransceivers():
            install_passthrough(transceiver.receiver)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:  # synchronous: runs before receive()
            receiver = next((t.receiver for t in pc.getTransceivers()
                             if t.receiver.track is track), None)
            if receiver is None:
                log.error("recording %s: no receiver for %s track of %s", self.recording_id,
                          track.kind, peer_id)
                return
            self.on_track(peer_id, track, receiver)

    def on_track(self, peer_id: str, track: MediaStreamTrack,
                 receiver: RTCRtpReceiver, source: str | None = None) -> TrackWriter | None:
        """Start a :class:`TrackWriter` for ``track`` (named ``<peer_id>-<kind>-<n>``). For
        callers that handle the ``track`` event themselves; must run before the receiver starts
        (raises :class:`PassthroughUnsupported` otherwise). ``None`` after :meth:`stop`.
        ``source`` (``"camera"``/``"screen"``), when the caller knows it, goes into the
        manifest's ``track_started``."""
        tap = install_passthrough(receiver)  # also when not recording: it never decodes
        if self._stopped or self.events is None:
            log.warning("recording %s: %s track of %s arrived outside start()..stop(); "
                        "not recorded", self.recording_id, track.kind, peer_id)
            track.stop()  # nobody will read it: the tap drops its frames
            return None
        n = next(self._counters[(peer_id, track.kind)])
        writer = TrackWriter(f"{peer_id}-{track.kind}-{n}", track.kind, peer_id=peer_id,
                             directory=self.directory, events=self.events,
                             request_keyframe=tap.request_keyframe if track.kind == "video" else None,
                             options=self.options, source=source)
        self.writers.append(writer)
        writer.start(track)
        return writer

    # -- manifest events --------------------------------------------------------------------
    def participant_joined(self, peer_id: str, user: dict[str, Any]) -> None:
        """``user``: ``{id, display_name, role}``."""
        self._event("participant_joined", peer_id=peer_id, user={
            "id": str(user["id"]), "display_name": user.get("display_name"),
            "role": user.get("role")})

    def participant_left(self, peer_id: str) -> None:
        """Log the leave and finish that peer's track files now (their tracks would end when
        the caller closes the connection anyway)."""
        self._event("participant_left", peer_id=peer_id)
        for writer in self.writers:
            if writer.peer_id == peer_id:
                writer.close()

    def media(self, peer_id: str, media: dict[str, Any]) -> None:
        """What the participant says it sends: ``{audio, video, screen}`` booleans."""
        self._event("media", peer_id=peer_id, media={
            k: bool(media.get(k)) for k in ("audio", "video", "screen")})

    def _event(self, type_: str, **fields: Any) -> None:
        if self.events is None or self._stopped:
            log.warning("recording %s: %s event outside start()..stop() dropped",
                        self.recording_id, type_)
            return
        self.events.write(type_, **fields)
