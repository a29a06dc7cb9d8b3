"""server/sfu/placement.py and Sfu's use of it: the least-loaded live Janus, ties, no live
Janus (mesh), stickiness, failover moves — in memory, and in Redis shared by two "processes"
(two stores on the same hash) when TEST_REDIS_URL is set."""
from __future__ import annotations

import hashlib
import os
import secrets

import pytest

from server.config import Config
from server.sfu.placement import LocalPlacements, Placement, RedisPlacements, choose
from server.sfu.service import Sfu

A, B, C = "ws://10.0.0.1:8188", "ws://10.0.0.2:8188", "ws://10.0.0.3:8188"


def test_choose_takes_the_least_loaded_live_janus():
    assert choose(7, [A, B, C], {A: 3, B: 1, C: 2}) == B
    assert choose(7, [A, C], {A: 3, B: 0, C: 2}) == C  # B is not live: its load does not matter
    assert choose(7, [A], {A: 40}) == A


def test_ties_go_by_a_hash_of_janus_and_session_so_they_spread():
    def by_hash(session, urls):
        return max(urls, key=lambda u: hashlib.sha256(f"{u}|{session}".encode()).digest())
    picks = {s: choose(s, [A, B, C], {}) for s in range(1, 40)}
    assert all(picks[s] == by_hash(s, [A, B, C]) for s in picks)
    assert set(picks.values()) == {A, B, C}  # not always the first URL
    assert choose(5, [A, B, C], {A: 1, B: 1, C: 1}) == by_hash(5, [A, B, C])
    assert choose(5, [C, B, A], {}) == choose(5, [A, B, C], {})  # order of JANUS_URLS does not matter


def test_no_live_janus_means_none():
    assert choose(1, [], {A: 0}) is None


async def check_placement(store_a, store_b) -> None:
    """Two processes' Placement objects on stores that share (or are) one placement table."""
    one, two = Placement(store_a), Placement(store_b)
    assert await one.place(1, [A, B], set()) in (A, B)
    first = await one.store.get(1)
    second = B if first == A else A
    # every process finds the same Janus for the session; it does not move for load
    assert await two.place(1, [A, B], set()) == first
    # the next session goes to the other (least loaded)
    assert await two.place(2, [A, B], set()) == second
    assert await one.place(3, [A, B], set()) in (A, B)
    # its Janus down within the grace: no Janus for now, the placement is kept
    assert await one.place(1, [second], {first}) is None
    assert await one.store.get(1) == first
    # failed over: both processes move it; the first move wins and both agree
    assert await one.move(1, first, [second]) == second
    assert await two.move(1, first, [second]) == second
    assert await two.place(1, [second], set()) == second
    # the Janus comes back: the session stays where it was moved (sticky)
    assert await one.place(1, [A, B], set()) == second
    # no live Janus at all: mesh
    assert await one.place(9, [], set()) is None and await one.store.get(9) is None
    # ended: forgotten, and placed anew next time
    await two.forget(1)
    assert await one.store.get(1) is None
    assert sorted(await one.on(second)) == [2] + ([3] if await one.store.get(3) == second else [])


async def test_placement_in_memory():
    store = LocalPlacements()
    await check_placement(store, store)


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="placements span processes only with Redis")
async def test_placement_in_redis_is_the_same_in_every_process():
    import redis.asyncio as aioredis
    prefix = "podium-test-" + secrets.token_hex(4)
    r1, r2 = aioredis.from_url(os.environ["TEST_REDIS_URL"]), aioredis.from_url(os.environ["TEST_REDIS_URL"])
    try:
        await check_placement(RedisPlacements(r1, prefix), RedisPlacements(r2, prefix))
    finally:
        await r1.delete(f"{prefix}:sfu:placement")
        await r1.aclose()
        await r2.aclose()


async def test_sfu_places_on_live_nodes_and_fails_over():
    """Sfu.place over its nodes' connection state; fail_over moves a dead node's sessions and
    runs the hooks; with no live node the session has none (media_path mesh)."""
    sfu = Sfu(Config(jwt_secret="s" * 40, janus_urls=(A, B)))
    a, b = sfu.nodes
    assert await sfu.place(1) is None and sfu.node_for_session(1) is None  # nothing connected: mesh
    a.connection.connected.set()
    b.connection.connected.set()
    first = await sfu.place(1)
    assert sfu.node_for_session(1) is first
    other = b if first is a else a
    assert await sfu.place(2) is other
    seen = []

    async def hook(node, sessions):
        seen.append((node.url, sessions))
    sfu.on_failover.append(hook)
    first.connection.connected.clear()
    assert await sfu.place(1) is None  # within the grace: waits for its Janus
    first.rooms.open_rooms["1"] = object()  # type: ignore[assignment]
    sfu.failed.add(first.url)
    assert await sfu.fail_over(first) == [1]
    assert seen == [(first.url, [1])] and "1" not in first.rooms.open_rooms
    assert await sfu.place(1) is other and sfu.node_for_session(1) is other
    first.connection.connected.set()
    sfu.failed.discard(first.url)
    assert await sfu.place(1) is other  # sticky
    assert await sfu.place(3) is first  # the least loaded again
