#!/usr/bin/env python3
"""Recording benchmark: what the media worker's live path costs per recorded track against
aiortc's ``MediaRecorder``, how many 720p tracks one core records, how long post-processing a
10-minute class takes, and whether the web process notices any of it.

One command, from the repository root:

    .venv/bin/python bench/recording/run.py                    # every part (see docs/BENCHMARKS.md)
    .venv/bin/python bench/recording/run.py --parts cpu --runs 1   # a quick look

Parts (every process is a subprocess; everything stays on 127.0.0.1):
  cpu      per recorded track, 640x480 and 1280x720 at 30 fps: a sender process (aiortc,
           pre-encoded VP8 replayed in real time, see clips.py) and a recorder process over real
           aiortc connections; recorder CPU (psutil) over a steady window for: the live path
           (RecordingSession: passthrough + TrackWriter), the receive-only floor (tap, frames
           discarded) and aiortc's MediaRecorder (.mp4: decode + libx264). Medians of --runs.
  ladder   real 720p aiortc tracks into one recorder process pinned to core 0 (sender on
           core 1), 10, 20, 30, 40 ...: the most it records at real time without dropping.
  writers  the live path alone pinned to one core (taps + TrackWriters fed pre-encoded 720p
           frames at real-time pace, no network): the same question without aiortc's receive cost.
  weblag   the real server, a real worker and a 4-participant 640x480 class: the web process's
           event-loop lag (WebSocket ping round trips every 20 ms) idle, during the call, while
           recording and while post-processing + uploading, in --cycles cycles.
  post     a synthetic 10-minute, 4-participant 720p recording through the worker's own child
           command, ``python -m media_worker.post DIR``: wall time against the 600 s recorded.
  live     "ready minutes after the bell" (issue 15.4): the same synthetic class replayed on the
           wall clock into a recording directory (tests/livereplay.py) while the worker's
           LiveRenderer renders live segments; time from Stop to ready and the worker's CPU
           during the class, for each of --live-minutes (livebench.py says what is simulated).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # bench/, for benchlib
sys.path.insert(0, str(HERE))
import benchlib  # noqa: E402

benchlib.reexec_in_venv(__file__)

from benchlib import PY, ROOT, log, med, table  # noqa: E402

PARTS = ("cpu", "ladder", "writers", "weblag", "post", "live")
MODE_NAMES = {"live": "live path (tap + TrackWriter)", "tap": "receive-only floor (tap, discard)",
              "decode": "aiortc decode, discard", "mediarecorder": "aiortc MediaRecorder (.mp4)"}
VIDEO_TARGET_BPS = {480: 1_200_000, 720: 2_500_000}  # libvpx CBR targets; the measured rate is printed
CLIP_S = 10.0
BUSY_CORE = 0.25  # other load on a pinned core above which a failed ladder step is run again


def clip_paths(work: Path, sizes: list[tuple[int, int]]) -> dict:
    """Pre-encode the replayed clips once (VP8 per size, Opus) into ``work``."""
    import clips
    out = {}
    for w, h in sizes:
        path = work / f"clip-vp8-{w}x{h}.pickle"
        clip = clips.cached(path, lambda w=w, h=h: clips.encode_video(
            "vp8", w, h, 30, CLIP_S, VIDEO_TARGET_BPS.get(h, 1_500_000)))
        out[(w, h)] = (path, round(clip.bitrate / 1000))
    path = work / "clip-opus.pickle"
    clips.cached(path, lambda: clips.encode_opus(CLIP_S))
    out["opus"] = (path, None)
    return out


def fmt_lag(lag: dict | None) -> str | None:
    return None if not lag or not lag.get("n") else f"{lag['p99']:.0f}"


# -- parts ----------------------------------------------------------------------------------
def part_cpu(args, work: Path, clipset: dict, results: dict) -> None:
    import pertrack
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    out = results.setdefault("cpu", {})
    for run in range(args.runs):  # interleaved, so drifting machine load hits every mode alike
        for size in args.sizes:
            path, kbps = clipset[size]
            for mode in modes:
                n = args.mr_tracks if mode == "mediarecorder" else args.tracks
                log(f"cpu run {run + 1}/{args.runs}: {size[0]}x{size[1]} ({kbps} kb/s), {MODE_NAMES[mode]}, {n} tracks")
                r = pertrack.measure(mode, path, n, work, window_s=args.window, warmup_s=args.warmup)
                r["kbps"] = kbps
                out.setdefault(f"{size[0]}x{size[1]}", {}).setdefault(mode, []).append(r)
                if "error" in r:
                    log(f"  error: {r['error']}")
                else:
                    log(f"  {r['pct_core_at_30fps']} % of a core per track at 30 fps ({r['recorder_cores']} cores "
                        f"measured), handled {r['frames_handled']}/{r['frames_sent']} frames, backlog "
                        f"{r['backlog_end']}, other load {r['other_load_cores']}")


def part_ladder(args, work: Path, clipset: dict, results: dict) -> None:
    import pertrack
    path, kbps = clipset[(1280, 720)]
    steps = results.setdefault("ladder", [])
    for n in args.ladder:
        for attempt in (1, 2):
            log(f"ladder: {n} real 720p tracks ({kbps} kb/s) into one recorder on core 0, sender on core 1")
            r = pertrack.measure("live", path, n, work, window_s=args.window, warmup_s=args.warmup,
                                 recorder_cpu=0, sender_cpu=1 if (os.cpu_count() or 1) > 1 else None)
            r["sustained"], r["sender_bound"] = pertrack.sustained(r), pertrack.sender_bound(r)
            r["attempt"] = attempt
            if not busy_core_retry(r, attempt):
                break
            first = r
        if r["attempt"] == 2:
            r["first_attempt"] = first
        steps.append(r)
        if "error" in r:
            log(f"  error: {r['error']}")
            break
        log(f"  recorder {r['recorder_cores']} cores ({r['pct_core_per_track']} %/track), handled "
            f"{r['frames_handled']}/{r['frames_sent']}, losses {r['losses']}, gaps {r.get('gaps')}, loop lag p99 "
            f"{r['recorder_loop_lag_ms'].get('p99')} ms, sender {r['sent_fps']}/{r['expected_fps']} fps, other on "
            f"core 0 {r['other_on_recorder_core']} → {'sustained' if r['sustained'] else 'NOT sustained'}"
            f"{' (sender-bound)' if r['sender_bound'] else ''}")
        if not r["sustained"] or r["sender_bound"]:
            break


def busy_core_retry(r: dict, attempt: int, key: str = "other_on_recorder_core") -> bool:
    """Whether to run a failed ladder step again: once, when other processes (the machine is
    shared) took more than ``BUSY_CORE`` of the pinned core during it."""
    other = r.get(key) or 0.0
    if attempt == 1 and not r.get("sustained") and "error" not in r and other > BUSY_CORE:
        log(f"  not sustained with {other} cores of other load on the pinned core: once more")
        return True
    return False


def part_writers(args, work: Path, clipset: dict, results: dict) -> None:
    import writers
    path, _ = clipset[(1280, 720)]
    steps = results.setdefault("writers", [])
    for n in args.writer_ladder:
        for attempt in (1, 2):
            log(f"writers: the live path alone, {n} 720p tracks on core 0")
            cmd = [PY, str(HERE / "writers.py"), str(path), str(work / f"writers-{n}"), "--tracks", str(n),
                   "--seconds", str(args.window), "--cpu", "0"]
            try:
                out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120 + args.window)
                lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
                r = json.loads(lines[-1]) if lines else {"error": f"exit {out.returncode}: {out.stderr[-600:]}"}
            except subprocess.TimeoutExpired:
                r = {"error": "timed out"}
            shutil.rmtree(work / f"writers-{n}", ignore_errors=True)
            r["sustained"], r["attempt"] = writers.sustained(r), attempt
            r.setdefault("tracks", n)
            if not busy_core_retry(r, attempt, key="other_on_core"):
                break
            first = r
        if r["attempt"] == 2:
            r["first_attempt"] = first
        steps.append(r)
        if "error" in r:
            log(f"  error: {r['error']}")
            break
        log(f"  {r['process_cores']} cores, {r['us_per_frame']} us/frame, late p99 {r['late_ms']['p99']} ms, "
            f"written {r['written']}/{r['fed']}, dropped {r['dropped']}, {r['mb_per_s']} MB/s, other on core "
            f"{r['other_on_core']} → {'sustained' if r['sustained'] else 'NOT sustained'}")
        if not r["sustained"]:
            break


def part_weblag(args, work: Path, clipset: dict, results: dict) -> None:
    import weblag
    wdir = work / "weblag"
    wdir.mkdir()
    log(f"weblag: server + worker + {args.call_peers}-participant 640x480 class, {args.cycles} cycles")
    results["weblag"] = weblag.run(wdir, clipset[(640, 480)][0], clipset["opus"][0], peers=args.call_peers,
                                   cycles=args.cycles, idle_s=args.idle_s, call_s=args.call_s,
                                   record_s=args.record_s)
    if "error" in results["weblag"]:
        log(f"  error: {results['weblag']['error']}")


def part_post(args, work: Path, clipset: dict, results: dict) -> None:
    import postproc
    w, h = args.post_size
    results["post"] = r = postproc.run(work, minutes=args.post_minutes, participants=args.post_participants,
                                       width=w, height=h)
    if "error" in r:
        log(f"  error: {r['error']}")
    else:
        log(f"  {r['wall_s']} s wall for {r['recording_s']:.0f} s recorded ({r['wall_per_recorded_s']} s/s), "
            f"{r['cpu_s']} CPU-s, other load {r['other_load_cores']} cores")


def part_live(args, work: Path, clipset: dict, results: dict) -> None:
    import livebench
    results["live"] = runs = []
    for minutes in args.live_minutes:
        r = livebench.run(work, minutes=minutes, segment_s=args.live_segment_s, max_rtf=args.live_max_rtf,
                          width=args.live_size[0], height=args.live_size[1],
                          compare_full=args.live_compare, keep=args.keep)
        r["size"] = f"{args.live_size[0]}x{args.live_size[1]}"
        r["minutes"] = minutes
        runs.append(r)
        if "error" in r:
            log(f"  error: {r['error']}")
        else:
            log(f"  {minutes:g} min: ready {r['stop_to_ready_s']} s after Stop; live segments "
                f"{r['worker_cores_during_class']} cores during the class; fallback {r['fallback']}")


# -- report ----------------------------------------------------------------------------------
def report(args, results: dict, elapsed: float) -> None:
    meta = results["meta"]
    print()
    print(f"## Recording benchmark ({time.strftime('%Y-%m-%d')}, {meta['cpus']} CPUs, Python {meta['python']}, "
          f"aiortc {meta['aiortc']}, PyAV {meta['av']}, git {meta['git']}, {elapsed:.0f} s)")
    verdicts = []
    cpu = results.get("cpu", {})
    for size, modes in cpu.items():
        print()
        print(f"CPU per recorded {size} 30 fps VP8 track, recorder process, medians of {args.runs} runs "
              f"(% of one core per track at 30 fps = CPU per frame handled x 30):")
        rows, meds = [], {}
        for mode, runs in modes.items():
            ok = [r for r in runs if "error" not in r]
            if not ok:
                rows.append([MODE_NAMES[mode], None, "error", None, None, None, None, None, None])
                continue
            meds[mode] = med([r["pct_core_at_30fps"] for r in ok], 3)
            rows.append([MODE_NAMES[mode], ok[0]["tracks"], meds[mode], med([r["cpu_ms_per_frame"] for r in ok], 3),
                         med([r["handled_fps"] / r["expected_fps"] for r in ok], 3),
                         med([r["backlog_end"] for r in ok]), fmt_lag({"n": 1, "p99": med(
                             [r["recorder_loop_lag_ms"].get("p99", 0) for r in ok])}),
                         med([r["other_load_cores"] for r in ok], 2),
                         " · ".join(f"{r['pct_core_at_30fps']:.2f}" for r in ok)])
        if "live" in meds and "tap" in meds:
            own = [a["pct_core_at_30fps"] - b["pct_core_at_30fps"]
                   for a, b in zip([r for r in modes["live"] if "error" not in r],
                                   [r for r in modes["tap"] if "error" not in r])]
            rows.append(["live path's own (live − floor, per run)", None, med(own, 3), None, None, None, None, None,
                         " · ".join(f"{x:.2f}" for x in own)])
        print(table(["recorder", "tracks", "% core/track", "CPU ms/frame", "real-time (handled/expected)",
                     "backlog end", "loop lag p99 ms", "other load", "per run"], rows))
        if "live" in meds and "mediarecorder" in meds and meds["live"]:
            ratio = meds["mediarecorder"] / meds["live"]
            print(f"MediaRecorder ÷ live path: {ratio:.1f}x CPU per track")
            results.setdefault("ratios", {})[size] = round(ratio, 1)
            if size == "1280x720":
                verdicts.append(["live path ≤ 3 % of a core per 720p track", f"{meds['live']:.2f} %",
                                 "met" if meds["live"] <= 3 else "NOT met"])
                verdicts.append(["≥ 10x cheaper than MediaRecorder (720p)", f"{ratio:.1f}x",
                                 "met" if ratio >= 10 else "NOT met"])
    if results.get("ladder"):
        print()
        print("Real aiortc 720p tracks into one recorder process pinned to one core (live path; sender on the "
              "other core), one run per step:")
        rows = []
        best = 0
        for r in results["ladder"]:
            if "error" in r:
                rows.append([r["tracks"], "error"] + [None] * 8)
                continue
            if r["sustained"] and not r["sender_bound"]:
                best = max(best, r["tracks"])
            rows.append([r["tracks"], r["recorder_cores"], r["pct_core_per_track"],
                         f"{r['frames_handled']}/{r['frames_sent']}",
                         f"{r['losses']}/{r.get('gaps', 0)}/{r.get('dropped', 0)}",
                         fmt_lag(r["recorder_loop_lag_ms"]), f"{r['sent_fps']:.0f}/{r['expected_fps']:.0f}",
                         r["other_on_recorder_core"], r["udp_rcvbuf_errors"],
                         ("yes" if r["sustained"] else ("sender-bound" if r["sender_bound"] else "NO"))
                         + (" (2nd try)" if r.get("attempt") == 2 else "")])
        print(table(["tracks", "recorder cores", "% core/track", "frames handled/sent", "losses/gaps/drops",
                     "loop lag p99 ms", "sender fps/expected", "other load on core 0", "UDP rcvbuf errors",
                     "sustained"], rows))
        ok = [r for r in results["ladder"] if "error" not in r and r["sustained"]]
        proj = med([100 / r["pct_core_per_track"] for r in ok if r["pct_core_per_track"]], 0)
        results["ladder_max"] = best
        print(f"Most sustained: {best} tracks; CPU per track projects {proj} tracks on a whole core.")
        verdicts.append(["≥ 30 concurrent 720p tracks per core (real aiortc receive + live path)",
                         f"{best} sustained (projection {proj})", "met" if best >= 30 else "NOT met"])
    if results.get("writers"):
        print()
        print("The live path alone (taps + TrackWriters, no network), 720p tracks in one process pinned to one core:")
        rows = []
        best = 0
        for r in results["writers"]:
            if "error" in r:
                rows.append([r.get("tracks"), "error"] + [None] * 7)
                continue
            if r["sustained"]:
                best = max(best, r["tracks"])
            rows.append([r["tracks"], r["process_cores"], r["us_per_frame"], r["late_ms"]["p99"],
                         f"{r['written']}/{r['fed']}", r["dropped"], r["mb_per_s"], r["other_on_core"],
                         ("yes" if r["sustained"] else "NO") + (" (2nd try)" if r.get("attempt") == 2 else "")])
        print(table(["tracks", "process cores", "CPU us/frame", "feeder late p99 ms", "written/fed", "dropped",
                     "MB/s to disk", "other load on core", "sustained"], rows))
        results["writers_max"] = best
        print(f"Most sustained: {best} tracks.")
    if results.get("weblag") and results["weblag"].get("phases"):
        wl = results["weblag"]
        print()
        print(f"Web-process event-loop lag: WebSocket ping round trips every 20 ms (ms) to Podium and, at the same "
              f"instants, to a bare Tornado server (control); {wl['peers']}-participant {wl['size']} class "
              f"({wl.get('links')} mesh links + the recorder); medians over the windows of each phase:")
        by: dict[str, list] = {}
        for ph in wl["phases"]:
            if ph["rtt_ms"].get("n"):
                by.setdefault("idle" if ph["name"].startswith("idle") else ph["name"], []).append(ph)
        rows = []
        p99 = lambda phs, key="rtt_ms": med([p[key]["p99"] for p in phs], 2)  # noqa: E731
        excess = lambda phs: med([p["rtt_ms"]["p99"] - p["floor_rtt_ms"]["p99"] for p in phs], 2)  # noqa: E731
        for name, label in (("idle", "idle (server + registered worker)"), ("call", "call, not recording"),
                            ("recording", "call + recording"), ("post", "call + post-processing + uploads")):
            phs = by.get(name, [])
            if not phs:
                continue
            rows.append([label, sum(p["rtt_ms"]["n"] for p in phs), med([p["rtt_ms"]["p50"] for p in phs], 2),
                         p99(phs), med([p["rtt_ms"]["max"] for p in phs], 1),
                         med([p["floor_rtt_ms"]["p50"] for p in phs], 2), p99(phs, "floor_rtt_ms"), excess(phs),
                         med([p["server_cores"] for p in phs], 3), med([p["worker_cores"] for p in phs], 3),
                         med([p["machine_busy_cores"] for p in phs], 2),
                         " · ".join(f"{p['rtt_ms']['p99']:.1f}" for p in phs)])
        print(table(["phase", "samples", "Podium p50", "Podium p99", "Podium max", "control p50", "control p99",
                     "Podium − control p99", "server cores", "worker cores", "machine busy cores",
                     "Podium p99 per window"], rows))
        recs = [p.get("recording") for p in by.get("post", []) if p.get("recording")]
        if recs:
            print("Recordings: " + "; ".join(f"{r['id']} {r['status']} {r['duration_s']} s ({len(r['assets'])} assets)"
                                             for r in recs))
        base = by.get("call") or by.get("idle")
        for name in ("recording", "post"):
            phs = by.get(name)
            if not phs or not base:
                continue
            m, b = p99(phs), p99(base)
            mf, bf = p99(phs, "floor_rtt_ms"), p99(base, "floor_rtt_ms")
            # Unchanged within noise: against the call alone, or against the control measured in
            # the same windows (a rise the bare server shows too is the machine's, not Podium's).
            if m <= 1.2 * b + 1:
                verdict = "met"
            elif excess(phs) <= max(2.0, 0.1 * mf):
                verdict = "met for the web process (the control rose as much: machine load)"
            else:
                verdict = "NOT met"
            verdicts.append([f"web-process loop lag p99 unchanged while {'recording' if name == 'recording' else 'post-processing'}",
                             f"{m} ms vs {b} ms in the call alone (control {mf} vs {bf} ms)", verdict])
    if results.get("post"):
        r = results["post"]
        print()
        if "error" in r and "wall_s" not in r:
            print(f"Post-processing: error: {r['error']}")
        else:
            s = r["synth"]
            print("Post-processing (python -m media_worker.post, veryfast CRF 23, nice +10), one run:")
            print(table(["recording", "canvas", "wall s", "wall ÷ recorded", "CPU s", "CPU s per recorded s",
                         "post cores", "other load", "class.mp4"],
                        [[f"{s['duration_s'] / 60:g} min, {s['participants']} x {s['size']} {s['fps']} fps "
                          f"({s['bytes'] / 2**20:.0f} MiB)",
                          f"{r['canvas']['width']}x{r['canvas']['height']}" if r.get("canvas") else None,
                          r["wall_s"], r["wall_per_recorded_s"], r["cpu_s"], r["cpu_per_recorded_s"],
                          r["post_cores"], r["other_load_cores"],
                          f"{r['composite']['duration_s']} s, {r['composite']['size_mb']} MB" if r.get("composite")
                          else r.get("error")]]))
            verdicts.append([f"post-processing faster than real time ({s['duration_s'] / 60:g} min, "
                             f"{s['participants']} x {s['size']})",
                             f"{r['wall_s']:.0f} s for {r['recording_s']:.0f} s ({r['wall_per_recorded_s']}x)",
                             "met" if r["wall_per_recorded_s"] < 1 and r.get("exit") == 0 else "NOT met"])
    for r in results.get("live") or []:
        if "error" in r:
            print(f"Live segments, {r['minutes']:g} min: error: {r['error']}")
            continue
        print()
        print(f"Live segments, {r['minutes']:g}-minute class (4 x {r['size']} 30 fps, replayed on the wall clock, "
              f"segments of {args.live_segment_s:g} s, limit {args.live_max_rtf:g}x real time):")
        full = r.get("full_post") or {}
        print(table(["class", "segments (relayouts)", "x real time per segment (median, max)", "fallback",
                     "worker cores during class", "replay cores", "other load", "Stop → ready s",
                     "of it: segment under way", "post wall s", "old way post wall s"],
                    [[f"{r['class_wall_s']:.0f} s", f"{r['segments']} ({r['relayouts']})",
                      f"{med(r['rtf'], 2)}, {max(r['rtf']) if r['rtf'] else None}", r["fallback"],
                      r["worker_cores_during_class"], r["replay_cores"], r["other_load_cores_during_class"],
                      r["stop_to_ready_s"], r["finish_wait_s"], r["post"]["wall_s"], full.get("wall_s")]]))
        verdicts.append([f"ready <= 2 min after Stop ({r['minutes']:g}-min class)", f"{r['stop_to_ready_s']} s",
                         "met" if r["stop_to_ready_s"] <= 120 and r["post"].get("exit") == 0 else "NOT met"])
    if verdicts:
        print()
        print(table(["target", "measured", "verdict"], verdicts))


def parse_size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", default=",".join(p for p in PARTS if p != "live"),
                   help="default: all but live (a live run takes the class's length in real time)")
    p.add_argument("--runs", type=int, default=3, help="runs of each cpu configuration (default 3)")
    p.add_argument("--sizes", default="640x480,1280x720")
    p.add_argument("--modes", default="live,tap,mediarecorder", help="cpu part: live,tap,decode,mediarecorder")
    p.add_argument("--tracks", type=int, default=4, help="cpu part: tracks per run (live, tap, decode)")
    p.add_argument("--mr-tracks", type=int, default=1, help="cpu part: tracks per MediaRecorder run")
    p.add_argument("--window", type=float, default=6, help="measured seconds per run/step")
    p.add_argument("--warmup", type=float, default=2, help="seconds after every track is flowing")
    p.add_argument("--ladder", default="10,20,30,40,50,60,80", help="real tracks per core, in order, stop at the first failure")
    p.add_argument("--writer-ladder", default="60,120,240,480,960")
    p.add_argument("--call-peers", type=int, default=4)
    p.add_argument("--cycles", type=int, default=3)
    p.add_argument("--idle-s", type=float, default=10)
    p.add_argument("--call-s", type=float, default=10)
    p.add_argument("--record-s", type=float, default=20)
    p.add_argument("--post-minutes", type=float, default=10)
    p.add_argument("--post-participants", type=int, default=4)
    p.add_argument("--post-size", default="1280x720")
    p.add_argument("--live-minutes", default="10,30", help="live part: class lengths in minutes (each runs in real time)")
    p.add_argument("--live-segment-s", type=float, default=60.0)
    p.add_argument("--live-size", default="1280x720", help="live part: each participant's video size")
    p.add_argument("--live-max-rtf", type=float, default=1.0)
    p.add_argument("--live-compare", action="store_true", help="live part: also post-process each class the old way")
    p.add_argument("--json", help="write all raw results here (default: results.json in the temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs, clips)")
    args = p.parse_args()
    args.sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    args.ladder = [int(x) for x in args.ladder.split(",") if x.strip()]
    args.writer_ladder = [int(x) for x in args.writer_ladder.split(",") if x.strip()]
    args.post_size = parse_size(args.post_size)
    args.live_minutes = [float(x) for x in args.live_minutes.split(",") if x.strip()]
    args.live_size = parse_size(args.live_size)
    parts = [s.strip() for s in args.parts.split(",") if s.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        p.error(f"unknown parts {sorted(unknown)}; choose from {PARTS}")
    import aiortc
    import av
    work = Path(tempfile.mkdtemp(prefix="recording-bench-"))
    (work / "logs").mkdir()
    meta = {"cpus": os.cpu_count(), "python": platform.python_version(), "aiortc": aiortc.__version__,
            "av": av.__version__, "loadavg_start": os.getloadavg(), "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "args": {k: v for k, v in vars(args).items()},
            "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                  text=True).stdout.strip() + " + working tree",
            "df_tmp_free_gib": round(shutil.disk_usage(work).free / 2**30, 1)}
    results: dict = {"meta": meta}
    t_start = time.monotonic()
    try:
        sizes = sorted(set(args.sizes) | {(1280, 720), (640, 480)})
        log(f"work dir {work}; pre-encoding 10 s VP8 clips ({', '.join(f'{w}x{h}' for w, h in sizes)}) and Opus")
        clipset = clip_paths(work, sizes)
        meta["clips_kbps"] = {f"{k[0]}x{k[1]}": v[1] for k, v in clipset.items() if k != "opus"}
        for part in PARTS:
            if part in parts:
                globals()[f"part_{part}"](args, work, clipset, results)
    finally:
        meta["loadavg_end"] = os.getloadavg()
        meta["elapsed_s"] = round(time.monotonic() - t_start)
        out = Path(args.json) if args.json else work / "results.json"
        out.write_text(json.dumps(results, indent=1, default=str))
        log(f"raw results: {out}")
        if not args.keep:  # keep the results file; drop clips, recordings and logs
            for child in work.iterdir():
                if child != out:
                    shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink()
            if out.parent != work:
                work.rmdir()
    report(args, results, time.monotonic() - t_start)


if __name__ == "__main__":
    main()
