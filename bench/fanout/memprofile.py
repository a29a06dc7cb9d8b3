"""Where does an idle Podium connection's memory go? (investigation aid, not part of run.py)

    .venv/bin/python bench/fanout/memprofile.py [--conns 2000] [--top 30]

Starts the unmodified Podium server in a child process under ``tracemalloc`` (via
``-X tracemalloc=N``), seeds a fresh SQLite database, opens --conns idle connections (each
authenticated and joined to a 100-member room, as scenario 3 of run.py) with harness.js, and
prints the live Python allocations that appeared per connection, grouped by source line, plus
RSS per connection and the gap between the two (allocator fragmentation, freed-but-kept
arenas, C-level buffers that tracemalloc does not see).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PY = str(ROOT / ".venv" / "bin" / "python")
JWT_SECRET = "bench-fanout-secret-" + "k" * 40

# Runs inside the server process: the normal entry point plus snapshot-on-signal.
CHILD = r'''
import os, signal, sys, tracemalloc, pickle, gc
def dump(signum, frame):
    gc.collect()
    snap = tracemalloc.take_snapshot()
    path = os.environ["SNAP_DIR"] + ("/before.snap" if signum == signal.SIGUSR1 else "/after.snap")
    snap.dump(path)
    open(path + ".done", "w").close()
signal.signal(signal.SIGUSR1, dump)
signal.signal(signal.SIGUSR2, dump)
sys.argv = ["server", "serve"]
from server.__main__ import main
main()
'''


def main() -> None:
    import psutil
    import tracemalloc

    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", type=int, default=2000)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--frames", type=int, default=12)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="podium-mem-"))
    port = 18000 + os.getpid() % 20000
    env = dict(os.environ, DATABASE_URL=f"sqlite+aiosqlite:///{work}/podium.db", DATA_DIR=str(work),
               JWT_SECRET=JWT_SECRET, HOST="127.0.0.1", PORT=str(port), RATE_LIMIT_PER_S="1000000",
               RATE_LIMIT_BURST="1000000", SNAP_DIR=str(work))
    subprocess.run([PY, "-m", "server", "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run([PY, str(HERE / "seed.py"), str(work / "seed.json"), "--subs", str(args.conns + 100)],
                   cwd=ROOT, env=env, check=True)
    log = open(work / "server.log", "w")
    srv = subprocess.Popen([PY, "-X", f"tracemalloc={args.frames}", "-c", CHILD], cwd=ROOT, env=env,
                           stdout=log, stderr=subprocess.STDOUT)
    holders: list[subprocess.Popen] = []
    try:
        import urllib.request
        for _ in range(600):  # tracemalloc makes start-up slow
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError("server did not start")

        def idle(conns: int, offset: int) -> subprocess.Popen:
            cfg = {"kind": "podium", "url": f"ws://127.0.0.1:{port}/ws", "scenario": "idle",
                   "seed": str(work / "seed.json"), "conns": conns, "offset": offset, "hold_s": 600,
                   "hard_deadline_s": 660}
            p = subprocess.Popen(["node", str(HERE / "harness.js"), json.dumps(cfg)], cwd=HERE,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            line = p.stdout.readline().strip()
            print("idle harness:", line, flush=True)
            if json.loads(line).get("ready") != conns:
                raise RuntimeError("connections failed")
            return p

        def snap(sig: signal.Signals, name: str) -> None:
            srv.send_signal(sig)
            for _ in range(600):
                if (work / f"{name}.snap.done").exists():
                    return
                time.sleep(0.1)
            raise RuntimeError("no snapshot")

        warm = idle(100, 0)  # warm-up, then close: one-time costs are not per connection
        warm.stdin.close()
        warm.wait(30)
        time.sleep(1.5)
        snap(signal.SIGUSR1, "before")
        rss0 = psutil.Process(srv.pid).memory_info().rss
        holders.append(idle(args.conns, 100))
        time.sleep(3)
        snap(signal.SIGUSR2, "after")
        rss1 = psutil.Process(srv.pid).memory_info().rss
        # (RSS here includes tracemalloc's own bookkeeping, so it is higher than in run.py.)
        before = tracemalloc.Snapshot.load(str(work / "before.snap"))
        after = tracemalloc.Snapshot.load(str(work / "after.snap"))
        n = args.conns
        total = sum(s.size_diff for s in after.compare_to(before, "filename"))
        print(f"\n{n} connections: live Python allocations +{total / n / 1024:.2f} KB/connection "
              f"(tracemalloc); RSS +{(rss1 - rss0) / n / 1024:.2f} KB/connection (includes tracemalloc's "
              f"own overhead)\n")
        print(f"{'KB/conn':>8} {'objs/conn':>9}  by file (innermost frame)")
        for st in after.compare_to(before, "filename")[:15]:
            if st.size_diff > 0:
                print(f"{st.size_diff / n / 1024:8.2f} {st.count_diff / n:9.1f}  {_short(st.traceback[0].filename)}")
        print(f"\n{'KB/conn':>8} {'objs/conn':>9}  by line (innermost frame)")
        for st in after.compare_to(before, "lineno")[:args.top]:
            if st.size_diff <= 0:
                continue
            fr = st.traceback[0]
            print(f"{st.size_diff / n / 1024:8.2f} {st.count_diff / n:9.1f}  {_short(fr.filename)}:{fr.lineno}")
        print("\nby caller chain (top 12, 4 innermost frames):")
        stats = after.compare_to(before, "traceback")[:12]
        for st in stats:
            print(f"\n{st.size_diff / n / 1024:8.2f} KB/conn  {st.count_diff / n:.1f} objs/conn")
            for fr in list(st.traceback)[-4:]:
                print(f"          {_short(fr.filename)}:{fr.lineno}")
    finally:
        for h in holders:
            try:
                h.stdin.close()
                h.wait(30)
            except Exception:  # noqa: BLE001 - best-effort clean-up
                h.kill()
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(10)
        except subprocess.TimeoutExpired:
            srv.kill()
        print(f"\nwork dir: {work}")


def _short(path: str) -> str:
    for marker in ("site-packages/", "lib/python3.11/", str(ROOT) + "/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


if __name__ == "__main__":
    main()
