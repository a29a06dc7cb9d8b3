"""Clients and probes of the files benchmark (``run.py``): a streaming multipart uploader,
downloads (``getter.py``), a peak-RSS sampler and a chat round-trip probe.

Every client is built so that it is not what limits the figure: the uploader sends the file with
``socket.sendfile`` (zero-copy, the client never holds the file in memory), downloads are
``getter.py`` threads in a separate process reading into a reusable 4 MiB buffer (the chat
probe's event loop in this process is not slowed by them), and the caller measures the CPU time
both use.
"""
from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import math
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
from tornado.websocket import websocket_connect

MIB = 1024 * 1024
# An ISO BMFF ``ftyp`` box (major brand isom, compatible isom/iso2/mp41) and the header of an
# ``mdat`` box spanning the rest: what ``filetype`` (and so Podium's content check) reads as MP4.
MP4_HEAD = (b"\x00\x00\x00\x1cftypisom\x00\x00\x02\x00isomiso2mp41"
            b"\x00\x00\x00\x01mdat")


def make_source(path: Path, size: int, prefixes: tuple[int, ...] = ()) -> dict[int, str]:
    """Write ``size`` bytes of MP4-looking data (``MP4_HEAD`` then random filler) to ``path``;
    return the SHA-256 of the whole file and of each length in ``prefixes``."""
    pool = os.urandom(16 * MIB)
    sha = hashlib.sha256()
    digests: dict[int, str] = {}
    marks = sorted(p for p in set(prefixes) if 0 < p < size)
    written = 0
    with open(path, "wb") as f:
        first = MP4_HEAD + pool[:MIB - len(MP4_HEAD)]
        blocks = itertools.chain([first], itertools.cycle(pool[k:k + MIB] for k in range(0, len(pool), MIB)))
        for block in blocks:
            block = block[:size - written]
            while marks and written + len(block) >= marks[0]:  # a prefix ends inside this block
                cut = marks.pop(0) - written
                h = sha.copy()
                h.update(block[:cut])
                digests[written + cut] = h.hexdigest()
            f.write(block)
            sha.update(block)
            written += len(block)
            if written >= size:
                break
    digests[size] = sha.hexdigest()
    return digests


