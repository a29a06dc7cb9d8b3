"""One received track → one Matroska file of its encoded frames, plus its manifest events."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from media_worker.bitstreams import h264, opus, vp8
from media_worker.live.events import EventLog
from media_worker.live.matroska import CLOCK_RATES, MatroskaTrackFile
from media_worker.live.passthrough import EncodedFrame

CLOCK_WINDOW_S = 10.0  # refine the track's start over its first 10 s (clock drift stays out)
CLOCK_STEP_S = 0.002  # log a refinement once it moves the start by more than 2 ms ...
CLOCK_EVERY_S = 0.5  # ... at most every half second (and the last one at track_ended)

log = logging.getLogger("podium.worker.live")

_KEYFRAME_SIZE = {"vp8": vp8.keyframe_size, "h264": h264.keyframe_size}
_WAIT_WARNING_S = 5.0


@dataclass(frozen=True)
class LiveOptions:
    """Tuning of the live path (defaults are what the worker uses)."""

    cluster_ms: int = 500  # Matroska cluster length: the most media a crash can lose
    keyframe_interval_s: float = 0.5  # at most one keyframe request (PLI) per interval
    stall_s: float = 2.0  # video: no frame for this long counts as a gap
    max_jump_s: float = 5.0  # an RTP timestamp ahead of the wall clock by more is bogus


class TrackWriter:
    """Writes one track's encoded frames to ``<directory>/tracks/<name>.mkv``.

    Guarantees (docs/RECORDING.md): the file holds one stream, frames as received, ``pts = 0``
    at the first written frame and RTP time after it (32-bit wraparound handled); video starts
    at a keyframe and, after a gap, resumes at the next keyframe. A gap is a loss reported by
    the receiver (``EncodedFrame.loss_before``), no frame for ``stall_s``, or a timestamp that
    jumps backwards or far past the wall clock (then the pts advances by the wall-clock time
    instead). While it waits for a keyframe the writer drops frames and asks for one through
    ``request_keyframe`` (rate-limited to one per ``keyframe_interval_s``).

    Events: ``track_started`` when the first frame is written (its ``t`` is that frame's
    arrival), ``video_size`` for the first keyframe and every size change, ``track_ended`` on
    :meth:`close` if anything was written. The file is opened at the first written frame, so a
    track that never yields a usable frame leaves no file and no events.

    Closing stops the track, so a tapped receiver drops what still arrives instead of queueing
    it. Every gap and failure is logged with the track name; a write error closes the writer
    (``failed`` set).
    """

    def __init__(self, name: str, kind: str, *, peer_id: str, directory: Path, events: EventLog,
                 request_keyframe: Callable[[], bool] | None = None,
                 options: LiveOptions | None = None, source: str | None = None):
        self.name = name
        self.kind = kind
        self.peer_id = peer_id
        self.source = source  # "camera" | "screen" when the caller knows (SFU), else None
        self.file = f"tracks/{name}.mkv"
        self.path = Path(directory) / self.file
        self.codec: str | None = None
        self.size: tuple[int, int] | None = None
        self.frames = 0  # written
        self.dropped = 0  # received but not written
        self.gaps = 0
        self.discontinuities = 0
        self.keyframe_requests = 0
        self.failed = False
        self._events = events
        self._request_keyframe = request_keyframe
        self._opts = options or LiveOptions()
        self._video = kind == "video"
        self._rate = 0
        self._out: MatroskaTrackFile | None = None
        self._file_closed: Future | None = None
        self._waiting_keyframe = self._video
        self._unsupported = False
        self._codec_warned = False
        self._waiting_since: float | None = None
        self._pts = 0
        self._last_ts = 0
        self._last_written_mono = 0.0
        self._last_seen_mono: float | None = None
        self._last_request: float | None = None
        self._last_duration = 0
        self._closed = False
        # Clock refinement (``track_clock``): the wall time of pts 0 estimated as the smallest
        # ``received_at - pts`` seen over the first CLOCK_WINDOW_S, i.e. from the least-delayed
        # frame rather than the first one (whose delay includes a startup encode, a jitter
        # buffer fill or a keyframe wait that the other tracks of the same sender do not have).
        self._clock_best: float | None = None
        self._clock_logged: float | None = None
        self._clock_logged_mono = 0.0
        self._task: asyncio.Task | None = None
        self._track: MediaStreamTrack | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self, track: MediaStreamTrack) -> asyncio.Task:
        """Consume ``track`` (a tapped receiver's track) until it ends or :meth:`close`."""
        self._track = track
        self._task = asyncio.ensure_future(self._consume(track))
        return self._task

    async def _consume(self, track: MediaStreamTrack) -> None:
        try:
            while not self._closed:
                try:
                    frame = await track.recv()
                except MediaStreamError:  # the track ended: the connection closed
                    break
                self.write(frame)
        except Exception:  # a bug here must not kill the recording silently: log, keep the file
            log.exception("track %s: recording stopped by an unexpected error", self.name)
            self.failed = True
        finally:
            self.close()

    def close(self) -> None:
        """Finish the file and log ``track_ended``; idempotent and synchronous. The reading
        task, if any, is cancelled and the file's last bytes are still being written:
        :meth:`wait` awaits both."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        if self._track is not None:
            self._track.stop()  # nothing reads it any more: the tap drops its frames from now on
        out, self._out = self._out, None
        if out is None:
            if self.dropped:
                log.info("track %s: no frame written (%d dropped)", self.name, self.dropped)
            return
        try:
            self._file_closed = out.close()
        except (av.FFmpegError, OSError) as exc:
            log.error("track %s: finishing %s failed: %r", self.name, self.path, exc)
            self.failed = True
        duration_s = (self._pts + self._last_duration) / self._rate
        if self._clock_best is not None and self._clock_logged is not None and \
                self._clock_logged - self._clock_best > 0.0005:
            self._events.write("track_clock", t=self._clock_best, track=self.name)
        self._events.write("track_ended", track=self.name, frames=self.frames,
                           duration_s=round(duration_s, 3))
        log.info("track %s ended: %d frames, %.2f s, %d dropped, %d gaps, %d keyframe requests",
                 self.name, self.frames, duration_s, self.dropped, self.gaps,
                 self.keyframe_requests)

    async def wait(self) -> None:
        """Until the reading task has finished and, once closed, the file is complete on disk.
        Never raises for the writer's own errors (they are logged and set ``failed``)."""
        if self._task is not None:
            try:
                await self._task
            except asyncio.CancelledError:
                if not self._task.cancelled():
                    raise  # we were cancelled ourselves, not the reading task
        if self._file_closed is not None:
            try:
                await asyncio.wrap_future(self._file_closed)
            except OSError as exc:
                log.error("track %s: writing %s failed: %r", self.name, self.path, exc)
                self.failed = True
            self._file_closed = None

    @property
    def closed(self) -> bool:
        return self._closed

    def request_keyframe(self) -> None:
        """Ask the sender for a keyframe now (a video track being written; within the usual
        rate limit): live segments of the class video start decoding at a keyframe
        (``media_worker/live_render.py``), and WebRTC senders send one only when asked."""
        if self._video and not self._closed and self._out is not None:
            self._maybe_request_keyframe(time.monotonic())

    # -- frames -----------------------------------------------------------------------------
    def write(self, frame: EncodedFrame) -> None:
        """Write one received frame, or drop it (see the class docstring)."""
        if self._closed:
            return
        if self.codec is None:
            self._set_codec(frame.codec)
        if self._unsupported or frame.codec != self.codec:
            if frame.codec != self.codec and not self._codec_warned:
                self._codec_warned = True
                log.warning("track %s: codec changed from %s to %s; later frames are dropped",
                            self.name, self.codec, frame.codec)
            self.dropped += 1
            return
        now = frame.received_mono
        if self._video and self._last_seen_mono is not None:
            if frame.loss_before:
                self._gap("the receiver lost packets", now, requested=True)
            elif now - self._last_seen_mono > self._opts.stall_s:
                self._gap(f"no frame for {now - self._last_seen_mono:.1f} s", now)
        self._last_seen_mono = now

        first = self._out is None
        delta = 0
        if not first:
            delta = (frame.timestamp - self._last_ts) & 0xFFFFFFFF
            if delta >= 0x80000000:
                delta -= 0x100000000
            wall = now - self._last_written_mono
            if delta <= 0 or delta > (wall + self._opts.max_jump_s) * self._rate:
                self.discontinuities += 1
                log.warning("track %s: RTP timestamp jumped by %d after %.3f s; "
                            "continuing on the wall clock", self.name, delta, wall)
                delta = max(self._rate // 1000, round(wall * self._rate))  # ≥ 1 ms: Matroska's unit
                if self._video:
                    self._gap("timestamp discontinuity", now)

        size = None
        if self._waiting_keyframe:
            if frame.keyframe:
                size = _KEYFRAME_SIZE[self.codec](frame.data)
            if size is None:  # not a keyframe, or one we cannot start from (no SPS)
                self.dropped += 1
                self._maybe_request_keyframe(now)
                if self._waiting_since is None:
                    self._waiting_since = now
                elif now - self._waiting_since > _WAIT_WARNING_S:
                    log.warning("track %s: no usable keyframe for %.0f s despite %d requests",
                                self.name, now - self._waiting_since, self.keyframe_requests)
                    self._waiting_since = now  # warn again after as long
                return
            self._waiting_keyframe = False
            self._waiting_since = None
        elif self._video and frame.keyframe:
            size = _KEYFRAME_SIZE[self.codec](frame.data)

        pts = 0 if first else self._pts + delta
        try:
            if first:
                self._open(frame, size)
            if size is not None and size != self.size:
                self.size = size
                self._events.write("video_size", track=self.name, width=size[0], height=size[1],
                                   pts=pts)
            self._out.write(frame.data, pts, frame.keyframe)
        except (av.FFmpegError, OSError, ValueError) as exc:
            self._fail(exc)
            return
        self.frames += 1
        if not self._video:
            self._last_duration = opus.packet_samples(frame.data)
        elif not first:
            self._last_duration = delta  # the last frame is assumed to last as long as the one before
        self._pts = pts
        self._last_ts = frame.timestamp
        self._last_written_mono = now
        self._refine_clock(frame.received_at - pts / self._rate, pts / self._rate, now)

    def _refine_clock(self, estimate: float, pts_s: float, now: float) -> None:
        if pts_s > CLOCK_WINDOW_S:
            return
        if self._clock_best is None or estimate < self._clock_best:
            self._clock_best = estimate
            if self._clock_logged is None:  # the first frame: that is track_started.t itself
                self._clock_logged, self._clock_logged_mono = estimate, now
        better = self._clock_logged - self._clock_best
        if better > CLOCK_STEP_S and now - self._clock_logged_mono >= CLOCK_EVERY_S:
            self._events.write("track_clock", t=self._clock_best, track=self.name)
            self._clock_logged, self._clock_logged_mono = self._clock_best, now

    def _set_codec(self, codec: str) -> None:
        self.codec = codec
        supported = codec in CLOCK_RATES and (not self._video or codec in _KEYFRAME_SIZE)
        if not supported:
            self._unsupported = True
            log.warning("track %s: codec %s cannot be recorded; its frames are dropped",
                        self.name, codec)
            return
        self._rate = CLOCK_RATES[codec]

    def _open(self, frame: EncodedFrame, size: tuple[int, int] | None) -> None:
        width, height = size or (0, 0)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._out = MatroskaTrackFile(self.path, self.codec, width=width, height=height,
                                      cluster_ms=self._opts.cluster_ms)
        extra = {"source": self.source} if self.source else {}
        self._events.write("track_started", t=frame.received_at, track=self.name,
                           peer_id=self.peer_id, kind=self.kind, codec=self.codec, file=self.file,
                           **extra)
        log.info("track %s started: %s %s", self.name, self.codec,
                 f"{width}x{height}" if size else "")

    def _gap(self, reason: str, now: float, requested: bool = False) -> None:
        """Resume at the next keyframe (requested when a frame has to be dropped for it)."""
        if self._waiting_keyframe or self._out is None:
            return
        self.gaps += 1
        self._waiting_keyframe = True
        log.info("track %s: gap (%s); waiting for a keyframe", self.name, reason)
        if requested:  # the receiver has just sent a PLI itself: the interval starts now
            self._last_request = now

    def _maybe_request_keyframe(self, now: float) -> None:
        if self._request_keyframe is None:
            return
        if self._last_request is not None and now - self._last_request < self._opts.keyframe_interval_s:
            return
        if self._request_keyframe():
            self._last_request = now
            self.keyframe_requests += 1

    def _fail(self, exc: BaseException) -> None:
        log.error("track %s: writing %s failed, recording of this track stopped: %r",
                  self.name, self.path, exc)
        self.failed = True
        self.close()
