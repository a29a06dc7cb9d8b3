"""The bus's publisher (server/realtime/bus_publisher.py) on the real Redis: notices go out in
order without replies; when its connection is lost, the rooms of notices no canary confirmed
are named in a RoomsGap, published first on the next connection."""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets

import pytest

from server.realtime.bus_publisher import Publisher
from server.realtime.resp import parse_url
from server.realtime.resp_client import RespClient, Subscription

pytestmark = pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="needs TEST_REDIS_URL")


def gap(rooms: list[int]) -> bytes:
    return json.dumps({"gap": rooms}).encode()


async def until(check, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def wired():
    addr = parse_url(os.environ["TEST_REDIS_URL"])
    channel = f"podium-test-pub-{secrets.token_hex(4)}"
    got: list[bytes] = []
    sub = await Subscription.open(addr, channel, got.append)
    pub = Publisher(addr, channel, gap)
    await pub.start()
    client = RespClient(addr)
    try:
        yield pub, got, client
    finally:
        await pub.close()
        sub.close()
        await client.close()


async def test_notices_of_one_turn_go_out_in_order_and_nothing_answers_them():
    async with wired() as (pub, got, _):
        await until(lambda: pub._proto is not None)
        sent = [b"n%d" % i + b"x" * (i * 331 % 5000) for i in range(300)]
        for i, data in enumerate(sent):
            pub.publish(data, i % 7)
        await until(lambda: len(got) == 300)
        assert got == sent and pub.stats == {"published": 300, "dropped": 0}
        assert pub._proto.replies == 0  # CLIENT REPLY OFF: Redis answers none of them


async def test_a_lost_connection_names_the_unconfirmed_rooms_first_on_the_next():
    """Rooms 1 and 2 are confirmed by a canary that came back; room 3's notice is not when the
    connection is killed: the next connection publishes a gap naming room 3 only, then what
    was published meanwhile, in order."""
    async with wired() as (pub, got, client):
        await until(lambda: pub._proto is not None)
        pub.publish(b"r1", 1)
        pub.publish(b"r2", 2)
        pub.marker(1, b"canary-1")
        await until(lambda: b"canary-1" in got)
        pub.confirmed(1)
        pub.publish(b"r3", 3)
        await until(lambda: b"r3" in got)
        old = pub._proto
        host, port = old.transport.get_extra_info("sockname")[:2]
        await client.execute("CLIENT", "KILL", "ADDR", f"{host}:{port}")  # only ours: the Redis is shared
        await until(lambda: not old.alive)
        pub.publish(b"r4", 4)  # while reconnecting: held, then published after the gap
        got.clear()
        await until(lambda: len(got) == 2)
        assert got == [gap([3]), b"r4"]
        assert pub._proto is not old and pub.lost_rooms == set()


async def test_a_late_canary_starts_over_with_a_gap():
    """``suspect`` (the bus's canary did not come back in time) drops the connection: what no
    canary confirmed is named in a gap on the next one."""
    async with wired() as (pub, got, _):
        await until(lambda: pub._proto is not None)
        pub.publish(b"r5", 5)
        pub.marker(1, b"canary-1")
        pub.publish(b"r6", 6)
        await until(lambda: len(got) == 3)
        got.clear()
        pub.suspect()
        await until(lambda: len(got) == 1)
        assert got == [gap([5, 6])]
