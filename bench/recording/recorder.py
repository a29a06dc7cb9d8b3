"""The recording side of the per-track benchmarks: N aiortc peer connections that offer
recvonly (the worker's own ``add_recvonly_transceivers``), each receiving one video track from
``sender.py``, handled according to ``--mode``:

* ``live``    the worker's live path: ``RecordingSession.attach`` (passthrough tap + one
              ``TrackWriter`` per track → ``tracks/*.mkv``), exactly as ``media_worker.job`` uses it;
* ``tap``     receive-only floor: the same passthrough tap, frames read and discarded (what
              aiortc's receive path costs before the live path writes anything);
* ``decode``  aiortc as shipped: frames decoded (its decoder thread) and discarded;
* ``mediarecorder``  aiortc's ``MediaRecorder`` writing each track to its own ``.mp4``
              (decode, then libx264 with aiortc's defaults, on the event loop).

    python bench/recording/recorder.py --mode live --tracks 4 --dir DIR [--cpu 0]

Driven over JSON lines by run.py: prints ``{"offers": [...]}``, reads ``{"answers": [...]}``,
prints ``{"ready": ...}`` once every track has delivered ``--ready-frames`` frames;
``{"cmd": "snap"}`` → ``{"snap": counters}``; ``{"cmd": "quit"}`` stops (files finished) and
exits with a final ``{"final": counters}``.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.contrib.media import MediaRecorder  # noqa: E402
from aiortc.mediastreams import MediaStreamError  # noqa: E402

from media_worker.live import RecordingSession, add_recvonly_transceivers, install_passthrough  # noqa: E402
from media_worker.live.disk import _WRITER  # noqa: E402  (backlog gauge only)
from procs import Control, LoopLag, pin  # noqa: E402
from tests.rtcpeer import loopback_configuration  # noqa: E402  (also: ICE on 127.0.0.1 only)

MODES = ("live", "tap", "decode", "mediarecorder")


class Counting(MediaStreamTrack):
    """Passes ``inner``'s frames through, counting them (what MediaRecorder has taken)."""

    def __init__(self, inner: MediaStreamTrack):
        super().__init__()
        self.kind = inner.kind
        self.inner = inner
        self.frames = 0

    async def recv(self):
        frame = await self.inner.recv()
        self.frames += 1
        return frame


