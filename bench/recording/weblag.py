"""Driver side of the web-process lag measurement: the real server (``python -m server serve``,
a migrated, seeded SQLite database), a real worker (``python -m media_worker``), the lag probe
(``lagprobe.py``) and a live class (``call.py``), through the phases

    idle → [call only → recording → post-processing (+ uploads)] × cycles → idle again

with the probe's ping round trips split by phase, and the CPU of the server and the worker in
each phase."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # bench/, for benchlib

import benchlib  # noqa: E402
from benchlib import PY, ROOT, log, machine_busy_s  # noqa: E402
from procs import Child, ChildError  # noqa: E402

JWT_SECRET = "bench-recording-secret-" + "r" * 40
SEED = ROOT / "bench" / "calls" / "seed.py"  # the call benchmark's seeding: a course room and its users


def podium_env(db_url: str, data_dir: Path, port: int = 0) -> dict:
    return benchlib.podium_env(db_url, data_dir, port, jwt_secret=JWT_SECRET, src=ROOT,
                               drop=("PODIUM_ENV", "ICE_SERVERS", "TURN_SECRET", "TURN_URLS", "STORAGE_URL",
                                     "REDIS_URL"))


class Floor(benchlib.Server):
    """The control: a bare Tornado WebSocket server (floor.py) on the same machine, pinged at
    the same instants as Podium."""

    def _command(self, work: Path):
        self.url = f"ws://127.0.0.1:{self.port}/ws"
        return [PY, str(HERE / "floor.py"), str(self.port)], dict(os.environ), ROOT


class Podium(benchlib.Server):
    def _command(self, work: Path, db: Path):
        run_dir = Path(tempfile.mkdtemp(prefix="podium-", dir=work))
        shutil.copy(db, run_dir / "podium.db")
        self.url = f"ws://127.0.0.1:{self.port}/ws"
        self.http = f"http://127.0.0.1:{self.port}"
        return [PY, "-m", "server", "serve"], podium_env(f"sqlite+aiosqlite:///{run_dir / 'podium.db'}", run_dir,
                                                         self.port), ROOT


def prepare(work: Path, users: int) -> tuple[Path, Path]:
    """A migrated SQLite database with one course room of ``users`` (the first its instructor)
    and their tokens (bench/calls/seed.py)."""
    tdir = work / "template"
    tdir.mkdir()
    db = tdir / "podium.db"
    env = podium_env(f"sqlite+aiosqlite:///{db}", tdir)
    subprocess.run([PY, "-m", "server", "migrate"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seed = work / "seed.json"
    subprocess.run([PY, str(SEED), str(seed), "--rooms", "1", "--peers", str(users)], cwd=ROOT, env=env, check=True)
    return db, seed


def start_worker(server_url: str, work: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WORKER_", "JWT_", "PODIUM_", "SERVER_URL", "DATA_DIR"))}
    env.update(SERVER_URL=server_url, JWT_SECRET=JWT_SECRET, WORKER_ID="bench-worker",
               WORKER_DIR=str(work / "worker"), WORKER_CAPACITY="2", WORKER_LOOPBACK_ONLY="1",
               WORKER_SHUTDOWN_S="10", PYTHONUNBUFFERED="1")
    logf = open(work / "logs" / "worker.log", "w")
    return subprocess.Popen([PY, "-m", "media_worker"], cwd=ROOT, env=env, stdout=logf, stderr=subprocess.STDOUT)


def wait_log(path: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{text!r} not in {path} after {timeout:.0f} s")


def fetch_recording(base: str, token: str, rid: str) -> dict:
    """Status, composite duration and asset kinds of a recording, from ``GET /api/recordings/{id}``."""
    import urllib.request
    req = urllib.request.Request(f"{base}/api/recordings/{rid}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        rec = json.loads(r.read())["recording"]
    return {"id": rid, "status": rec.get("status"), "duration_s": rec.get("duration_s"),
            "assets": sorted(a["kind"] for a in rec.get("assets", []))}


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    s = sorted(values)
    q = lambda f: round(s[min(len(s) - 1, int(len(s) * f))], 2)  # noqa: E731
    return {"n": len(s), "p50": q(0.5), "p99": q(0.99), "max": round(s[-1], 1)}


def run(work: Path, video: Path, audio: Path, *, peers: int, cycles: int, idle_s: float, call_s: float,
        record_s: float) -> dict:
    (work / "logs").mkdir(exist_ok=True)
    db, seed = prepare(work, peers + 1)  # the last user owns the probe's socket
    tokens = json.loads(seed.read_text())["rooms"][0]["tokens"]
    import psutil
    server = Podium("podium", work, db)
    try:
        floor = Floor("floor", work)
    except Exception:
        server.stop()
        raise
    srv_ps = psutil.Process(server.proc.pid)
    worker = start_worker(server.http, work)
    wrk_ps = psutil.Process(worker.pid)
    probe = call = None
    phases: list[dict] = []
    res: dict = {"peers": peers, "cycles": cycles, "size": "640x480", "fps": 30}
    current: dict = {}

    def cpu(p) -> float:
        t = p.cpu_times()
        return t.user + t.system + t.children_user + t.children_system  # the worker's post child included

    def begin(name: str, **extra) -> None:
        current.clear()
        current.update(name=name, t0=time.monotonic(), srv0=cpu(srv_ps), wrk0=cpu(wrk_ps), busy0=machine_busy_s(),
                       **extra)

    def end() -> None:
        t1 = time.monotonic()
        c = dict(current)
        dt = t1 - c["t0"]
        srv, wrk = cpu(srv_ps) - c.pop("srv0"), cpu(wrk_ps) - c.pop("wrk0")
        c.update(t1=t1, seconds=round(dt, 1), server_cores=round(srv / dt, 3), worker_cores=round(wrk / dt, 3),
                 machine_busy_cores=round((machine_busy_s() - c.pop("busy0")) / dt, 2))
        phases.append(c)

    try:
        wait_log(work / "logs" / "worker.log", "registered with", 30)
        probe = Child([PY, str(HERE / "lagprobe.py"), str(work / "probe.json"), f"{server.url}?token={tokens[peers]}",
                       floor.url], work / "logs" / "probe.log", cwd=ROOT)
        probe.expect("ready", 20)
        time.sleep(1.0)
        log(f"  idle {idle_s:.0f} s (server, registered worker, probe)")
        begin("idle")
        time.sleep(idle_s)
        end()
        call = Child([PY, str(HERE / "call.py"), server.url, str(seed), str(video), str(audio), "--peers", str(peers)],
                     work / "logs" / "call.log", cwd=ROOT)
        joined = call.expect("joined", 90)["joined"]
        res["links"] = joined["links"]
        time.sleep(2.0)
        for k in range(cycles):
            log(f"  cycle {k + 1}/{cycles}: call only {call_s:.0f} s, recording {record_s:.0f} s, post-processing")
            begin("call", cycle=k)
            time.sleep(call_s)
            end()
            begin("recording", cycle=k)
            rec = call.request({"cmd": "record"}, "recording", 90)["recording"]
            time.sleep(max(0.0, record_s - (time.monotonic() - current["t0"])))
            current["setup_s"] = round(rec["t_connected"] - rec["t_start"], 2)
            end()
            begin("post", cycle=k)
            stopped = call.request({"cmd": "stop"}, "stopped", 30)["stopped"]
            ready = call.expect("ready", 600)["ready"]
            current["recorded_s"] = stopped.get("duration_s")
            current["ready_after_s"] = round(ready["t_ready"] - ready["t_stop"], 1)
            end()
            phases[-1]["recording"] = fetch_recording(server.http, tokens[0], rec["id"])
            log(f"    recording {rec['id']}: {stopped.get('duration_s')} s recorded, ready "
                f"{ready['t_ready'] - ready['t_stop']:.1f} s after stop")
        call.stop(30)
        call = None
        time.sleep(2.0)
        begin("idle after")
        time.sleep(idle_s)
        end()
    except Exception as exc:  # reported with the run (and whatever phases completed); cleanup below
        res["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        if probe is not None:
            try:
                probe.request({"cmd": "quit"}, "done", 15)
            except ChildError as exc:  # no samples file then: the phases report no samples
                log(f"  lag probe: {exc}")
            probe.stop(5)
        if call is not None:
            call.stop(20)
        if worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        server.stop()
        floor.stop()
    samples = json.loads((work / "probe.json").read_text()) if (work / "probe.json").exists() else []
    for ph in phases:
        ph["rtt_ms"] = percentiles([rtt for t, rtt, k in samples if k == 0 and ph["t0"] <= t < ph["t1"]])
        ph["floor_rtt_ms"] = percentiles([rtt for t, rtt, k in samples if k == 1 and ph["t0"] <= t < ph["t1"]])
    res["phases"] = phases
    # The worst Podium round trips, with the floor's at the same instant, on the wall clock
    # (to line them up with the worker's log).
    wall = time.time() - time.monotonic()
    floor_at = {round(t, 4): rtt for t, rtt, k in samples if k == 1}
    worst = sorted((s for s in samples if s[2] == 0), key=lambda s: -s[1])[:20]
    res["worst"] = [{"wall": time.strftime("%H:%M:%S", time.localtime(t + wall)) + f"{(t + wall) % 1:.3f}"[1:],
                     "phase": next((ph["name"] for ph in phases if ph["t0"] <= t < ph["t1"]), "-"),
                     "podium_ms": round(rtt, 1), "floor_ms": floor_at.get(round(t, 4))} for t, rtt, _ in worst]
    return res
