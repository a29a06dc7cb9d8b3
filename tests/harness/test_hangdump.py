"""tests/hangdump.py: what a test near its time limit leaves behind."""
import asyncio
import io
import os

import pytest

from tests.hangdump import LIMIT, dump_tasks


async def stuck_on(event: asyncio.Event) -> None:
    await inner(event)


async def inner(event: asyncio.Event) -> None:
    await event.wait()


async def test_the_dump_names_what_each_task_waits_on():
    event = asyncio.Event()
    task = asyncio.ensure_future(stuck_on(event))
    await asyncio.sleep(0)
    out = io.StringIO()
    n = dump_tasks(asyncio.get_running_loop(), "near the limit", out)
    text = out.getvalue()
    assert n >= 2 and "near the limit" in text  # this test's own task and the stuck one
    # the whole await chain, not only the task's outermost frame
    assert "in stuck_on" in text and "in inner" in text and "in wait" in text
    event.set()
    await task


@pytest.mark.timeout(42)
def test_the_limit_is_the_one_pytest_timeout_settled_on(request):
    assert request.node.stash[LIMIT] == 42


def test_without_a_marker_the_limit_is_the_command_line_or_the_ini(request, pytestconfig):
    want = pytestconfig.getoption("timeout") or os.environ.get("PYTEST_TIMEOUT") or pytestconfig.getini("timeout")
    assert request.node.stash[LIMIT] == float(want) > 20


async def test_an_async_test_has_the_timer_armed_and_it_is_cancelled_after(io_loop):
    armed = [h for h in io_loop.asyncio_loop._scheduled if not h.cancelled()
             and getattr(h, "_callback", None) is dump_tasks]
    assert len(armed) == 1 and armed[0].when() - io_loop.asyncio_loop.time() > 150
