"""The collector's full passes skip what the server holds from its start (server/heap.py): a
full collection of ~100,000 startup objects held the event loop 40-74 ms while uploads ran."""
from __future__ import annotations

import gc

import pytest

from server.heap import GcPauses, freeze_startup_heap
from tests.procserver import procs  # noqa: F401 - fixture
from tests.server.test_event_loop import chat_round_trip
from tests.server.test_metrics import one, samples


class Thing:
    pass


def test_frozen_objects_leave_the_full_collections_walk():
    """After the freeze, generation 2 (what a full collection walks) is empty of what was alive:
    an object made before is no longer in it; one made after is, once it survives."""
    before = Thing()  # an object the collector tracks
    gc.collect()
    assert any(o is before for o in gc.get_objects(generation=2))
    try:
        frozen = freeze_startup_heap()
        assert frozen > 1_000
        gen2 = gc.get_objects(generation=2)
        assert not any(o is before for o in gen2) and len(gen2) < frozen // 100
        after = Thing()
        gc.collect()
        assert any(o is after for o in gc.get_objects(generation=2))
    finally:
        gc.unfreeze()


def test_gc_pauses_counts_full_collections_and_keeps_the_slowest():
    pauses = GcPauses()
    pauses.install()
    try:
        gc.collect(0)
        assert pauses.full == 0
        gc.collect()
        gc.collect()
        assert pauses.full == 2 and pauses.slowest_s > 0
    finally:
        pauses.remove()
    gc.collect()
    assert pauses.full == 2


@pytest.mark.slow
async def test_the_served_process_freezes_its_startup_heap(procs):  # noqa: F811
    """``python -m server serve`` freezes what it holds once started, says how much, and
    /metrics reports it; chat works as before."""
    srv = procs.new()
    await chat_round_trip(srv)
    assert " objects alive at start are out of full garbage collections" in srv.log
    status, body = await srv.http("GET", "/metrics")
    assert status == 200
    m = samples(body)
    assert one(m, "podium_gc_frozen_objects") > 20_000
    assert "podium_gc_full_collections_total" in m
