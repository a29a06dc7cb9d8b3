#!/usr/bin/env python3
"""File upload/download benchmark: Podium's ``POST /api/files`` and signed ``/dl/`` links vs nginx
(sendfile) serving the same stored file, with a chat round-trip probe running throughout.

One command, from the repository root:

    .venv/bin/python bench/files/run.py --ref HEAD     # 3 runs (~2 min on a quiet machine)
    .venv/bin/python bench/files/run.py --runs 1 --size-mib 128 --quiet-wait 0   # a quick look

It installs what is missing (psutil from bench/requirements.txt into the project venv; nginx
with ``apt-get install -y nginx`` when there is no ``nginx`` binary: it needs root), writes a
512 MiB MP4-looking source file into a temp dir under /tmp, builds a fresh migrated SQLite
database (``python -m server migrate`` + ``bench/calls/seed.py``: one room, an uploader and a
chat user), and per run starts Podium as a subprocess on a free 127.0.0.1 port (fresh copy of
the database, its own storage directory) and nginx on another, serving Podium's storage
directory. Nothing leaves loopback; every transfer and loop is bounded; the temp dir (source
file, stored blobs, databases, logs) is deleted at the end, except the JSON of raw results.

Phases of each run, each with the server's peak RSS (psutil every 20 ms) and CPU, and a chat
probe (one WebSocket sending ``message.send`` at ``--chat-rate``/s, timing send → own
``message.new``) running alongside:
  idle          the chat probe alone (baseline)
  disk floor    ``dd conv=fsync`` of the source into Podium's data dir: what the disk allows
  upload 1      one 512 MiB upload (client: socket.sendfile, multipart framing)
  upload N      N parallel uploads of --parallel-upload-mib each
  download 1    3 GETs in a row of the stored 512 MiB file: Podium's signed /dl/ link, and nginx
  download N    N parallel GETs of it, Podium and nginx (client: ``getter.py``, one thread per
                stream reading into a reusable 4 MiB buffer, in its own process)
                (both download phases also measure the floor: ``floor.py``, bare asyncio sending
                the same blob with one ``loop.sock_sendfile``, no HTTP framework, no budget)

The servers run on the first CPU and the clients on the others (``--pin``). A phase during which
other processes used the machine (other engineers' tests) is repeated after waiting for quiet
(``--retries``, ``--quiet-wait``). ``--whatif`` starts Podium through ``whatif.py`` with candidate
fixes patched in, to measure them before they are made in ``server/``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/, for the shared benchlib module
import benchlib  # noqa: E402
from benchlib import PY, ROOT, export_ref, log, med, table  # noqa: E402

benchlib.reexec_in_venv(__file__)

HERE = Path(__file__).resolve().parent
JWT_SECRET = "bench-files-secret-" + "k" * 40
MIB = 1024 * 1024
MB = 1000 * 1000
SRC = ROOT  # where the Podium server is run from; --ref exports a committed tree instead
clients = None  # bench/files/clients.py, imported in main() once ensure_deps has installed psutil


# --- setup ------------------------------------------------------------------------------------
def ensure_deps(profile: bool) -> None:
    benchlib.ensure_deps(HERE, (), "psutil, tornado", ROOT / "bench" / "requirements.txt")
    if profile and not (Path(PY).parent / "py-spy").exists():
        log("installing bench/requirements.txt (py-spy) into the project venv")
        subprocess.run([PY, "-m", "pip", "install", "-q", "-r", str(ROOT / "bench" / "requirements.txt")], check=True)


def ensure_nginx() -> str:
    """The nginx binary; installs Debian's ``nginx`` package when there is none (root only).
    Its own service is not started: a temporary ``policy-rc.d`` forbids it when none exists."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit("nginx is not installed and this is not root: apt-get install nginx, then rerun")
    log("nginx missing: apt-get install -y nginx (Debian package; its service is not started)")
    policy = Path("/usr/sbin/policy-rc.d")
    made_policy = not policy.exists()
    if made_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "nginx"]
        if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL, check=True)
            subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=True)
    finally:
        if made_policy:
            policy.unlink()
    return "/usr/sbin/nginx"


def podium_env(db_url: str, data_dir: Path, port: int, file_max_mb: int) -> dict:
    env = benchlib.podium_env(db_url, data_dir, port, jwt_secret=JWT_SECRET, src=SRC,
                              drop=("PODIUM_ENV", "STORAGE_URL", "SIGNING_KEYS", "PUBLIC_URL"))
    # 512 MiB is 537 MB: over the 500 MB video default.
    env.update({"FILE_MAX_MB_VIDEO": str(file_max_mb), "UPLOAD_MAX_REQUEST_MB": str(file_max_mb + 16)})
    return env


