"""``events.jsonl``: the recording's manifest, appended one JSON line at a time
(docs/RECORDING.md, "The recording directory")."""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

EVENTS_FILE = "events.jsonl"


def read_first_event(path: Path) -> dict[str, Any]:
    """The first line of an existing ``events.jsonl``, parsed. Raises ``OSError`` when the file
    cannot be read and ``ValueError`` when that line is not a JSON object."""
    with open(path, encoding="utf-8") as f:
        first = json.loads(f.readline())
    if not isinstance(first, dict):
        raise ValueError(f"{path}: the first line is not a JSON object")
    return first


def recording_started_at(path: Path) -> float:
    """``t`` of the ``recording_started`` line that opens ``path`` (the worker's wall clock at
    the recording's zero). Raises ``OSError``, or ``ValueError`` when the file does not start
    with a valid ``recording_started`` line."""
    first = read_first_event(path)
    if first.get("type") != "recording_started" or not isinstance(first.get("t"), (int, float)):
        raise ValueError(f"{path} does not start with recording_started")
    return float(first["t"])


class EventLog:
    """Appends events to ``path``. Every line is written and flushed to the OS before
    :meth:`write` returns, so a crash of this process (even SIGKILL) loses at most the line
    being written; with ``fsync=True`` each line also reaches the disk (survives power loss,
    costs a disk round trip per event). Opening an existing log whose last line was cut by a
    crash first ends that line, so it stays one unparsable line (skipped by the reader) and
    never swallows the next event. Raises ``OSError`` when the file cannot be written."""

    def __init__(self, path: Path, *, fsync: bool = False, clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self._fsync = fsync
        self._clock = clock
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (open until close())
        self.lines = 0
        if self._file.tell() > 0 and not _ends_with_newline(self.path):
            self._file.write("\n")
            self._file.flush()

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

    def append_dated(self, events: Iterable[dict[str, Any]]) -> int:
        """Append events that carry their own time, each ``{"t": float, "type": str, ...}``
        (events that happened elsewhere, placed on this log's clock by the caller), in order of
        ``t`` (stable for equal times), each as by :meth:`write`. Returns how many were
        written. Raises ``ValueError`` before writing anything if an event lacks a numeric ``t``
        or a string ``type``."""
        dated = list(events)
        for event in dated:
            t = event.get("t")
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not isinstance(event.get("type"), str):
                raise ValueError(f"not a dated event: {event!r}")
        for event in sorted(dated, key=lambda e: e["t"]):
            fields = {k: v for k, v in event.items() if k not in ("t", "type")}
            self.write(event["type"], t=float(event["t"]), **fields)
        return len(dated)

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

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"