# --- plain HTTP -------------------------------------------------------------------------------
def api(base: str, token: str, method: str, path: str, body: dict | None = None, timeout: float = 30) -> dict:
    """One JSON API call; the decoded answer ({} for 204). Raises RuntimeError on an HTTP error."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"{method} {path}: {e.code} {e.read()[:300]!r}") from None
    return json.loads(raw) if raw else {}


def get_range(url: str, start: int, end: int, timeout: float = 30) -> bytes:
    """Bytes ``start..end`` (inclusive) of ``url``; raises unless the answer is 206 with exactly those."""
    req = urllib.request.Request(url, headers={"Range": f"bytes={start}-{end}"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        body = r.read()
        if r.status != 206 or len(body) != end - start + 1:
            raise RuntimeError(f"range {start}-{end} of {url}: {r.status}, {len(body)} bytes")
    return body


def upload(port: int, token: str, path: Path, size: int, name: str, timeout: float = 300) -> dict:
    """``POST /api/files`` with one ``file`` part holding the first ``size`` bytes of ``path``,
    streamed: request and part headers with ``sendall``, the content with ``socket.sendfile``.

    Returns ``{status, seconds, body_sent_s, response, client_cpu_s}``: ``seconds`` from connect
    to the whole answer, ``body_sent_s`` until the last body byte was handed to the kernel
    (the rest is the server finishing: parse of the tail, fsync, rename, the database row)."""
    boundary = "podiumbench" + secrets.token_hex(12)
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: video/mp4\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    req = (f"POST /api/files HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
           f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
           f"Content-Length: {len(head) + size + len(tail)}\r\nConnection: close\r\n\r\n").encode()
    cpu0 = time.thread_time()
    t0 = time.perf_counter()
    body_sent = None
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s, open(path, "rb") as f:
        try:
            s.sendall(req + head)
            sent = s.sendfile(f, 0, size)
            if sent != size:
                raise RuntimeError(f"sendfile sent {sent} of {size} bytes")
            s.sendall(tail)
            body_sent = time.perf_counter() - t0
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused early: the server answered and closed; read what it said
        status, answer = _read_response(s)
    seconds = time.perf_counter() - t0
    return {"status": status, "seconds": seconds, "body_sent_s": body_sent, "response": answer,
            "client_cpu_s": time.thread_time() - cpu0}


def _read_response(s: socket.socket) -> tuple[int, dict | str]:
    buf = bytearray()
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError(f"connection closed before a response ({bytes(buf[:200])!r})")
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    length = int(headers.get("content-length", "0"))
    body = bytearray(rest)
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    try:
        return status, json.loads(bytes(body))
    except ValueError:
        return status, bytes(body[:300]).decode("latin-1")


GETTER = Path(__file__).resolve().parent / "getter.py"


def downloads(urls: list[str], timeout: float = 300) -> dict:
    """GET every URL at once with ``getter.py`` (one process, a thread per URL) and wait for it.

    Returns ``{seconds, bytes, streams: [{status, bytes, seconds, ttfb_s, error}]}``: ``seconds``
    from the first request to the last body's end (process start-up is not counted). The
    getter's CPU time shows in the caller's ``RUSAGE_CHILDREN`` once this returns."""
    p = subprocess.Popen([sys.executable, str(GETTER), *urls], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    timer = threading.Timer(timeout, p.kill)
    timer.start()
    try:
        out, err = p.communicate()  # the getter prints one line: no pipe can fill up
    finally:
        timer.cancel()
    lines = [ln for ln in out.decode().splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"getter.py exit {p.returncode}: {err.decode()[-500:]}")
    r = json.loads(lines[-1])
    return {"seconds": r["seconds"], "bytes": sum(s["bytes"] for s in r["streams"]), "streams": r["streams"]}


# --- server process figures --------------------------------------------------------------------
def tree(pid: int) -> list[psutil.Process]:
    """The process and its children (nginx: master and workers)."""
    p = psutil.Process(pid)
    return [p, *p.children(recursive=True)]


def rss(procs: list[psutil.Process]) -> int:
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def cpu_s(procs: list[psutil.Process]) -> float:
    """User + system CPU seconds of the processes (all threads)."""
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


class PeakRss:
    """Samples the summed RSS of ``procs`` every ``interval`` seconds on a thread, from
    ``start()`` to ``stop()``, which returns the RSS before, the peak and the growth in MiB."""

    def __init__(self, procs: list[psutil.Process], interval: float = 0.02):
        self.procs, self.interval = procs, interval
        self.before = self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> PeakRss:
        self.before = self.peak = rss(self.procs)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss(self.procs))
            self.samples += 1

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(2)
        self.peak = max(self.peak, rss(self.procs))
        return {"rss_before_mb": round(self.before / MIB, 1), "rss_peak_mb": round(self.peak / MIB, 1),
                "rss_growth_mb": round((self.peak - self.before) / MIB, 1), "rss_samples": self.samples}


# --- chat round trip ----------------------------------------------------------------------------
class ChatProbe:
    """One WebSocket client that, while running, sends a ``message.send`` every ``1/rate`` s to
    a room it has joined and times each one: send → ack, and send → its own ``message.new``."""

    def __init__(self, ws_url: str, token: str, room: str):
        self.url = f"{ws_url}?token={token}"
        self.room = room
        self.conn = None
        self._tag = secrets.token_hex(4)
        self._n = itertools.count(1)
        self._pending: dict[str, float] = {}   # request id → send time (ack outstanding)
        self._echo: dict[str, float] = {}      # client_msg_id → send time (message.new outstanding)
        self.samples: list[dict] = []          # {t, ack_ms, rtt_ms}
        self._by_id: dict[str, dict] = {}
        self.errors: list[str] = []
        self._reader: asyncio.Task | None = None
        self._joined: asyncio.Future | None = None

    async def open(self) -> None:
        self.conn = await websocket_connect(self.url, max_message_size=16 * MIB)
        hello = json.loads(await asyncio.wait_for(self.conn.read_message(), 10))
        if hello.get("type") != "hello":
            raise RuntimeError(f"expected hello, got {hello}")
        self._joined = asyncio.get_running_loop().create_future()
        self._reader = asyncio.ensure_future(self._read())
        self.conn.write_message(json.dumps({"type": "room.join", "id": "join", "room": self.room}))
        frame = await asyncio.wait_for(self._joined, 10)
        if frame.get("type") != "ack":
            raise RuntimeError(f"room.join refused: {frame}")

    async def _read(self) -> None:
        while True:
            raw = await self.conn.read_message()
            now = time.perf_counter()
            if raw is None:
                return
            frame = json.loads(raw)
            kind, fid = frame.get("type"), frame.get("id")
            if fid == "join" and kind in ("ack", "error"):
                self._joined.set_result(frame)
            elif kind in ("ack", "error") and fid in self._pending:
                sample = self._by_id[fid]
                sample["ack_ms"] = (now - self._pending.pop(fid)) * 1000
                if kind == "error":
                    self.errors.append(f"{frame.get('code')}: {frame.get('reason')}")
            elif kind == "message.new":
                cmid = (frame.get("message") or {}).get("client_msg_id")
                if cmid in self._echo:
                    self._by_id[cmid]["rtt_ms"] = (now - self._echo.pop(cmid)) * 1000

    async def run(self, stop: asyncio.Event, rate: float, max_s: float) -> None:
        """Send at ``rate``/s (on a fixed schedule, not waiting for answers) until ``stop`` is set
        or ``max_s`` passed; then wait up to 3 s for the last answers."""
        period = 1 / rate
        t_start = time.perf_counter()
        k = 0
        while not stop.is_set() and time.perf_counter() - t_start < max_s:
            n = next(self._n)
            rid, cmid = f"m{n}", f"{self._tag}-{n}"
            sample = {"t": time.perf_counter(), "ack_ms": None, "rtt_ms": None}
            self._by_id[rid] = self._by_id[cmid] = sample
            self.samples.append(sample)
            self._pending[rid] = self._echo[cmid] = sample["t"]
            self.conn.write_message(json.dumps({"type": "message.send", "id": rid, "room": self.room,
                                                "client_msg_id": cmid, "kind": "text",
                                                "content": f"files bench probe {n}"}))
            k += 1
            delay = t_start + k * period - time.perf_counter()
            try:
                await asyncio.wait_for(stop.wait(), max(delay, 0))
            except TimeoutError:
                pass
        deadline = time.perf_counter() + 3
        while (self._pending or self._echo) and time.perf_counter() < deadline:
            await asyncio.sleep(0.02)

    def window(self, t0: float, t1: float) -> list[dict]:
        """The samples sent between ``t0`` and ``t1`` (perf_counter times)."""
        return [s for s in self.samples if t0 <= s["t"] <= t1]

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        if self._reader is not None:
            self._reader.cancel()


def pct(vals: list[float], q: float) -> float | None:
    """The ``q`` quantile (nearest rank) of ``vals``; None when empty."""
    if not vals:
        return None
    vals = sorted(vals)
    return round(vals[max(0, math.ceil(q * len(vals)) - 1)], 2)


def latency_summary(samples: list[dict]) -> dict:
    """p50/p99/max of round trip (send → own message.new) and ack, with counts and losses."""

    rtt = [s["rtt_ms"] for s in samples if s["rtt_ms"] is not None]
    ack = [s["ack_ms"] for s in samples if s["ack_ms"] is not None]
    return {"sent": len(samples), "lost": len(samples) - len(rtt), "rtt_all_ms": [round(v, 2) for v in rtt],
            "rtt_ms": {"p50": pct(rtt, 0.5), "p99": pct(rtt, 0.99), "max": pct(rtt, 1.0)},
            "ack_ms": {"p50": pct(ack, 0.5), "p99": pct(ack, 0.99), "max": pct(ack, 1.0)}}