def prepare_template(work: Path, file_max_mb: int) -> tuple[Path, dict]:
    """Migrated SQLite database with one course room (an instructor who uploads, a student who
    chats), seeded by bench/calls/seed.py; its seed JSON."""
    tdir = work / "template"
    tdir.mkdir()
    db = tdir / "podium.db"
    env = podium_env(f"sqlite+aiosqlite:///{db}", tdir, 0, file_max_mb)
    subprocess.run([PY, "-m", "server", "migrate"], cwd=SRC, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seed = work / "seed.json"
    subprocess.run([PY, str(ROOT / "bench" / "calls" / "seed.py"), str(seed), "--rooms", "1", "--peers", "2"],
                   cwd=ROOT, env=env, check=True)
    return db, json.loads(seed.read_text())["rooms"][0]


# --- servers ----------------------------------------------------------------------------------
SERVER_CPUS: list[str] = []  # --pin: ["taskset", "-c", "0"]; this process and its clients on the other CPUs
LIVE: list[benchlib.Server] = []  # started and not yet stopped: main() stops them on any exit


def start(cls, *args) -> benchlib.Server:
    srv = cls(*args)
    LIVE.append(srv)
    return srv


def stop(srv: benchlib.Server) -> None:
    srv.stop()
    if srv in LIVE:
        LIVE.remove(srv)


class Podium(benchlib.Server):
    """``python -m server serve`` with a fresh copy of the template database and its own storage."""

    def _command(self, work: Path, template: Path, file_max_mb: int, whatif: str | None = None):
        self.run_dir = Path(tempfile.mkdtemp(prefix="podium-", dir=work))
        shutil.copy(template, self.run_dir / "podium.db")
        self.db_path = self.run_dir / "podium.db"
        self.storage_dir = self.run_dir / "files"  # the default STORAGE_URL: file://$DATA_DIR/files
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        env = podium_env(f"sqlite+aiosqlite:///{self.db_path}", self.run_dir, self.port, file_max_mb)
        cmd = [PY, str(HERE / "whatif.py"), whatif] if whatif else [PY, "-m", "server", "serve"]
        return SERVER_CPUS + cmd, env, SRC

    def storage_key(self, file_id: str) -> str:
        with sqlite3.connect(self.db_path) as c:
            row = c.execute("SELECT storage_key FROM files WHERE id = ?", (file_id,)).fetchone()
        if row is None:
            raise RuntimeError(f"file {file_id} not in the database")
        return row[0]


class Nginx(benchlib.Server):
    """Debian's nginx on 127.0.0.1, ``sendfile on``, serving ``root`` as static files; config,
    pid, logs and temp paths in its own dir; ``daemon off`` so it is this subprocess."""

    def _command(self, work: Path, binary: str, root: Path, workers: int):
        d = Path(tempfile.mkdtemp(prefix="nginx-", dir=work))
        conf = d / "nginx.conf"
        temps = "\n".join(f"    {k}_temp_path {d / k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        # user root: Podium's blobs are 0600 files of the user running the bench.
        conf.write_text(f"""daemon off;
user root;
worker_processes {workers};
pid {d / 'nginx.pid'};
error_log {d / 'error.log'} warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
{temps}
    server {{
        listen 127.0.0.1:{self.port};
        root {root};
        location / {{ }}
    }}
}}
""")
        self.base = f"http://127.0.0.1:{self.port}"
        return SERVER_CPUS + [binary, "-p", str(d), "-e", str(d / "error.log"), "-c", str(conf)], dict(os.environ), d


class Floor(benchlib.Server):
    """``floor.py``: bare asyncio, one ``loop.sock_sendfile`` per GET of a file under ``root``."""

    def _command(self, work: Path, root: Path):
        self.base = f"http://127.0.0.1:{self.port}"
        return SERVER_CPUS + [PY, str(HERE / "floor.py"), str(self.port), str(root)], dict(os.environ), work


# --- phases -----------------------------------------------------------------------------------
def machine_cpu() -> tuple[float, float, float]:
    """CPU seconds the whole machine spent so far in processes (user + nice + system), in
    interrupts (irq + softirq: on loopback most of TCP's receive path runs there, charged to no
    process) and idle waiting for the disk (iowait), from /proc/stat."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, iowait, irq, softirq = (int(x) for x in f.readline().split()[1:8])
    hz = os.sysconf("SC_CLK_TCK")
    return (user + nice + system) / hz, (irq + softirq) / hz, iowait / hz


async def wait_quiet(max_cores: float, timeout: float) -> float:
    """Wait until the machine's processes used at most ``max_cores`` over 2 s (other engineers'
    test suites share these 2 cores), or ``timeout`` seconds passed; the last reading, in cores."""
    deadline = time.monotonic() + timeout
    while True:
        b0 = machine_cpu()[0]
        await asyncio.sleep(2)
        load = (machine_cpu()[0] - b0) / 2
        if load <= max_cores or time.monotonic() >= deadline:
            return round(load, 2)


def ru_cpu() -> float:
    """CPU seconds of this process and of its reaped children (getter.py, dd) so far."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


async def phase(fn, server_pid: int | None, probe, chat_rate: float, profile: Path | None = None) -> dict:
    """Run blocking ``fn()`` on a thread while the chat probe sends, and measure around it:
    wall seconds, server peak RSS and CPU, client CPU (this process + getter.py/dd), other load
    (the CPU every process on the machine used minus the server's and the client's, in cores:
    other engineers' tests), interrupt CPU and iowait, chat latency over the messages sent during
    ``fn``."""
    stop = asyncio.Event()
    sender = asyncio.ensure_future(probe.run(stop, chat_rate, max_s=900))
    await asyncio.sleep(0.3)  # the probe is sending before the load starts
    prof = benchlib.Profiler(server_pid, profile, 600, rate=200) if profile is not None and server_pid else None
    if prof:
        await asyncio.sleep(0.5)  # attached before the load starts
    procs = clients.tree(server_pid) if server_pid else []
    sampler = clients.PeakRss(procs).start() if server_pid else None
    cpu0 = clients.cpu_s(procs)
    (busy0, irq0, io0), me0 = machine_cpu(), ru_cpu()
    t0 = time.perf_counter()
    try:
        out = await asyncio.to_thread(fn)
    finally:
        t1 = time.perf_counter()
        mem = sampler.stop() if sampler else {}
        if prof:
            prof.finish(top=0)
        stop.set()
        await sender
    wall = t1 - t0
    server_cpu = clients.cpu_s(procs) - cpu0
    client_cpu = ru_cpu() - me0
    busy1, irq1, io1 = machine_cpu()
    out.update(mem)
    out.update({"wall_s": round(wall, 3), "server_cpu_s": round(server_cpu, 2), "client_cpu_s": round(client_cpu, 2),
                "other_load_cores": round(max(busy1 - busy0 - server_cpu - client_cpu, 0) / wall, 2),
                "irq_cores": round((irq1 - irq0) / wall, 2), "iowait_cores": round((io1 - io0) / wall, 2),
                "chat": clients.latency_summary(probe.window(t0, t1))})
    if out.get("bytes") and out.get("seconds"):
        out["mb_s"] = round(out["bytes"] / out["seconds"] / MB, 1)
        out["server_cpu_s_per_gb"] = round(server_cpu / (out["bytes"] / 1e9), 3) if server_pid else None
    return out


def upload_many(port: int, token: str, src: Path, size: int, n: int, digest: str) -> dict:
    """``n`` simultaneous uploads of the first ``size`` bytes of ``src``; each must answer 201 with
    that size and SHA-256."""
    with ThreadPoolExecutor(n) as ex:
        t0 = time.perf_counter()
        futs = [ex.submit(clients.upload, port, token, src, size, f"bench-{k}.mp4") for k in range(n)]
        streams = [f.result() for f in futs]
        seconds = time.perf_counter() - t0
    ids, errors = [], []
    for s in streams:
        files = s["response"].get("files") if isinstance(s["response"], dict) else None
        if s["status"] != 201 or not files:
            errors.append(f"{s['status']} {str(s['response'])[:200]}")
            continue
        f = files[0]
        ids.append(f["id"])
        if f["size"] != size or f["sha256"] != digest:
            errors.append(f"file {f['id']}: size {f['size']}, sha256 {f['sha256'][:12]} (expected {digest[:12]})")
    return {"seconds": seconds, "bytes": n * size, "ids": ids, "errors": errors,
            "per_stream_mb_s": round(med([size / s["seconds"] / MB for s in streams]), 1),
            "body_sent_s": round(max(s["body_sent_s"] or 0 for s in streams), 3),
            "response_after_body_s": round(med([s["seconds"] - (s["body_sent_s"] or s["seconds"])
                                                for s in streams]), 3)}


def download_many(urls: list[str], size: int, repeats: int = 1) -> dict:
    """GET all ``urls`` at once, ``repeats`` times in a row; every body must be ``size`` bytes.
    MB/s is then all bytes over all the transfers' time."""
    reps = [clients.downloads(urls) for _ in range(repeats)]
    streams = [s for r in reps for s in r["streams"]]
    errors = [f"status {s['status']}, {s['bytes']} bytes: {s['error']}" for s in streams
              if s["status"] != 200 or s["bytes"] != size or s["error"]]
    return {"seconds": sum(r["seconds"] for r in reps), "bytes": sum(r["bytes"] for r in reps), "errors": errors,
            "repeat_mb_s": [round(r["bytes"] / r["seconds"] / MB, 1) for r in reps],
            "per_stream_mb_s": round(med([s["bytes"] / s["seconds"] / MB for s in streams if s["seconds"]]), 1),
            "ttfb_ms": round(med([s["ttfb_s"] or 0 for s in streams]) * 1000, 1)}


def disk_floor(src: Path, dest: Path, size: int) -> dict:
    """``dd conv=fsync`` of the source (in the page cache) to a file next to Podium's storage."""
    t0 = time.perf_counter()
    subprocess.run(["dd", f"if={src}", f"of={dest}", "bs=1M", f"count={size // MIB}", "conv=fsync"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - t0
    dest.unlink()
    return {"seconds": seconds, "bytes": size // MIB * MIB, "errors": []}


def warm_cache(path: Path) -> None:
    """Read ``path`` through once, so it is in the page cache (a no-op's cost when it already is)."""
    buf = bytearray(4 * MIB)
    with open(path, "rb", buffering=0) as f:
        while f.readinto(buf):
            pass


def signed_url(pod: Podium, token: str, file_id: str) -> str:
    url = clients.api(pod.base, token, "POST", f"/api/files/{file_id}/signed-url",
                      {"disposition": "attachment", "expires_in": 600})["url"]
    parts = urlsplit(url)
    return f"{pod.base}{parts.path}?{parts.query}"


def download_paths(pod: Podium) -> dict[str, int]:
    """How Podium sent its download bodies so far (``/metrics``: sendfile or streamed)."""
    with urllib.request.urlopen(pod.base + "/metrics", timeout=30) as r:
        text = r.read().decode()
    return {m.group(1): int(float(m.group(2)))
            for m in re.finditer(r'^podium_downloads_total\{path="(\w+)"\} (\S+)$', text, re.M)}


def check_bytes(url: str, src: Path, size: int) -> None:
    """The first and last 64 KiB of ``url`` (Range requests) equal the source's."""
    with open(src, "rb") as f:
        for start in (0, size - 65536):
            f.seek(start)
            if clients.get_range(url, start, start + 65535) != f.read(65536):
                raise RuntimeError(f"bytes {start}.. of {url} differ from the source")


async def one_run(k: int, args, work: Path, template: Path, room: dict, src: Path, digests: dict,
                  nginx_bin: str, prof_dir: Path | None) -> dict:
    size, psize, n = args.size_mib * MIB, args.parallel_upload_mib * MIB, args.parallel
    up_token, chat_token = room["tokens"][0], room["tokens"][1]
    res: dict = {}
    pod = await asyncio.to_thread(start, Podium, "podium", work, template, args.file_max_mb, args.whatif)
    ngx = flo = probe = None
    prof = (lambda name: prof_dir / f"{name}.txt") if prof_dir is not None else (lambda name: None)
    try:
        pid = pod.proc.pid
        # Warm-up (not measured): first upload, link and download, so one-time costs (imports,
        # the thread pool, SQL compilation) are not counted in the RSS baseline.
        warmup = await asyncio.to_thread(upload_many, pod.port, up_token, src, MIB, 1, digests[MIB])
        if warmup["errors"]:
            raise RuntimeError(f"warm-up upload failed: {warmup['errors'][0]}")
        await asyncio.to_thread(download_many, [signed_url(pod, up_token, warmup["ids"][0])], MIB)
        clients.api(pod.base, up_token, "DELETE", f"/api/files/{warmup['ids'][0]}")
        probe = clients.ChatProbe(pod.ws_url, chat_token, room["id"])
        await probe.open()

        baseline_mb = {pid: round(clients.rss(clients.tree(pid)) / MIB, 1)}

        async def measured(key: str, fn, server_pid: int | None, profile: Path | None = None, discard=None,
                           before=None) -> dict:
            """``phase`` once, and again (up to --retries times, after waiting for quiet) while other
            processes took more than --quiet-cores during it, or (phases that write nothing) the disk
            was busy: iowait over 0.1 cores means someone else's writes, which stall Podium's
            SQLite commits too. ``before()`` runs before each attempt, untimed; ``discard(out)``
            drops a retried attempt's uploads. The JSON keeps every attempt's load."""
            loads = []
            writes = key.startswith(("upload", "disk"))
            for attempt in range(1 + args.retries):
                if attempt:
                    await wait_quiet(args.quiet_cores, args.quiet_wait)
                if before is not None:
                    await asyncio.to_thread(before)
                out = await phase(fn, server_pid, probe, args.chat_rate, profile if not attempt else None)
                if server_pid in baseline_mb:
                    # Growth over the server's RSS at the start of the run (after warm-up), so a
                    # phase repeated after a first attempt grew the heap is not flattered.
                    out["rss_phase_growth_mb"] = out["rss_growth_mb"]
                    out["rss_growth_mb"] = round(out["rss_peak_mb"] - baseline_mb[server_pid], 1)
                loads.append(out["other_load_cores"])
                disk_busy = not writes and out["iowait_cores"] > 0.1
                if (out["other_load_cores"] <= args.quiet_cores and not disk_busy) or attempt == args.retries \
                        or out.get("errors"):
                    break
                log(f"  {key}: other processes took {out['other_load_cores']} cores, iowait "
                    f"{out['iowait_cores']} cores; again")
                if discard is not None:
                    discard(out)
            out["other_load_per_attempt"] = loads
            res[key] = out
            return out

        def delete_uploads(out: dict) -> None:
            for fid in out.get("ids", []):
                clients.api(pod.base, up_token, "DELETE", f"/api/files/{fid}")

        await measured("idle", lambda: (time.sleep(args.chat_idle_s), {})[1], pid)
        await measured("disk_floor", lambda: disk_floor(src, pod.run_dir / "floor.bin", size), None)
        up1 = await measured("upload_1", lambda: upload_many(pod.port, up_token, src, size, 1, digests[size]), pid,
                             prof("upload_1"), delete_uploads)
        delete_uploads(await measured("upload_n",
                                      lambda: upload_many(pod.port, up_token, src, psize, n, digests[psize]),
                                      pid, prof("upload_n"), delete_uploads))
        if not up1["ids"]:
            raise RuntimeError(f"the {args.size_mib} MiB upload failed: {up1['errors']}")
        big = up1["ids"][0]

        ngx = await asyncio.to_thread(start, Nginx, "nginx", work, nginx_bin, pod.storage_dir, args.nginx_workers)
        flo = await asyncio.to_thread(start, Floor, "floor", work, pod.storage_dir)
        urls = {"podium": signed_url(pod, up_token, big), "nginx": f"{ngx.base}/{pod.storage_key(big)}",
                "floor": f"{flo.base}/{pod.storage_key(big)}"}
        pids = {"podium": pid, "nginx": ngx.proc.pid, "floor": flo.proc.pid}
        for other in (ngx, flo):
            baseline_mb[other.proc.pid] = round(clients.rss(clients.tree(other.proc.pid)) / MIB, 1)
        for who in urls:
            check_bytes(urls[who], src, size)
        # Rotate who goes first, so a drift in machine load does not always favour one.
        order = [("podium", "nginx", "floor"), ("nginx", "floor", "podium"), ("floor", "podium", "nginx")][k % 3]
        blob = pod.storage_dir / pod.storage_key(big)
        for who in order:  # warm: both servers read the blob from the page cache, never the disk
            await measured(f"download_1_{who}", lambda url=urls[who]: download_many([url], size, args.single_repeats),
                           pids[who], prof("download_1") if who == "podium" else None, before=lambda: warm_cache(blob))
        for who in order:
            await measured(f"download_n_{who}", lambda url=urls[who]: download_many([url] * n, size, args.parallel_repeats),
                           pids[who], prof("download_n") if who == "podium" else None, before=lambda: warm_cache(blob))
        res["download_paths"] = download_paths(pod)
    except Exception as e:  # noqa: BLE001 - recorded in the table and the JSON; the next run still runs
        res["error"] = f"{type(e).__name__}: {e}"
        res["podium_log_tail"] = Path(pod.logf.name).read_text().splitlines()[-20:]
    finally:
        if probe is not None:
            probe.close()
        for srv in (flo, ngx, pod):
            if srv is not None:
                await asyncio.to_thread(stop, srv)
        if pod.proc.returncode not in (0, None, -signal.SIGTERM):
            res["podium_exit"] = pod.proc.returncode
        if not args.keep:
            shutil.rmtree(pod.run_dir, ignore_errors=True)
    return res


# --- report -----------------------------------------------------------------------------------
PHASES = [
    # key, phase label, server label
    ("idle", "idle (chat probe only)", "Podium"),
    ("disk_floor", "disk floor: dd 1×{size} MiB, conv=fsync", "(no server)"),
    ("upload_1", "upload 1×{size} MiB", "**Podium**"),
    ("upload_n", "upload {n}×{psize} MiB in parallel", "**Podium**"),
    ("download_1_podium", "download 1×{size} MiB", "**Podium** (/dl/ signed link)"),
    ("download_1_nginx", "", "nginx (sendfile, {workers} worker)"),
    ("download_1_floor", "", "floor: bare asyncio, loop.sock_sendfile"),
    ("download_n_podium", "download {n}×{size} MiB in parallel", "**Podium** (/dl/ signed link)"),
    ("download_n_nginx", "", "nginx (sendfile, {workers} worker)"),
    ("download_n_floor", "", "floor: bare asyncio, loop.sock_sendfile"),
]


def fmt(v, nd: int = 1) -> str | None:
    return None if v is None else f"{v:,.{nd}f}"


def report(runs: list[dict], args) -> tuple[str, list[str], dict]:
    """The Markdown table of medians over runs, the target verdicts, and the medians themselves."""
    names = {"size": args.size_mib, "psize": args.parallel_upload_mib, "n": args.parallel,
             "workers": args.nginx_workers}
    rows, m = [], {}
    for key, label, server in PHASES:
        ok = [r[key] for r in runs if key in r and not r[key].get("errors")]
        bad = sum(1 for r in runs if key in r and r[key].get("errors"))
        if not ok:
            if bad:
                rows.append([label.format(**names), server.format(**names), "ERROR"] + [None] * 8)
            continue
        g = lambda f, nd=2, ok=ok: med([f(r) for r in ok], nd)  # noqa: E731
        m[key] = {"mb_s": g(lambda r: r.get("mb_s"), 1), "growth": g(lambda r: r.get("rss_growth_mb"), 1),
                  "peak": g(lambda r: r.get("rss_peak_mb"), 1),
                  "rtt_p50": g(lambda r: r["chat"]["rtt_ms"]["p50"]),
                  "rtt_p99": g(lambda r: r["chat"]["rtt_ms"]["p99"]),
                  "lost": sum(r["chat"]["lost"] for r in ok), "sent": sum(r["chat"]["sent"] for r in ok)}
        is_server = key not in ("disk_floor",)
        runs_col = " · ".join(fmt(r.get("mb_s"), 0) or "-" for r in ok) if key != "idle" else \
            " · ".join(fmt(r["chat"]["rtt_ms"]["p99"]) for r in ok) + " (p99)"
        rows.append([label.format(**names), server.format(**names), fmt(m[key]["mb_s"], 0),
                     fmt(g(lambda r: r.get("per_stream_mb_s"), 1), 0) if key != "idle" else None,
                     f"{fmt(m[key]['peak'])} (+{fmt(m[key]['growth'])})" if is_server else None,
                     fmt(g(lambda r: r.get("server_cpu_s_per_gb"), 3), 2) if key != "idle" else None,
                     fmt(g(lambda r: r["client_cpu_s"] / r["wall_s"], 2), 2),
                     fmt(g(lambda r: r.get("other_load_cores"), 2), 2),
                     f"{fmt(m[key]['rtt_p50'])} / {fmt(m[key]['rtt_p99'])}"
                     + (f" ({m[key]['lost']} lost)" if m[key]["lost"] else ""),
                     runs_col + (f" + {bad} ERR" if bad else "")])
    headers = ["phase", "server", "MB/s", "per stream MB/s", "server RSS peak (growth over run start) MiB",
               "server CPU-s per GB",
               "client CPU (cores)", "other load (cores)", "chat RTT p50 / p99 ms", "MB/s per run"]
    verdicts = []

    def verdict(ok: bool) -> str:
        return "MET" if ok else "NOT MET"

    if "upload_1" in m:
        up, growth = m["upload_1"]["mb_s"], max(m[k]["growth"] for k in ("upload_1", "upload_n") if k in m)
        verdicts.append(f"target: upload >= 250 MB/s with server RSS growth <= 64 MB: {fmt(up, 0)} MB/s "
                        f"({verdict(up >= 250)}), RSS growth {fmt(growth)} MiB ({verdict(growth * MIB / MB <= 64)})"
                        + (f"; disk floor {fmt(m['disk_floor']['mb_s'], 0)} MB/s" if "disk_floor" in m else ""))
    for n_ in ("1", "n"):
        pairs = [(r[f"download_{n_}_podium"]["mb_s"], r[f"download_{n_}_nginx"]["mb_s"]) for r in runs
                 if all(f"download_{n_}_{w}" in r and not r[f"download_{n_}_{w}"].get("errors")
                        for w in ("podium", "nginx"))]
        if pairs:
            # Podium and nginx measured seconds apart in the same run (order alternating): the
            # ratio per run, then the median, is steadier on a shared machine than a ratio of medians.
            m[f"download_{n_}_ratios"] = [round(a / b, 3) for a, b in pairs]
            m[f"download_{n_}_ratio"] = med(m[f"download_{n_}_ratios"], 3)
    if "download_1_ratio" in m:
        r = m["download_1_ratio"]
        verdicts.append(f"target: single-stream download >= 0.9x nginx: {r:.2f}x (median of per-run ratios "
                        f"{' · '.join(f'{x:.2f}' for x in m['download_1_ratios'])}; medians "
                        f"{fmt(m['download_1_podium']['mb_s'], 0)} vs {fmt(m['download_1_nginx']['mb_s'], 0)} MB/s) "
                        f"-> {verdict(r >= 0.9)}")
    for n_ in ("1", "n"):
        pairs = [(r[f"download_{n_}_podium"]["mb_s"], r[f"download_{n_}_floor"]["mb_s"]) for r in runs
                 if all(f"download_{n_}_{w}" in r and not r[f"download_{n_}_{w}"].get("errors")
                        for w in ("podium", "floor"))]
        if pairs:
            ratios = [round(a / b, 3) for a, b in pairs]
            verdicts.append(f"Podium / floor (bare asyncio sock_sendfile), {'single stream' if n_ == '1' else 'parallel'}: "
                            f"{med(ratios, 3):.2f}x (per run {' · '.join(f'{x:.2f}' for x in ratios)})"
                            + (f"; Podium / nginx {m[f'download_{n_}_ratio']:.2f}x" if f"download_{n_}_ratio" in m else ""))
    if "download_n_podium" in m:
        p99 = m["download_n_podium"]["rtt_p99"]
        lost = m["download_n_podium"]["lost"]
        pooled = clients.pct([v for r in runs if "download_n_podium" in r
                              for v in r["download_n_podium"]["chat"]["rtt_all_ms"]], 0.99)
        control = m.get("download_n_nginx", {}).get("rtt_p99")
        verdicts.append(f"target: chat round-trip p99 <= 50 ms while {args.parallel} downloads run: {fmt(p99)} ms "
                        f"(median of runs; pooled {fmt(pooled)} ms; idle {fmt(m.get('idle', {}).get('rtt_p99'))} ms; "
                        f"while nginx serves them {fmt(control)} ms; {lost} of {m['download_n_podium']['sent']} "
                        f"unanswered) -> {verdict(p99 is not None and p99 <= 50 and not lost)}")
    if "upload_n" in m:
        p99, lost = m["upload_n"]["rtt_p99"], m["upload_n"]["lost"]
        verdicts.append(f"target: chat round-trip p99 <= 50 ms while {args.parallel} uploads of "
                        f"{args.parallel_upload_mib} MiB run: {fmt(p99)} ms (median of runs; per run "
                        f"{' · '.join(fmt(r['upload_n']['chat']['rtt_ms']['p99']) for r in runs if 'upload_n' in r)}; "
                        f"{lost} of {m['upload_n']['sent']} unanswered) -> {verdict(p99 is not None and p99 <= 50 and not lost)}")
    paths = [r["download_paths"] for r in runs if "download_paths" in r]
    if paths:
        verdicts.append("Podium's download bodies by path (/metrics podium_downloads_total, per run): "
                        + " · ".join(f"sendfile {p.get('sendfile', 0)}, streamed {p.get('streamed', 0)}" for p in paths))
    for r in runs:
        for key, v in r.items():
            if isinstance(v, dict) and v.get("errors"):
                verdicts.append(f"ERROR in {key}: {v['errors'][0]}")
        if "error" in r:
            verdicts.append(f"ERROR: {r['error']}")
    return table(headers, rows), verdicts, m


# --- main -------------------------------------------------------------------------------------
async def main_async(args, work: Path, results: dict) -> None:
    nginx_bin = ensure_nginx()
    results["meta"]["nginx"] = subprocess.run([nginx_bin, "-v"], capture_output=True, text=True).stderr.strip()
    size, psize = args.size_mib * MIB, args.parallel_upload_mib * MIB
    need = size * 4 + psize * args.parallel * 2
    free = shutil.disk_usage(work).free
    if free < need:
        raise SystemExit(f"{work}: {free / 2**30:.1f} GiB free, the benchmark needs {need / 2**30:.1f} GiB")
    log(f"work dir {work} ({free / 2**30:.0f} GiB free); writing the {args.size_mib} MiB source file")
    src = work / "source.mp4"
    digests = clients.make_source(src, size, (MIB, psize))
    log("seeding the SQLite template")
    template, room = prepare_template(work, args.file_max_mb)
    prof_dir = None
    if args.profile:
        prof_dir = work / "profiles"
        prof_dir.mkdir()
    for k in range(args.runs):
        if args.quiet_wait > 0:
            load = await wait_quiet(args.quiet_cores, args.quiet_wait)
            log(f"run {k + 1}/{args.runs} (machine load before it: {load} cores)")
        else:
            load = None
            log(f"run {k + 1}/{args.runs}")
        try:
            res = await one_run(k, args, work, template, room, src, digests, nginx_bin, prof_dir if k == 0 else None)
        except Exception as e:  # noqa: BLE001 - Podium did not start: recorded, the next run still runs
            res = {"error": f"{type(e).__name__}: {e}"}
        res["load_before_cores"] = load
        results["runs"].append(res)
        for key, v in res.items():
            if isinstance(v, dict) and "chat" in v:
                c = v["chat"]["rtt_ms"]
                log(f"  {key:<18} {fmt(v.get('mb_s'), 0) or '-':>7} MB/s  RSS {v.get('rss_peak_mb', '-')} MiB "
                    f"(+{v.get('rss_growth_mb', '-')})  server CPU {v['server_cpu_s']} s  chat p50/p99 "
                    f"{c['p50']}/{c['p99']} ms  {'ERRORS ' + str(v['errors'][:1]) if v.get('errors') else ''}")
            elif key == "error":
                log(f"  ERROR {v}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="runs (default 3); the table gives medians")
    p.add_argument("--size-mib", type=int, default=512, help="size of the big file (default 512 MiB)")
    p.add_argument("--parallel", type=int, default=8, help="parallel uploads and downloads (default 8)")
    p.add_argument("--parallel-upload-mib", type=int, default=512,
                   help="size of each parallel upload (default 512 MiB, issue 18.4's case: 8 x 512 MiB writes 4 GiB "
                        "per run; 64 for a quicker look)")
    p.add_argument("--nginx-workers", type=int, default=1, help="nginx worker_processes (default 1, like Podium's one "
                                                                "process)")
    p.add_argument("--single-repeats", type=int, default=3,
                   help="single-stream downloads per phase, back to back (default 3: one takes 0.2-1 s)")
    p.add_argument("--parallel-repeats", type=int, default=8,
                   help="parallel download batches per phase, back to back (default 8: one batch of 8 x 512 MiB takes "
                        "~1.3 s, which gives the chat probe only ~27 round trips, so its p99 would be the worst one)")
    p.add_argument("--chat-rate", type=float, default=20, help="chat probe messages per second (default 20)")
    p.add_argument("--chat-idle-s", type=float, default=5, help="length of the idle chat baseline (default 5 s)")
    p.add_argument("--quiet-wait", type=float, default=300,
                   help="before each run and each repeated phase, wait up to this many seconds for the machine to "
                        "be quiet (default 300; 0: do not wait)")
    p.add_argument("--quiet-cores", type=float, default=0.4,
                   help="quiet means the machine's other processes use at most this many cores (default 0.4)")
    p.add_argument("--retries", type=int, default=3,
                   help="repeat a phase (after waiting for quiet) up to this many times while other processes "
                        "took more than --quiet-cores during it (default 3; 0: never)")
    p.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True,
                   help="servers on the first CPU, this driver and every client on the others, so clients "
                        "and server do not take turns on one core (default on; --no-pin to share)")
    p.add_argument("--profile", action="store_true", help="py-spy record Podium in run 1's upload and download phases "
                                                          "(perturbs that run); summaries are printed")
    p.add_argument("--whatif", help="start Podium through whatif.py with these candidate fixes patched in "
                                    "(comma-separated: chunk1m, yield); for experiments, not the documented figures")
    p.add_argument("--ref", help="benchmark the server as committed at this git ref (exported with git archive "
                                 "into the temp dir) instead of the working tree")
    p.add_argument("--tmp", default="/tmp", help="where the temp dir goes (default /tmp)")
    p.add_argument("--json", help="write all raw results here (default: in the temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (source file, blobs, logs)")
    args = p.parse_args()
    args.file_max_mb = args.size_mib * MIB // MB + 2

    ensure_deps(args.profile)
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            raise SystemExit("--pin needs 2 CPUs")
        SERVER_CPUS[:] = ["taskset", "-c", str(cpus[0])]
        os.sched_setaffinity(0, set(cpus[1:]))  # children (getter.py, dd) inherit it
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a kill stops the servers too
    global clients
    import clients  # noqa: E402 - needs psutil and tornado, which ensure_deps installs
    t_start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="files-bench-", dir=args.tmp))
    global SRC
    if args.ref:
        SRC = export_ref(args.ref, work)
    git = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()  # noqa: E731
    results: dict = {"meta": {"cpus": os.cpu_count(), "python": platform.python_version(), "args": vars(args),
                              "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "loadavg_start": os.getloadavg(),
                              "server": f"{args.ref or 'working tree'} at "
                                        f"{git('rev-parse', '--short', args.ref or 'HEAD')}"
                              + (f" + whatif {args.whatif}" if args.whatif else ""),
                              "env": {k: v for k, v in os.environ.items() if k.startswith("BENCH_")}},
                     "runs": []}
    out = Path(args.json) if args.json else work / "results.json"
    try:
        asyncio.run(main_async(args, work, results))
    finally:
        for srv in list(LIVE):  # interrupted mid-run
            stop(srv)
        results["meta"]["wall_s"] = round(time.monotonic() - t_start, 1)
        results["meta"]["loadavg_end"] = os.getloadavg()
        tbl, verdicts, medians = report(results["runs"], args)
        results["medians"] = medians
        out.write_text(json.dumps(results, indent=1))
        profiles = sorted((work / "profiles").glob("*.txt")) if args.profile else []
        top = ROOT / "bench" / "fanout" / "pyspy_top.py"
        summaries = {f.stem: subprocess.run([PY, str(top), str(f), "--top", "30"], capture_output=True, text=True).stdout
                     for f in profiles}
        if not args.keep:  # keep the results file; drop the source file, blobs, databases and logs
            for child in work.iterdir():
                if child != out:
                    shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink()
            if not any(work.iterdir()):
                work.rmdir()
        meta = results["meta"]
        print()
        print(f"## Files benchmark ({time.strftime('%Y-%m-%d %H:%M')}, {meta['cpus']} CPUs, Python {meta['python']}, "
              f"{meta.get('nginx', 'nginx ?')}, server {meta['server']}, {meta['wall_s']:.0f} s)")
        print(f"Medians of {len(results['runs'])} run(s); MB = 10^6 bytes; load average at start "
              f"{meta['loadavg_start'][0]:.2f}, at end {meta['loadavg_end'][0]:.2f}")
        print(tbl)
        print()
        for v in verdicts:
            print(v)
        print(f"\nraw results: {out}")
        for name, text in summaries.items():
            print(f"\n== py-spy (Podium), {name} ==\n{text}")


if __name__ == "__main__":
    main()
