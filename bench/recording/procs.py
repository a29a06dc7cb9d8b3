"""Child processes of the recording benchmark that talk JSON lines: the driver writes one JSON
object per line to the child's stdin and reads the child's JSON lines from its stdout (any other
stdout line, and all of stderr, go to the child's log file).

Also a tiny JSON-lines endpoint for the children themselves (``Control``), and CPU helpers."""
from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path


class ChildError(RuntimeError):
    pass


class Child:
    """One child process (``cmd``), logging to ``log_path``; killed by :meth:`stop` at the latest."""

    def __init__(self, cmd: list[str], log_path: Path, *, cwd: Path | None = None, env: dict | None = None):
        self.name = Path(cmd[1]).stem if len(cmd) > 1 else cmd[0]
        self.log_path = log_path
        self._log = open(log_path, "a")
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, text=True, bufsize=1)
        self._q: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("{"):
                try:
                    self._q.put(json.loads(line))
                    continue
                except ValueError:
                    pass
            self._log.write(line)
        self._q.put(None)  # EOF

    def send(self, obj: dict) -> None:
        try:
            self.proc.stdin.write(json.dumps(obj) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise ChildError(f"{self.name} is gone ({exc}); see {self.log_path}") from None

    def expect(self, key: str, timeout: float) -> dict:
        """The next message that has ``key`` (others before it are dropped); raises
        :class:`ChildError` on timeout, on the child's exit or on an ``{"error"}`` message."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChildError(f"{self.name}: no {key!r} within {timeout:.0f} s; see {self.log_path}")
            try:
                msg = self._q.get(timeout=left)
            except queue.Empty:
                continue
            if msg is None:
                raise ChildError(f"{self.name} exited ({self.proc.poll()}) before {key!r}; see {self.log_path}")
            if "error" in msg:
                raise ChildError(f"{self.name}: {msg['error']}; see {self.log_path}")
            if key in msg:
                return msg

    def request(self, obj: dict, key: str, timeout: float) -> dict:
        self.send(obj)
        return self.expect(key, timeout)

    def cpu_s(self) -> float:
        """User + system CPU seconds of the process (all its threads) so far."""
        import psutil
        t = psutil.Process(self.proc.pid).cpu_times()
        return t.user + t.system

    def stop(self, timeout: float = 15) -> None:
        """Ask it to quit (``{"cmd": "quit"}``), then SIGTERM, then SIGKILL."""
        if self.proc.poll() is None:
            try:
                self.send({"cmd": "quit"})
                self.proc.wait(timeout)
            except (ChildError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


# -- inside a child ----------------------------------------------------------------------------
class Control:
    """The child's side: ``await commands.get()`` yields the driver's messages (``None`` at EOF);
    :meth:`emit` writes one JSON line."""

    def __init__(self) -> None:
        self.commands: asyncio.Queue = asyncio.Queue()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()

        def reader() -> None:
            for line in sys.stdin:
                line = line.strip()
                if line:
                    loop.call_soon_threadsafe(self.commands.put_nowait, json.loads(line))
            loop.call_soon_threadsafe(self.commands.put_nowait, None)

        threading.Thread(target=reader, daemon=True).start()

    async def next(self, timeout: float | None = None) -> dict | None:
        return await asyncio.wait_for(self.commands.get(), timeout)

    @staticmethod
    def emit(obj: dict) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def pin(cpu: int | None) -> None:
    """Run this process (and the threads it starts later) on one CPU."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


class LoopLag:
    """How late a 20 ms ``asyncio.sleep`` wakes up on this process's event loop (ms), as a
    measure of how long other callbacks hold the loop."""

    def __init__(self, period: float = 0.02):
        self.period = period
        self.samples: list[float] = []
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            t = time.monotonic()
            await asyncio.sleep(self.period)
            self.samples.append((time.monotonic() - t - self.period) * 1000)

    def take(self) -> dict:
        """p50/p99/max since the last call, and reset."""
        s, self.samples = sorted(self.samples), []
        if not s:
            return {"n": 0}
        return {"n": len(s), "p50": round(s[len(s) // 2], 2), "p99": round(s[min(len(s) - 1, int(len(s) * 0.99))], 2),
                "max": round(s[-1], 2)}

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
