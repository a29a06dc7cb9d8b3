"""``events.jsonl``: the recording's manifest, appended one JSON line at a time
(docs/RECORDING.md, "The recording directory")."""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class EventLog:
    """Appends events to ``path``. Every line is written and flushed to the OS before
    :meth:`write` returns, so a crash of this process (even SIGKILL) loses at most the line
    being written; with ``fsync=True`` each line also reaches the disk (survives power loss,
    costs a disk round trip per event). Raises ``OSError`` when the file cannot be written."""

    def __init__(self, path: Path, *, fsync: bool = False, clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self._fsync = fsync
        self._clock = clock
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (open until close())
        self.lines = 0

    def write(self, type_: str, *, t: float | None = None, **fields: Any) -> dict[str, Any]:
        """Append ``{"t": t or now, "type": type_, **fields}``; returns the event."""
        event = {"t": self._clock() if t is None else t, "type": type_, **fields}
        line = json.dumps(event, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        self._file.write(line + "\n")
        self._file.flush()
        if self._fsync:
            os.fsync(self._file.fileno())
        self.lines += 1
        return event

    @property
    def closed(self) -> bool:
        return self._file.closed

    def close(self) -> None:
        """Flush and close; idempotent."""
        if not self._file.closed:
            self._file.flush()
            if self._fsync:
                os.fsync(self._file.fileno())
            self._file.close()
