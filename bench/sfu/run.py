#!/usr/bin/env python3
"""SFU benchmark: one teacher publishing a camera through Janus to N receive-only students,
through Podium's own signaling, for N = 0 (the floor), 10, 30, 50. Root only (it makes a
private network namespace, as the SFU tests do).

    sudo .venv/bin/python bench/sfu/run.py                      # 3 runs of 0/10/30/50 (~6 min)
    .venv/bin/python bench/sfu/run.py --runs 1 --sizes 0,10     # a quick look
    .venv/bin/python bench/sfu/run.py --parts mesh              # the mesh beside it only

What it starts, all inside one network namespace it creates (tests/sfu/netns.py: a veth pair
10.77.0.1 Janus / 10.77.0.2 peers that exists only there; nothing touches the machine's
network): a Janus with Podium's own generated config (server/sfu/janus_config.py), a Podium
web process (``python -m server serve``, SQLite, JANUS_URLS pointing at that Janus), the
teacher (``peers.py teacher``: VP8 640x480 30 fps capped at ~1 Mbps, random luma so the
encoder really spends it, plus Opus) and the students (``peers.py students``: one /ws each,
``call.join`` → ``sfu.subscribe`` → ``sfu.answer``, no decoding; in 1 process up to 10
students, else 2). Everything is killed on exit (errors and Ctrl-C too): the namespace's holder
and every process started inside it, and the temp dir is removed.

Measured per N and run: Janus's CPU (``/proc/<pid>/stat``, all threads) over a steady
``--window`` after every student has its first frame; minus the N=0 row (teacher publishing,
nobody subscribed) and divided by N, that is the CPU per forwarded subscriber stream (one
~1 Mbps VP8 + one Opus). Podium's web-process CPU during the joins (from the first
``call.join`` to the last first frame) and in the steady window. Join-to-first-frame: a
student's ``call.join`` sent → the first RTP packet of a VP8 key frame received (p50/p95 over
every student of every run). Per-student received video kbps in the window. The load average
and the whole machine's busy cores at each window (other people's load is not subtracted).

``--parts mesh`` (``mesh_cost.py``): the mesh beside it at 4 and 8 participants, same source.
Results: a table on stdout, all raw figures as JSON (``--json``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/, for benchlib
import benchlib  # noqa: E402
from benchlib import PY, ROOT, log, machine_busy_s, med, table  # noqa: E402

benchlib.reexec_in_venv(__file__)
sys.path.insert(0, str(ROOT))

from server.sfu.janus_config import settings_for, write_config  # noqa: E402
from tests.sfu.netns import JANUS_IFACE, PEER_ADDR, NetNamespace  # noqa: E402

HERE = Path(__file__).resolve().parent
JWT_SECRET = "bench-sfu-secret-" + "k" * 40
PODIUM_PORT = 8000  # on the namespace's own loopback: nothing else listens there
CLK = os.sysconf("SC_CLK_TCK")
TARGET_CORE_PCT_PER_STREAM = 1.0
TARGET_P95_S = 2.0


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process (every thread), seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


class Lines:
    """A child's stdout lines, read on a thread, waited for with a timeout."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.q = proc, queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def expect(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.q.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise TimeoutError(f"no {prefix!r} line within {timeout} s") from None
            if line is None:
                raise RuntimeError(f"peer process exited ({self.proc.poll()}) before {prefix!r}")
            if line.startswith(prefix):
                return line

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()


