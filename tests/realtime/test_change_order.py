"""ChangeOrder (server/realtime/change_order.py): per-room order of message changes across
processes — duplicates dropped, gaps filled with the current state from the log, frames that
arrive during a fill held back and delivered only when newer than what the fill covered."""
from __future__ import annotations

import asyncio

from server.realtime.change_order import ChangeOrder


class Log:
    """The room's changes as SQL has them: message → (change number, state)."""

    def __init__(self):
        self.state: dict[str, tuple[int, str]] = {}
        self.last = 0
        self.reads = 0
        self.gate: asyncio.Event | None = None

    def change(self, msg: str, state: str) -> tuple[int, bytes]:
        self.last += 1
        self.state[msg] = (self.last, state)
        return self.last, f"{msg}={state};".encode()

    async def fetch(self, room: int, since: int) -> tuple[list[bytes], int]:
        self.reads += 1
        if self.gate is not None:
            await self.gate.wait()
        rows = sorted((n, f"{m}={s};".encode()) for m, (n, s) in self.state.items() if n > since)
        return [f for _, f in rows], self.last


def make():
    log, out = Log(), []
    # A fill delivers its frames as one buffer (one write per socket); split them back.
    order = ChangeOrder(log.fetch, lambda room, frame: out.extend(frame.decode().rstrip(";").split(";")))
    return log, out, order


async def test_in_order_changes_pass_and_duplicates_are_dropped():
    """Consecutive changes are delivered as they come, a repeated change number is dropped, and the log is never read."""
    log, out, order = make()
    order.baseline(1, 0)
    c1, f1 = log.change("a", "v1")
    c2, f2 = log.change("b", "v1")
    order.offer(1, c1, f1)
    order.offer(1, c2, f2)
    order.offer(1, c1, f1)  # seen locally and again through Redis
    assert out == ["a=v1", "b=v1"] and log.reads == 0


async def test_a_gap_is_filled_with_current_state_and_older_frames_are_not_replayed():
    """A change past a gap triggers one log read giving the current state; late older frames are not replayed."""
    log, out, order = make()
    order.baseline(1, 0)
    c1, f1 = log.change("a", "v1")  # this notice is lost
    c2, f2 = log.change("a", "v2")
    c3, f3 = log.change("b", "v1")
    order.offer(1, c3, f3)  # past a gap: read the log
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert out == ["a=v2", "b=v1"] and log.reads == 1
    order.offer(1, c2, f2)  # a late notice for a change already covered
    order.offer(1, c1, f1)
    assert out == ["a=v2", "b=v1"]
    c4, f4 = log.change("a", "v3")
    order.offer(1, c4, f4)
    assert out[-1] == "a=v3"


async def test_frames_arriving_during_a_fill_wait_and_only_newer_ones_follow():
    """Frames offered while a fill reads are held, then dropped if the fill covered them, delivered if newer."""
    log, out, order = make()
    order.baseline(1, 0)
    log.change("a", "v1")  # lost
    c2, f2 = log.change("b", "v1")
    log.gate = asyncio.Event()
    order.offer(1, c2, f2)
    await asyncio.sleep(0)
    c3, f3 = log.change("a", "v2")  # committed while the fill reads
    order.offer(1, c3, f3)
    assert out == []  # held back
    log.gate.set()
    for _ in range(5):
        await asyncio.sleep(0)
    # The read saw a=v2 already (change 3): the held frame 3 is not delivered again.
    assert out == ["b=v1", "a=v2"], out
    assert order.last[1] == 3


async def test_catch_up_after_a_reconnect_reads_what_was_missed():
    """catch_up_all() delivers the current state of what changed since the last change seen, and nothing twice."""
    log, out, order = make()
    order.baseline(1, 0)
    log.change("a", "v1")
    log.change("a", "v2")
    await order.catch_up_all()
    assert out == ["a=v2"] and order.last[1] == 2
    await order.catch_up_all()
    assert out == ["a=v2"]  # nothing new
