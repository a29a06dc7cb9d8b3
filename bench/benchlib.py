"""Pieces shared by the benchmark drivers (``bench/*/run.py``).

Standard library only (psutil is imported where it is used), so the drivers can import this
before they re-exec themselves under the project venv.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from math import comb
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
VENV_PY = ROOT / ".venv" / "bin" / "python"
PY = str(VENV_PY) if VENV_PY.exists() else sys.executable


def reexec_in_venv(script: str) -> None:
    """Re-exec ``script`` under the project venv (psutil, the server's own packages) when started elsewhere."""
    if (VENV_PY.exists() and Path(sys.executable).resolve() != VENV_PY.resolve()
            and not os.environ.get("BENCH_NO_REEXEC")):
        os.execv(str(VENV_PY), [str(VENV_PY), script, *sys.argv[1:]])


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- setup ------------------------------------------------------------------------------------
def ensure_deps(here: Path, npm_packages: tuple[str, ...], py_modules: str, requirements: Path) -> None:
    """``npm ci`` in ``here`` unless every npm package is installed; ``pip install -r requirements``
    into the venv unless ``import <py_modules>`` (comma-separated) succeeds."""
    nm = here / "node_modules"
    if not all((nm / p / "package.json").exists() for p in npm_packages):
        log(f"installing npm packages into {nm.relative_to(ROOT)} (npm ci)")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=here, check=True)
    if subprocess.run([PY, "-c", f"import {py_modules}"], capture_output=True).returncode != 0:
        log(f"installing {requirements.relative_to(ROOT)} into the project venv")
        subprocess.run([PY, "-m", "pip", "install", "-q", "-r", str(requirements)], check=True)


def export_ref(ref: str, work: Path, name: str = "src") -> Path:
    """The server as committed at ``ref`` (git archive of server/, migrations/, alembic.ini) in ``work/<name>``."""
    src = work / name
    src.mkdir()
    tar = subprocess.run(["git", "archive", ref, "server", "migrations", "alembic.ini"], cwd=ROOT,
                         check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=tar, check=True)
    return src


def _git(*a: str) -> str:
    return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()


@dataclass(frozen=True)
class Source:
    """One server source a driver runs Podium from: the working tree or a commit exported with
    ``export_ref``. ``label`` is "" when a driver runs one source, "old"/"new" under --compare-ref."""

    label: str
    path: Path
    ref: str  # as given on the command line, or "working tree"
    commit: str
    uncommitted: tuple[str, ...] = ()  # for the working tree: `git status --short` of the server files

    def key(self, kind: str) -> str:
        """Results key of server ``kind`` run from this source: ``kind`` itself, ``kind@old`` for the old one."""
        return f"{kind}@{self.label}" if self.label == "old" else kind

    @property
    def name(self) -> str:
        """The ref with its commit, for table labels: ``9892fb6``, ``HEAD e4aceb8``, ``working tree e4aceb8``."""
        return self.ref if self.commit.startswith(self.ref) else f"{self.ref} {self.commit[:7]}"

    def describe(self) -> str:
        return f"{self.ref} at {self.commit[:10]}" + (f" + {len(self.uncommitted)} uncommitted server file(s)" if self.uncommitted else "")

    def meta(self) -> dict:
        return {"label": self.label, "ref": self.ref, "commit": self.commit, "uncommitted": list(self.uncommitted)}


def server_sources(work: Path, ref: str | None, compare_ref: str | None = None) -> list[Source]:
    """The server source(s) for ``--ref`` (default: the working tree) and ``--compare-ref``:
    ``[new]``, or ``[old, new]`` when ``compare_ref`` is given (each exported into its own dir).

    Both sources are benchmarked on copies of one database migrated and seeded with the new
    source, so their migrations must be the same; SystemExit when they differ."""
    def one(label: str, r: str | None) -> Source:
        if r is None:
            dirty = _git("status", "--short", "--", "server", "migrations", "alembic.ini").splitlines()
            return Source(label, ROOT, "working tree", _git("rev-parse", "HEAD"), tuple(dirty))
        commit = _git("rev-parse", "--verify", f"{r}^{{commit}}")
        if not commit:
            raise SystemExit(f"not a commit: {r}")
        return Source(label, export_ref(commit, work, f"src-{label}" if label else "src"), r, commit)

    new = one("new" if compare_ref else "", ref)
    if not compare_ref:
        return [new]
    old = one("old", compare_ref)
    diff = ["git", "diff", "--quiet", old.commit] + ([new.commit] if ref else []) + ["--", "migrations", "alembic.ini"]
    if subprocess.run(diff, cwd=ROOT).returncode != 0:
        raise SystemExit(f"migrations differ between {compare_ref} and {ref or 'the working tree'}: one seeded "
                         "database cannot serve both; compare them in separate invocations")
    return [old, new]