class Bench:
    def __init__(self, work: Path, ns: NetNamespace, rooms: int, students_per_room: int):
        self.work, self.ns = work, ns
        jdir = work / "janus"
        jdir.mkdir()
        self.js = settings_for(jdir, ws_port=8188, rtp_port_range="20000-29999",
                               ice_enforce_list=JANUS_IFACE, debug_level=3)
        write_config(self.js)
        self.janus = ns.popen(self.js.command(shutil.which("janus") or "janus"),
                              stdout=open(work / "janus.log", "wb"), stderr=subprocess.STDOUT)
        db = work / "podium.db"
        env = benchlib.podium_env(f"sqlite+aiosqlite:///{db}", work, PODIUM_PORT, jwt_secret=JWT_SECRET, src=ROOT,
                                  drop=("PODIUM_ENV", "ICE_SERVERS", "TURN_SECRET", "TURN_URLS", "REDIS_URL",
                                        "JANUS_URL", "JANUS_URLS"))
        subprocess.run([PY, "-m", "server", "migrate"], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        seed = work / "seed.json"
        subprocess.run([PY, str(ROOT / "bench" / "calls" / "seed.py"), str(seed), "--rooms", str(rooms),
                        "--peers", str(students_per_room + 1)], cwd=ROOT, env=env, check=True)
        self.seed = json.loads(seed.read_text())
        self._wait_janus()
        env.update({"JANUS_URLS": self.js.url, "JANUS_API_SECRET": self.js.api_secret,
                    "JANUS_ADMIN_KEY": self.js.room_admin_key, "LOG_LEVEL": "WARNING"})
        self.podium = ns.popen([PY, "-m", "server", "serve"], cwd=ROOT, env=env,
                               stdout=open(work / "podium.log", "wb"), stderr=subprocess.STDOUT)
        self._wait_podium()
        self.ws_url = f"ws://127.0.0.1:{PODIUM_PORT}/ws"

    def _wait_janus(self, timeout: float = 20) -> None:
        import socket
        deadline = time.monotonic() + timeout
        with self.ns.entered():
            while True:
                if self.janus.poll() is not None:
                    raise RuntimeError(f"janus exited with {self.janus.returncode}: see {self.work / 'janus.log'}")
                try:
                    socket.create_connection((self.js.ws_ip, self.js.ws_port), timeout=0.5).close()
                    return
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("janus did not listen") from None
                    time.sleep(0.1)

    def _wait_podium(self, timeout: float = 40) -> None:
        deadline = time.monotonic() + timeout
        with self.ns.entered():
            while True:
                if self.podium.poll() is not None:
                    raise RuntimeError(f"podium exited: see {self.work / 'podium.log'}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{PODIUM_PORT}/healthz", timeout=2) as r:
                        if r.status == 200:
                            return
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("podium not ready")
                time.sleep(0.2)

    def peer(self, role: str, cfg: dict, name: str) -> tuple[subprocess.Popen, Lines]:
        path = self.work / f"{name}.json"
        path.write_text(json.dumps({**cfg, "ws_url": self.ws_url, "peer_addr": PEER_ADDR}))
        proc = self.ns.popen([PY, str(HERE / "peers.py"), role, str(path)], cwd=ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=open(self.work / f"{name}.err", "w"), text=True)
        return proc, Lines(proc)

    def cpu(self, extra: list[int] = ()) -> dict:
        return {"t": time.monotonic(), "janus": proc_cpu_s(self.janus.pid), "podium": proc_cpu_s(self.podium.pid),
                "peers": sum(proc_cpu_s(p) for p in extra), "machine": machine_busy_s()}

    def run_once(self, run: int, sizes: list[int], window: float, settle: float) -> list[dict]:
        room = self.seed["rooms"][run]
        teacher, tl = self.peer("teacher", {"room": room["id"], "tokens": room["tokens"][:1]}, f"teacher{run}")
        rows = []
        try:
            ready = json.loads(tl.expect("READY", 60).split(" ", 1)[1])
            session = ready["session"]
            time.sleep(settle)
            next_student = 1
            for n in sizes:
                row = {"run": run, "n": n}
                procs: list[tuple[subprocess.Popen, Lines]] = []
                if n:
                    toks = room["tokens"][next_student:next_student + n]
                    next_student += n
                    parts = 1 if n <= 10 else 2
                    for k in range(parts):
                        procs.append(self.peer("students", {"session": session, "tokens": toks[k::parts]},
                                               f"students{run}-{n}-{k}"))
                    for _, ln in procs:
                        ln.expect("READY", 120)
                    pids = [p.pid for p, _ in procs]
                    a = self.cpu(pids)
                    for _, ln in procs:
                        ln.send("join")
                    for _, ln in procs:
                        ln.expect("JOINED", 90)
                    b = self.cpu(pids)
                    row.update({"join_phase_s": round(b["t"] - a["t"], 2),
                                "podium_join_cpu_s": round(b["podium"] - a["podium"], 3),
                                "janus_join_cpu_s": round(b["janus"] - a["janus"], 3)})
                    time.sleep(settle)
                    for _, ln in procs:
                        ln.send("mark")
                    for _, ln in procs:
                        ln.expect("MARKED", 30)
                pids = [p.pid for p, _ in procs]
                c = self.cpu(pids)
                time.sleep(window)
                d = self.cpu(pids)
                row["loadavg_1m"] = os.getloadavg()[0]
                secs = d["t"] - c["t"]
                row.update({"window_s": round(secs, 1),
                            "janus_core_pct": round(100 * (d["janus"] - c["janus"]) / secs, 2),
                            "podium_core_pct": round(100 * (d["podium"] - c["podium"]) / secs, 2),
                            "students_core_pct": round(100 * (d["peers"] - c["peers"]) / secs, 1),
                            "machine_busy_cores": round((d["machine"] - c["machine"]) / secs, 2)})
                studs: list[dict] = []
                for p, ln in procs:
                    ln.send("stop")
                    studs += json.loads(ln.expect("{", 60))["students"]
                    p.stdin.close()
                    p.wait(30)
                if n:
                    ff = [s["first_frame_s"] for s in studs if s["first_frame_s"] is not None]
                    row.update({"students": studs, "first_frames": ff, "errors": [s["error"] for s in studs if s["error"]],
                                "no_frame": sum(1 for s in studs if s["first_frame_s"] is None),
                                "media_paths": sorted({str(s["media_path"]) for s in studs}),
                                "video_kbps_median": med([s.get("video_kbps") for s in studs], 1),
                                "video_kbps_min": min((s.get("video_kbps") or 0) for s in studs)})
                log(f"run {run} N={n}: Janus {row['janus_core_pct']} % core, Podium {row['podium_core_pct']} %, "
                    f"load {row['loadavg_1m']:.1f}" + (f", first frame p50 {med(row['first_frames'], 3)} s, "
                                                         f"{row['no_frame']} without, video {row['video_kbps_median']} kbps"
                                                         if n else ""))
                rows.append(row)
                time.sleep(2)  # the students' leaving settles before the next size
        finally:
            if teacher.poll() is None:
                teacher.stdin.close()
                try:
                    line = tl.expect("{", 30)
                    if rows:
                        rows[0]["teacher"] = json.loads(line)
                except (TimeoutError, RuntimeError) as e:
                    log(f"teacher: {e}")
        return rows


def pctl(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def summarise(rows: list[dict], sizes: list[int]) -> list[dict]:
    floor_by_run = {r["run"]: r["janus_core_pct"] for r in rows if r["n"] == 0}
    out = []
    for n in sizes:
        rs = [r for r in rows if r["n"] == n]
        if not rs:
            continue
        s = {"n": n, "runs": len(rs), "janus_core_pct": med([r["janus_core_pct"] for r in rs], 2),
             "podium_core_pct": med([r["podium_core_pct"] for r in rs], 2),
             "students_core_pct": med([r["students_core_pct"] for r in rs], 1),
             "loadavg_1m": [round(r["loadavg_1m"], 1) for r in rs],
             "machine_busy_cores": med([r["machine_busy_cores"] for r in rs], 2)}
        if n:
            per = [(r["janus_core_pct"] - floor_by_run[r["run"]]) / n for r in rs if r["run"] in floor_by_run]
            ff = [v for r in rs for v in r["first_frames"]]
            s.update({"janus_pct_per_stream": med(per, 3), "janus_pct_per_stream_runs": [round(v, 3) for v in per],
                      "podium_join_cpu_ms_per_student": med([1000 * r["podium_join_cpu_s"] / n for r in rs], 1),
                      "join_phase_s": med([r["join_phase_s"] for r in rs], 2),
                      "first_frame_p50_s": pctl(ff, 50), "first_frame_p95_s": pctl(ff, 95),
                      "first_frame_max_s": max(ff) if ff else None,
                      "students_without_frame": sum(r["no_frame"] for r in rs),
                      "video_kbps_median": med([r["video_kbps_median"] for r in rs], 1),
                      "video_kbps_min": min(r["video_kbps_min"] for r in rs)})
        out.append(s)
    return out


def sfu_table(summary: list[dict]) -> str:
    rows = []
    for s in summary:
        n = s["n"]
        rows.append([n if n else "0 (floor)", s["runs"], s["janus_core_pct"],
                     s.get("janus_pct_per_stream"), s["podium_core_pct"], s.get("podium_join_cpu_ms_per_student"),
                     s.get("first_frame_p50_s"), s.get("first_frame_p95_s"),
                     f"{s.get('students_without_frame')}" if n else None,
                     s.get("video_kbps_median"), s.get("video_kbps_min"), s["students_core_pct"],
                     " ".join(str(v) for v in s["loadavg_1m"])])
    return table(["students N", "runs", "Janus % core", "Janus % core per stream (minus floor)",
                  "Podium % core steady", "Podium CPU ms per join", "join→1st frame p50 s", "p95 s",
                  "no frame", "video kbps/student (median)", "min", "students' procs % core", "load avg"], rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--sizes", default="0,10,30,50", help="students per size; 0 is the floor row (always added)")
    p.add_argument("--window", type=float, default=15, help="steady measuring window, seconds")
    p.add_argument("--settle", type=float, default=3)
    p.add_argument("--parts", default="sfu,mesh")
    p.add_argument("--mesh-sizes", default="4,8")
    p.add_argument("--json", help="write the raw results here (default: bench/sfu/results.json)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = p.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/sfu makes a private network namespace: run it as root")
    sizes = sorted({0, *(int(x) for x in args.sizes.split(",") if x.strip())})
    parts = [x.strip() for x in args.parts.split(",")]
    # Ctrl-C and SIGTERM both unwind through the finally below (SIGINT even when the shell
    # started us in the background with it ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    work = Path(tempfile.mkdtemp(prefix="bench-sfu-"))
    started = time.time()
    result: dict = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                "loadavg_at_start": os.getloadavg()},
                    "args": vars(args), "commit": subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT,
                                                                 capture_output=True, text=True).stdout.strip()}
    ns = None
    try:
        if "sfu" in parts:
            ns = NetNamespace.create(lifetime_s=int(args.runs * (len(sizes) * (args.window + 40) + 60) + 300))
            bench = Bench(work, ns, args.runs, sum(sizes))
            log(f"Janus pid {bench.janus.pid} ({Path(f'/proc/{bench.janus.pid}/comm').read_text().strip()}), "
                f"Podium pid {bench.podium.pid}; load {os.getloadavg()[0]:.1f}")
            rows = []
            for run in range(args.runs):
                rows += bench.run_once(run, sizes, args.window, args.settle)
            result["sfu_rows"] = rows
            result["sfu"] = summarise(rows, sizes)
            ns.close()
            ns = None
        if "mesh" in parts:
            import mesh_cost  # noqa: E402 - bench/sfu/mesh_cost.py
            result["mesh"] = mesh_cost.measure(work, [int(x) for x in args.mesh_sizes.split(",")], args.window,
                                               max(1, min(args.runs, 3)))
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
        raise
    finally:
        if ns is not None:
            ns.close()
        out = Path(args.json) if args.json else HERE / "results.json"
        result["wall_s"] = round(time.time() - started, 1)
        out.write_text(json.dumps(result, indent=1))
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")
    print()
    if "sfu" in result:
        print("SFU (Janus 1.1.2, one teacher VP8 640x480 30 fps + Opus; medians of runs; per stream = "
              "(Janus % core at N - at N=0 in the same run) / N):")
        print(sfu_table(result["sfu"]))
        for s in result["sfu"]:
            if s["n"]:
                print(f"  N={s['n']}: per stream {s['janus_pct_per_stream']} % core (target ≤ {TARGET_CORE_PCT_PER_STREAM}) "
                      f"runs {s['janus_pct_per_stream_runs']}; join→first frame p95 {s['first_frame_p95_s']} s "
                      f"(target ≤ {TARGET_P95_S} at 50)")
        t = next((r.get("teacher") for r in result.get("sfu_rows", []) if r.get("teacher")), None)
        if t:
            print(f"  teacher uplink: {t['video_senders']} video stream(s) on {t['peer_connections']} connection, "
                  f"whatever N")
    if "mesh" in result:
        import mesh_cost  # noqa: E402
        print()
        print(mesh_cost.report(result["mesh"], result.get("sfu")))
    print(f"\nraw results: {out}")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
