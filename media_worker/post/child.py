"""Running post-processing in a child process from the worker's event loop.

``await postprocess(dir, on_progress)`` spawns ``python -m media_worker.post <dir>``, feeds
each ``{"percent": n}`` line to ``on_progress`` (a plain or async callable), forwards the
child's log lines to this process's log, and returns the asset dicts. Cancelling the awaiting
task kills the child and removes its unfinished ``out/*.part`` files.
"""
from __future__ import annotations

import asyncio
import collections
import inspect
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("podium.worker.post")

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STDERR_TAIL = 40


class PostprocessError(Exception):
    """The child failed: ``returncode``, its ``{"error"}`` line if any, and its last log lines."""

    def __init__(self, message: str, returncode: int | None, stderr_tail: list[str]):
        super().__init__(message)
        self.returncode = returncode
        self.stderr_tail = stderr_tail


async def postprocess(recording_dir: str | Path,
                      on_progress: Callable[[int], Any] | None = None, *,
                      args: list[str] | None = None) -> list[dict[str, Any]]:
    """Post-process ``recording_dir`` in a child Python; returns its asset dicts
    (``{kind, file, content_type, size, duration_s}``, ``file`` relative to ``<dir>/out``).
    Raises ``PostprocessError`` if the child exits non-zero or reports no assets."""
    recording_dir = Path(recording_dir).resolve()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "media_worker.post", str(recording_dir), *(args or []),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env)
    tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)
    result: dict[str, Any] = {}

    async def read_stderr() -> None:
        async for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            tail.append(line)
            log.info("[post %s] %s", recording_dir.name, line)

    async def read_stdout() -> None:
        async for raw in proc.stdout:
            try:
                msg = json.loads(raw)
            except ValueError:
                log.warning("[post %s] unexpected output: %r", recording_dir.name, raw[:200])
                continue
            if "percent" in msg and on_progress is not None:
                ret = on_progress(int(msg["percent"]))
                if inspect.isawaitable(ret):
                    await ret
            else:
                result.update(msg)

    try:
        await asyncio.gather(read_stdout(), read_stderr())
        code = await proc.wait()
    except BaseException:  # cancelled (worker stopping) or a failing progress callback
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
            for part in (recording_dir / "out").glob("*.part"):  # the killed child's half files
                part.unlink(missing_ok=True)
        raise
    if code != 0 or "assets" not in result:
        raise PostprocessError(
            f"post-processing of {recording_dir} failed (exit {code}): "
            f"{result.get('error', 'no assets reported')}", code, list(tail))
    return result["assets"]
