#!/usr/bin/env python3
"""The fixed cost of one chat message (issue 18, point 2): server CPU per message as
``fixed + N × per-delivery``, fitted over N = 1, 200 and 1,000 subscribers.

    .venv/bin/python bench/fanout/fixed_cost.py                  # SQLite and PostgreSQL, 3 runs
    .venv/bin/python bench/fanout/fixed_cost.py --dbs sqlite --runs 1 --profile 200

One publisher sends one message at a time (window 1: the next send leaves when the previous one
is acked; Podium writes every subscriber's ``message.new`` before it writes the ack) to N
subscribers of one room. The server's CPU (user + system, all threads, ``/proc/<pid>/stat``
through psutil) is read at the harness's ``PHASE start`` and ``PHASE end`` lines (after the
warm-up; ``end`` once every delivery has arrived), divided by the messages sent, and a least-
squares line is fitted through the (N, CPU per message) medians. Everything else is
``run.py``'s: the Node harness (``harness.js``, scenario ``fanout``), the Podium server
subprocess, the seed script and the py-spy profiler. The fanout room is seeded with 1,000
members; PostgreSQL gets a database of its own (``bench_fixed``, dropped and recreated).
"""
from __future__ import annotations

import argparse
import inspect
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
sys.path.insert(0, str(HERE))  # bench/fanout/, for run.py
import benchlib  # noqa: E402

benchlib.reexec_in_venv(__file__)

import run as fanout  # noqa: E402  (bench/fanout/run.py: harness, Server, podium_env, setup)
from benchlib import PY, ROOT, log, med  # noqa: E402

PG_DB = "bench_fixed"
# run.py names the server source per call (``src``) since its --compare-ref rework, and in a
# module global ``SRC`` before it: work with either.
_RUN_TAKES_SRC = "src" in inspect.signature(fanout.podium_env).parameters


def podium_env(db_url: str, data_dir: Path, src: Path) -> dict:
    if _RUN_TAKES_SRC:
        return fanout.podium_env(db_url, data_dir, src)
    fanout.SRC = src
    return fanout.podium_env(db_url, data_dir)


def start_server(work: Path, db_url: str | None, template: Path | None, src: Path):
    if _RUN_TAKES_SRC:
        return fanout.Server("podium", work, db_url=db_url, template=template, src=src)
    fanout.SRC = src
    return fanout.Server("podium", work, db_url=db_url, template=template)
