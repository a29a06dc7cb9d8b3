"""An async test that nears pytest-timeout's limit prints the stack of every asyncio task first.

pytest-timeout shows the threads' stacks only, and a hung async test sits in the event loop's
``select``: what it was waiting for is in a task's stack, which is lost. This fixture (autouse,
from tests/conftest.py, told the limit by pytest-timeout's own hook) arms a timer on the test's
loop 10 s before the limit; a test that ends in time cancels it, and one that does not leaves
the tasks' stacks in its captured stderr.
"""
from __future__ import annotations

import asyncio
import inspect
import sys

import pytest


def await_chain(coro) -> list[str]:
    """Where a suspended coroutine waits, outermost first: each frame of its ``await`` chain
    (``Task.print_stack`` shows only the outermost frame of a suspended task)."""
    lines = []
    while coro is not None and len(lines) < 30:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            lines.append(f"  awaiting {coro!r}")
            break
        lines.append(f"  {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return lines


def dump_tasks(loop: asyncio.AbstractEventLoop, why: str, out=None) -> int:
    """Print every unfinished task of ``loop`` and where it waits; returns how many."""
    out = out or sys.stderr
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    print(f"--- {why}: {len(tasks)} asyncio tasks ---", file=out)
    for task in tasks:
        print(f"* {task.get_name()}:", file=out)
        print("\n".join(await_chain(task.get_coro())), file=out)
    return len(tasks)


LIMIT = pytest.StashKey[float]()


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings) -> None:
    """pytest-timeout's own hook, called before the test's fixtures with the limit it settled on
    (marker, ``--timeout``, ``PYTEST_TIMEOUT`` or the ini): noted for the fixture below. It
    returns None, so pytest-timeout still arms its timer."""
    item.stash[LIMIT] = float(settings.timeout)


@pytest.fixture(autouse=True)
def dump_tasks_before_timeout(request):
    limit = request.node.stash.get(LIMIT, 0.0)
    if not inspect.iscoroutinefunction(getattr(request.node, "obj", None)) or limit <= 20:
        yield
        return
    loop = request.getfixturevalue("io_loop").asyncio_loop
    handle = loop.call_later(limit - 10, dump_tasks, loop, f"{request.node.nodeid} is near its {limit:.0f} s limit")
    yield
    handle.cancel()