class Recorder:
    def __init__(self, mode: str, tracks: int, directory: Path):
        self.mode, self.n, self.directory = mode, tracks, directory
        self.pcs: list[RTCPeerConnection] = []
        self.session: RecordingSession | None = None
        self.media_recorders: list[MediaRecorder] = []
        self.counting: list[Counting] = []
        self.video_tracks: list[MediaStreamTrack] = []
        self.receivers = []
        self.consumed = [0] * tracks  # tap / decode modes
        self.tasks: list[asyncio.Task] = []

    async def offers(self) -> list[str]:
        if self.mode == "live":
            self.session = RecordingSession(self.directory, recording_id="bench", session_id="s", room_id="r")
            self.session.start()
        out = []
        for i in range(self.n):
            pc = RTCPeerConnection(loopback_configuration())
            add_recvonly_transceivers(pc)
            if self.session is not None:
                self.session.attach(f"p{i}", pc)
                self.session.participant_joined(f"p{i}", {"id": i, "display_name": f"P{i}", "role": "student"})
            pc.on("track", lambda track, i=i, pc=pc: self._on_track(i, pc, track))
            await pc.setLocalDescription(await pc.createOffer())
            out.append(pc.localDescription.sdp)
            self.pcs.append(pc)
        return out

    def _on_track(self, i: int, pc: RTCPeerConnection, track: MediaStreamTrack) -> None:
        if track.kind != "video":
            return
        receiver = next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)
        self.video_tracks.append(track)
        self.receivers.append(receiver)
        if self.mode == "tap":
            install_passthrough(receiver)
            self.tasks.append(asyncio.ensure_future(self._drain(i, track)))
        elif self.mode == "decode":
            self.tasks.append(asyncio.ensure_future(self._drain(i, track)))
        elif self.mode == "mediarecorder":
            counted = Counting(track)
            rec = MediaRecorder(str(self.directory / f"track-{i}.mp4"))
            rec.addTrack(counted)
            self.counting.append(counted)
            self.media_recorders.append(rec)
            self.tasks.append(asyncio.ensure_future(rec.start()))
        # live: RecordingSession.attach has its own track handler (registered first)

    async def _drain(self, i: int, track: MediaStreamTrack) -> None:
        while True:
            try:
                await track.recv()
            except MediaStreamError:
                return
            self.consumed[i] += 1

    async def answers(self, sdps: list[str]) -> None:
        for pc, sdp in zip(self.pcs, sdps):
            await pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))

    def per_track(self) -> list[int]:
        if self.mode == "live":
            return [w.frames for w in self.session.writers if w.kind == "video"]
        if self.mode == "mediarecorder":
            return [c.frames for c in self.counting]
        return [c for c in self.consumed]

    def counters(self) -> dict:
        per = self.per_track()
        backlog = sum(t._queue.qsize() for t in self.video_tracks)
        backlog += sum(r._RTCRtpReceiver__decoder_queue.qsize() for r in self.receivers
                       if hasattr(r._RTCRtpReceiver__decoder_queue, "qsize"))
        out = {"t": time.monotonic(), "tracks": len(per), "frames": sum(per), "min_track": min(per, default=0),
               "backlog": backlog, "losses": sum(getattr(getattr(r, "_podium_tap", None), "losses", 0)
                                                 for r in self.receivers)}
        if self.session is not None:
            ws = [w for w in self.session.writers if w.kind == "video"]
            out.update(dropped=sum(w.dropped for w in ws), gaps=sum(w.gaps for w in ws),
                       discontinuities=sum(w.discontinuities for w in ws), failed=sum(w.failed for w in ws),
                       keyframe_requests=sum(w.keyframe_requests for w in ws), disk_backlog=_WRITER.backlog,
                       received=sum(r._podium_tap.frames for r in self.receivers))
        return out

    async def stop(self) -> None:
        if self.session is not None:
            await self.session.stop("stop")
        for rec in self.media_recorders:
            await rec.stop()
        for t in self.tasks:
            t.cancel()
        for pc in self.pcs:
            await pc.close()


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=MODES, required=True)
    p.add_argument("--tracks", type=int, default=1)
    p.add_argument("--dir", required=True)
    p.add_argument("--cpu", type=int)
    p.add_argument("--ready-frames", type=int, default=30)
    p.add_argument("--ready-timeout", type=float, default=40)
    args = p.parse_args()
    pin(args.cpu)
    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    ctl = Control()
    await ctl.start()
    lag = LoopLag()
    lag.start()
    rec = Recorder(args.mode, args.tracks, directory)
    try:
        ctl.emit({"offers": await rec.offers()})
        msg = await ctl.next(60)
        if msg is None or "answers" not in msg:
            return
        await rec.answers(msg["answers"])
        deadline = time.monotonic() + args.ready_timeout
        while True:
            per = rec.per_track()
            if len(per) == args.tracks and min(per) >= args.ready_frames:
                break
            if time.monotonic() > deadline:
                ctl.emit({"error": f"not ready after {args.ready_timeout:.0f} s: {len(per)} tracks, frames {per}"})
                return
            await asyncio.sleep(0.05)
        ctl.emit({"ready": rec.counters()})
        while True:
            msg = await ctl.next()
            if msg is None or msg.get("cmd") == "quit":
                break
            if msg.get("cmd") == "snap":
                ctl.emit({"snap": rec.counters() | {"loop_lag_ms": lag.take()}})
    finally:
        lag.stop()
        await rec.stop()
        ctl.emit({"final": rec.counters()})


if __name__ == "__main__":
    asyncio.run(main())