PG_ADMIN = ["-h", "127.0.0.1", "-U", "postgres"]


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def seed_db(db_url: str, data_dir: Path, out: Path, members: int, src: Path) -> None:
    """Migrate and seed ``db_url`` with ``seed.py``; the fanout room gets ``members`` subscribers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = podium_env(db_url, data_dir, src)
    subprocess.run([PY, "-m", "server", "migrate"], cwd=src, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    subprocess.run([PY, str(HERE / "seed.py"), str(out), "--subs", str(members), "--fanout-members", str(members)],
                   cwd=ROOT, env=env, check=True)


def prepare_pg(work: Path, members: int, src: Path) -> tuple[str, Path] | None:
    if shutil.which("createdb") is None or subprocess.run(
            ["pg_isready", "-h", "127.0.0.1", "-p", "5432"], capture_output=True).returncode != 0:
        return None
    subprocess.run(["dropdb", "--if-exists", *PG_ADMIN, PG_DB], capture_output=True)
    made = subprocess.run(["createdb", *PG_ADMIN, PG_DB], capture_output=True, text=True)
    if made.returncode != 0:
        log(f"PostgreSQL: createdb failed ({made.stderr.strip()}); skipping")
        return None
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{PG_DB}"
    seed = work / "seed-pg.json"
    seed_db(url, work / "pgdata", seed, members, src)
    return url, seed


def one_run(n: int, messages: int, work: Path, seed: Path, template: Path | None, db_url: str | None,
            profile: Path | None, src: Path) -> dict:
    srv = start_server(work, db_url, template, src)
    try:
        cfg = {"scenario": "fanout", "kind": "podium", "url": srv.url, "seed": str(seed), "subs": n,
               "messages": messages, "window": 1, "timeout_s": 300, "warmup": 30}
        up0 = uptime()
        res = fanout.harness(cfg, timeout=cfg["timeout_s"] + 120, server=srv, profile=profile)
        res["uptime_before"], res["uptime_after"] = up0, uptime()
    finally:
        srv.stop()
    if "server_cpu_s" in res and res.get("acked"):
        res["cpu_ms_per_msg"] = res["server_cpu_s"] * 1000 / res["acked"]
    return res


def fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least squares ``y = a + b x``: (a, b)."""
    k = len(points)
    mx = sum(x for x, _ in points) / k
    my = sum(y for _, y in points) / k
    sxx = sum((x - mx) ** 2 for x, _ in points)
    b = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
    return my - b * mx, b


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dbs", default="sqlite,postgres")
    p.add_argument("--ns", default="1,200,1000", help="subscriber counts to fit over")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--messages", type=int, default=400, help="messages per run (after a 30-message warm-up)")
    p.add_argument("--profile", type=int, metavar="N", help="py-spy record run 1 at this N (perturbs that run)")
    p.add_argument("--ref", help="run the server as committed at this git ref (git archive into the temp dir) "
                                 "instead of the working tree")
    p.add_argument("--json", help="write raw results here (default: the temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (databases, server logs)")
    args = p.parse_args()
    ns = [int(x) for x in args.ns.split(",")]
    dbs = [d.strip() for d in args.dbs.split(",") if d.strip()]

    fanout.ensure_deps()
    fanout.raise_nofile()
    work = Path(tempfile.mkdtemp(prefix="podium-fixed-"))
    commit = subprocess.run(["git", "rev-parse", "--short", args.ref or "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    src = benchlib.export_ref(commit, work) if args.ref else ROOT
    dirty = [] if args.ref else subprocess.run(["git", "status", "--short", "--", "server"], cwd=ROOT,
                                               capture_output=True, text=True).stdout.split("\n")
    meta = {"commit": commit, "uncommitted_server_files": [d for d in dirty if d], "uptime_start": uptime(),
            "args": vars(args)}
    log(f"work dir {work}; {meta['uptime_start']}")
    results: dict[str, dict[int, list[dict]]] = {}
    prof_dir = work / "profiles"
    prof_dir.mkdir()
    try:
        setups: dict[str, tuple[str | None, Path, Path | None]] = {}
        if "sqlite" in dbs:
            tdir = work / "template"
            seed_db(f"sqlite+aiosqlite:///{tdir / 'podium.db'}", tdir, work / "seed.json", max(ns), src)
            setups["sqlite"] = (None, work / "seed.json", tdir / "podium.db")
        if "postgres" in dbs:
            pg = prepare_pg(work, max(ns), src)
            if pg is None:
                log("PostgreSQL not reachable on 127.0.0.1:5432: skipped")
            else:
                setups["postgres"] = (pg[0], pg[1], None)
        for db, (url, seed, template) in setups.items():
            results[db] = {n: [] for n in ns}
            for r in range(args.runs):
                for n in ns:
                    prof = prof_dir / f"{db}-n{n}.txt" if args.profile == n and r == 0 else None
                    try:
                        res = one_run(n, args.messages, work, seed, template, url, prof, src)
                    except Exception as e:  # noqa: BLE001 - recorded, the other runs go on
                        res = {"error": f"{type(e).__name__}: {e}"}
                    results[db][n].append(res)
                    log(f"{db} N={n} run {r + 1}: " + (res.get("error") or
                        f"{res.get('cpu_ms_per_msg', float('nan')):.2f} CPU-ms/msg, acked {res.get('acked')}, "
                        f"complete {res.get('complete')}, ack p50 {res.get('ack_ms', {}).get('p50')} ms, "
                        f"other load {res.get('other_load_cores')} cores; {res.get('uptime_after', '')}"))
    finally:
        meta["uptime_end"] = uptime()
        out = Path(args.json) if args.json else work / "results.json"
        out.write_text(json.dumps({"meta": meta, "results": results}, indent=1))

    print()
    print(f"server: {commit}" + (f" + uncommitted {meta['uncommitted_server_files']}" if meta["uncommitted_server_files"]
                                 else ""))
    print(f"start: {meta['uptime_start']}\nend:   {meta['uptime_end']}")
    rows, fits = [], []
    for db, by_n in results.items():
        pts = []
        for n in ns:
            ok = [x for x in by_n[n] if "cpu_ms_per_msg" in x and x.get("complete")]
            m = med([x["cpu_ms_per_msg"] for x in ok])
            if m is not None:
                pts.append((n, m))
            rows.append([db, n, len(ok), None if m is None else f"{m:.2f}",
                         " · ".join(f"{x['cpu_ms_per_msg']:.2f}" for x in ok),
                         med([x["ack_ms"]["p50"] for x in ok], 2), med([x["latency_ms"]["p50"] for x in ok], 2),
                         med([x.get("other_load_cores") for x in ok], 2)])
        if len(pts) >= 2:
            a, b = fit(pts)
            fits.append(f"{db}: CPU per message = {a:.2f} ms + N × {b * 1000:.1f} µs  "
                        f"(least squares over N = {', '.join(str(n) for n, _ in pts)}; residuals "
                        + ", ".join(f"{y - (a + b * n):+.2f}" for n, y in pts) + " ms)")
    print(benchlib.table(["db", "N", "runs", "CPU ms/msg (median)", "runs", "ack p50 ms", "delivery p50 ms",
                          "other load (cores)"], rows))
    print()
    for f in fits:
        print(f)
    print(f"\nraw results: {out}")
    for f in sorted(prof_dir.glob("*-top.txt")):
        print(f"\n== py-spy: {f.name} ==\n{f.read_text()}")
    if not args.keep:
        for child in work.iterdir():
            if child.name not in ("results.json", "profiles"):
                shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink()


if __name__ == "__main__":
    main()
