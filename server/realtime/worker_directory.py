"""Media workers across web processes (docs/SCALING.md), in Redis.

A media worker keeps one socket to one web process; with ``REDIS_URL`` every process lists
its workers in one hash, ``<prefix>:workers``, field ``worker_id`` → ``{"o": process,
"capacity", "jobs"}``, so a recording asked for through any process goes to the worker with
the most free capacity wherever it is connected. Claiming a job is still one conditional
UPDATE in SQL (first claim wins); the job and later ``recording.stop``/``recording.mark``
frames reach the worker through the bus (kind ``w``) and the process that holds its socket.
Entries of a process that is not alive (``CallDirectory.alive``) are ignored and removed.
"""
from __future__ import annotations

import json
from typing import Any


class WorkerDirectory:
    def __init__(self, redis: Any, prefix: str, origin: str, calls_directory):
        self.redis, self.origin, self.calls_directory = redis, origin, calls_directory
        self.key = f"{prefix}:workers"

    async def put(self, worker_id: str, capacity: int, jobs: int) -> None:
        await self.redis.hset(self.key, worker_id, json.dumps({"o": self.origin, "capacity": capacity,
                                                               "jobs": jobs}))

    async def remove(self, worker_id: str) -> None:
        """Forget a worker this process held — unless it has re-registered through another."""
        raw = await self.redis.hget(self.key, worker_id)
        if raw is not None and json.loads(raw)["o"] == self.origin:
            await self.redis.hdel(self.key, worker_id)

    async def entries(self) -> dict[str, dict]:
        """worker_id → ``{"o", "capacity", "jobs"}`` for workers of live processes."""
        items = {k.decode(): json.loads(v) for k, v in (await self.redis.hgetall(self.key)).items()}
        alive = await self.calls_directory.alive(e["o"] for e in items.values())
        dead = [w for w, e in items.items() if not alive.get(e["o"])]
        if dead:
            await self.redis.hdel(self.key, *dead)
        return {w: e for w, e in items.items() if alive.get(e["o"])}
