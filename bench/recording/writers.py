"""The live path alone, at scale: N 720p tracks fed through real passthrough taps into a
``RecordingSession``'s ``TrackWriter``s at real-time pace, in one process pinned to one core.

    python bench/recording/writers.py CLIP.pickle DIR --tracks 120 [--seconds 6] [--cpu 0]

Each track is an aiortc ``RTCRtpReceiver`` (no transport, no network) with
``install_passthrough``; its frames are handed to the receiver's decoder queue exactly as
aiortc's jitter buffer does (``put((codec, JitterFrame))``), so each one goes tap →
``EncodedFrame`` → track queue → ``TrackWriter`` → Matroska muxer → the disk writer thread.
Track ``i`` of ``N`` gets its frame ``k`` at ``(k + i/N) / fps``: the tracks' frames are spread
evenly over each frame period, as independent senders' are. What this leaves out is aiortc's
own receive path (UDP, SRTP, RTP parsing, jitter buffer, RTCP), measured by ``recorder.py``.

Prints one JSON object: frames fed/written/dropped, CPU (process, disk-writer thread), how late
the feeder delivered frames against the schedule (the event loop's backlog), loop lag, the
disk backlog, and the other load on the pinned core.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

import psutil  # noqa: E402
from aiortc.jitterbuffer import JitterFrame  # noqa: E402
from aiortc.rtcrtpparameters import RTCRtpCodecParameters  # noqa: E402
from aiortc.rtcrtpreceiver import RemoteStreamTrack, RTCRtpReceiver  # noqa: E402

import clips  # noqa: E402
from media_worker.live import RecordingSession  # noqa: E402
from media_worker.live.disk import _WRITER  # noqa: E402  (backlog gauge and thread CPU only)
from procs import LoopLag, pin  # noqa: E402

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97)


class _Transport:
    state = "new"  # enough for RTCRtpReceiver.__init__; nothing is sent


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, int(len(s) * q))], 2)


def core_busy(cpu: int | None) -> float | None:
    if cpu is None:
        return None
    t = psutil.cpu_times(percpu=True)[cpu]
    return t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0)


def thread_cpu(native_id: int | None) -> float:
    if native_id is None:
        return 0.0
    for th in psutil.Process().threads():
        if th.id == native_id:
            return th.user_time + th.system_time
    return 0.0


async def run(clip: clips.Clip, directory: Path, tracks: int, seconds: float, warmup: float,
              cpu: int | None) -> dict:
    session = RecordingSession(directory, recording_id="ladder", session_id="s", room_id="r")
    session.start()
    puts = []
    for i in range(tracks):
        receiver = RTCRtpReceiver("video", _Transport())
        receiver._track = RemoteStreamTrack(kind="video")
        session.on_track(f"p{i}", receiver._track, receiver)  # taps the receiver, starts its writer
        puts.append(receiver._RTCRtpReceiver__decoder_queue.put)
    lag = LoopLag()
    lag.start()
    frames, fps = clip.frames, clip.fps
    step = round(clips.VIDEO_CLOCK / fps)
    period = 1 / (tracks * fps)  # between two consecutive frames of all tracks
    total = int((warmup + seconds) * fps) * tracks
    window_from = int(warmup * fps) * tracks
    late: list[float] = []
    backlog_max = 0
    proc = psutil.Process()
    marks: dict = {}
    t0 = time.monotonic() + 0.05
    g = 0
    while g < total:
        now = time.monotonic()
        while g < total and t0 + g * period <= now:
            if g == window_from:
                ct = proc.cpu_times()
                marks["a"] = (now, ct.user + ct.system, core_busy(cpu), thread_cpu(_WRITER._thread and _WRITER._thread.native_id))
                lag.take()
            i, k = g % tracks, g // tracks
            data, _key = frames[k % len(frames)]
            puts[i]((VP8, JitterFrame(data, k * step)))
            if g >= window_from:
                late.append((now - (t0 + g * period)) * 1000)
            g += 1
        backlog_max = max(backlog_max, _WRITER.backlog)
        await asyncio.sleep(max(0.0, t0 + g * period - time.monotonic()))
    now = time.monotonic()
    ct = proc.cpu_times()
    marks["b"] = (now, ct.user + ct.system, core_busy(cpu), thread_cpu(_WRITER._thread and _WRITER._thread.native_id))
    loop_lag = lag.take()
    lag.stop()
    # Catch-up: a path that kept real time has written everything within a few ms.
    fed_per_track = total // tracks
    deadline = time.monotonic() + 5
    while sum(w.frames + w.dropped for w in session.writers) < total and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    catch_up_ms = (time.monotonic() - now) * 1000
    written = sum(w.frames for w in session.writers)
    (ta, ca, ba, wa), (tb, cb, bb, wb) = marks["a"], marks["b"]
    dt = tb - ta
    proc_cores = (cb - ca) / dt
    stats = {
        "tracks": tracks, "window_s": round(dt, 2), "fed": total, "fed_per_track": fed_per_track,
        "written": written, "dropped": sum(w.dropped for w in session.writers),
        "gaps": sum(w.gaps for w in session.writers), "failed": sum(w.failed for w in session.writers),
        "catch_up_ms": round(catch_up_ms, 1),
        "process_cores": round(proc_cores, 3),
        "disk_thread_cores": round((wb - wa) / dt, 3),
        "us_per_frame": round((cb - ca) / (len(late) or 1) * 1e6, 1),
        "pct_core_per_track": round(100 * proc_cores / tracks, 3),
        "other_on_core": None if ba is None else round(max(0.0, (bb - ba) / dt - proc_cores), 2),
        "late_ms": {"p50": pct(late, 0.5), "p99": pct(late, 0.99), "max": round(max(late), 1) if late else None},
        "loop_lag_ms": loop_lag,
        "disk_backlog_max_mb": round(backlog_max / 2**20, 2),
        "mb_per_s": round(sum(len(d) for d, _ in frames) / len(frames) * fps * tracks / 2**20, 1),
    }
    await session.stop("stop")
    return stats


MAX_LATE_MS = 100.0  # as pertrack.MAX_LAG_MS: three frame periods


def sustained(r: dict) -> bool:
    """Kept real time: every frame fed was written (none dropped, no gap), the writers had
    nothing left to catch up after the window, and the feeder was never more than three frame
    periods late at p99."""
    return ("error" not in r and r["dropped"] == 0 and r["gaps"] == 0 and r["failed"] == 0
            and r["written"] == r["fed"] and r["catch_up_ms"] <= 100 and r["late_ms"]["p99"] <= MAX_LATE_MS)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("clip")
    p.add_argument("dir")
    p.add_argument("--tracks", type=int, required=True)
    p.add_argument("--seconds", type=float, default=6)
    p.add_argument("--warmup", type=float, default=2)
    p.add_argument("--cpu", type=int)
    args = p.parse_args()
    pin(args.cpu)
    directory = Path(args.dir)
    try:
        print(json.dumps(asyncio.run(run(clips.load(args.clip), directory, args.tracks, args.seconds,
                                         args.warmup, args.cpu))))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
