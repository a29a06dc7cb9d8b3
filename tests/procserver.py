"""Run the real server (``python -m server``) as a subprocess, for process-level tests.

``ServerProcess`` owns one server on one port and one database; it can be stopped with
SIGTERM or SIGKILL and started again on the same port and database. Every launch writes its
stdout/stderr to its own log file under ``data_dir``. The ``procs`` fixture hands out servers
and kills every process it started at teardown, whatever the test's outcome.

Users and tokens come from the server itself (``POST /api/auth/register`` or the CLI), so
tokens are minted with the subprocess's ``JWT_SECRET``.
"""
from __future__ import annotations

import asyncio
import ctypes
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from tests.ports import free_port, listens_on  # noqa: F401  (free_port is imported from here too)
from tests.wsclient import LoopbackUrls


ROOT = Path(__file__).resolve().parent.parent
JWT_SECRET = "proc-test-secret-" + "p" * 40
WORKER_SECRET = "proc-test-worker-secret-" + "q" * 40
# Variables of the caller's environment that would change what the subprocess does.
_SCRUB = ("PODIUM_ENV", "DATABASE_URL", "DATA_DIR", "PORT", "HOST", "JWT_SECRET", "WORKER_SECRET", "JWT_PUBLIC_KEY",
          "JWT_ALGORITHMS", "JWT_AUDIENCE", "JWT_ISSUER", "JWT_JWKS_URL", "JWT_AUTO_PROVISION", "JWT_ROLE_CLAIM",
          "JWT_ROLE_MAP", "ALLOW_SIGNUP", "LOG_JSON", "REDIS_URL",
          "RATE_LIMIT_PER_S", "RATE_LIMIT_BURST", "HEARTBEAT_S")


