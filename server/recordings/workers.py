"""The media-worker pool (docs/RECORDING.md "Running workers"): registered workers and the
jobs they hold, in this process and (with REDIS_URL) every other, through the worker
directory; claiming a pending recording for the worker with the most free capacity; and
delivering frames and job changes to a worker wherever its socket is.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from server.db import recordings as rq
from server.db.engine import Database
from server.db.models import Recording
from server.kernel.frames import event_frame
from server.realtime.notices import NoticeRouter, WorkerNotice
from server.realtime.registry import Registry
from server.realtime.worker_directory import WorkerDirectory

log = logging.getLogger("podium.recordings")


@dataclass
class Worker:
    conn: object  # the worker's connection
    worker_id: str
    capacity: int
    jobs: set[int] = field(default_factory=set)  # recordings held (recording or processing)

    @property
    def free(self) -> int:
        return self.capacity - len(self.jobs)


class WorkerPool:
    def __init__(self, db: Database, registry: Registry, directory: WorkerDirectory | None, spawn: Callable):
        self.db, self.registry, self.directory, self.spawn = db, registry, directory, spawn
        self.workers: dict[str, Worker] = {}
        self._by_conn: dict[str, Worker] = {}
        self._origin: dict[str, str] = {}  # worker_id → process, as last read from the directory
        self._capacity_freed: Callable[[], Awaitable[None]] | None = None

    def on_capacity_freed(self, hook: Callable[[], Awaitable[None]]) -> None:
        """``await hook()`` when a worker may take another job (waiting recordings go out)."""
        self._capacity_freed = hook

    def _freed(self) -> None:
        if self._capacity_freed is not None:
            self.spawn(self._capacity_freed())

    def of(self, conn) -> Worker | None:
        """The worker registered through this connection, if any."""
        return self._by_conn.get(conn.connection_id)

    # -- membership --------------------------------------------------------------------------
    async def add(self, conn, worker_id: str, capacity: int) -> Worker:
        """Register (or re-register) a worker; a worker id registered through another socket
        of this process moves over, with no jobs until the caller restores the ones it holds."""
        old = self.workers.get(worker_id)
        if old is not None and old.conn is not conn:
            self._by_conn.pop(old.conn.connection_id, None)  # its old socket is dead or replaced
        worker = Worker(conn, worker_id, capacity)
        self._by_conn[conn.connection_id] = worker
        self.workers[worker_id] = worker
        if self.directory is not None:
            await self._directory_call(self.directory.put(worker_id, capacity, 0))
        return worker

    async def remove(self, conn) -> Worker | None:
        """The worker of a closed connection leaves the pool; returns it (None when the
        connection held no current worker)."""
        worker = self._by_conn.pop(conn.connection_id, None)
        if worker is None or self.workers.get(worker.worker_id) is not worker:
            return None
        del self.workers[worker.worker_id]
        if self.directory is not None:
            await self._directory_call(self.directory.remove(worker.worker_id))
        return worker

    def list(self, worker: Worker) -> None:
        """Publish the worker's load to the directory (with REDIS_URL)."""
        if self.directory is not None:
            self.spawn(self._directory_call(self.directory.put(worker.worker_id, worker.capacity,
                                                               len(worker.jobs))))

    @staticmethod
    async def _directory_call(coro) -> None:
        try:
            await coro
        except Exception as e:  # Redis down: the other processes see a stale load for a while
            log.warning("updating the worker directory in Redis failed: %s", e)

    # -- sending -----------------------------------------------------------------------------
    def send(self, worker_id: str | None, event: dict | None, add: int | None = None,
             drop: int | None = None) -> None:
        """Send ``event`` to a worker and/or give it (``add``) or release (``drop``) a job, in
        whichever process holds its socket."""
        if worker_id is None:
            return
        worker = self.workers.get(worker_id)
        frame = event_frame(event) if event is not None else b""
        if worker is not None:
            self._jobs(worker, add, drop)
            if frame:
                worker.conn.send_frame(frame)
        elif self.registry.bus is not None:
            # ``target``: the process that listed the worker
            self.registry.bus.publish(WorkerNotice(worker_id, self._origin.get(worker_id), add, drop), frame)

    def _jobs(self, worker: Worker, add: int | None, drop: int | None) -> None:
        if add is not None:
            worker.jobs.add(add)
        if drop is not None and drop in worker.jobs:
            worker.jobs.discard(drop)
            self._freed()  # its capacity is free again
        if add is not None or drop is not None:
            self.list(worker)

    def register_notices(self, router: NoticeRouter) -> None:
        router.on(WorkerNotice, self._on_notice)

    def _on_notice(self, n: WorkerNotice, frame: bytes) -> None:
        """From another process: a frame and/or a job change for one of our workers."""
        worker = self.workers.get(n.worker)
        if worker is None:
            if n.add is not None and n.target == self.registry.bus.origin:
                # It was listed here but left meanwhile: offer the job again.
                self.spawn(self._unclaim(n.add, n.worker))
            return
        self._jobs(worker, n.add, n.drop)
        if frame:
            worker.conn.send_frame(frame)

    async def _unclaim(self, recording_id: int, worker_id: str | None) -> None:
        async with self.db.write() as s:
            row = await rq.transition(s, recording_id, ("pending",), claimed_by=worker_id, worker_id=None)
        if row is not None:
            self._freed()

    # -- who is there ------------------------------------------------------------------------
    async def _directory_entries(self) -> dict[str, dict] | None:
        """Every live process's workers (``{}`` without REDIS_URL); None when Redis cannot be read."""
        if self.directory is None:
            return {}
        try:
            entries = await self.directory.entries()
        except Exception as e:
            log.warning("reading the worker directory from Redis failed: %s", e)
            return None
        self._origin = {w: e["o"] for w, e in entries.items()}
        return entries

    async def registered_workers(self) -> set[str] | None:
        """Workers connected to this process or (with REDIS_URL) another; None when unknown."""
        entries = await self._directory_entries()
        return None if entries is None else set(entries) | set(self.workers)

    async def registered(self, worker_id: str) -> bool:
        """Whether the worker is connected to this process or (with REDIS_URL) another one.
        When Redis cannot be read: yes (do not fail a recording we cannot see the worker of)."""
        if worker_id in self.workers:
            return True
        registered = await self.registered_workers()
        return registered is None or worker_id in registered

    async def _free_workers(self) -> dict[str, tuple[int, int]]:
        """worker_id → (free, capacity) of this process's workers and (with REDIS_URL) the
        others', most free first. Free counts are as last published: the claim checks in SQL."""
        entries = await self._directory_entries() or {}
        pool = {w: (e["capacity"] - e["jobs"], e["capacity"]) for w, e in entries.items()}
        pool.update({w.worker_id: (w.free, w.capacity) for w in self.workers.values()})  # ours: exact
        order = sorted(pool, key=lambda w: (pool[w][0], w in self.workers), reverse=True)
        return {w: pool[w] for w in order if pool[w][0] > 0}

    async def claim(self, row: Recording) -> Recording | None:
        """Claim a pending recording for the worker with the most free capacity (any process):
        the claimed row, or None when it waits (no free worker) or was claimed elsewhere. The
        claim is one transaction that counts the worker's recordings in SQL, so two processes
        dispatching at once neither both take the recording nor overfill a worker."""
        for worker_id, (_, capacity) in (await self._free_workers()).items():
            async with self.db.write() as s:
                taken = await rq.claim(s, row.id, worker_id, capacity)
                current = taken or await rq.get(s, row.id)
            if taken is not None:
                return taken
            if current is None or current.status != "pending" or current.worker_id is not None:
                return None  # claimed through another process meanwhile, or no longer pending
        log.info("recording %s waits for a worker with free capacity", row.id)
        return None
