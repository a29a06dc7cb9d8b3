"""Driver side of the per-track measurements: one ``sender.py`` and one ``recorder.py`` process,
N real aiortc connections on loopback between them, CPU of each process over a steady window
(psutil: user + system, every thread), and whether the recorder kept up."""
from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # bench/, for benchlib
sys.path.insert(0, str(HERE))

from benchlib import PY, ROOT, machine_busy_s  # noqa: E402
from procs import Child  # noqa: E402


MAX_LAG_MS = 100.0


def sender_bound(r: dict) -> bool:
    """The sender did not produce the full rate: the step says nothing about the recorder."""
    return "error" not in r and r["sent_fps"] < 0.97 * r["expected_fps"]


def udp_errors() -> dict:
    """Machine-wide UDP receive errors so far (/proc/net/snmp): datagrams the kernel dropped
    because a socket's buffer was full show up in ``RcvbufErrors``."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    return {k: int(v) for k, v in zip(rows[0][1:], rows[1][1:]) if k in ("InErrors", "RcvbufErrors")}


def core_busy_s(cpu: int | None) -> float | None:
    """Busy CPU seconds of one core so far (every process on it)."""
    if cpu is None:
        return None
    import psutil
    t = psutil.cpu_times(percpu=True)[cpu]
    return t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0)


def measure(mode: str, clip: Path, tracks: int, work: Path, *, window_s: float, warmup_s: float,
            recorder_cpu: int | None = None, sender_cpu: int | None = None, fps: float = 30) -> dict:
    """One run: ``tracks`` connections, the recorder in ``mode``. Figures are over the window
    that starts ``warmup_s`` after every track delivered its first 30 frames."""
    rec_dir = work / f"rec-{mode}-{tracks}-{time.monotonic_ns()}"
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    rec_cmd = [PY, str(HERE / "recorder.py"), "--mode", mode, "--tracks", str(tracks), "--dir", str(rec_dir)]
    snd_cmd = [PY, str(HERE / "sender.py"), str(clip)]
    if recorder_cpu is not None:
        rec_cmd += ["--cpu", str(recorder_cpu)]
    if sender_cpu is not None:
        snd_cmd += ["--cpu", str(sender_cpu)]
    recorder = Child(rec_cmd, logs / f"recorder-{mode}-{tracks}.log", cwd=ROOT)
    sender = Child(snd_cmd, logs / f"sender-{mode}-{tracks}.log", cwd=ROOT)
    res: dict = {"mode": mode, "tracks": tracks, "recorder_cpu": recorder_cpu, "sender_cpu": sender_cpu}
    try:
        offers = recorder.expect("offers", 60)["offers"]
        answers = sender.request({"offers": offers}, "answers", 60 + tracks)["answers"]
        recorder.send({"answers": answers})
        recorder.expect("ready", 60 + tracks)
        time.sleep(warmup_s)

        def mark() -> dict:
            r = recorder.request({"cmd": "snap"}, "snap", 20)["snap"]
            s = sender.request({"cmd": "snap"}, "snap", 20)["snap"]
            return {"t": time.monotonic(), "rec": r, "snd": s, "rec_cpu": recorder.cpu_s(),
                    "snd_cpu": sender.cpu_s(), "busy": machine_busy_s(), "udp": udp_errors(),
                    "core": core_busy_s(recorder_cpu)}

        a = mark()
        time.sleep(window_s)
        b = mark()
    except Exception as exc:  # one failed run is reported, the benchmark goes on
        res["error"] = str(exc)
        return res
    finally:
        recorder.stop(30)
        sender.stop(15)
        shutil.rmtree(rec_dir, ignore_errors=True)
    dt = b["t"] - a["t"]
    rec_cores = (b["rec_cpu"] - a["rec_cpu"]) / dt
    snd_cores = (b["snd_cpu"] - a["snd_cpu"]) / dt
    other = (b["busy"] - a["busy"]) / dt - rec_cores - snd_cores
    sent = b["snd"]["sent"] - a["snd"]["sent"]
    got = b["rec"]["frames"] - a["rec"]["frames"]
    cpu_per_frame = rec_cores * dt / got if got else None
    res.update({
        "window_s": round(dt, 2),
        "cpu_ms_per_frame": round(cpu_per_frame * 1000, 3) if cpu_per_frame else None,
        # What one track costs when it is kept up with at 30 fps (for a recorder that fell
        # behind, the CPU it would have needed):
        "pct_core_at_30fps": round(cpu_per_frame * fps * 100, 2) if cpu_per_frame else None,
        "recorder_cores": round(rec_cores, 4),
        "pct_core_per_track": round(100 * rec_cores / tracks, 2),
        "sender_cores": round(snd_cores, 3),
        "other_load_cores": round(max(other, 0), 2),
        "other_on_recorder_core": (None if a["core"] is None
                                   else round(max(0.0, (b["core"] - a["core"]) / dt - rec_cores), 2)),
        "frames_sent": sent, "frames_handled": got,
        "handled_ratio": round(got / sent, 4) if sent else None,
        "expected_fps": tracks * fps, "sent_fps": round(sent / dt, 1), "handled_fps": round(got / dt, 1),
        "backlog_end": b["rec"]["backlog"],
        "losses": b["rec"]["losses"] - a["rec"]["losses"],
        "sender_late_ms": b["snd"]["late_ms"],
        "recorder_loop_lag_ms": b["rec"]["loop_lag_ms"],
        "sender_loop_lag_ms": b["snd"]["loop_lag_ms"],
        "udp_rcvbuf_errors": b["udp"]["RcvbufErrors"] - a["udp"]["RcvbufErrors"],
    })
    for k in ("dropped", "gaps", "discontinuities", "failed", "keyframe_requests", "disk_backlog"):
        if k in b["rec"]:
            res[k] = b["rec"][k] - a["rec"][k] if k != "disk_backlog" else b["rec"][k]
    return res


def sustained(r: dict) -> bool:
    """Real time without dropping: every frame sent in the window was handled (±2 frames per
    track for the snapshots' skew), nothing queued, no loss, gap or drop, and the recorder's
    event loop p99 lag under ``MAX_LAG_MS`` (three frame periods: what a jitter buffer absorbs,
    and what preemption by other processes on a shared core already costs)."""
    if "error" in r:
        return False
    lag = r["recorder_loop_lag_ms"]
    return (abs(r["frames_sent"] - r["frames_handled"]) <= 2 * r["tracks"] + 0.002 * r["frames_sent"]
            and r["backlog_end"] <= r["tracks"] and r["losses"] == 0
            and r.get("dropped", 0) == 0 and r.get("gaps", 0) == 0
            and lag.get("p99", 0) < MAX_LAG_MS)
