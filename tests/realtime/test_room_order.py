"""RoomOrder (server/realtime/room_order.py): message.new deliveries in seq order across
processes; a gap that closes by itself (another process's batch overtaking our own broadcast)
is not read from SQL, a real gap is."""
from __future__ import annotations

import asyncio

from server.realtime.room_order import GAP_WAIT_S, RoomOrder


def make(log: dict[int, bytes]):
    out, reads = [], []

    async def fetch(room: int, after: int, until: int | None):
        reads.append((after, until))
        return [(s, f) for s, f in sorted(log.items()) if s > after and (until is None or s <= until)]

    order = RoomOrder(fetch, lambda room, frame: out.extend(frame.decode().rstrip(";").split(";")))
    return order, out, reads


def frame(seq: int) -> tuple[int, bytes]:
    return seq, f"m{seq};".encode()


async def test_a_gap_that_closes_by_itself_is_not_read_from_sql():
    """A gap filled by a frame that arrives within GAP_WAIT_S is delivered in seq order without reading SQL."""
    order, out, reads = make({s: frame(s)[1] for s in range(1, 6)})
    order.offer(1, [frame(1)])
    order.offer(1, [frame(4), frame(5)])  # the other process's batch, through Redis
    await asyncio.sleep(0.005)
    order.offer(1, [frame(2), frame(3)])  # our own, broadcast a moment later
    await asyncio.sleep(GAP_WAIT_S + 0.05)
    assert out == ["m1", "m2", "m3", "m4", "m5"] and reads == []


async def test_a_real_gap_is_read_from_sql_after_the_wait():
    """A gap still open after GAP_WAIT_S is read from SQL (just the missing seqs) and a late duplicate is dropped."""
    order, out, reads = make({s: frame(s)[1] for s in range(1, 6)})
    order.offer(1, [frame(1)])
    order.offer(1, [frame(4)])  # 2 and 3 were lost with a Redis notice
    await asyncio.sleep(GAP_WAIT_S + 0.05)
    assert out == ["m1", "m2", "m3", "m4"] and reads == [(1, 3)]
    order.offer(1, [frame(3), frame(5)])  # a late duplicate is dropped
    assert out[-1] == "m5" and out.count("m3") == 1


async def test_the_first_message_after_a_baseline_is_not_lost_when_a_later_one_overtakes_it():
    """A room's first local subscriber sets the baseline (the room's last seq in SQL): seq 2
    (stored by this process) arriving before seq 1 (another process's, late through Redis) is held
    until seq 1 arrives, not taken as the start (which dropped seq 1 as already delivered)."""
    order, out, reads = make({s: frame(s)[1] for s in range(1, 3)})
    order.baseline(1, 0)
    order.offer(1, [frame(2)])
    await asyncio.sleep(0.005)
    order.offer(1, [frame(1)])
    await asyncio.sleep(GAP_WAIT_S + 0.05)
    assert out == ["m1", "m2"] and reads == []


async def test_without_a_baseline_the_first_arrival_starts_the_room():
    """A room nobody joined here since it was forgotten starts at its first arrival (no history is read)."""
    order, out, reads = make({s: frame(s)[1] for s in range(1, 8)})
    order.offer(1, [frame(7)])
    assert out == ["m7"] and reads == []
