"""Driver side of the "ready minutes after the bell" measurement (issue 15.4): time from Stop
to ready with live segments, and the worker's CPU during the class.

What is real and what is simulated:

* the class is synthetic: ``synth.py`` writes a ``--live-minutes`` recording of 4 × 1280x720
  30 fps participants (2 VP8, 2 H.264, each with Opus) *faster than real time* into a source
  directory (one 10 s clip per participant looped; see synth.py);
* it is then *replayed on the wall clock* (``tests/livereplay.py``) into the recording
  directory through the live path's own ``MatroskaTrackFile``, so the directory grows as a
  worker's does during a class (500 ms clusters flushed as they close, events at their time).
  No WebRTC: the receive path's own cost (measured by the ``cpu`` part, ~4 % of a core per
  720p participant) is not in these figures, the replay's muxing is (it stands for the track
  writers);
* beside it, the worker's own ``LiveRenderer`` (media_worker/live_render.py) renders live
  segments exactly as in a worker (child processes ``python -m
  media_worker.post.segment_render`` at nice +10, every ``--live-segment-s``);
* at the end of the replay ("Stop"): ``LiveRenderer.finish()`` (waits for a segment under way),
  then the worker's post-processing child ``python -m media_worker.post DIR``, timed from the
  stop to its asset list. Uploads to the web process are not included (a local upload of the
  ~1 GB of assets takes a few seconds; the ``weblag`` part measures whole cycles).

CPU during the class: the live segments' children (``RUSAGE_CHILDREN``, so a segment killed at
its budget counts too) and the replay thread (this process), over the class's wall time; the machine's
other load from /proc/stat over the same window.
"""
from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchlib import PY, ROOT, log, machine_busy_s  # noqa: E402
import synth  # noqa: E402

sys.path.insert(0, str(ROOT))


def run(work: Path, *, minutes: float, participants: int = 4, width: int = 1280, height: int = 720,
        segment_s: float = 60.0, max_rtf: float = 1.0, compare_full: bool = False,
        keep: bool = False) -> dict:
    from media_worker.live_render import LiveRenderer
    from tests.livereplay import replay

    src = work / f"live-src-{minutes:g}"
    dest = work / f"rec-live-{minutes:g}"
    for d in (src, dest):
        shutil.rmtree(d, ignore_errors=True)
    usage = shutil.disk_usage(work)
    need = int(minutes * 60 * participants * 2_000_000 / 8 * 3)  # source + replay + outputs
    if usage.free < need + (2 << 30):
        return {"error": f"not enough space in {work}: {usage.free >> 20} MiB free, ~{need >> 20} MiB needed"}
    log(f"live: synthesizing {minutes:g} min, {participants} x {width}x{height} (faster than real time)")
    info = synth.synthesize(src, minutes, participants, width, height, 30, cache=work)
    dest.mkdir()
    log(f"  {info['bytes'] / 2**20:.0f} MiB in {info['synth_s']:.0f} s; replaying it on the wall clock "
        f"with live segments of {segment_s:g} s (max {max_rtf:g}x real time)")

    async def live() -> dict:
        rendering = LiveRenderer(dest, segment_s=segment_s, max_rtf=max_rtf)
        import resource
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        busy0, t0 = machine_busy_s(), time.monotonic()
        rep = replay(src, dest)
        rendering.start()
        last = 0.0
        while not rep.done.is_set():
            await asyncio.sleep(1.0)
            if time.monotonic() - last > 60:
                last = time.monotonic()
                log(f"  class at {time.monotonic() - t0:.0f} s: {rendering.segments} segments, "
                    f"x real time {rendering.rtf[-3:]}, fallback {rendering.fallback}")
        rep.join()
        class_wall = time.monotonic() - t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        # every segment child, a killed one too (reaped children count here)
        segments_cpu = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
        busy_class = machine_busy_s() - busy0
        stop = time.monotonic()
        fallback = await rendering.finish()
        finish_wait = time.monotonic() - stop
        replay_cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
        return {"class_wall_s": round(class_wall, 1), "segments": rendering.segments,
                "relayouts": rendering.relayouts, "rtf": rendering.rtf, "fallback": fallback,
                "segments_cpu_s": round(segments_cpu, 1), "replay_cpu_s": round(replay_cpu, 1),
                "worker_cores_during_class": round(segments_cpu / class_wall, 3),
                "replay_cores": round(replay_cpu / class_wall, 3),
                "other_load_cores_during_class": round(max(0.0, (busy_class - segments_cpu - replay_cpu)
                                                             / class_wall), 2),
                "finish_wait_s": round(finish_wait, 1), "stop_mono": stop}

    res = asyncio.run(live())
    stop = res.pop("stop_mono")
    res["synth"] = info
    post = _post(work, dest, "post-live.log")
    res["stop_to_ready_s"] = round(time.monotonic() - stop, 1)
    res["post"] = post
    if compare_full:
        full = work / f"rec-full-{minutes:g}"
        shutil.rmtree(full, ignore_errors=True)
        shutil.copytree(dest, full, ignore=shutil.ignore_patterns("live", "out"))
        log("  the same recording the old way (no live segments), for comparison")
        res["full_post"] = _post(work, full, "post-full.log")
        if not keep:
            shutil.rmtree(full, ignore_errors=True)
    if not keep:
        shutil.rmtree(src, ignore_errors=True)
        shutil.rmtree(dest, ignore_errors=True)
    return res


def _post(work: Path, directory: Path, log_name: str) -> dict:
    busy0, t0 = machine_busy_s(), time.monotonic()
    with open(work / "logs" / log_name, "w") as err:
        proc = subprocess.run([PY, "-m", "media_worker.post", str(directory)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=err, text=True)
    wall = time.monotonic() - t0
    out = {"wall_s": round(wall, 1), "exit": proc.returncode,
           "machine_busy_cores": round((machine_busy_s() - busy0) / wall, 2)}
    manifest = directory / "out" / "manifest.json"
    if manifest.exists():
        doc = json.loads(manifest.read_text())
        out["live"] = doc["processing"].get("live")
        out["canvas"] = doc.get("canvas")
        out["duration_s"] = doc.get("duration_s")
    log(f"  post-processing {directory.name}: {out}")
    return out