def _die_with_parent():
    """A ``preexec_fn`` making the child get SIGKILL when the test process dies (Linux), so even
    a hard-killed pytest leaves no server behind. Teardown kills children in the normal case."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL)
    return preexec


_PREEXEC = _die_with_parent() if sys.platform.startswith("linux") else None


def process_env(database_url: str, data_dir: Path, port: int | None = None,
                extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a server (or CLI) subprocess."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env.update({
        "DATABASE_URL": database_url,
        "DATA_DIR": str(data_dir),
        "JWT_SECRET": JWT_SECRET,
        "WORKER_SECRET": WORKER_SECRET,
        "HOST": "127.0.0.1",
        "RATE_LIMIT_PER_S": "100000",
        "RATE_LIMIT_BURST": "100000",
        "PYTHONUNBUFFERED": "1",
    })
    if port is not None:
        env["PORT"] = str(port)
    env.update(extra or {})
    return env


def run_module(module_args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``python -m <module_args...>`` from the repo root to completion (blocking)."""
    return subprocess.run([sys.executable, "-m", *module_args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


class ServerProcess(LoopbackUrls):
    """``python -m server`` on a fixed port; restartable on the same port and database."""

    def __init__(self, database_url: str, data_dir: Path, port: int | None = None,
                 extra_env: dict[str, str] | None = None):
        self.database_url = database_url
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self._port_chosen = port is None  # ours to change if another process grabs it first
        self._port_retries = 0
        self.extra_env = dict(extra_env or {})
        self.proc: subprocess.Popen | None = None
        self.launches = 0
        self.log_paths: list[Path] = []
        self._log_file = None

    # -- addresses ---------------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        return process_env(self.database_url, self.data_dir, self.port, self.extra_env)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    # -- lifecycle ---------------------------------------------------------------------------
    def launch(self) -> None:
        """Start the process without waiting for it to be ready."""
        assert self.proc is None or self.proc.poll() is not None, "server already running"
        self._close_log()
        self.launches += 1
        path = self.data_dir / f"server-{self.port}-{self.launches}.log"
        self.log_paths.append(path)
        self._log_file = open(path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "server"], cwd=ROOT, env=self.env,
                                     stdout=self._log_file, stderr=subprocess.STDOUT, preexec_fn=_PREEXEC)

    def _health(self) -> int | None:
        try:
            with urllib.request.urlopen(self.base_url + "/healthz", timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return None

    def _check_alive(self) -> bool:
        """False when the first launch lost its free port to another process (then a new port
        is picked and the server relaunched); raises when the server died for another reason."""
        if self.proc is None or self.proc.poll() is None:
            return True
        last_log = self.log_paths[-1].read_text(errors="replace") if self.log_paths else ""
        if (self._port_chosen and self.launches == 1 and self._port_retries < 3
                and "Address already in use" in last_log):
            self._port_retries += 1
            self.port = free_port()
            self.launches = 0
            self.launch()
            return False
        raise RuntimeError(f"server exited with code {self.proc.returncode} before it was ready:\n"
                           f"{self.log_tail()}")

    def _owns_port(self) -> bool:
        """The 200 came from our process, not from another server that took the port."""
        return self.proc is not None and listens_on(self.proc.pid, self.port)

    def start(self, timeout: float = 30) -> "ServerProcess":
        """Launch and block until ``/healthz`` answers 200 (for use before any client runs)."""
        self.launch()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._check_alive() and self._health() == 200 and self._owns_port():
                return self
            time.sleep(0.05)
        raise TimeoutError(f"server not healthy within {timeout} s:\n{self.log_tail()}")

    async def astart(self, timeout: float = 30) -> "ServerProcess":
        """Launch and wait (without blocking the event loop) until ``/healthz`` answers 200."""
        self.launch()
        deadline = time.monotonic() + timeout
        client = AsyncHTTPClient()
        while time.monotonic() < deadline:
            if not self._check_alive():
                continue
            try:
                resp = await client.fetch(self.base_url + "/healthz", raise_error=False, request_timeout=2)
                if resp.code == 200 and self._owns_port():
                    return self
            except OSError:
                pass
            await asyncio.sleep(0.05)
        raise TimeoutError(f"server not healthy within {timeout} s:\n{self.log_tail()}")

    async def restart(self, timeout: float = 30) -> "ServerProcess":
        """Start again on the same port and database (killing the old process if it still runs)."""
        if self.running:
            self.kill()
        return await self.astart(timeout)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> int | None:
        """SIGKILL and reap; returns the exit code (``-9``)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(timeout=10)

    def terminate(self) -> None:
        """Send SIGTERM (graceful stop); does not wait."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        """Block until the process exits; its exit code (raises subprocess.TimeoutExpired)."""
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    async def await_exit(self, timeout: float) -> int:
        """Like ``wait`` but lets the event loop run; raises asyncio.TimeoutError."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise asyncio.TimeoutError(f"server still running after {timeout} s")
            await asyncio.sleep(0.02)
        return self.proc.returncode

    def stop(self) -> None:
        """Teardown: make sure the process is gone."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        self._close_log()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    # -- logs --------------------------------------------------------------------------------
    @property
    def log(self) -> str:
        """Everything every launch wrote to stdout/stderr."""
        if self._log_file is not None:
            self._log_file.flush()
        return "".join(p.read_text(errors="replace") for p in self.log_paths if p.exists())

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.splitlines()[-lines:])

    # -- talking to it -----------------------------------------------------------------------
    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run ``python -m server <args>`` against this server's database and secret."""
        return run_module(["server", *args], self.env, timeout=timeout)

    async def http(self, method: str, path: str, token: str | None = None, body: Any = None,
                   timeout: float = 30) -> tuple[int, Any]:
        hdrs = {}
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        req = HTTPRequest(self.base_url + path, method=method, headers=hdrs, body=data,
                          allow_nonstandard_methods=True, request_timeout=timeout)
        resp = await AsyncHTTPClient().fetch(req, raise_error=False)
        try:
            payload = json.loads(resp.body) if resp.body else None
        except ValueError:
            payload = resp.body
        return resp.code, payload

    async def register(self, username: str, password: str = "violet-ladder-42",
                       display_name: str | None = None) -> tuple[dict, str]:
        """Sign a user up over REST; ``(user, token)``."""
        status, body = await self.http("POST", "/api/auth/register", body={
            "username": username, "password": password, "display_name": display_name or username.capitalize()})
        assert status == 201, (status, body)
        return body["user"], body["token"]

    async def room(self, token: str, members: list[str], name: str = "Crash course") -> dict:
        status, body = await self.http("POST", "/api/rooms", token,
                                       {"kind": "course", "name": name, "members": members})
        assert status == 201, (status, body)
        return body["room"]


_req_ids = itertools.count(1)


async def ws_request(client, type_: str, timeout: float = 10, **fields: Any) -> dict:
    """Like ``WsClient.request_raw`` (returns the ack or error frame) but for sockets that may
    die at any moment: a write that fails on a closed socket raises here instead of leaving an
    unretrieved exception behind, and the request never outlives ``timeout``."""
    rid = f"p{next(_req_ids)}"
    fut = asyncio.get_running_loop().create_future()
    client.pending[rid] = fut
    try:
        written = client.conn.write_message(json.dumps({"type": type_, "id": rid, **fields}))
        written.add_done_callback(lambda f: f.cancelled() or f.exception())
        return await asyncio.wait_for(fut, timeout)
    finally:
        client.pending.pop(rid, None)


class ProcServers:
    """Creates ServerProcess objects for one test and kills them all at the end."""

    def __init__(self, database_url: str, data_dir: Path):
        self.database_url = database_url
        self.data_dir = Path(data_dir)
        self.servers: list[ServerProcess] = []
        self.others: list[subprocess.Popen] = []

    def new(self, port: int | None = None, start: bool = True, **kw: Any) -> ServerProcess:
        srv = ServerProcess(kw.pop("database_url", self.database_url), kw.pop("data_dir", self.data_dir),
                            port, **kw)
        self.servers.append(srv)
        if start:
            srv.start()
        return srv

    def popen(self, module_args: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start another ``python -m`` process that teardown will kill."""
        out = open(log_path, "wb")
        p = subprocess.Popen([sys.executable, "-m", *module_args], cwd=ROOT,
                             env=env or process_env(self.database_url, self.data_dir),
                             stdout=out, stderr=subprocess.STDOUT, preexec_fn=_PREEXEC)
        out.close()  # the child holds its own descriptor
        self.others.append(p)
        return p

    def cleanup(self) -> None:
        for srv in self.servers:
            srv.stop()
        for p in self.others:
            if p.poll() is None:
                try:
                    p.kill()
                    p.wait(timeout=10)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass


@pytest.fixture
def procs(database_url: str, tmp_path):
    """Factory of real server subprocesses over this test's fresh database."""
    mgr = ProcServers(database_url, tmp_path)
    try:
        yield mgr
    finally:
        mgr.cleanup()