def compare(old: list, new: list, higher_is_better: bool = True) -> dict | None:
    """new/old ratio of the medians of one metric, with the run-to-run spread it is read against.

    ``old``/``new``: per-run values (None for a failed run), interleaved runs in order, so run i of
    each ran back to back. ``spread``: (max - min) / median of the old source's runs, the noise of
    the baseline (an erratic new source does not widen it);
    ``paired``: new/old of each run pair, ``worse_pairs``: in how many of them new was worse,
    ``sign_p``: the two-sided sign test of those pairs (how often a coin would split them at
    least as unevenly). Verdict "within noise" when |ratio - 1| <= spread, else "better"/"worse"
    beyond noise (lower is better for latencies, ``higher_is_better=False``); a ratio within the
    spread whose pairs lean one way with sign_p < 0.05 is reported as such, since a wide spread
    hides a shift that every pair shows."""
    o, n = [v for v in old if v is not None], [v for v in new if v is not None]
    if not o or not n or not med(o):
        return None
    mo, mn = med(o), med(n)
    ratio = mn / mo
    spread = (max(o) - min(o)) / mo
    paired = [b / a for a, b in zip(old, new) if a and b is not None]
    worse = sum(1 for x in paired if (x < 1 if higher_is_better else x > 1))
    better = sum(1 for x in paired if (x > 1 if higher_is_better else x < 1))
    sign_p = _sign_test(worse, better)
    if len(o) < 2 or len(n) < 2:
        verdict = "no verdict (the spread needs 2+ runs of each)"
    elif abs(ratio - 1) > spread:
        verdict = "better beyond noise" if (ratio > 1) == higher_is_better else "WORSE beyond noise"
    elif sign_p < 0.05:
        verdict = (f"within the spread, but {'WORSE' if worse > better else 'better'} in "
                   f"{max(worse, better)} of {worse + better} pairs (sign test p={sign_p:.3f})")
    else:
        verdict = "within noise"
    return {"old_median": mo, "new_median": mn, "ratio": ratio, "old_range": [min(o), max(o)],
            "new_range": [min(n), max(n)], "spread": spread, "paired": paired, "worse_pairs": worse,
            "better_pairs": better, "sign_p": sign_p, "verdict": verdict}


def _sign_test(a: int, b: int) -> float:
    """Two-sided sign test: the chance that a fair coin splits a + b pairs at least as unevenly."""
    n, k = a + b, max(a, b)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(comb(n, i) for i in range(k, n + 1)) / 2 ** n)


