"""RedisPresence.refresh (server/realtime/presence.py) pushes every field this process owns
``TTL_S`` ahead — each connected user's room field and user-key field — in a few commands:
a process that stops refreshing loses its users within ``TTL_S``, one that refreshes keeps
them online however long the sockets stay."""
from __future__ import annotations

import os
import time

import pytest

pytestmark = pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="presence spans processes only with Redis")


async def test_refresh_extends_every_room_and_user_field(server):
    deps = server.deps
    store, redis = deps.presence.store, deps.presence.store.redis
    teacher, ttok = await server.user("tia", "instructor")
    students = [await server.user(f"s{i}") for i in range(5)]
    rooms = [(await server.room(ttok, name=f"r{j}", members=[u["id"] for u, _ in students]))["id"] for j in range(2)]
    for _, tok in students:
        c = await server.client(tok)
        for rid in rooms:
            await c.request("room.join", room=rid)
    origin = store.origin
    # Age every field this process owns, as if the last refresh was long ago.
    old = time.time() + 1
    for rid in rooms:
        for u, _ in students:
            await redis.hset(store._key(int(rid)), f"{u['id']}:{origin}", old)
    for u, _ in students:
        await redis.hset(store._user_key(int(u["id"])), origin, old)
    before = time.time()
    await store.refresh()
    for rid in rooms:
        fields = await redis.hgetall(store._key(int(rid)))
        for u, _ in students:
            assert float(fields[f"{u['id']}:{origin}".encode()]) >= before + 25, (rid, u["id"])
        assert await redis.ttl(store._key(int(rid))) > 30
    for u, _ in students:
        key = store._user_key(int(u["id"]))
        assert float(await redis.hget(key, origin)) >= before + 25
        assert await redis.ttl(key) > 30
    # A second refresh after Redis lost its scripts still works (the script is loaded again).
    await redis.script_flush()
    await store.refresh()
    assert float(await redis.hget(store._user_key(int(students[0][0]["id"])), origin)) >= before + 25
