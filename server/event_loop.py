"""The event loop ``python -m server serve`` runs on (``EVENT_LOOP``, docs/CONFIGURATION.md).

``uvloop`` (the default) is libuv's loop behind asyncio's API: the same program, with each
callback, timer, socket registration and transport read costing less. In the soak
(bench/scaleout, issue 18.3) that was 0.8–0.9× a web process's CPU. ``asyncio`` is the
standard library's selector loop (what the in-process tests run on).
"""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, TypeVar

T = TypeVar("T")

EVENT_LOOPS = ("uvloop", "asyncio")


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """A factory of ``name``'s loops for ``asyncio.Runner`` (None: the standard one)."""
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    if name == "asyncio":
        return None
    raise ValueError(f"unknown event loop {name!r}")


def run(main: Awaitable[T], name: str) -> T:
    """``asyncio.run(main)`` on the loop called ``name``."""
    with asyncio.Runner(loop_factory=loop_factory(name)) as runner:
        return runner.run(main)
