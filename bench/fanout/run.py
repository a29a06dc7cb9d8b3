#!/usr/bin/env python3
"""Chat fan-out benchmark: Podium vs python-socketio (Tornado) vs Node socket.io 4.

One command, from the repository root:

    .venv/bin/python bench/fanout/run.py            # all scenarios, 3 runs each (~7.5 min)
    .venv/bin/python bench/fanout/run.py --runs 1 --scenarios 1,4   # a quick look
    .venv/bin/python bench/fanout/run.py --scenarios 1 --servers podium --runs 5 \\
        --compare-ref OLD --ref NEW        # two server commits, run by run interleaved

It installs what is missing (npm packages into bench/fanout/node_modules from the lock file;
python-socketio into the project venv from bench/requirements.txt), builds a fresh SQLite
database in a temp dir (``python -m server migrate`` + ``seed.py``), starts every server as a
subprocess on a free 127.0.0.1 port, drives it with ``harness.js`` (Node ``ws`` for Podium,
``socket.io-client`` with the websocket transport for both socket.io servers), and prints a
table of medians. Nothing leaves loopback; every load loop is bounded in count and time.

Scenarios:
  1  fan-out, every server (Podium, Node socket.io 4, python-socketio, the Tornado floor that
     builds each frame once) at N = 200 and 1,000 subscribers, BOTH send modes on the same
     connections: one message at a time (each send waits for its ack and for every subscriber to
     receive it: how a class chats) and a window of 50 messages not yet delivered to everyone
     (batching); 4 s of sending each. Same message.new payload bytes per delivery for every server
     (--frame-bytes, padded, checked on every delivery to one subscriber and printed), the
     publisher never subscribed (checked: it must receive none of its broadcasts), no
     permessage-deflate on the main rows (socket.io-client's offer turned off; Node socket.io
     refuses it anyway), plus separately labelled socket.io rows WITH deflate at N = 200. Server
     CPU per delivery from /proc; latency p50/p99 per delivery; ratios vs Node socket.io per mode
  2  steady rate: 500 subscribers, 20 messages/s for 10 s → latency p50/p99
  3  idle RSS: 5,000 authenticated connections, each joined to a room (50 rooms of 100)
     → server RSS / connection; also a bare Tornado WebSocketHandler as the floor
  4  persisted sends: 50 senders (own user + socket each), window 1, 10 s → acked/s
     (SQLite; PostgreSQL too when a server answers on 127.0.0.1:5432)

Two server sources in one run (--compare-ref OLD, with --ref NEW or the working tree): every
Podium configuration runs from both, alternating run by run (old, new, old, new, ...), on copies
of the same seeded database (their migrations must match), so drifting machine load hits both
alike. The table gets a row per source and a ``new/old`` row (ratio of medians); a line per
headline metric gives the old runs' spread, the ratio of each run pair, in how many pairs new
was worse and whether the ratio is within that spread (and, when it is, whether the pairs
still lean one way: sign test p < 0.05, which takes 6+ runs). The peers are optional then
(``--servers podium``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/, for the shared benchlib module
import benchlib  # noqa: E402
from benchlib import PY, ROOT, Source, log, machine_busy_s, med  # noqa: E402

HERE = Path(__file__).resolve().parent
JWT_SECRET = "bench-fanout-secret-" + "k" * 40
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432"
PG_DB = "bench"

benchlib.reexec_in_venv(__file__)

SERVERS = {
    "podium": "Podium (persisted)",
    "pysio": "python-socketio/Tornado (no persistence)",
    "nodesio": "Node socket.io 4 (no persistence)",
    "tornado": "Tornado floor (bare WebSocketHandler)",
    "pysio-deflate": "python-socketio/Tornado WITH permessage-deflate",
    "nodesio-deflate": "Node socket.io 4 WITH permessage-deflate",
}
# Short names for scenario 1's table.
SHORT = {"podium": "Podium", "nodesio": "Node socket.io 4", "pysio": "python-socketio",
         "tornado": "Tornado floor (frame built once)", "pysio-deflate": "python-socketio + deflate",
         "nodesio-deflate": "Node socket.io 4 + deflate"}


# --- setup ------------------------------------------------------------------------------------
def ensure_deps() -> None:
    benchlib.ensure_deps(HERE, ("ws", "socket.io", "socket.io-client"), "socketio, engineio, psutil",
                         ROOT / "bench" / "requirements.txt")


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def podium_env(db_url: str, data_dir: Path, src: Path, port: int = 0) -> dict:
    return benchlib.podium_env(db_url, data_dir, port, jwt_secret=JWT_SECRET, src=src, drop=("PODIUM_ENV",))


def prepare_db(db_url: str, data_dir: Path, seed_out: Path, subs: int, src: Path, fanout_members: int = 500) -> None:
    env = podium_env(db_url, data_dir, src)
    subprocess.run([PY, "-m", "server", "migrate"], cwd=src, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    subprocess.run([PY, str(HERE / "seed.py"), str(seed_out), "--subs", str(subs),
                    "--fanout-members", str(fanout_members)], cwd=ROOT, env=env, check=True)


def prepare_pg(work: Path, src: Path) -> tuple[str, Path] | None:
    """(re)create database ``bench`` on the local PostgreSQL; None when there is none."""
    if shutil.which("createdb") is None:
        return None
    ok = subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432"], capture_output=True)
    if ok.returncode != 0:
        return None
    subprocess.run(["dropdb", "--if-exists", "-h", "127.0.0.1", "-U", "postgres", PG_DB], capture_output=True)
    made = subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", PG_DB], capture_output=True, text=True)
    if made.returncode != 0:
        log(f"PostgreSQL: createdb failed ({made.stderr.strip()}); skipping")
        return None
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{PG_DB}"
    seed = work / "seed-pg.json"
    prepare_db(url, work / "pgdata", seed, subs=10, src=src)
    return url, seed


# --- servers ----------------------------------------------------------------------------------
class Server(benchlib.Server):
    stop_timeout = 8

    def _command(self, work: Path, db_url: str | None = None, template: Path | None = None, src: Path = ROOT):
        kind = self.kind
        if kind == "podium":
            run_dir = Path(tempfile.mkdtemp(prefix="podium-", dir=work))
            if db_url is None:  # fresh copy of the seeded SQLite template
                shutil.copy(template, run_dir / "podium.db")
                db_url = f"sqlite+aiosqlite:///{run_dir / 'podium.db'}"
            cmd, env = [PY, "-m", "server", "serve"], podium_env(db_url, run_dir, src, self.port)
            self.url = f"ws://127.0.0.1:{self.port}/ws"
        elif kind in ("pysio", "pysio-deflate"):  # deflate: whether the client offers it (harness cfg)
            cmd, env = [PY, str(HERE / "pysio_server.py"), str(self.port)], dict(os.environ)
            self.url = f"http://127.0.0.1:{self.port}"
        elif kind == "tornado":
            cmd, env = [PY, str(HERE / "tornado_floor.py"), str(self.port)], dict(os.environ)
            self.url = f"ws://127.0.0.1:{self.port}/ws"
        else:
            cmd, env = ["node", str(HERE / "sio_server.js"), str(self.port)], dict(os.environ)
            env["BENCH_DEFLATE"] = "1" if kind == "nodesio-deflate" else "0"
            self.url = f"http://127.0.0.1:{self.port}"
        return cmd, env, src if kind == "podium" else ROOT

    def thread_cpu(self) -> dict[str, float]:
        """CPU seconds of the main (event-loop) thread and of all other threads, user and system."""
        import psutil
        out = {"main_user": 0.0, "main_sys": 0.0, "other_user": 0.0, "other_sys": 0.0}
        for th in psutil.Process(self.proc.pid).threads():
            who = "main" if th.id == self.proc.pid else "other"
            out[f"{who}_user"] += th.user_time
            out[f"{who}_sys"] += th.system_time
        return out

    def podium_connections(self) -> int | None:
        if self.kind != "podium":
            return None
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5) as r:
            return json.loads(r.read())["connections"]


def harness(cfg: dict, timeout: float, server: "Server | None" = None, profile: Path | None = None) -> dict:
    """Run harness.js once and return its JSON result. When ``server`` is given, its CPU time
    (user + system, all threads) is sampled at the harness's ``PHASE start`` / ``PHASE end``
    lines, so the result carries the server CPU spent in the measured phase only; with
    ``profile``, py-spy records the server between those two lines."""
    cfg = dict(cfg, hard_deadline_s=int(timeout))
    cpu: dict[str, tuple[float, float, float]] = {}
    threads: dict[str, dict[str, float]] = {}
    prof: list[benchlib.Profiler] = []

    def on_phase(name: str) -> None:
        if server is not None:
            cpu[name] = (server.cpu_s(), machine_busy_s(), time.monotonic())
            threads[name] = server.thread_cpu()
            if profile is not None and name == "start":
                prof.append(benchlib.Profiler(server.proc.pid, profile, 600))
            if prof and name == "end":
                profile.with_name(profile.stem + "-top.txt").write_text(prof[0].finish())

    def on_exit() -> None:
        if prof and prof[0].proc.poll() is None:  # the run ended without its PHASE end line
            prof[0].finish()

    def on_result(res: dict) -> None:
        for name in [n for n in cpu if n.startswith("start:")]:  # scenario "modes": CPU per mode
            mode = name[len("start:"):]
            if f"end:{mode}" in cpu and isinstance(res.get(mode), dict):
                (s0, m0, t0), (s1, m1, t1) = cpu[name], cpu[f"end:{mode}"]
                r = res[mode]
                r["server_cpu_s"] = round(s1 - s0, 3)
                if r.get("deliveries"):
                    r["server_cpu_us_per_delivery"] = round((s1 - s0) * 1e6 / r["deliveries"], 2)
                    r["deliveries_per_server_cpu_s"] = round(r["deliveries"] / max(s1 - s0, 1e-3))
                if r.get("completed"):
                    r["server_cpu_ms_per_message"] = round((s1 - s0) * 1e3 / r["completed"], 3)
                other = (m1 - m0) - (s1 - s0) - r.get("client_cpu_s", 0)
                r["other_load_cores"] = round(max(other, 0) / max(t1 - t0, 1e-3), 2)
        if "open_start" in cpu and "open_end" in cpu and cfg.get("subs"):
            # Server CPU to accept, authenticate and room.join each subscriber.
            res["open_cpu_ms_per_conn"] = round((cpu["open_end"][0] - cpu["open_start"][0]) * 1000 / cfg["subs"], 2)
        if "start" in cpu and "end" in cpu:
            (s0, m0, t0), (s1, m1, t1) = cpu["start"], cpu["end"]
            res["server_cpu_s"] = round(s1 - s0, 2)
            # Everything else that ran on the machine meanwhile (other engineers' tests): busy CPU
            # of the whole machine minus this server and this harness, in cores.
            other = (m1 - m0) - (s1 - s0) - res.get("client_cpu_s", 0)
            res["other_load_cores"] = round(max(other, 0) / max(t1 - t0, 1e-3), 2)
            # Where the server's CPU went: the event-loop thread vs worker threads (aiosqlite runs
            # every SQLite call on its own thread), in cores over the measured phase.
            res["server_threads_cores"] = {k: round((threads["end"][k] - threads["start"][k]) / max(t1 - t0, 1e-3), 2)
                                           for k in threads["start"]}

    return benchlib.run_harness(HERE / "harness.js", cfg, timeout + 15, on_phase, on_exit, on_result)


# --- scenarios --------------------------------------------------------------------------------
def plan(kinds: list[str], sources: list[Source], podium=lambda k: k == "podium") -> list[tuple[str, Source]]:
    """(kind, source) of each configuration in the order one run goes through them: a Podium kind
    once per source (old, then new), a peer once (from the new source; peers do not use it)."""
    return [(k, src) for k in kinds for src in (sources if podium(k) else sources[-1:])]


def guarded(fn, *a) -> dict:
    """One run; a failure (server did not start, harness crashed) is recorded, not fatal."""
    try:
        return fn(*a)
    except Exception as e:  # noqa: BLE001 - reported in the table and the JSON
        return {"error": f"{type(e).__name__}: {e}"}


def client_kind(server_kind: str) -> str:
    return "sio" if server_kind.split("-")[0] in ("pysio", "nodesio") else "podium"


def run_modes(kind: str, subs: int, args, work: Path, template: Path, seed: Path, src: Source) -> dict:
    """Scenario 1: one server, ``subs`` subscribers, both send modes on the same connections: one
    message at a time (each send waits until every subscriber got it) and a window of
    ``args.window`` messages not yet delivered to everyone; same payload bytes per delivery for
    every server (``args.frame_bytes``); server CPU per mode from /proc."""
    srv = Server(kind, work, template=template, src=src.path)
    try:
        cfg = {"scenario": "modes", "kind": client_kind(kind), "url": srv.url, "seed": str(seed), "subs": subs,
               "modes": [{"name": "serial", "window": 1}, {"name": "window", "window": args.window}],
               "duration_s": args.mode_duration, "frame_bytes": args.frame_bytes, "timeout_s": 90,
               "deflate": kind.endswith("-deflate")}
        load = os.getloadavg()
        res = harness(cfg, timeout=200, server=srv)
        res["loadavg_1m"] = round(load[0], 2)
        res["server_rss_mb"] = round(srv.rss() / 2**20, 1)
    finally:
        srv.stop()
    return res


def run_fanout(kind: str, args, work: Path, template: Path, seed: Path, scenario: int, prof_dir: Path | None,
               src: Source) -> dict:
    if scenario == 1:
        msgs = args.pysio_messages if kind == "pysio" else args.messages
        cfg = {"scenario": "fanout", "subs": args.subs, "messages": msgs, "window": args.window,
               "timeout_s": args.fanout_timeout}
    else:
        cfg = {"scenario": "rate", "subs": args.rate_subs, "rate": args.rate, "duration_s": args.rate_duration,
               "timeout_s": args.rate_duration + args.rate_drain}
    srv = Server(kind, work, template=template, src=src.path)
    try:
        cfg.update(kind=client_kind(kind), url=srv.url, seed=str(seed))
        profile = prof_dir / f"scenario{scenario}-{src.key(kind).replace('@', '-')}.txt" \
            if prof_dir is not None and kind == "podium" else None
        res = harness(cfg, timeout=cfg["timeout_s"] + 90, server=srv, profile=profile)
        if "server_cpu_s" in res and res.get("deliveries"):
            res["deliveries_per_server_cpu_s"] = round(res["deliveries"] / max(res["server_cpu_s"], 1e-3))
        res["server_rss_mb"] = round(srv.rss() / 2**20, 1)
    finally:
        srv.stop()
    return res


def run_idle(kind: str, args, work: Path, template: Path, seed: Path, src: Source) -> dict:
    srv = Server(kind, work, template=template, src=src.path)
    procs: list[subprocess.Popen] = []
    try:
        base = {"kind": client_kind(kind), "url": srv.url, "seed": str(seed),
                "scenario": "idle", "hold_s": 240, "hard_deadline_s": 300}

        def start(conns: int, offset: int) -> subprocess.Popen:
            return subprocess.Popen(["node", str(HERE / "harness.js"),
                                     json.dumps(dict(base, conns=conns, offset=offset))],
                                    cwd=HERE, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

        def ready(p: subprocess.Popen, timeout: float) -> dict:
            box: list = []
            t = threading.Thread(target=lambda: box.append(p.stdout.readline()), daemon=True)
            t.start()
            t.join(timeout)
            if not box or not box[0].startswith("{"):
                raise RuntimeError(f"idle harness not ready within {timeout} s")
            rep = json.loads(box[0])
            if "error" in rep:
                raise RuntimeError(f"idle harness failed: {rep['error']}")
            return rep

        def close(p: subprocess.Popen) -> None:
            try:
                p.stdin.close()
            except OSError:
                pass
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

        # Warm-up: open and close some connections so one-time costs (imports, SQL compilation
        # caches, the connection pool) are not charged to the measured connections.
        w = start(args.idle_warmup, 0)
        ready(w, 60)
        close(w)
        time.sleep(1.5)
        before = srv.rss()
        cpu0 = srv.cpu_s()
        per_proc = -(-args.idle_conns // args.idle_procs)
        t0 = time.monotonic()
        for k in range(args.idle_procs):
            n = min(per_proc, args.idle_conns - k * per_proc)
            if n > 0:
                procs.append(start(n, k * per_proc))
        reports = [ready(p, 240) for p in procs]
        open_s = time.monotonic() - t0
        open_cpu = srv.cpu_s() - cpu0
        opened = sum(r["ready"] for r in reports)
        failed = sum(r["failed"] for r in reports)
        time.sleep(3)  # let presence broadcasts and acks drain
        samples = []
        for _ in range(3):
            samples.append(srv.rss())
            time.sleep(0.5)
        after = statistics.median(samples)
        server_conns = srv.podium_connections()
        return {"connections": opened, "failed": failed, "open_s": round(open_s, 2),
                "rss_before_mb": round(before / 2**20, 1), "rss_after_mb": round(after / 2**20, 1),
                "kb_per_conn": round((after - before) / 1024 / max(opened, 1), 2),
                "open_cpu_ms_per_conn": round(open_cpu * 1000 / max(opened, 1), 2),
                "server_side_connections": server_conns,
                "first_error": next((r["first_error"] for r in reports if r.get("first_error")), None)}
    finally:
        for p in procs:
            try:
                p.stdin.close()
            except OSError:
                pass
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        srv.stop()


def run_senders(db: str, args, work: Path, template: Path, seed: Path, pg_url: str | None,
                prof_dir: Path | None, src: Source) -> dict:
    srv = Server("podium", work, db_url=pg_url, template=template, src=src.path)
    try:
        profile = prof_dir / f"scenario4-{src.key(db).replace('@', '-')}.txt" if prof_dir is not None else None
        cfg = {"kind": "podium", "url": srv.url, "seed": str(seed), "scenario": "senders",
               "senders": args.senders, "window": args.senders_window, "duration_s": args.senders_duration}
        res = harness(cfg, timeout=args.senders_duration + 90, server=srv, profile=profile)
        if "server_cpu_s" in res and res.get("acked"):
            res["acked_per_server_cpu_s"] = round(res["acked"] / max(res["server_cpu_s"], 1e-3))
    finally:
        srv.stop()
    return res


# --- report -----------------------------------------------------------------------------------
def fmt(v, nd=0):
    if v is None:
        return "-"
    return f"{v:,.{nd}f}"


def report(results: dict, args, sources: list[Source]) -> tuple[str, list[str]]:
    """The table (medians over runs) and the target verdicts; with two sources (--compare-ref) also
    a ``new/old`` row under each Podium configuration and a line per headline metric."""
    old_src = sources[0] if len(sources) == 2 else None
    new_src = sources[-1]
    sw = 42 + (20 if old_src else 0)
    cols = f"{'scenario':<34} {'server':<{sw}} {'metric':<14} {'median':>9} {'p50 ms':>8} {'p99 ms':>8}  " \
           f"{'per server CPU-s':>16}  {'other load':>10}  {'ratio / note':<30} runs"
    rows = [cols, "-" * len(cols)]
    verdicts: list[str] = []

    def keys(sc):
        """Result keys of scenario ``sc`` in run order (``podium@old`` before ``podium``)."""
        return [k for k in results.get(sc, {}) if ok_runs(sc, k) or errors(sc, k)]

    def tag(sc, key):
        if key.endswith("@old"):
            return f" · old {old_src.name}"
        if old_src and f"{key}@old" in results.get(sc, {}):
            return f" · new {new_src.name}"
        return ""

    def ok_runs(sc, kind):
        return [r for r in results.get(sc, {}).get(kind, []) if "error" not in r]

    def errors(sc, kind):
        return [r["error"][:200] for r in results.get(sc, {}).get(kind, []) if "error" in r]

    def row(scen, kind_label, metric, value, p50, p99, eff, other, note, runs):
        rows.append(f"{scen:<34} {kind_label:<{sw}} {metric:<14} {value:>9} {p50:>8} {p99:>8}  {eff:>16}  "
                    f"{other:>10}  {note:<30} {runs}")

    def runs_str(sc, kind, key, nd=0):
        vals = [fmt(_get(r, key), nd) for r in ok_runs(sc, kind)]
        return ", ".join(vals + ["ERR"] * len(errors(sc, kind)))

    def compare_row(sc, scen, key, main, p50=None, p99=None, eff=None):
        """Under the new source's row: new/old ratios of the medians, one verdict line per metric.
        Each column spec is (metric name, dotted result key, higher is better, digits) or None."""
        if f"{key}@old" not in results.get(sc, {}):
            return
        cs = []
        for spec in (main, p50, p99, eff):
            if spec is None:
                cs.append(None)
                continue
            name, dotted, higher, nd = spec
            per_run = lambda k: [None if "error" in r else _get(r, dotted) for r in results[sc][k]]  # noqa: E731
            c = benchlib.compare(per_run(f"{key}@old"), per_run(key), higher)
            cs.append(c)
            verdicts.append(f"scenario {sc} {key}: " + benchlib.compare_line(name, c, nd))
        ratio = lambda c: "-" if c is None else f"{c['ratio']:.3f}x"  # noqa: E731
        note = f"old run spread {cs[0]['spread']:.1%}" if cs[0] else "no runs"
        pairs = "new/old per run pair " + " · ".join(f"{p:.2f}" for p in cs[0]["paired"]) if cs[0] else ""
        row(scen, "new/old (ratio of medians)", main[0], *(ratio(c) for c in cs), "", note, pairs)

    if "1" in results:
        m = {k: med([r["deliveries_per_s"] for r in ok_runs("1", k)]) for k in results["1"]}
        eff = {k: med([r.get("deliveries_per_server_cpu_s") for r in ok_runs("1", k)]) for k in results["1"]}
        scen = f"1 fan-out N={args.subs}, w={args.window}"
        for k in keys("1"):
            rs = ok_runs("1", k)
            msgs = args.pysio_messages if k == "pysio" else args.messages
            note = f"{msgs} msgs"
            if k == "podium":
                parts = [f"{m['podium'] / m[p]:.2f}x {p}" for p in ("pysio", "nodesio") if m.get(p) and m["podium"]]
                note = ", ".join(parts) or note
            row(scen, SERVERS[k.split("@")[0]] + tag("1", k), "deliveries/s", fmt(m[k]),
                fmt(med([r["latency_ms"]["p50"] for r in rs]), 1), fmt(med([r["latency_ms"]["p99"] for r in rs]), 1),
                fmt(eff[k]), fmt(med([r.get("other_load_cores") for r in rs]), 2), note,
                runs_str("1", k, "deliveries_per_s"))
            compare_row("1", scen, k, ("deliveries/s", "deliveries_per_s", True, 0),
                        ("p50 ms", "latency_ms.p50", False, 1), ("p99 ms", "latency_ms.p99", False, 1),
                        ("deliveries per server CPU-s", "deliveries_per_server_cpu_s", True, 0))
        for peer, label, factor in (("pysio", "python-socketio", 3.0), ("nodesio", "Node socket.io", 1.0)):
            if m.get("podium") and m.get(peer):
                r = m["podium"] / m[peer]
                cpu_r = f"; per server CPU-second {eff['podium'] / eff[peer]:.2f}x" if eff["podium"] and eff.get(peer) else ""
                verdicts.append(f"target: Podium >= {factor:g}x {label} deliveries/s (N={args.subs}): {r:.2f}x "
                                f"-> {'MET' if r >= factor else 'NOT MET'}{cpu_r}")
    if "2" in results:
        scen = f"2 rate N={args.rate_subs}, {args.rate:g}/s x {args.rate_duration:g}s"
        for k in keys("2"):
            rs = ok_runs("2", k)
            p99 = med([r["latency_ms"]["p99"] for r in rs])
            sec_p99 = med([statistics.median([b["p99"] for b in r["timeline"]]) for r in rs if r.get("timeline")])
            incomplete = sum(1 for r in rs if not r["complete"])
            note = f"median 1-s p99 {fmt(sec_p99, 1)} ms" + (f"; {incomplete} incomplete" if incomplete else "")
            row(scen, SERVERS[k.split("@")[0]] + tag("2", k), "deliveries/s",
                fmt(med([r["deliveries_per_s"] for r in rs])), fmt(med([r["latency_ms"]["p50"] for r in rs]), 1),
                fmt(p99, 1), fmt(med([r.get("deliveries_per_server_cpu_s") for r in rs])),
                fmt(med([r.get("other_load_cores") for r in rs]), 2), note, "p99: " + runs_str("2", k, "latency_ms.p99", 1))
            compare_row("2", scen, k, ("deliveries/s", "deliveries_per_s", True, 0),
                        ("p50 ms", "latency_ms.p50", False, 1), ("p99 ms", "latency_ms.p99", False, 1),
                        ("deliveries per server CPU-s", "deliveries_per_server_cpu_s", True, 0))
            if k == "podium" and p99 is not None:
                verdicts.append(f"target: p99 <= 50 ms at {args.rate_subs} subscribers x {args.rate:g} msg/s: "
                                f"{p99:.1f} ms -> {'MET' if p99 <= 50 else 'NOT MET'} (median of per-second p99s "
                                f"{fmt(sec_p99, 1)} ms; p50 {fmt(med([r['latency_ms']['p50'] for r in rs]), 1)} ms)")
    if "3" in results:
        scen = f"3 idle RSS, {args.idle_conns} joined"
        for k in keys("3"):
            rs = ok_runs("3", k)
            kb = med([r["kb_per_conn"] for r in rs])
            label = SERVERS[k.split("@")[0]].replace(" (persisted)", "").replace(" (no persistence)", "")
            note = f"open {fmt(med([r['open_cpu_ms_per_conn'] for r in rs]), 2)} CPU-ms/conn"
            row(scen, label + tag("3", k), "KB/conn", fmt(kb, 1), "", "", "", "", note, runs_str("3", k, "kb_per_conn", 1))
            compare_row("3", scen, k, ("KB/conn", "kb_per_conn", False, 1), None, None,
                        ("open CPU-ms/conn", "open_cpu_ms_per_conn", False, 2))
            if k == "podium" and kb is not None:
                verdicts.append(f"target: RSS per idle joined connection at {args.idle_conns} <= 20 KB: {kb:.1f} KB "
                                f"-> {'MET' if kb <= 20 else 'NOT MET'}")
    if "4" in results:
        scen = f"4 sends, {args.senders} senders, w={args.senders_window}"
        for k in keys("4"):
            db = k.split("@")[0]
            rs = ok_runs("4", k)
            v = med([r["acked_per_s"] for r in rs])
            eff = med([r.get("acked_per_server_cpu_s") for r in rs])
            row(scen, f"Podium ({'SQLite' if db == 'sqlite' else 'PostgreSQL'})" + tag("4", k), "acked/s", fmt(v),
                fmt(med([r["ack_ms"]["p50"] for r in rs]), 1), fmt(med([r["ack_ms"]["p99"] for r in rs]), 1),
                fmt(eff), fmt(med([r.get("other_load_cores") for r in rs]), 2), "ack latency",
                runs_str("4", k, "acked_per_s"))
            compare_row("4", scen, k, ("acked/s", "acked_per_s", True, 0), ("ack p50 ms", "ack_ms.p50", False, 1),
                        ("ack p99 ms", "ack_ms.p99", False, 1), ("acked per server CPU-s", "acked_per_server_cpu_s", True, 0))
            if k == "sqlite" and v is not None:
                verdicts.append(f"target: persisted sends, {args.senders} senders on SQLite >= 2,000/s: {v:,.0f}/s "
                                f"-> {'MET' if v >= 2000 else 'NOT MET'} (per server CPU-second: {fmt(eff)})")
            elif k == "postgres" and v is not None:
                verdicts.append(f"(info) persisted sends, {args.senders} senders on PostgreSQL: {v:,.0f}/s "
                                f"(per server CPU-second: {fmt(eff)})")
    for sc in results:
        for k in results[sc]:
            for e in errors(sc, k):
                verdicts.append(f"ERROR in scenario {sc} / {k}: {e}")
    return "\n".join(rows), verdicts


def _get(d: dict, dotted: str):
    for part in dotted.split("."):
        d = d.get(part) if isinstance(d, dict) else None
    return d


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="runs of each configuration (default 3)")
    p.add_argument("--scenarios", default="1,2,3,4", help="comma-separated subset of 1,2,3,4")
    p.add_argument("--servers", default="podium,nodesio,pysio,tornado", help="for scenarios 1 and 2")
    p.add_argument("--subs-list", default="200,1000", help="scenario 1: subscriber counts N")
    p.add_argument("--mode-duration", type=float, default=4,
                   help="scenario 1: seconds each send mode sends for (then its last messages drain)")
    p.add_argument("--frame-bytes", type=int, default=600,
                   help="scenario 1: message.new WebSocket payload per delivery, the same for every server")
    p.add_argument("--deflate-servers", default="pysio-deflate,nodesio-deflate",
                   help="scenario 1: extra, separately labelled rows with permessage-deflate ('' for none)")
    p.add_argument("--deflate-subs", default="200", help="scenario 1: the N the deflate rows run at")
    p.add_argument("--idle-servers", default="podium,tornado,pysio,nodesio", help="for scenario 3")
    p.add_argument("--peer-runs", type=int, default=1,
                   help="runs of the peers in scenarios 2 and 3 (Podium gets --runs; scenario 1 peers get --runs)")
    p.add_argument("--subs", type=int, default=200)
    p.add_argument("--messages", type=int, default=2000, help="(unused: scenario 1 sends for --mode-duration)")
    p.add_argument("--pysio-messages", type=int, default=500,
                   help="messages for python-socketio in scenario 1 (it is ~10x slower; rate is steady-state)")
    p.add_argument("--window", type=int, default=50)
    p.add_argument("--fanout-timeout", type=float, default=120)
    p.add_argument("--rate-subs", type=int, default=500)
    p.add_argument("--rate", type=float, default=20)
    p.add_argument("--rate-duration", type=float, default=10)
    p.add_argument("--rate-drain", type=float, default=15, help="max seconds to wait for stragglers")
    p.add_argument("--idle-conns", type=int, default=5000)
    p.add_argument("--idle-procs", type=int, default=2, help="Node client processes for scenario 3")
    p.add_argument("--idle-warmup", type=int, default=100)
    p.add_argument("--senders", type=int, default=50)
    p.add_argument("--senders-window", type=int, default=1)
    p.add_argument("--senders-duration", type=float, default=10)
    p.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL run of scenario 4")
    p.add_argument("--profile", action="store_true",
                   help="py-spy record Podium during run 1 of scenarios 1, 2 and 4 (perturbs those runs)")
    p.add_argument("--ref", help="benchmark the server as committed at this git ref (exported with git archive "
                                 "into the temp dir) instead of the working tree")
    p.add_argument("--compare-ref", metavar="OLD",
                   help="also run every Podium configuration from the server at this git ref, alternating run by "
                        "run with --ref (or the working tree), and print new/old ratios of the medians with the "
                        "old runs' spread (the migrations of both must match)")
    p.add_argument("--json", help="write all raw results here (default: in the temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (databases, server logs)")
    args = p.parse_args()
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]

    t_start = time.monotonic()
    ensure_deps()
    raise_nofile()
    work = Path(tempfile.mkdtemp(prefix="podium-bench-"))
    sources = benchlib.server_sources(work, args.ref, args.compare_ref)  # [new] or [old, new]
    new_src = sources[-1]
    prof_dir = work / "profiles" if args.profile else None
    if prof_dir:
        prof_dir.mkdir()
    results: dict[str, dict[str, list]] = {}
    meta = {"machine": {"cpus": os.cpu_count(), "cpu": _cpu_model(), "python": platform.python_version(),
                        "node": subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip(),
                        "loadavg_start": os.getloadavg()},
            "args": vars(args), "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "server_source": new_src.meta(),
            "server_sources": [s.meta() for s in sources]}
    try:
        log(f"work dir {work}; seeding SQLite template")
        tdir = work / "template"
        tdir.mkdir()
        seed = work / "seed.json"
        prepare_db(f"sqlite+aiosqlite:///{tdir / 'podium.db'}", tdir, seed,
                   subs=max([args.idle_conns, args.rate_subs, args.subs] + subs_list(args)), src=new_src.path,
                   # every subscriber of scenarios 1 and 2 must be a member of the fan-out room
                   fanout_members=max([500, args.rate_subs, args.subs] + subs_list(args)))
        template = tdir / "podium.db"

        if "1" in scenarios:
            deflate = [s.strip() for s in args.deflate_servers.split(",") if s.strip()]
            for n in subs_list(args):
                sc = f"1/N{n}"
                # a deflate row runs when its plain peer does (so --servers podium stays Podium-only)
                extra = [d for d in deflate if d.split("-")[0] in servers] if n in deflate_subs(args) else []
                configs = plan(servers + extra, sources)
                results[sc] = {src.key(k): [] for k, src in configs}
                for run in range(args.runs):
                    for k, src in configs:
                        res = guarded(run_modes, k, n, args, work, template, seed, src)
                        results[sc][src.key(k)].append(res)
                        log(f"scenario {sc} run {run + 1} {src.key(k)}: " + _short_modes(res))
        for sc in ("2",):
            if sc not in scenarios:
                continue
            configs = plan(servers, sources)
            results[sc] = {src.key(k): [] for k, src in configs}
            for run in range(args.runs):
                for k, src in configs:
                    if sc == "2" and k != "podium" and run >= args.peer_runs:
                        continue
                    res = guarded(run_fanout, k, args, work, template, seed, int(sc),
                                  prof_dir if run == 0 else None, src)
                    results[sc][src.key(k)].append(res)
                    log(f"scenario {sc} run {run + 1} {src.key(k)}: " + _short(res))
        if "3" in scenarios:
            configs = plan([s.strip() for s in args.idle_servers.split(",") if s.strip()], sources)
            results["3"] = {src.key(k): [] for k, src in configs}
            for run in range(args.runs):
                for k, src in configs:
                    if k != "podium" and run >= args.peer_runs:
                        continue
                    res = guarded(run_idle, k, args, work, template, seed, src)
                    results["3"][src.key(k)].append(res)
                    log(f"scenario 3 run {run + 1} {src.key(k)}: " + _short(res))
        if "4" in scenarios:
            pg = None if args.no_pg else prepare_pg(work, new_src.path)
            if not pg and not args.no_pg:
                log("PostgreSQL not reachable on 127.0.0.1:5432: scenario 4 runs on SQLite only")
            configs = plan(["sqlite"] + (["postgres"] if pg else []), sources, podium=lambda k: True)
            results["4"] = {src.key(db): [] for db, src in configs}
            for run in range(args.runs):
                for db, src in configs:
                    res = guarded(run_senders, db, args, work, template, pg[1] if db == "postgres" else seed,
                                  pg[0] if db == "postgres" else None, prof_dir if run == 0 else None, src)
                    results["4"][src.key(db)].append(res)
                    log(f"scenario 4 run {run + 1} {src.key(db)}: " + _short(res))
    finally:
        meta["loadavg_end"] = os.getloadavg()
        meta["wall_s"] = round(time.monotonic() - t_start, 1)
        out = Path(args.json) if args.json else work / "results.json"
        out.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
        table, verdicts = report(results, args, sources)
        modes_table, modes_notes = report_modes(results, args, sources)
        print()
        print()
        for src in sources:
            print(f"server code{' (' + src.label + ')' if src.label else ''}: {src.describe()}")
        print(f"Chat fan-out benchmark: {meta['machine']['cpus']} CPUs ({meta['machine']['cpu']}), medians of "
              f"{args.runs} run(s); load average at start {meta['machine']['loadavg_start'][0]:.2f}, "
              f"at end {meta['loadavg_end'][0]:.2f}; wall {meta['wall_s']:.0f} s")
        if modes_table:
            print("\nScenario 1, fan-out in both send modes (medians; deliveries/s · server CPU µs per delivery "
                  "· latency p50/p99 ms; ratio = Podium or peer / Node socket.io in the same mode):")
            print(modes_table)
            for v in modes_notes:
                print(v)
            print()
        if table.count("\n") > 1:
            print(table)
            print()
        for v in verdicts:
            print(v)
        print(f"\nraw results: {out}")
        if prof_dir:
            for f in sorted(prof_dir.glob("*-top.txt")):
                print(f"\n== py-spy: {f.name} ==\n{f.read_text()}")
        if not args.keep:
            # Keep the results file and profiles; drop databases and server logs.
            for child in work.iterdir():
                if child.name not in ("results.json", "profiles"):
                    shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink()
            if not any(work.iterdir()):
                work.rmdir()

def subs_list(args) -> list[int]:
    return [int(x) for x in args.subs_list.split(",") if x.strip()]


def deflate_subs(args) -> set[int]:
    return {int(x) for x in args.deflate_subs.split(",") if x.strip()}


def _short_modes(res: dict) -> str:
    if "error" in res:
        return "ERROR " + res["error"][:300]
    parts = [f"load {res.get('loadavg_1m')}", f"frame {res.get('frame_target_bytes')} B (natural "
             f"{res.get('frame_natural_bytes')})", f"ext '{res.get('extensions')}'", f"pub got {res.get('publisher_received')}"]
    for m in ("serial", "window"):
        r = res.get(m) or {}
        parts.append(f"{m}: {r.get('deliveries_per_s')}/s {r.get('server_cpu_us_per_delivery')} us/deliv "
                     f"p50 {_get(r, 'latency_ms.p50')} p99 {_get(r, 'latency_ms.p99')} frames {r.get('frame_bytes')} "
                     f"complete {r.get('complete')}")
    return "; ".join(parts)


MODE_METRICS = (("deliveries/s", "deliveries_per_s", True, 0), ("CPU µs/delivery", "server_cpu_us_per_delivery", False, 2),
                ("p50 ms", "latency_ms.p50", False, 2), ("p99 ms", "latency_ms.p99", False, 2))


def report_modes(results: dict, args, sources: list[Source]) -> tuple[str, list[str]]:
    """Scenario 1's table: a row per (N, server), both modes side by side, ratios vs Node socket.io
    in the same mode; with --compare-ref a new/old row under Podium."""
    scs = [sc for sc in results if sc.startswith("1/")]
    if not scs:
        return "", []
    old_src = sources[0] if len(sources) == 2 else None
    notes: list[str] = []
    cell = lambda m: f"{'deliv/s':>8} {'µs/deliv':>8} {'p50':>6} {'p99':>6} {'vs Node':>7} {'vs Node/CPU':>11}"  # noqa: E731
    head = (f"{'N':>5} {'server':<34} {'frame B':>9} | one at a time (window 1):{'':<24}| "
            f"window {args.window}:{'':<36}| {'win/one':>7} {'load':>5} runs (deliv/s one · window)")
    sub = f"{'':>5} {'':<34} {'':>9} | {cell('')} | {cell('')} |"
    lines = [head, sub, "-" * len(head)]

    def ok(sc, k):
        return [r for r in results[sc].get(k, []) if "error" not in r]

    def m(sc, k, mode, key):
        return med([_get(r.get(mode) or {}, key) for r in ok(sc, k)])

    for sc in scs:
        n = int(sc.split("N")[1])
        node = {mode: (m(sc, "nodesio", mode, "deliveries_per_s"), m(sc, "nodesio", mode, "server_cpu_us_per_delivery"))
                for mode in ("serial", "window")}
        for k in results[sc]:
            rs = ok(sc, k)
            errs = [r["error"][:200] for r in results[sc][k] if "error" in r]
            for e in errs:
                notes.append(f"ERROR scenario 1 N={n} {k}: {e}")
            label = SHORT.get(k.split("@")[0], k) + (f" · old {old_src.name}" if k.endswith("@old") else
                                                     (f" · new {sources[-1].name}" if old_src and k == "podium" else ""))
            frames = sorted({(_get(r, "serial.frame_bytes.min"), _get(r, "serial.frame_bytes.max"),
                              _get(r, "window.frame_bytes.min"), _get(r, "window.frame_bytes.max")) for r in rs})
            fb = {v for f in frames for v in f if v is not None}
            # The envelope's id/seq digits grow during a run (same for every server): a range of a few bytes.
            frame = (f"{min(fb)}" if min(fb) == max(fb) else f"{min(fb)}-{max(fb)}") if fb else "-"
            cells = []
            for mode in ("serial", "window"):
                d, us = m(sc, k, mode, "deliveries_per_s"), m(sc, k, mode, "server_cpu_us_per_delivery")
                nd, nus = node[mode]
                vs = f"{d / nd:.2f}x" if d and nd else "-"
                vs_cpu = f"{nus / us:.2f}x" if us and nus else "-"
                cells.append(f"{fmt(d):>8} {fmt(us, 1):>8} {fmt(m(sc, k, mode, 'latency_ms.p50'), 1):>6} "
                             f"{fmt(m(sc, k, mode, 'latency_ms.p99'), 1):>6} {vs:>7} {vs_cpu:>11}")
            ds, dw = m(sc, k, "serial", "deliveries_per_s"), m(sc, k, "window", "deliveries_per_s")
            wo = f"{dw / ds:.2f}x" if ds and dw else "-"
            runs = ", ".join(f"{fmt(_get(r, 'serial.deliveries_per_s'))}·{fmt(_get(r, 'window.deliveries_per_s'))}"
                             for r in rs) + (", ERR" * len(errs))
            lines.append(f"{n:>5} {label:<34} {frame:>9} | {cells[0]} | {cells[1]} | {wo:>7} "
                         f"{fmt(med([r.get('loadavg_1m') for r in rs]), 2):>5} {runs}")
            if rs and any(r.get("publisher_received") for r in rs):
                notes.append(f"WARNING N={n} {k}: the publisher received its own broadcast "
                             f"({[r.get('publisher_received') for r in rs]} message.new frames)")
            exts = {r.get("extensions") or "" for r in rs}
            if any(exts):
                notes.append(f"N={n} {k}: negotiated WebSocket extensions: {sorted(exts)}")
            incomplete = [mode for r in rs for mode in ("serial", "window") if not _get(r, f"{mode}.complete")]
            if incomplete:
                notes.append(f"WARNING N={n} {k}: {len(incomplete)} mode run(s) did not deliver every message "
                             f"to every subscriber in time: {incomplete}")
            if k.endswith("@old") or not old_src or f"{k}@old" not in results[sc]:
                continue
            for mode in ("serial", "window"):
                for name, key, higher, nd in MODE_METRICS:
                    per_run = lambda kk: [None if "error" in r else _get(r.get(mode) or {}, key)  # noqa: E731
                                          for r in results[sc][kk]]
                    c = benchlib.compare(per_run(f"{k}@old"), per_run(k), higher)
                    notes.append(f"N={n} {mode} {k}: " + benchlib.compare_line(name, c, nd))
    notes.append("one at a time = each send waits for its ack and for every subscriber to receive it (a class "
                 "chatting); window = that many messages not yet delivered to every subscriber (batching). "
                 "vs Node/CPU = Node's server CPU per delivery / this row's (higher is better).")
    return "\n".join(lines), notes


def _short(res: dict) -> str:
    if "error" in res:
        return "ERROR " + res["error"][:300]
    keys = ("deliveries_per_s", "sends_per_s", "acked_per_s", "kb_per_conn", "connections", "open_s",
            "open_cpu_ms_per_conn", "complete",
            "server_cpu_s", "client_cpu_s", "other_load_cores", "deliveries_per_server_cpu_s", "acked_per_server_cpu_s")
    parts = [f"{k}={res[k]}" for k in keys if k in res]
    for k in ("latency_ms", "ack_ms", "send_lag_ms"):
        if k in res and res[k].get("p50") is not None:
            parts.append(f"{k} p50={res[k]['p50']} p99={res[k]['p99']}")
    return " ".join(parts)


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    main()
