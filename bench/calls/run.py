#!/usr/bin/env python3
"""Live-call benchmark: join-to-connected of a 4-peer aiortc mesh, and signaling relay latency
with 50 concurrent sessions of 4 peers (Podium vs a bare Tornado relay vs python-socketio).

One command, from the repository root:

    .venv/bin/python bench/calls/run.py                 # everything, 3 relay runs each (~4 min)
    .venv/bin/python bench/calls/run.py --runs 1 --parts relay   # a quick look
    .venv/bin/python bench/calls/run.py --parts relay --relay-servers podium --runs 5 \\
        --compare-ref OLD --ref NEW        # two server commits, run by run interleaved

It installs what is missing (``ws`` and ``socket.io-client`` into bench/calls/node_modules from
the lock file; python-socketio and psutil into the project venv from
bench/calls/requirements.txt), builds a fresh migrated SQLite database in a temp dir, seeds
50 rooms of 4 users (``seed.py``), starts every server as a subprocess on a free 127.0.0.1
port, and prints tables of medians over the runs. Nothing leaves loopback; every loop is
bounded in count and time.

Parts:
  mesh   4 aiortc peers (tests/rtcpeer.py, real VP8/Opus media, trickled ICE through the
         server) join a fresh session: time from ``call.join`` to ``connected`` (median, p95),
         joining one after another and all at once. Peer: the same peers with an in-process
         relay instead of a server (aiortc's floor).
  relay  200 Node ``ws`` clients = 50 sessions x 4 peers; every round each pair negotiates
         (offer + answer acked, 4 trickled candidates + null each way, 12 frames per pair,
         4 KB SDPs); each session starts each round at a random moment of a 1 s period.
         Relay latency p50/p99/max from timestamps in every frame. Peers: the same relay
         written on bare Tornado (no auth, storage, limits) and on python-socketio.

Two server sources in one run (--compare-ref OLD, with --ref NEW or the working tree): the
Podium mesh and every Podium relay run go through both, the relay runs alternating run by run
(old, new, old, new, ...), on copies of the same seeded database (their migrations must
match), so drifting machine load hits both alike. The relay table gets a row per source and a
``new/old`` row (ratio of medians); a line per headline metric (relay p50, p99, server CPU per
frame) gives the old runs' spread, the ratio of each run pair, in how many pairs new was worse
and whether the ratio is within that spread (and, when it is, whether the pairs still lean one
way: sign test p < 0.05, which takes 6+ runs). The peers are optional then
(``--relay-servers podium``).
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/, for the shared benchlib module
import benchlib  # noqa: E402
from benchlib import PY, ROOT, Source, log, machine_busy_s, table  # noqa: E402

HERE = Path(__file__).resolve().parent
JWT_SECRET = "bench-calls-secret-" + "k" * 40

benchlib.reexec_in_venv(__file__)

RELAY_SERVERS = {
    "podium": "Podium (auth, checks, bounded queues)",
    "floor": "bare Tornado relay (floor)",
    "sio": "python-socketio on Tornado",
}


def ensure_deps() -> None:
    benchlib.ensure_deps(HERE, ("ws", "socket.io-client"), "socketio, psutil", HERE / "requirements.txt")


def podium_env(db_url: str, data_dir: Path, src: Path, port: int = 0) -> dict:
    return benchlib.podium_env(db_url, data_dir, port, jwt_secret=JWT_SECRET, src=src,
                               drop=("PODIUM_ENV", "ICE_SERVERS", "TURN_SECRET", "TURN_URLS"))


def prepare_template(work: Path, rooms: int, src: Path) -> tuple[Path, Path]:
    tdir = work / "template"
    tdir.mkdir()
    db = tdir / "podium.db"
    env = podium_env(f"sqlite+aiosqlite:///{db}", tdir, src)
    subprocess.run([PY, "-m", "server", "migrate"], cwd=src, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seed = work / "seed.json"
    subprocess.run([PY, str(HERE / "seed.py"), str(seed), "--rooms", str(rooms), "--peers", "4"], cwd=ROOT,
                   env=env, check=True)
    return db, seed


class Server(benchlib.Server):
    """One server subprocess on a free port; ``podium`` gets a fresh copy of the template DB."""

    stop_timeout = 10

    def _command(self, work: Path, template: Path | None = None, src: Path = ROOT):
        kind = self.kind
        if kind == "podium":
            run_dir = Path(tempfile.mkdtemp(prefix="podium-", dir=work))
            shutil.copy(template, run_dir / "podium.db")
            cmd = [PY, "-m", "server", "serve"]
            env = podium_env(f"sqlite+aiosqlite:///{run_dir / 'podium.db'}", run_dir, src, self.port)
            self.url = f"ws://127.0.0.1:{self.port}/ws"
        else:
            cmd, env = [PY, str(HERE / "relay_peers.py"), kind, str(self.port)], dict(os.environ)
            self.url = f"ws://127.0.0.1:{self.port}/ws" if kind == "floor" else f"http://127.0.0.1:{self.port}"
        return cmd, env, src if kind == "podium" else ROOT


def run_harness(cfg: dict, server: Server, timeout: float) -> dict:
    """harness.js once; server CPU is sampled at its PHASE start/end lines."""
    marks: dict[str, tuple[float, float, float]] = {}

    def on_phase(name: str) -> None:
        marks[name] = (server.cpu_s(), machine_busy_s(), time.monotonic())

    def on_result(res: dict) -> None:
        if "start" in marks and "end" in marks:
            (c0, m0, t0), (c1, m1, t1) = marks["start"], marks["end"]
            res["server_cpu_s"] = round(c1 - c0, 2)
            res["server_cores"] = round((c1 - c0) / max(t1 - t0, 1e-3), 2)
            if res.get("frames_received"):
                res["server_us_per_frame"] = round((c1 - c0) * 1e6 / res["frames_received"], 1)
            # Busy CPU of the whole machine minus this server and the harness: other people's load.
            client = res.get("client_cpu_s", 0) * (t1 - t0) / max(res.get("phase_s", t1 - t0), 1e-3)
            other = (m1 - m0) - (c1 - c0) - client
            res["other_load_cores"] = round(max(other, 0) / max(t1 - t0, 1e-3), 2)

    return benchlib.run_harness(HERE / "harness.js", cfg, timeout, on_phase, on_result=on_result)


def relay_once(kind: str, args, work: Path, template: Path, seed: Path, src: Source) -> dict:
    srv = Server(kind, work, template, src=src.path)
    try:
        cfg = {"kind": kind, "url": srv.url, "seed": str(seed), "sessions": args.sessions, "peers": 4,
               "rounds": args.rounds, "warmup_rounds": 2, "period_ms": args.period_ms,
               "candidates": args.candidates, "sdp_bytes": args.sdp_bytes, "drain_s": 20,
               "hard_deadline_s": int(args.rounds * args.period_ms / 1000 + 120)}
        res = run_harness(cfg, srv, timeout=cfg["hard_deadline_s"] + 15)
        res["server_rss_mb"] = srv.rss_mb()
        return res
    finally:
        srv.stop()


def mesh_once(ws_url: str, seed: Path | None, rounds: int, media: bool) -> dict:
    cmd = [PY, str(HERE / "mesh.py"), ws_url] + ([str(seed)] if seed else []) + ["--rounds", str(rounds)]
    if not media:
        cmd.append("--no-media")
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60 + rounds * 30)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"error": f"mesh.py exit {out.returncode}: {out.stderr[-800:]}"}
    return json.loads(lines[-1])


def med(values: list) -> float | None:
    return benchlib.med(values, ndigits=2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", default="mesh,relay")
    p.add_argument("--runs", type=int, default=3, help="runs of each relay configuration (default 3)")
    p.add_argument("--relay-servers", default="podium,floor,sio")
    p.add_argument("--sessions", type=int, default=50)
    p.add_argument("--rounds", type=int, default=20, help="measured negotiation rounds per session")
    p.add_argument("--period-ms", type=int, default=1000)
    p.add_argument("--candidates", type=int, default=4)
    p.add_argument("--sdp-bytes", type=int, default=4000)
    p.add_argument("--mesh-rounds", type=int, default=10)
    p.add_argument("--no-media", action="store_true", help="mesh peers negotiate recvonly, send no media")
    p.add_argument("--ref", help="benchmark the server as committed at this git ref (exported with git archive "
                                 "into the temp dir) instead of the working tree")
    p.add_argument("--compare-ref", metavar="OLD",
                   help="also run the Podium mesh and every Podium relay run from the server at this git ref, "
                        "alternating run by run with --ref (or the working tree), and print new/old ratios of "
                        "the medians with the old runs' spread (the migrations of both must match)")
    p.add_argument("--json", help="write all raw results here (default: in the temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (database, server logs)")
    args = p.parse_args()
    parts = [s.strip() for s in args.parts.split(",") if s.strip()]
    ensure_deps()
    work = Path(tempfile.mkdtemp(prefix="calls-bench-"))
    sources = benchlib.server_sources(work, args.ref, args.compare_ref)  # [new] or [old, new]
    new_src = sources[-1]
    meta = {"cpus": os.cpu_count(), "python": platform.python_version(),
            "node": subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip(),
            "loadavg_start": os.getloadavg(), "args": vars(args), "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "git": " vs ".join(f"{s.label + ' ' if s.label else ''}{s.describe()}" for s in sources),
            "server_sources": [s.meta() for s in sources]}
    results: dict = {"meta": meta}
    t_start = time.monotonic()
    try:
        log(f"work dir {work}; seeding SQLite template ({args.sessions} rooms x 4 users)")
        template, seed = prepare_template(work, max(args.sessions, args.mesh_rounds * 2 + 2), new_src.path)
        if "mesh" in parts:
            for src in sources:
                srv = Server("podium", work, template, src=src.path)
                try:
                    log(f"mesh: 4 aiortc peers through Podium{_tag(src, 'podium', sources)}, {args.mesh_rounds} rounds "
                        "of each pattern")
                    results[f"mesh_{src.key('podium')}"] = mesh_once(srv.url, seed, args.mesh_rounds,
                                                                    not args.no_media)
                finally:
                    srv.stop()
            log("mesh: the same peers with an in-process relay")
            results["mesh_local"] = mesh_once("local", None, args.mesh_rounds, not args.no_media)
        if "relay" in parts:
            kinds = [k.strip() for k in args.relay_servers.split(",") if k.strip()]
            # A Podium run once per source (old, then new), a peer once.
            configs = [(k, src) for k in kinds for src in (sources if k == "podium" else sources[-1:])]
            for kind, src in configs:
                results.setdefault(f"relay_{src.key(kind)}", [])
            for run in range(args.runs):  # interleaved, so drifting machine load hits every server alike
                for kind, src in configs:
                    log(f"relay run {run + 1}/{args.runs}: {RELAY_SERVERS[kind]}{_tag(src, kind, sources)}")
                    try:
                        res = relay_once(kind, args, work, template, seed, src)
                    except Exception as e:  # noqa: BLE001 - a server that did not start: recorded, not fatal
                        res = {"error": f"{type(e).__name__}: {e}"}
                    results[f"relay_{src.key(kind)}"].append(res)
                    if "error" in res:
                        log(f"  error: {res['error']}")
                    else:
                        r = res["relay_ms"]
                        log(f"  relay p50 {r['p50']} ms, p99 {r['p99']} ms, max {r['max']} ms; "
                            f"{res['frames_received']}/{res['frames_expected']} frames, {res['frames_per_s']}/s, "
                            f"out of order {res['out_of_order']}, errors {res['errors']}, "
                            f"server {res.get('server_cores')} cores, other load {res.get('other_load_cores')}")
    finally:
        meta["loadavg_end"] = os.getloadavg()
        work.mkdir(parents=True, exist_ok=True)
        out = Path(args.json) if args.json else work / "results.json"
        out.write_text(json.dumps(results, indent=1))
        log(f"raw results: {out}")
        if not args.keep:  # keep the results file; drop databases and server logs
            for child in work.iterdir():
                if child != out:
                    shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink()
    print()
    print(f"## Live calls benchmark ({time.strftime('%Y-%m-%d')}, {meta['cpus']} CPUs, Python {meta['python']}, "
          f"Node {meta['node']}, {time.monotonic() - t_start:.0f} s; load average at start "
          f"{meta['loadavg_start'][0]:.2f}, at end {meta['loadavg_end'][0]:.2f})")
    for src in sources:
        print(f"server code{' (' + src.label + ')' if src.label else ''}: {src.describe()}")
    mesh_keys = [k for k in results if k.startswith("mesh_")]
    if mesh_keys:
        print()
        print("Join-to-connected, 4-peer aiortc mesh on loopback (ms):")
        rows = []
        for key in mesh_keys:
            if key == "mesh_local":
                name = "in-process relay (floor)"
            else:
                src = next(s for s in sources if f"mesh_{s.key('podium')}" == key)
                name = "Podium /ws signaling" + _tag(src, "podium", sources)
            r = results.get(key, {})
            if "error" in r:
                rows.append([name, "error", None, None, None, None])
                continue
            s, t = r["sequential"], r["together"]
            rows.append([name, s["median_ms"], s["p95_ms"], t["median_ms"], t["p95_ms"], f"{s['n']}+{t['n']}"])
        print(table(["signaling", "one-by-one median", "one-by-one p95", "all-at-once median", "all-at-once p95",
                     "samples"], rows))
    relay_keys = [k for k in results if k.startswith("relay_")]
    if relay_keys:
        print()
        print(f"Signaling relay, {args.sessions} sessions x 4 peers, {args.rounds} rounds, medians of {args.runs} runs "
              f"(latency in ms; target p99 <= 20 ms):")
        rows, lines = [], []
        for key in relay_keys:
            kind = key[len("relay_"):].split("@")[0]
            src = sources[0] if key.endswith("@old") else new_src
            ok = [r for r in results[key] if "error" not in r]
            name = RELAY_SERVERS[kind] + _tag(src, kind, sources)
            if not ok:
                rows.append([name, "error"] + [None] * 9)
            else:
                rows.append([name, med([r["relay_ms"]["p50"] for r in ok]),
                             med([r["relay_ms"]["p99"] for r in ok]), med([r["relay_ms"]["max"] for r in ok]),
                             med([r["offer_ack_ms"]["p99"] for r in ok]), med([r["frames_per_s"] for r in ok]),
                             sum(r["frames_expected"] - r["frames_received"] for r in ok),
                             sum(r["out_of_order"] for r in ok) + sum(r["errors"] for r in ok),
                             med([r.get("server_us_per_frame") for r in ok]),
                             med([r.get("other_load_cores") for r in ok]),
                             " · ".join(f"{r['relay_ms']['p99']:.1f}" for r in ok)])
            if f"{key}@old" in results:  # the new source's row: new/old ratios of the medians under it
                row, pairs = ["new/old (ratio of medians)"], ""
                for name_, get, higher in (("relay p50 ms", lambda r: r["relay_ms"]["p50"], False),
                                           ("relay p99 ms", lambda r: r["relay_ms"]["p99"], False),
                                           ("relay max ms", lambda r: r["relay_ms"]["max"], False),
                                           ("offer ack p99 ms", lambda r: r["offer_ack_ms"]["p99"], False),
                                           ("frames/s", lambda r: r["frames_per_s"], True),
                                           (None, None, None), (None, None, None),
                                           ("server CPU us/frame", lambda r: r.get("server_us_per_frame"), False)):
                    if name_ is None:
                        row.append(None)
                        continue
                    per_run = lambda k: [None if "error" in r else get(r) for r in results[k]]  # noqa: E731
                    c = benchlib.compare(per_run(f"{key}@old"), per_run(key), higher)
                    row.append(None if c is None else f"{c['ratio']:.3f}x")
                    if name_ in ("relay p50 ms", "relay p99 ms", "server CPU us/frame"):  # the headline metrics
                        lines.append(benchlib.compare_line(name_, c, 2 if "p50" in name_ else 1))
                    if name_ == "relay p99 ms" and c is not None:
                        pairs = "per run pair " + " · ".join(f"{x:.2f}" for x in c["paired"])
                rows.append(row + [None, pairs])
        print(table(["server", "p50", "p99", "max", "offer ack p99", "frames/s", "lost", "misordered+errors",
                     "server CPU us/frame", "other load (cores)", "p99 per run"], rows))
        if lines:
            print()
            for line in lines:
                print(line)


def _tag(src: Source, kind: str, sources: list[Source]) -> str:
    """`` · old 9892fb6`` / `` · new HEAD e4aceb8`` for a Podium row under --compare-ref, else ""."""
    if len(sources) < 2 or kind != "podium":
        return ""
    return f" · {src.label} {src.name}"


if __name__ == "__main__":
    main()
