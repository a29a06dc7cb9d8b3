#!/usr/bin/env python3
"""Scale-out benchmarks (issue #6): chat fan-out with one and two web processes, and a bounded soak.

From the repository root:

    .venv/bin/python bench/scaleout/run.py fanout            # 3 configurations x 3 runs (~3 min)
    .venv/bin/python bench/scaleout/run.py soak              # 2,000 sockets, 2 processes, 5 minutes (~6 min)
    .venv/bin/python bench/scaleout/run.py fanout --runs 1 --quiet-wait 0     # a quick look
    .venv/bin/python bench/scaleout/run.py soak --minutes 0.5 --quiet-wait 0  # a quick soak

Both need PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth) and Redis on 127.0.0.1:6379
(``--redis-url``). Per run the script (re)creates database ``bench_scaleout`` (``--db``),
migrates it (``python -m server migrate``), seeds it with ``bench/fanout/seed.py``, starts each
web process (``python -m server serve``) on a free loopback port with its own ``DATA_DIR`` and a
random ``REDIS_PREFIX`` (so concurrent test suites on the same Redis never see its notices), and
drives them with ``harness.js`` (Node). Server processes are killed on exit, also on Ctrl-C and
on errors (and by the kernel if this script dies: PR_SET_PDEATHSIG).

fanout: N=200 subscribers in one room (``--subs``), 2 publishers (not subscribed) sending
5,000 messages with at most 50 unacked in total, in three configurations: one process without
Redis, one process with Redis, two processes with Redis (subscribers and publishers split
evenly). Deliveries/s, server CPU per delivery, p50/p99 delivery latency, harness CPU.

soak: 2,000 sockets in 50 rooms of 40 (20 per room on each process), each room gets ``--rate``
messages/s from a random member, each with typing on/off around it, for ``--minutes``; checks
zero protocol errors, every acked message received exactly once by every member in seq order,
and RSS (sampled every 5 s) flat over the last 3 minutes (growth <= 5 %).
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import secrets
import shutil
import signal
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

HERE = Path(__file__).resolve().parent
SEED = ROOT / "bench" / "fanout" / "seed.py"
JWT_SECRET = "bench-scaleout-secret-" + "s" * 40
PG = ("-h", "127.0.0.1", "-p", "5432", "-U", "postgres")
# Variables of the caller's environment that would change what a server subprocess does.
SCRUB = ("PODIUM_ENV", "REDIS_URL", "REDIS_PREFIX", "DATABASE_URL", "DATA_DIR", "RATE_LIMIT_PER_S",
         "RATE_LIMIT_BURST", "HEARTBEAT_S", "METRICS_TOKEN", "LOG_JSON")
CONFIGS = {  # name → (web processes, with Redis)
    "1p": (1, False),
    "1p+redis": (1, True),
    "2p+redis": (2, True),
}
CONFIG_LABELS = {"1p": "1 process, no Redis", "1p+redis": "1 process + Redis", "2p+redis": "2 processes + Redis"}


# --- processes --------------------------------------------------------------------------------
def _pdeathsig():
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with this script
    return preexec


PREEXEC = _pdeathsig()
LIVE: list["Web"] = []  # every server started; stopped in main()'s finally


class Web:
    """One ``python -m server serve`` on a free 127.0.0.1 port."""

    def __init__(self, work: Path, db_url: str, redis: tuple[str, str] | None, bench_limits: bool, name: str,
                 floor: str | None = None):
        """``floor``: soak_floor.py (a bare Tornado server for the soak's traffic) instead of Podium;
        "floor-pg": it stores each message in the bench database first."""
        self.port = benchlib.free_port()
        self.name = name
        data = work / f"data-{name}-{self.port}"
        data.mkdir()
        env = {k: v for k, v in os.environ.items() if k not in SCRUB}
        env.update(benchlib.podium_env(db_url, data, self.port, jwt_secret=JWT_SECRET, src=ROOT, drop=SCRUB))
        if not bench_limits:  # the soak runs with the default per-user rate limits
            env.pop("RATE_LIMIT_PER_S")
            env.pop("RATE_LIMIT_BURST")
        if redis:
            env["REDIS_URL"], env["REDIS_PREFIX"] = redis
        self.logf = open(work / f"server-{name}-{self.port}.log", "w")
        cmd = [PY, "-m", "server", "serve"]
        if floor:
            cmd = [PY, str(HERE / "soak_floor.py"), str(self.port)]
            if floor == "floor-pg":
                cmd.append(db_url.replace("postgresql+asyncpg://", "postgresql://"))
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.logf,
                                     stderr=subprocess.STDOUT, preexec_fn=PREEXEC)
        LIVE.append(self)
        self.url = f"ws://127.0.0.1:{self.port}/ws"
        deadline = time.monotonic() + 40
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.logf.name}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not healthy after 40 s; see {self.logf.name}")
            time.sleep(0.1)
        import psutil
        self.ps = psutil.Process(self.proc.pid)

    def cpu_s(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def rss(self) -> int:
        return self.ps.memory_info().rss

    def cpu_split(self) -> tuple[float, float]:
        t = self.ps.cpu_times()
        return t.user, t.system

    def metrics(self) -> dict[str, float]:
        """The podium_* counters of GET /metrics (no labels)."""
        out = {}
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
                for line in r.read().decode().splitlines():
                    if line.startswith("podium_") and "{" not in line:
                        k, _, v = line.partition(" ")
                        out[k] = float(v)
        except OSError as e:
            out["error"] = str(e)
        return out

    def log_size(self) -> int:
        self.logf.flush()
        return Path(self.logf.name).stat().st_size

    def log_problems(self, split: int | None) -> dict:
        """Log lines at WARNING or above before byte offset ``split`` and after it, with samples."""
        self.logf.flush()
        data = Path(self.logf.name).read_bytes()
        split = len(data) if split is None else split
        out = {}
        for part, text in (("during", data[:split]), ("after", data[split:])):
            bad = [ln for ln in text.decode(errors="replace").splitlines()
                   if any(f" {lvl} " in ln for lvl in ("WARNING", "ERROR", "CRITICAL")) or "Traceback" in ln]
            kinds: dict[str, int] = {}
            for ln in bad:
                key = ln.split(" ", 3)[-1][:90]
                kinds[key] = kinds.get(key, 0) + 1
            out[part] = {"lines": len(bad), "kinds": dict(sorted(kinds.items(), key=lambda kv: -kv[1])[:5])}
        return out

    def stop(self) -> None:
        benchlib.stop_process(self.proc, signal.SIGTERM, 8)
        self.logf.close()
        if self in LIVE:
            LIVE.remove(self)


def stop_all() -> None:
    for w in list(LIVE):
        try:
            w.stop()
        except Exception:  # noqa: BLE001 - best effort, then SIGKILL
            try:
                w.proc.kill()
            except OSError:
                pass


def redis_process(url: str):
    """The redis-server serving ``url`` on loopback (for its CPU time), or None."""
    import psutil
    port = url.rsplit(":", 1)[-1].split("/")[0]
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            if p.info["name"] == "redis-server" and any(port in a for a in p.info["cmdline"] or ()):
                return p
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return None


def pg_backends_cpu(db: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend connected to ``db`` (the servers' pools)."""
    import psutil
    out = {}
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            cmd = " ".join(p.info["cmdline"] or ())
            if cmd.startswith("postgres:") and f" {db} " in cmd:
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


def pg_delta(a: dict[int, float], b: dict[int, float]) -> float:
    return sum(v - a.get(pid, 0.0) for pid, v in b.items())


def proc_cpu(p) -> float:
    if p is None:
        return 0.0
    try:
        t = p.cpu_times()
        return t.user + t.system
    except Exception:  # noqa: BLE001 - it went away
        return 0.0


# --- set-up -----------------------------------------------------------------------------------
def check_services(redis_url: str) -> None:
    if subprocess.run(["pg_isready", *PG[:4]], capture_output=True).returncode != 0:
        sys.exit("PostgreSQL does not answer on 127.0.0.1:5432")
    import redis
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
    except Exception as e:  # noqa: BLE001
        sys.exit(f"Redis does not answer at {redis_url}: {e}")


def ensure_deps() -> None:
    benchlib.ensure_deps(HERE, ("ws",), "psutil", ROOT / "bench" / "requirements.txt")


def build_c_subs(work: Path) -> Path:
    """Compile subs.c (the C subscriber client) into the run's temp dir; gcc is on every machine here."""
    out = work / "subs"
    subprocess.run(["gcc", "-O2", "-Wall", "-o", str(out), str(HERE / "subs.c")], check=True)
    return out


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def fresh_db(db: str, work: Path, seed_args: list[str]) -> tuple[str, Path]:
    """Drop, create, migrate and seed ``db``; (DATABASE_URL, seed JSON)."""
    subprocess.run(["dropdb", *PG, "--if-exists", "--force", db], check=True, capture_output=True)
    subprocess.run(["createdb", *PG, db], check=True, capture_output=True)
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{db}"
    env = {k: v for k, v in os.environ.items() if k not in SCRUB}
    env.update(benchlib.podium_env(url, work / "seed-data", 0, jwt_secret=JWT_SECRET, src=ROOT, drop=SCRUB))
    subprocess.run([PY, "-m", "server", "migrate"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)
    out = work / f"seed-{db}.json"
    subprocess.run([PY, str(SEED), str(out), *seed_args], cwd=ROOT, env=env, check=True, stderr=subprocess.DEVNULL)
    return url, out


def wait_quiet(max_wait: float, below: float) -> dict:
    """Wait (up to ``max_wait`` s) until the 1-minute load average is below ``below``."""
    start = os.getloadavg()[0]
    t0 = time.monotonic()
    if max_wait > 0 and start >= below:
        log(f"load average {start:.2f} >= {below}: waiting up to {max_wait:.0f} s for a quieter machine")
    while max_wait > 0 and os.getloadavg()[0] >= below and time.monotonic() - t0 < max_wait:
        time.sleep(5)
    now = os.getloadavg()[0]
    waited = time.monotonic() - t0
    log(f"load average at start {now:.2f} (was {start:.2f}; waited {waited:.0f} s)")
    return {"loadavg_before_wait": round(start, 2), "loadavg_start": round(now, 2), "waited_s": round(waited)}


def run_fanout(config: str, args, work: Path, profile_dir: Path | None) -> dict:
    nproc, with_redis = CONFIGS[config]
    url, seed = fresh_db(args.db, work, ["--subs", str(args.subs), "--fanout-members", str(args.subs),
                                         "--idle-room-size", str(args.subs), "--senders", "1"])
    redis = (args.redis_url, f"bench-scaleout-{secrets.token_hex(4)}") if with_redis else None
    servers = [Web(work, url, redis, True, f"{config}-{i}") for i in range(nproc)]
    rproc = redis_process(args.redis_url) if with_redis else None
    marks: dict[str, tuple] = {}
    splits: dict[str, list] = {}
    profs: list = []
    try:
        def on_phase(name: str) -> None:
            marks[name] = ([s.cpu_s() for s in servers], machine_busy_s(), proc_cpu(rproc), time.monotonic(),
                           pg_backends_cpu(args.db))
            splits[name] = [s.cpu_split() for s in servers]
            if profile_dir is not None and name == "start":
                profs.extend(benchlib.Profiler(s.proc.pid, profile_dir / f"{config}-{i}.txt", 300)
                             for i, s in enumerate(servers))
            if profs and name == "end":
                for i, p in enumerate(profs):
                    (profile_dir / f"{config}-{i}-top.txt").write_text(p.finish())

        cfg = {"scenario": "fanout", "urls": [s.url for s in servers], "seed": str(seed), "subs": args.subs,
               "publishers": args.publishers, "messages": args.messages, "window": args.window,
               "publishers_on_first": args.publishers_on == "first",
               "client": args.client, "c_subs": str(args.c_subs), "timeout_s": args.timeout, "hard_deadline_s": int(args.timeout + 90)}
        res = benchlib.run_harness(HERE / "harness.js", cfg, args.timeout + 100, on_phase)
        if "error" in res:
            return res
        (c0, m0, r0, t0, pg0), (c1, m1, r1, t1, pg1) = marks["start"], marks["end"]
        wall = max(t1 - t0, 1e-3)
        per = [b - a for a, b in zip(c0, c1)]
        srv = sum(per)
        pg = pg_delta(pg0, pg1)
        d = max(res["deliveries"], 1)
        res.update({
            "config": config, "server_cpu_s": round(srv, 3), "server_cpu_s_per_proc": [round(x, 3) for x in per],
            "server_cores_per_proc": [round(x / wall, 2) for x in per],
            "server_us_per_delivery": round(srv * 1e6 / d, 3),
            "client_cores": round(res["client_cpu_s"] / wall, 2),
            "client_us_per_delivery": round(res["client_cpu_s"] * 1e6 / d, 3),
            "redis_cores": round((r1 - r0) / wall, 2) if rproc else None,
            "machine_busy_cores": round((m1 - m0) / wall, 2),
            "pg_cores": round(pg / wall, 2),
            # Kernel share of the web processes' CPU (socket writes, loopback TCP).
            "server_sys_share": round(sum(b[1] - a[1] for a, b in zip(splits["start"], splits["end"])) / max(srv, 1e-6), 2),
            # Everything else busy meanwhile: PostgreSQL, Redis, other engineers' tests.
            "rest_cores": round(max(0.0, (m1 - m0) - srv - res["client_cpu_s"]) / wall, 2),
            # ... minus this run's PostgreSQL backends and redis-server: other engineers' tests, the kernel.
            "other_cores": round(max(0.0, (m1 - m0) - srv - res["client_cpu_s"] - pg - (r1 - r0 if rproc else 0))
                                 / wall, 2),
            "metrics": [s.metrics() for s in servers],
        })
        return res
    finally:
        for p in profs:
            if p.proc.poll() is None:
                p.finish()
        for s in servers:
            s.stop()


def fanout_main(args, work: Path, meta: dict) -> dict:
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    results: dict[str, list] = {c: [] for c in configs}
    prof_dir = None
    if args.profile:
        prof_dir = work / "profiles"
        prof_dir.mkdir(exist_ok=True)
    meta["quiet"] = []
    meta["disturbed"] = []
    for run in range(args.runs):
        order = configs if run % 2 == 0 else configs[::-1]  # interleaved, alternating order
        for c in order:
            for attempt in range(1 + args.retries):
                q = wait_quiet(args.quiet_wait, args.quiet_below)
                meta["quiet"].append(q)
                try:
                    res = run_fanout(c, args, work, prof_dir if run == 0 and attempt == 0 else None)
                except Exception as e:  # noqa: BLE001 - recorded, not fatal
                    res = {"error": f"{type(e).__name__}: {e}"}
                res["loadavg_start"] = q["loadavg_start"]
                if "error" in res or res["other_cores"] <= args.max_other or attempt == args.retries:
                    break
                log(f"run {run + 1} {c}: other load {res['other_cores']} cores > {args.max_other}: "
                    f"{res['deliveries_per_s']:,}/s discarded, running it again")
                meta["disturbed"].append({"config": c, "run": run + 1, **res})
            results[c].append(res)
            if "error" in res:
                log(f"run {run + 1} {c}: ERROR {res['error'][:400]}")
            else:
                log(f"run {run + 1} {c}: {res['deliveries_per_s']:,}/s, p50 {res['latency_ms']['p50']} "
                    f"p99 {res['latency_ms']['p99']} ms, server {res['server_us_per_delivery']} µs/delivery "
                    f"(cores {res['server_cores_per_proc']}), harness {res['client_cores']} cores "
                    f"({res['client_us_per_delivery']} µs/delivery), PostgreSQL {res['pg_cores']}, other {res['other_cores']} cores, "
                    f"{res.get('frames_per_read')} messages per socket read, server sys share {res['server_sys_share']}, "
                    f"socket writes {[m.get('podium_deliveries_total') for m in res['metrics']]}"
                    + ("" if res["complete"] else f" INCOMPLETE {res['deliveries']}/{res['expected']}"))
    return results


def fanout_report(results: dict, args) -> str:
    def ok(c):
        return [r for r in results.get(c, []) if "error" not in r]

    rows = []
    meds = {}
    for c in results:
        rs = ok(c)
        if not rs:
            rows.append([CONFIG_LABELS[c], "ERROR", *[None] * 12])
            continue
        m = meds[c] = med([r["deliveries_per_s"] for r in rs])
        rows.append([
            CONFIG_LABELS[c], f"{m:,.0f}",
            f"{med([r['server_us_per_delivery'] for r in rs]):.2f}",
            " + ".join(f"{med([r['server_cores_per_proc'][i] for r in rs]):.2f}" for i in range(len(rs[0]["server_cores_per_proc"]))),
            f"{med([r['latency_ms']['p50'] for r in rs]):.1f}", f"{med([r['latency_ms']['p99'] for r in rs]):.1f}",
            f"{med([r['client_cores'] for r in rs]):.2f} ({med([r['client_us_per_delivery'] for r in rs]):.2f} µs)",
            "-" if rs[0].get("redis_cores") is None else f"{med([r['redis_cores'] for r in rs]):.2f}",
            f"{med([r['pg_cores'] for r in rs]):.2f}", f"{med([r['other_cores'] for r in rs]):.2f}",
            f"{med([r['machine_busy_cores'] for r in rs]):.2f}",
            f"{med([r['deliveries_per_s'] / max(r['server_cores_per_proc']) for r in rs]):,.0f}",
            "-" if med([r.get("frames_per_read") for r in rs]) is None else f"{med([r.get('frames_per_read') for r in rs]):.1f}",
            " · ".join(f"{r['deliveries_per_s']:,}" if "error" not in r else "ERR" for r in results[c]),
        ])
    out = table(["configuration", "deliveries/s", "server CPU µs/delivery", "server cores (per process)",
                 "p50 ms", "p99 ms", "harness cores (µs/delivery)", "redis-server cores", "PostgreSQL cores", "other load cores",
                 "machine busy cores", "ceiling: deliveries/s at 1 core per process", "messages per socket read",
                 "deliveries/s per run"], rows)
    lines = [out, "", "ceiling = deliveries/s ÷ the busiest web process's cores: the rate if each web process had a "
             "core of its own and nothing else limited it (same CPU per delivery)."]
    ceil = {c: med([r["deliveries_per_s"] / max(r["server_cores_per_proc"]) for r in ok(c)]) for c in results if ok(c)}
    two = meds.get("2p+redis")
    for base in ("1p+redis", "1p"):
        if two and meds.get(base):
            r = two / meds[base]
            lines.append(f"ratio 2 processes / {CONFIG_LABELS[base]}: {r:.2f}x"
                         + (f"  -> target >= 1.6x {'MET' if r >= 1.6 else 'NOT MET'}" if base == "1p+redis" else ""))
            if ceil.get("2p+redis") and ceil.get(base):
                lines.append(f"   ceiling ratio: {ceil['2p+redis'] / ceil[base]:.2f}x")
            # The most two processes could deliver on this machine, relative to one: the CPU
            # per delivery of the two web processes (as measured) plus that of everything else
            # the one-process run kept busy for its deliveries (harness, PostgreSQL, Redis; not
            # other programs' load), times the one-process rate, must fit in the machine's cores.
            rate1 = meds[base]
            rest = med([r["machine_busy_cores"] - r["other_cores"] - sum(r["server_cores_per_proc"]) for r in ok(base)])
            web2 = med([r["server_us_per_delivery"] for r in ok("2p+redis")]) * rate1 / 1e6
            bound = (os.cpu_count() or 2) / (web2 + rest)
            lines.append(f"   machine bound: {bound:.2f}x (at {CONFIG_LABELS[base]}'s rate two processes' web CPU would be "
                         f"{web2:.2f} cores and harness + PostgreSQL + Redis {rest:.2f})")
            per_run = [a["deliveries_per_s"] / b["deliveries_per_s"] for a, b in zip(results["2p+redis"], results[base])
                       if "error" not in a and "error" not in b]
            if per_run:
                lines.append(f"   per run (paired): {' · '.join(f'{x:.2f}' for x in per_run)}")
    for c in results:
        for r in results[c]:
            if "error" in r:
                lines.append(f"ERROR {c}: {r['error'][:300]}")
            elif not r["complete"] or r["errors"] or r["unexpected_closes"]:
                lines.append(f"WARNING {c}: complete={r['complete']} errors={r['errors']} closes={r['unexpected_closes']}")
    return "\n".join(lines)


# --- soak -------------------------------------------------------------------------------------
def soak_main(args, work: Path, meta: dict) -> dict:
    meta["quiet"] = [wait_quiet(args.quiet_wait, args.quiet_below)]
    n_rooms = -(-args.conns // args.room_size)
    log(f"seeding {args.conns} users in {n_rooms} rooms of {args.room_size}")
    url, seed = fresh_db(args.db, work, ["--subs", str(args.conns), "--fanout-members", "0",
                                         "--idle-room-size", str(args.room_size), "--senders", "1"])
    redis = None if args.no_bus else (args.redis_url, f"bench-scaleout-{secrets.token_hex(4)}")
    if args.no_bus and args.procs != 1:
        raise SystemExit("--no-bus runs one process (--procs 1): processes share rooms over the bus")
    if args.server == "floor" and args.procs != 1:
        raise SystemExit("--server floor runs one process (--procs 1): it has no bus between processes")
    floor = None if args.server == "podium" else args.server
    servers = [Web(work, url, redis, False, f"soak-{i}", floor=floor) for i in range(args.procs)]
    rproc = redis_process(args.redis_url)
    samples: list[dict] = []
    marks: dict[str, tuple] = {}
    stop = threading.Event()

    def sampler() -> None:
        t0 = time.monotonic()
        k = 0
        while not stop.is_set():
            try:
                samples.append({"t": round(time.monotonic() - t0, 2), "rss": [s.rss() for s in servers],
                                "cpu": [s.cpu_s() for s in servers], "busy": machine_busy_s(),
                                "pg": pg_backends_cpu(args.db)})
            except Exception:  # noqa: BLE001 - a server died: the result says so
                pass
            k += 1
            stop.wait(max(0.0, t0 + k * args.sample_s - time.monotonic()))

    th = threading.Thread(target=sampler, daemon=True)

    metrics: list = []
    log_pos: list = []
    profs: list = []

    def on_phase(name: str) -> None:
        marks[name] = ([s.cpu_s() for s in servers], machine_busy_s(), proc_cpu(rproc), time.monotonic())
        if name == "start":
            th.start()
            if args.profile:
                profs.extend(benchlib.Profiler(s.proc.pid, work / f"soak-{i}.txt", int(duration) + 5)
                             for i, s in enumerate(servers))
        elif name == "traffic_end" and profs:
            for i, p in enumerate(profs):
                print(f"\n== py-spy: soak server {i + 1}, traffic phase ==\n{p.finish()}", flush=True)
        elif name == "end":
            stop.set()
            # Before the harness closes its sockets (it waits 2 s after this line).
            metrics.extend(s.metrics() for s in servers)
            log_pos.extend(s.log_size() for s in servers)
        if name in ("open_end", "traffic_end"):
            log(f"soak: {name}")

    duration = args.minutes * 60
    cfg_win = 30 if duration >= 120 else 10
    cfg = {"scenario": "soak", "timeline_s": cfg_win, "urls": [s.url for s in servers], "seed": str(seed), "conns": args.conns,
           "room_size": args.room_size, "rate": args.rate, "duration_s": duration, "drain_s": 30,
           "typing": not args.no_typing, "hard_deadline_s": int(duration + 400)}
    try:
        log(f"soak: {args.conns} connections over {args.procs} processes, {args.rate:g} msg/s per room, "
            f"{args.minutes:g} min")
        res = benchlib.run_harness(HERE / "harness.js", cfg, duration + 420, on_phase)
        stop.set()
        res["metrics"] = metrics or [s.metrics() for s in servers]
        res["alive"] = [s.proc.poll() is None for s in servers]
        # Server log lines at WARNING or above: up to the end of the measured phase, and after it
        # (when the harness closes all its sockets at once).
        res["log_problems"] = [s.log_problems(pos) for s, pos in zip(servers, log_pos or [None] * len(servers))]
    finally:
        stop.set()
        for s in servers:
            s.stop()
    if "error" in res:
        return {"result": res, "samples": samples}
    (c0, m0, r0, t0), (c1, m1, r1, t1) = marks["start"], marks["traffic_end"]
    wall = max(t1 - t0, 1e-3)
    per = [b - a for a, b in zip(c0, c1)]
    res.update({"server_cpu_s_per_proc": [round(x, 2) for x in per],
                "server_cores_per_proc": [round(x / wall, 3) for x in per],
                "client_cores": round(res["client_cpu_s"] / max(marks["end"][3] - t0, 1e-3), 3),
                "redis_cores": round((r1 - r0) / wall, 3),
                "machine_busy_cores": round((m1 - m0) / wall, 2),
                "open_cpu_s_per_proc": [round(b - a, 2) for a, b in zip(marks["open_start"][0], marks["open_end"][0])]})
    # RSS over the last 3 minutes of traffic (the last 60 % when the run is shorter than 5 minutes).
    window = min(180.0, duration * 0.6)
    t_end = t1 - marks["start"][3]
    last = [s for s in samples if t_end - window - 0.5 <= s["t"] <= t_end + 0.5]
    mem = []
    for i in range(len(servers)):
        if len(last) >= 2:
            a, b = last[0]["rss"][i], last[-1]["rss"][i]
            mem.append({"first_mb": round(a / 2**20, 1), "last_mb": round(b / 2**20, 1),
                        "max_mb": round(max(s["rss"][i] for s in last) / 2**20, 1),
                        "growth_pct": round((b - a) * 100 / a, 2),
                        "at_start_mb": round(samples[0]["rss"][i] / 2**20, 1)})
    res["memory"] = {"window_s": window, "samples_in_window": len(last), "per_proc": mem}
    # Per timeline window: what the web processes, PostgreSQL and the whole machine used.
    for w in res.get("timeline", []):
        a = [x for x in samples if w["from_s"] - 0.5 <= x["t"] <= w["from_s"] + cfg_win + 0.5]
        if len(a) >= 2:
            dt = max(a[-1]["t"] - a[0]["t"], 1e-3)
            w["server_cores"] = (sum(a[-1]["cpu"]) - sum(a[0]["cpu"])) / dt
            w["pg_cores"] = pg_delta(a[0]["pg"], a[-1]["pg"]) / dt
            w["machine_busy_cores"] = (a[-1]["busy"] - a[0]["busy"]) / dt
    return {"result": res, "samples": samples}


def soak_report(out: dict, args) -> str:
    res = out["result"]
    if "error" in res:
        return f"ERROR: {res['error'][:2000]}"
    lines = []
    c = res["counters"]
    lines.append(table(["check", "measured", "verdict"], [
        ["protocol errors (error frames + unexpected closes + refused sends + wrong-room frames)",
         f"{res['protocol_errors']} ({c['error_frames']} + {c['unexpected_closes']} + {c['send_errors']} + "
         f"{c['out_of_room']})", "OK" if res["protocol_errors"] == 0 else "FAIL"],
        ["acked messages received exactly once by every member, gapless, in order",
         f"{res['received_deliveries']:,} of {res['expected_deliveries']:,} ({res['acked']:,} acked messages); "
         f"lost {res['lost']}, extra {res['extra']}, dup {c['dup']}, gaps {c['gap']}, rooms with non-contiguous "
         f"acks {res['rooms_bad']}, members off {res['conns_bad']}",
         "OK" if (res["lost"] == 0 and res["extra"] == 0 and c["dup"] == 0 and c["gap"] == 0
                  and res["rooms_bad"] == 0 and res["conns_bad"] == 0 and res["acked"] > 0) else "FAIL"],
        *[[f"RSS process {i + 1}, last {res['memory']['window_s']:.0f} s of traffic",
           f"{m['first_mb']} → {m['last_mb']} MiB ({m['growth_pct']:+.2f} %; max {m['max_mb']}, "
           f"{m['at_start_mb']} MiB when traffic started)", "OK" if m["growth_pct"] <= 5 else "FAIL"]
          for i, m in enumerate(res["memory"]["per_proc"])],
    ]))
    lines.append("")
    sent_rate = res["acked"] / max(res["send_s"], 1e-3)
    lines.append(table(["metric", "value"], [
        ["connections / rooms / processes", f"{res['conns']:,} / {res['rooms']} of {res['room_size']} / {res['processes']}"],
        ["duration of traffic", f"{res['send_s']:.0f} s (drain {res['drain_s']} s)"],
        ["messages acked", f"{res['acked']:,} ({sent_rate:.1f}/s; {res['rate_per_room']:g}/s per room)"],
        ["typing notices sent / received", f"{c['typing_sent']:,} / {c['typing_received']:,}"],
        ["message.new deliveries/s", f"{res['deliveries_per_s']:,}"],
        ["delivery latency p50 / p99 / max ms",
         f"{res['latency_ms']['p50']} / {res['latency_ms']['p99']} / {res['latency_ms']['max']}"],
        ["ack latency p50 / p99 ms", f"{res['ack_ms']['p50']} / {res['ack_ms']['p99']}"],
        ["server CPU during traffic, cores per process",
         " + ".join(f"{x:.3f}" for x in res["server_cores_per_proc"])
         + f" ({' + '.join(f'{x:.1f}' for x in res['server_cpu_s_per_proc'])} CPU-s)"],
        ["server CPU to open + join, CPU-s per process", " + ".join(f"{x:.1f}" for x in res["open_cpu_s_per_proc"])],
        ["harness cores / redis-server cores / machine busy cores",
         f"{res['client_cores']:.3f} / {res['redis_cores']:.3f} / {res['machine_busy_cores']:.2f}"],
        ["bus per process: published / received / dropped / gaps filled / reconnects",
         "; ".join(f"{m.get('podium_bus_published_total', '-'):.0f} / {m.get('podium_bus_received_total', 0):.0f} / "
                   f"{m.get('podium_bus_dropped_total', 0):.0f} / {m.get('podium_bus_gaps_filled_total', 0):.0f} / "
                   f"{m.get('podium_bus_reconnects_total', 0):.0f}" if "podium_bus_published_total" in m else "-"
                   for m in res["metrics"])],
        ["frames dropped (slow readers) / overflows / rate-limited, per process",
         "; ".join(f"{m.get('podium_frames_dropped_total', 0):.0f} / {m.get('podium_queue_overflows_total', 0):.0f}"
                   f" / {m.get('podium_rate_limited_total', 0):.0f}" for m in res["metrics"])],
    ]))
    if res.get("timeline"):
        rows = [[f"{w['from_s']:.0f}–{w['from_s'] + (res['timeline'][1]['from_s'] - res['timeline'][0]['from_s'] if len(res['timeline']) > 1 else 0):.0f} s",
                 f"{w['deliveries']:,}", w["delivery"]["p50"], w["delivery"]["p99"], w["delivery"]["max"],
                 w["ack"]["p99"],
                 None if "server_cores" not in w else f"{w['server_cores']:.2f}",
                 None if "pg_cores" not in w else f"{w['pg_cores']:.2f}",
                 None if "machine_busy_cores" not in w else f"{w['machine_busy_cores']:.2f}"]
                for w in res["timeline"]]
        lines.append("\nby window of receive time:\n" + table(
            ["window", "deliveries", "p50 ms", "p99 ms", "max ms", "ack p99 ms", "web processes cores",
             "PostgreSQL cores", "machine busy cores"], rows))
    for i, lp in enumerate(res.get("log_problems", [])):
        lines.append(f"\nserver {i + 1} log, WARNING+ lines: {lp['during']['lines']} during the run"
                     + "".join(f"\n    {n} x {k}" for k, n in lp["during"]["kinds"].items())
                     + f"\n  {lp['after']['lines']} after it (harness closing {res['conns'] // res['processes']:,} sockets at once)"
                     + "".join(f"\n    {n} x {k}" for k, n in lp["after"]["kinds"].items()))
    if res.get("error_samples"):
        lines.append("\nfirst problems: " + "; ".join(res["error_samples"][:10]))
    return "\n".join(lines)


# --- main -------------------------------------------------------------------------------------
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("fanout", "soak"):
        sp = sub.add_parser(name)
        sp.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
        sp.add_argument("--db", default="bench_scaleout", help="PostgreSQL database (dropped and recreated)")
        sp.add_argument("--quiet-wait", type=float, default=600,
                        help="wait up to this many seconds before each run for the 1-min load average to drop")
        sp.add_argument("--quiet-below", type=float, default=1.5)
        sp.add_argument("--json", help="write raw results here (default: in the temp dir)")
        sp.add_argument("--keep", action="store_true", help="keep the temp dir (server logs)")
        if name == "fanout":
            sp.add_argument("--runs", type=int, default=3)
            sp.add_argument("--configs", default="1p,1p+redis,2p+redis")
            sp.add_argument("--subs", type=int, default=200)
            sp.add_argument("--publishers", type=int, default=2, help="split over the processes like subscribers")
            sp.add_argument("--publishers-on", choices=("split", "first"), default="split",
                            help="split: publisher j on process j mod P (each process commits its own "
                                 "publishers' messages); first: every publisher on process 1, as when one "
                                 "instructor broadcasts to a class spread over the processes")
            sp.add_argument("--messages", type=int, default=5000)
            sp.add_argument("--window", type=int, default=50, help="unacked messages in total over the publishers")
            sp.add_argument("--client", choices=("c", "raw", "ws"), default="c",
                            help="subscriber client: c (subs.c, ~0.26 us per delivery), raw (minimal Node "
                                 "client, ~1 us) or ws (bench/fanout's, ~6 us)")
            sp.add_argument("--timeout", type=float, default=120)
            sp.add_argument("--max-other", type=float, default=0.4,
                            help="run a configuration again when other processes took more cores than this")
            sp.add_argument("--retries", type=int, default=2)
            sp.add_argument("--profile", action="store_true", help="py-spy every server in run 1 (perturbs it)")
        else:
            sp.add_argument("--minutes", type=float, default=5)
            sp.add_argument("--conns", type=int, default=2000)
            sp.add_argument("--room-size", type=int, default=40)
            sp.add_argument("--procs", type=int, default=2)
            sp.add_argument("--rate", type=float, default=2, help="messages/s per room")
            sp.add_argument("--no-typing", action="store_true")
            sp.add_argument("--no-bus", action="store_true", help="one process without REDIS_URL (with --procs 1)")
            sp.add_argument("--server", choices=("podium", "floor", "floor-pg"), default="podium",
                            help="floor: bench/scaleout/soak_floor.py, a bare Tornado server for the same traffic "
                                 "(with --procs 1); floor-pg: the same, storing each message in PostgreSQL first (seqs from there) "
                                 "and, unless --no-bus, publishing every frame on Redis for the other processes")
            sp.add_argument("--sample-s", type=float, default=5, help="RSS/CPU sampling period")
            sp.add_argument("--profile", action="store_true", help="py-spy both servers during the traffic phase")
    args = p.parse_args()

    def on_term(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_term)

    t_start = time.monotonic()
    ensure_deps()
    raise_nofile()
    check_services(args.redis_url)
    work = Path(tempfile.mkdtemp(prefix="podium-scaleout-"))
    meta = {"cmd": args.cmd, "args": vars(args), "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "cpus": os.cpu_count(), "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                                              capture_output=True, text=True).stdout.strip()}
    results: dict = {}
    args.c_subs = str(build_c_subs(work)) if args.cmd == "fanout" and args.client == "c" else None
    try:
        results = fanout_main(args, work, meta) if args.cmd == "fanout" else soak_main(args, work, meta)
    finally:
        stop_all()
        meta["wall_s"] = round(time.monotonic() - t_start)
        meta["loadavg_end"] = round(os.getloadavg()[0], 2)
        out = Path(args.json) if args.json else work / "results.json"
        out.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
        print()
        starts = ", ".join(f"{q['loadavg_start']:.2f}" for q in meta.get("quiet", []))
        if results:
            print(f"Scale-out {args.cmd}: {meta['cpus']} CPUs, server code at {meta['commit']} + working tree, "
                  f"wall {meta['wall_s']} s; load average at the start of each run {starts}, at end "
                  f"{meta['loadavg_end']:.2f}")
            if args.cmd == "fanout":
                print(f"N={args.subs} subscribers in one room, {args.publishers} publishers ({args.publishers_on}), {args.messages} messages, "
                      f"window {args.window}, client {args.client}; medians of {args.runs} run(s)\n")
                print(fanout_report(results, args))
                if args.profile:
                    for f in sorted((work / "profiles").glob("*-top.txt")):
                        print(f"\n== py-spy: {f.name} ==\n{f.read_text()}")
            else:
                print(soak_report(results, args))
        print(f"\nraw results: {out}")
        if not args.keep:
            for child in work.iterdir():
                if child.name not in ("results.json", "profiles"):
                    shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink()


if __name__ == "__main__":
    main()
