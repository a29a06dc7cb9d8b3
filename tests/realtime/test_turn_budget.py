"""The per-turn transfer budget: bulk writers together move at most BUDGET bytes per loop turn,
so other work (a chat send) runs between every few slices, however many downloads there are."""
import asyncio

from server.realtime.turn_budget import TurnBudget

KIB = 1024


def test_writers_share_one_budget_per_turn_and_other_work_interleaves():
    """Eight writers together move at most the budget per loop turn, so chat work runs at least every fourth slice."""
    async def main() -> list[str]:
        budget = TurnBudget(256 * KIB)
        trace: list[str] = []

        async def writer(name: str) -> None:
            for _ in range(12):
                await budget.take(64 * KIB)
                trace.append(name)
                await asyncio.sleep(0)  # a flush that completes at once

        async def chat() -> None:
            for _ in range(30):
                trace.append("|")
                await asyncio.sleep(0)

        await asyncio.gather(chat(), *(writer(f"w{i}") for i in range(8)))
        return trace

    trace = asyncio.run(main())
    runs = "".join("x" if t != "|" else "|" for t in trace).split("|")
    assert max(len(r) for r in runs) <= 4, runs  # 256 KiB / 64 KiB slices between chat turns
    assert sum(1 for t in trace if t != "|") == 8 * 12  # every slice went through


def test_a_slice_larger_than_the_budget_goes_alone():
    """A slice larger than the whole budget is not blocked forever: it goes alone in its turn."""
    async def main() -> None:
        budget = TurnBudget(100)
        await asyncio.wait_for(budget.take(1000), 1)
        await asyncio.wait_for(budget.take(1000), 1)

    asyncio.run(main())
