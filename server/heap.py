"""The cyclic garbage collector's pauses, kept short.

A full (generation 2) collection walks every container object the process holds. After start
a web process holds ~100,000 of them, nearly all for good (modules, the app, SQLAlchemy's
mappings), and one full collection took 40–74 ms of the event loop, measured while 8 large
uploads ran (bench/files): every chat send in flight waited that long. ``freeze_startup_heap``
moves what is alive once the server has started into the collector's permanent generation
(``gc.freeze``), so later full collections walk only what was made since. Objects still go away
as before when nothing refers to them; only a reference cycle among the frozen ones would now
stay, and those are the process's own for its whole life.

``GcPauses`` counts full collections and keeps the slowest, for ``/metrics``.
"""
from __future__ import annotations

import gc
import time


def freeze_startup_heap() -> int:
    """Collect once, then freeze everything alive: the count frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class GcPauses:
    """Full collections of this process and the slowest one, from ``gc.callbacks``."""

    def __init__(self) -> None:
        self.full = 0
        self.slowest_s = 0.0
        self._started = 0.0

    def install(self) -> None:
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)

    def remove(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
            return
        self.full += 1
        self.slowest_s = max(self.slowest_s, time.perf_counter() - self._started)
