"""Driver side of the post-processing measurement: synthesize a long recording directory
(``synth.py``), then time the worker's own child command, ``python -m media_worker.post <dir>``
(default settings: libx264 ``veryfast`` CRF 23, 30 fps, ``nice`` +10), as
``media_worker.post.child.postprocess`` runs it."""
from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchlib import PY, ROOT, log, machine_busy_s  # noqa: E402
import synth  # noqa: E402


def children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(work: Path, *, minutes: float, participants: int, width: int, height: int, fps: int = 30,
        keep: bool = False, timeout_s: float = 3600) -> dict:
    directory = work / "rec-post"
    usage = shutil.disk_usage(work)
    need = int(minutes * 60 * participants * 2_000_000 / 8 * 1.5)  # ~2 Mb/s per participant, outputs
    if usage.free < need + (2 << 30):
        return {"error": f"not enough space in {work}: {usage.free >> 20} MiB free, ~{need >> 20} MiB needed"}
    log(f"post: synthesizing {minutes:g} min, {participants} participants at {width}x{height} {fps} fps")
    info = synth.synthesize(directory, minutes, participants, width, height, fps, cache=work)
    log(f"  {info['bytes'] / 2**20:.0f} MiB of tracks in {info['synth_s']:.0f} s; running python -m media_worker.post")
    cpu0, busy0, t0 = children_cpu_s(), machine_busy_s(), time.monotonic()
    with open(work / "logs" / "post.log", "w") as err:
        proc = subprocess.Popen([PY, "-m", "media_worker.post", str(directory)], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=err, text=True)
        result: dict = {}
        last_log = t0
        try:
            for line in proc.stdout:
                msg = json.loads(line) if line.startswith("{") else {}
                if "percent" in msg and time.monotonic() - last_log > 60:
                    last_log = time.monotonic()
                    log(f"  {msg['percent']} % after {last_log - t0:.0f} s")
                elif "percent" not in msg:
                    result.update(msg)
                if time.monotonic() - t0 > timeout_s:
                    proc.kill()
                    result["error"] = f"killed after {timeout_s:.0f} s"
                    break
        finally:
            proc.wait()
    wall = time.monotonic() - t0
    cpu = children_cpu_s() - cpu0
    busy = machine_busy_s() - busy0
    res = {"synth": info, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "exit": proc.returncode,
           "recording_s": info["duration_s"], "wall_per_recorded_s": round(wall / info["duration_s"], 3),
           "cpu_per_recorded_s": round(cpu / info["duration_s"], 3),
           "post_cores": round(cpu / wall, 2), "other_load_cores": round(max(0.0, (busy - cpu) / wall), 2)}
    if "error" in result:
        res["error"] = result["error"]
    for a in result.get("assets", []):
        if a["kind"] == "composite":
            res["composite"] = {"size_mb": round(a["size"] / 2**20, 1), "duration_s": a["duration_s"]}
    manifest = directory / "out" / "manifest.json"
    if manifest.exists():
        canvas = json.loads(manifest.read_text()).get("canvas")
        res["canvas"] = canvas
    if not keep:
        shutil.rmtree(directory, ignore_errors=True)
    return res