def compare_line(name: str, c: dict | None, nd: int = 0) -> str:
    """One line of a --compare-ref report for the ``compare`` result ``c`` of metric ``name``."""
    if c is None:
        return f"new/old {name}: no successful runs of one of the two sources"
    f = lambda v: f"{v:,.{nd}f}"  # noqa: E731
    return (f"new/old {name}: {c['ratio']:.3f}x (median old {f(c['old_median'])}, runs {f(c['old_range'][0])}–"
            f"{f(c['old_range'][1])}; new {f(c['new_median'])}, runs {f(c['new_range'][0])}–{f(c['new_range'][1])}; "
            f"old run-to-run spread {c['spread']:.1%}; per run pair " + " · ".join(f"{p:.2f}" for p in c["paired"])
            + f", new worse in {c['worse_pairs']} of {len(c['paired'])}) -> {c['verdict']}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def podium_env(db_url: str, data_dir: Path, port: int, *, jwt_secret: str, src: Path,
               drop: tuple[str, ...] = ("PODIUM_ENV",)) -> dict:
    """Environment for ``python -m server``: this process's, minus ``drop``, plus the bench settings."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update({"DATABASE_URL": db_url, "DATA_DIR": str(data_dir), "JWT_SECRET": jwt_secret,
                "HOST": "127.0.0.1", "PORT": str(port), "RATE_LIMIT_PER_S": "1000000",
                "RATE_LIMIT_BURST": "1000000", "PYTHONUNBUFFERED": "1", "PODIUM_SRC": str(src)})
    return env


# --- servers ----------------------------------------------------------------------------------
class Server:
    """One server subprocess on a free 127.0.0.1 port, logging to ``work/<kind>-<port>.log``.

    Subclasses implement ``_command(work, ...)`` -> (cmd, env, cwd) and set ``self.url`` there;
    the extra constructor arguments are passed to it. ``podium`` is ready when /healthz answers
    200, any other kind when its port accepts a TCP connection."""

    stop_timeout: float = 10  # seconds between SIGTERM and SIGKILL

    def __init__(self, kind: str, work: Path, *args, **kwargs):
        self.kind, self.port = kind, free_port()
        self.logf = open(work / f"{kind}-{self.port}.log", "w")
        cmd, env, cwd = self._command(work, *args, **kwargs)
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=self.logf, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _command(self, work: Path, *args, **kwargs) -> tuple[list[str], dict, Path]:
        raise NotImplementedError

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} server exited with {self.proc.returncode}; see {self.logf.name}")
            try:
                if self.kind == "podium":
                    with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
                        if r.status == 200:
                            return
                else:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.kind} server not ready after {timeout} s")

    def rss(self) -> int:
        import psutil
        return psutil.Process(self.proc.pid).memory_info().rss

    def rss_mb(self) -> float:
        return round(self.rss() / 2**20, 1)

    def cpu_s(self) -> float:
        import psutil
        t = psutil.Process(self.proc.pid).cpu_times()
        return t.user + t.system

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGTERM, self.stop_timeout)
        self.logf.close()


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
    """Send ``sig`` to a child that is still running and wait; SIGKILL it after ``timeout`` s."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Profiler:
    """py-spy record (raw collapsed stacks, all threads) of one process until ``finish``; the
    project venv's py-spy (bench/requirements.txt). BENCH_PYSPY_ARGS adds arguments."""

    def __init__(self, pid: int, out: Path, seconds: int = 600, rate: int = 100):
        self.out = out
        self.proc = subprocess.Popen([str(Path(PY).parent / "py-spy"), "record", "--pid", str(pid), "--format", "raw",
                                      "-o", str(out), "-r", str(rate), "-d", str(seconds), "--nonblocking", "--threads",
                                      *os.environ.get("BENCH_PYSPY_ARGS", "").split()],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def finish(self, top: int = 25) -> str:
        """Stop recording; the ``top`` functions by inclusive and self time (bench/fanout/pyspy_top.py)."""
        stop_process(self.proc, signal.SIGINT, 20)
        if not self.out.exists():
            return "(no profile written)"
        if not top:
            return ""
        return subprocess.run([PY, str(ROOT / "bench" / "fanout" / "pyspy_top.py"), str(self.out), "--top", str(top)],
                              capture_output=True, text=True).stdout


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy (not idle/iowait), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def run_harness(harness_js: Path, cfg: dict, timeout: float, on_phase: Callable[[str], None] | None = None,
                on_exit: Callable[[], None] | None = None, on_result: Callable[[dict], None] | None = None) -> dict:
    """``node harness.js <cfg as JSON>`` once (cwd: its directory); its last ``{...}`` stdout line, parsed,
    or ``{"error": ...}`` when it did not exit within ``timeout`` seconds (it is killed) or printed none.
    ``on_phase(name)`` is called (on a reader thread) at each ``PHASE <name>`` line, ``on_exit()`` once
    the harness has exited in time, ``on_result(result)`` with the parsed line (to add derived fields)."""
    proc = subprocess.Popen(["node", str(harness_js), json.dumps(cfg)], cwd=harness_js.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []

    def reader() -> None:
        for line in proc.stdout:
            if line.startswith("PHASE "):
                if on_phase is not None:
                    on_phase(line.split()[1])
            else:
                lines.append(line)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return {"error": f"harness did not exit within {timeout} s"}
    t.join(5)
    if on_exit is not None:
        on_exit()
    stderr = proc.stderr.read()
    results = [ln for ln in lines if ln.startswith("{")]
    if not results:
        return {"error": f"harness printed no result (exit {proc.returncode}): {stderr[-800:]}"}
    res = json.loads(results[-1])
    if on_result is not None:
        on_result(res)
    return res


# --- report -----------------------------------------------------------------------------------
def med(values, ndigits: int | None = None):
    """Median of the values that are not None (rounded to ``ndigits`` when given); None when none are."""
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    m = statistics.median(vals)
    return m if ndigits is None else round(m, ndigits)


def table(headers: list[str], rows: list[list]) -> str:
    """A Markdown table; None cells print as ``-``."""
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    fmt = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([fmt(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [fmt(r) for r in cells[1:]])
