"""A per-loop-turn byte budget shared by every bulk transfer of the process (downloads and,
since bench/files measured chat p99 433 ms during 8 parallel uploads, uploads).

Large downloads share the event loop with chat. Left alone, each active download pushes a whole
storage chunk (1 MiB) through its socket per loop turn, so with 8 downloads one turn moves
8 MiB and a chat send, which needs a couple of dozen turns, waits hundreds of milliseconds
(bench/files measured a 262 ms chat p99). Here every slice a download writes takes bytes from
one budget per loop turn; once it is spent, writers wait for the next turn, so chat handlers
get a turn between every ``BUDGET`` bytes of bulk transfer, however many downloads run.
"""
from __future__ import annotations

import asyncio

SLICE = 256 * 1024  # bytes a download writes per take
BUDGET = 256 * 1024  # bytes all downloads together may write per loop turn


class TurnBudget:
    def __init__(self, budget: int = BUDGET):
        self.budget = budget
        self._spent = 0
        self._reset_scheduled = False

    def _reset(self) -> None:
        self._spent = 0
        self._reset_scheduled = False

    async def take(self, n: int) -> None:
        """Wait until ``n`` more bytes fit in this turn's budget (a slice larger than the
        budget is allowed alone in a fresh turn)."""
        while self._spent and self._spent + n > self.budget:
            await asyncio.sleep(0)  # the loop turns; the reset below runs first
        self._spent += n
        if not self._reset_scheduled:
            self._reset_scheduled = True
            asyncio.get_running_loop().call_soon(self._reset)
