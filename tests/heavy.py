"""Keeping the two test passes' heavy tests apart.

scripts/test.sh runs the SQLite pass and the PostgreSQL pass at the same time on a 2-core
machine. Most tests wait on sockets and processes, so two at once cost little; but a *heavy*
test (real Chromium pages encoding and decoding video, Janus forwarding it, the media worker
rendering a class video) takes both cores, and two at once made each far slower and made the
ones that measure media timing fail. So:

- ``TEST_HEAVY=first`` runs a pass's heavy tests before its light ones, ``TEST_HEAVY=last``
  after (test.sh gives the two passes opposite orders, so one pass's heavy part meets the
  other's light part);
- ``TEST_HEAVY_LOCK=<path>`` makes each heavy test hold an exclusive ``flock`` on that file
  while it runs (setup to teardown), so where the two heavy parts do meet they take turns.

The order within each part is the collection order (modules stay together, so module-scoped
fixtures such as the browser are made once per module as before).
"""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from typing import Iterator

import pytest

HEAVY_PATHS = ("tests/browser/", "tests/sfu/", "tests/recordings/test_recording_e2e.py",
               "tests/recordings/test_live_segments_e2e.py")
HEAVY_MARKERS = ("browser", "slow")


def is_heavy(item: pytest.Item, root: str) -> bool:
    path = os.path.relpath(str(item.path), root)
    return path.startswith(HEAVY_PATHS) or any(item.get_closest_marker(m) for m in HEAVY_MARKERS)


def order(items: list[pytest.Item], root: str, mode: str) -> None:
    """Reorder ``items`` in place: heavy ones first (``mode == "first"``) or last (``"last"``)."""
    if mode not in ("first", "last"):
        if mode:
            raise pytest.UsageError(f"TEST_HEAVY must be 'first' or 'last', not {mode!r}")
        return
    heavy, light = [], []
    for item in items:
        (heavy if is_heavy(item, root) else light).append(item)
    items[:] = heavy + light if mode == "first" else light + heavy


@contextmanager
def turn(path: str) -> Iterator[None]:
    """Hold the heavy tests' lock (an exclusive flock on ``path``) for the block."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
