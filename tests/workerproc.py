"""The real media worker (``python -m media_worker``) as a subprocess for tests: pointed at a
test server, gathering ICE on loopback only, with its own work directory and log file. The
``worker_procs`` fixture kills every worker it started at teardown."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.procserver import _die_with_parent

ROOT = Path(__file__).resolve().parent.parent


class WorkerProcess:
    def __init__(self, server_url: str, worker_secret: str, work_dir: Path, worker_id: str = "test-worker",
                 capacity: int = 2, extra_env: dict | None = None):
        """``worker_secret`` is the test server's ``WORKER_SECRET`` (its ``config.worker_secret``)."""
        self.server_url, self.worker_secret = server_url, worker_secret
        self.work_dir, self.worker_id, self.capacity = Path(work_dir), worker_id, capacity
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen | None = None
        self.launches = 0
        self.log_path = self.work_dir.parent / f"{worker_id}.log"

    def start(self) -> "WorkerProcess":
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("WORKER_", "JWT_", "PODIUM_", "SERVER_URL", "DATA_DIR"))}
        env.update(SERVER_URL=self.server_url, WORKER_SECRET=self.worker_secret, WORKER_ID=self.worker_id,
                   WORKER_DIR=str(self.work_dir), WORKER_CAPACITY=str(self.capacity),
                   WORKER_LOOPBACK_ONLY="1", WORKER_SHUTDOWN_S="20", PYTHONUNBUFFERED="1", **self.extra_env)
        self.launches += 1
        log = open(self.log_path, "ab")
        log.write(f"\n===== launch {self.launches} =====\n".encode())
        log.flush()
        # Its own process group, so kill() also ends a post-processing child.
        self.proc = subprocess.Popen([sys.executable, "-m", "media_worker"], cwd=ROOT, env=env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=_die_with_parent())
        log.close()
        return self

    def wait_registered(self, timeout: float = 20) -> None:
        """Block until the worker logs its registration (for tests whose server is another process)."""
        import time

        deadline = time.monotonic() + timeout
        while "registered with" not in self.log():
            if self.proc.poll() is not None:
                raise AssertionError(f"the media worker exited with code {self.proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the media worker did not register within {timeout} s:\n{self.log_tail()}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the worker and anything it started."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    async def await_exit(self, timeout: float) -> int:
        deadline = asyncio.get_running_loop().time() + timeout
        while self.proc.poll() is None:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("worker did not exit")
            await asyncio.sleep(0.05)
        return self.proc.returncode

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


@pytest.fixture
def worker_procs():
    started: list[WorkerProcess] = []

    def make(*args, **kw) -> WorkerProcess:
        w = WorkerProcess(*args, **kw)
        started.append(w)
        return w

    yield make
    for w in started:
        w.kill()
