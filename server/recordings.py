"""Recordings (PROTOCOL §2.2–§2.3, docs/RECORDING.md): state, media-worker jobs, marks.

The web process never touches media: it keeps each recording's state in SQL, hands jobs to
registered media workers over ``/ws``, relays their progress to the room, and stores the
assets they upload. A recording moves ``pending`` (asked for) → ``recording`` (a worker joined
the call) → ``processing`` (stopped; the worker builds the assets) → ``ready``, or ``failed``
with a reason the instructor sees:

- no worker joins within ``RECORDING_START_TIMEOUT_S``;
- the worker holding it disconnects and does not re-register within
  ``RECORDING_WORKER_GRACE_S`` (a worker that reconnects — after a web-server restart, say —
  lists the recordings it still holds and keeps them);
- the worker reports a failure.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from server.kernel.clock import iso, utcnow
from server.calls import session_wire
from server.kernel.actor import Actor
from server.chat import Chat
from server.config import Config
from server.db import recordings as rq
from server.db.engine import Database
from server.db.models import Recording
from server.kernel.errors import BadRequest, Conflict, Forbidden, NotFound
from server.kernel.frames import event_frame
from server.realtime.notices import SessionFrame, WorkerNotice
from server.realtime.registry import Registry

log = logging.getLogger("podium.recordings")

MAX_LABEL_CHARS = 200
MAX_CAPACITY = 64
STUDENT_ASSET_KINDS = ("composite", "chat", "thumbnail")


def recording_wire(row: Recording, assets: list[dict] | None = None, progress: int | None = None) -> dict:
    return {"id": str(row.id), "session": str(row.session_id), "room": str(row.room_id), "status": row.status,
            "requested_at": iso(row.requested_at), "started_at": iso(row.started_at),
            "stopped_at": iso(row.stopped_at), "duration_s": row.duration_s,
            "assets": assets or [], "reason": row.reason, "progress": progress}


@dataclass
class Worker:
    conn: object  # the worker's ChatSocket
    worker_id: str
    capacity: int
    jobs: set[int] = field(default_factory=set)  # recordings held (recording or processing)

    @property
    def free(self) -> int:
        return self.capacity - len(self.jobs)


class Recordings:
    def __init__(self, db: Database, registry: Registry, chat: Chat, calls, config: Config):
        self.db, self.registry, self.chat, self.calls, self.config = db, registry, chat, calls, config
        self.workers: dict[str, Worker] = {}
        self.progress: dict[int, int] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}  # start timeout / worker grace
        self.directory = None  # with REDIS_URL: server.realtime.worker_directory.WorkerDirectory
        self._worker_origin: dict[str, str] = {}  # worker_id → process, as last read from the directory
        self._missing_since: dict[int, float] = {}  # sweep: recording → when its worker was first missed
        self._sweeper: asyncio.Task | None = None
        calls.recordings = self

    # -- helpers ---------------------------------------------------------------------------
    async def _get(self, recording_id: int) -> Recording:
        async with self.db.read() as s:
            row = await rq.get(s, recording_id)
        if row is None:
            raise NotFound("no such recording")
        return row

    def _announce(self, row: Recording, event: dict) -> None:
        """To the room's open sockets and the call's participants (each once), in every process."""
        frame = event_frame(event)
        self.registry.broadcast_frame(row.room_id, frame)  # the room, in every process
        live = self.calls.live.get(row.session_id)
        if live is not None:
            live.recording = recording_wire(row) if row.status in rq.ACTIVE else None
            self.calls.send_outside_room(live, frame)
        if self.registry.bus is not None:  # participants of other processes not in the room
            self.registry.bus.publish(SessionFrame(row.session_id, outside_room=True), frame)

    def _timer(self, recording_id: int, delay: float, why: str, check: str) -> None:
        """Fail the recording after ``delay`` unless, then, ``check`` says it is fine:
        ``start`` — a worker has joined the call (it is no longer pending); ``grace`` — the
        worker it was given to is registered (through any process)."""
        self._cancel_timer(recording_id)

        def fire() -> None:
            self._timers.pop(recording_id, None)
            self.calls.spawn(self.fail(recording_id, why, check=check))

        self._timers[recording_id] = asyncio.get_running_loop().call_later(delay, fire)

    def _cancel_timer(self, recording_id: int) -> None:
        t = self._timers.pop(recording_id, None)
        if t is not None:
            t.cancel()

    def _to_worker(self, worker_id: str | None, event: dict | None, add: int | None = None,
                   drop: int | None = None) -> None:
        """Send ``event`` to a worker and/or give it (``add``) or release (``drop``) a job, in
        whichever process holds its socket."""
        if worker_id is None:
            return
        worker = self.workers.get(worker_id)
        frame = event_frame(event) if event is not None else b""
        if worker is not None:
            self._worker_jobs(worker, add, drop)
            if frame:
                worker.conn.send_frame(frame)
        elif self.registry.bus is not None:
            # ``target``: the process that listed the worker
            self.registry.bus.publish(WorkerNotice(worker_id, self._worker_origin.get(worker_id), add, drop), frame)

    def _worker_jobs(self, worker: Worker, add: int | None, drop: int | None) -> None:
        if add is not None:
            worker.jobs.add(add)
        if drop is not None and drop in worker.jobs:
            worker.jobs.discard(drop)
            self.calls.spawn(self._dispatch_waiting())  # its capacity is free again
        if add is not None or drop is not None:
            self._list_worker(worker)

    def _list_worker(self, worker: Worker) -> None:
        if self.directory is not None:
            self.calls.spawn(self._directory_call(self.directory.put(worker.worker_id, worker.capacity,
                                                                     len(worker.jobs))))

    @staticmethod
    async def _directory_call(coro) -> None:
        try:
            await coro
        except Exception as e:  # Redis down: the other processes see a stale load for a while
            log.warning("updating the worker directory in Redis failed: %s", e)

    def on_worker_notice(self, n: WorkerNotice, frame: bytes) -> None:
        """From another process: a frame and/or a job change for one of our workers."""
        worker = self.workers.get(n.worker)
        if worker is None:
            if n.add is not None and n.target == self.registry.bus.origin:
                # It was listed here but left meanwhile: offer the job again.
                self.calls.spawn(self._unclaim(n.add, n.worker))
            return
        self._worker_jobs(worker, n.add, n.drop)
        if frame:
            worker.conn.send_frame(frame)

    async def _unclaim(self, recording_id: int, worker_id: str | None) -> None:
        async with self.db.write() as s:
            row = await rq.transition(s, recording_id, ("pending",), claimed_by=worker_id, worker_id=None)
        if row is not None:
            await self._dispatch_waiting()

    async def current(self, session_id: int) -> dict | None:
        """The session's recording being asked for or made (pending, recording), from SQL."""
        async with self.db.read() as s:
            row = await rq.active_for_session(s, session_id)
        return recording_wire(row) if row is not None else None

    # -- instructor controls -----------------------------------------------------------------
    async def start(self, actor: Actor, session_id: int) -> dict:
        live = await self.calls._load(session_id)
        await self.calls._require_instructor(actor, live.room_id)
        try:
            async with self.db.write() as s:
                existing = await rq.active_for_session(s, session_id)
                if existing is not None:
                    return {"recording": recording_wire(existing)}
                row = await rq.create(s, session_id, live.room_id, actor.id, utcnow())
        except IntegrityError:  # another instructor pressed Record at the same moment
            async with self.db.read() as s:
                existing = await rq.active_for_session(s, session_id)
            if existing is None:
                raise
            return {"recording": recording_wire(existing)}
        live.recording = recording_wire(row)
        log.info("recording %s of session %s requested by user %s", row.id, session_id, actor.id)
        self._timer(row.id, self.config.recording_start_timeout_s, self._no_worker_joined(), "start")
        await self._dispatch(row)
        return {"recording": recording_wire(row)}

    async def stop(self, actor: Actor, session_id: int, reason: str = "stop") -> dict:
        live = await self.calls._load(session_id)
        await self.calls._require_instructor(actor, live.room_id)
        async with self.db.read() as s:
            row = await rq.active_for_session(s, session_id)
        if row is None:
            raise NotFound("nothing is being recorded in this call")
        return {"recording": await self._stop(row, reason)}

    async def _stop(self, row: Recording, reason: str) -> dict:
        if row.status == "pending":
            failed = await self._fail(row.id, "stopped before recording began", ("pending",))
            return recording_wire(failed or row)
        now = utcnow()
        duration = max(0.0, (now - row.started_at).total_seconds()) if row.started_at else None
        async with self.db.write() as s:
            stopped = await rq.transition(s, row.id, ("recording",), status="processing", stopped_at=now,
                                          duration_s=duration)
        if stopped is None:
            return recording_wire(await self._get(row.id))
        self._to_worker(stopped.worker_id, {"type": "recording.stop", "recording": str(row.id), "reason": reason})
        wire = recording_wire(stopped)
        self._announce(stopped, {"type": "recording.stopped", "recording": wire})
        log.info("recording %s stopped (%s) after %.1f s", row.id, reason, duration or 0)
        return wire

    async def call_ended(self, session_id: int) -> None:
        """A call that ends stops its recording (the worker hears ``call.ended`` too)."""
        async with self.db.read() as s:
            row = await rq.active_for_session(s, session_id)
        if row is not None:
            await self._stop(row, "call_ended")

    async def mark(self, actor: Actor, session_id: int, label) -> dict:
        live = await self.calls._load(session_id)
        await self.calls._require_instructor(actor, live.room_id)
        if not isinstance(label, str) or not label.strip() or len(label) > MAX_LABEL_CHARS:
            raise BadRequest(f"label must be 1–{MAX_LABEL_CHARS} characters")
        async with self.db.write() as s:
            row = await rq.active_for_session(s, session_id)
            if row is None or row.status != "recording":
                raise Conflict("marks can be set only while recording")
            mark = await rq.add_mark(s, row.id, utcnow(), label.strip(), actor.id)
        wire = {"label": mark.label, "at": iso(mark.at), "offset_s": _offset(row, mark.at),
                "by": {"id": str(actor.id), "display_name": actor.display_name}}
        self._announce(row, {"type": "recording.marked", "recording": str(row.id), "mark": wire})
        self._to_worker(row.worker_id, {"type": "recording.mark", "recording": str(row.id), "mark": wire})
        return {"mark": wire}

    # -- workers ---------------------------------------------------------------------------
    async def register(self, conn, actor: Actor, msg: dict) -> dict:
        """``worker.register {capacity, worker_id, recordings?}``: a worker (re)joins the pool;
        ``recordings`` lists the jobs it still holds after a reconnect."""
        if actor.role != "recorder":
            raise Forbidden("only media workers (recorder tokens) register")
        capacity, worker_id, held = msg.get("capacity"), msg.get("worker_id"), msg.get("recordings", [])
        if isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= MAX_CAPACITY:
            raise BadRequest(f"capacity must be an integer from 1 to {MAX_CAPACITY}")
        if not isinstance(worker_id, str) or not 1 <= len(worker_id) <= 64:
            raise BadRequest("worker_id must be a string of 1–64 characters")
        if not isinstance(held, list) or len(held) > MAX_CAPACITY:
            raise BadRequest("recordings must be a list of recording ids")
        old = self.workers.get(worker_id)
        if old is not None and old.conn is not conn:
            old.conn.worker = None  # its old socket is dead or replaced; its jobs move over
        worker = Worker(conn, worker_id, capacity)
        conn.worker = worker
        self.workers[worker_id] = worker
        if self.directory is not None:
            await self._directory_call(self.directory.put(worker_id, capacity, 0))
        kept = []
        for rid in held:
            try:
                rid = int(rid)
            except (TypeError, ValueError):
                continue
            async with self.db.read() as s:
                row = await rq.get(s, rid)
            if row is not None and row.status in rq.UNFINISHED and row.worker_id in (None, worker_id):
                worker.jobs.add(rid)
                if row.status != "pending":
                    self._cancel_timer(rid)
                kept.append(str(rid))
        if kept:
            self._list_worker(worker)
        log.info("worker %s registered (capacity %d, holding %s)", worker_id, capacity, kept or "nothing")
        self.calls.spawn(self._dispatch_waiting())
        return {"worker_id": worker_id, "recordings": kept}

    async def worker_gone(self, conn) -> None:
        """A worker's socket closed: its jobs wait ``RECORDING_WORKER_GRACE_S`` for it to come back."""
        worker = getattr(conn, "worker", None)
        if worker is None or self.workers.get(worker.worker_id) is not worker:
            return
        del self.workers[worker.worker_id]
        if self.directory is not None:
            await self._directory_call(self.directory.remove(worker.worker_id))
        grace = self.config.recording_worker_grace_s
        for rid in worker.jobs:
            self._timer(rid, grace, self._worker_left(), "grace")
        if worker.jobs:
            log.warning("worker %s disconnected holding recordings %s", worker.worker_id, sorted(worker.jobs))

    def _no_worker_joined(self) -> str:
        return f"no recording worker joined the call within {self.config.recording_start_timeout_s:g} s"

    def _worker_left(self) -> str:
        return (f"the recording worker disconnected and did not come back within "
                f"{self.config.recording_worker_grace_s:g} s")

    async def _directory_entries(self) -> dict[str, dict] | None:
        """Every live process's workers (``{}`` without REDIS_URL); None when Redis cannot be read."""
        if self.directory is None:
            return {}
        try:
            entries = await self.directory.entries()
        except Exception as e:
            log.warning("reading the worker directory from Redis failed: %s", e)
            return None
        self._worker_origin = {w: e["o"] for w, e in entries.items()}
        return entries

    async def _registered_workers(self) -> set[str] | None:
        """Workers connected to this process or (with REDIS_URL) another; None when unknown."""
        entries = await self._directory_entries()
        return None if entries is None else set(entries) | set(self.workers)

    async def _free_workers(self) -> dict[str, tuple[int, int]]:
        """worker_id → (free, capacity) of this process's workers and (with REDIS_URL) the
        others', most free first. Free counts are as last published: the claim checks in SQL."""
        entries = await self._directory_entries() or {}
        pool = {w: (e["capacity"] - e["jobs"], e["capacity"]) for w, e in entries.items()}
        pool.update({w.worker_id: (w.free, w.capacity) for w in self.workers.values()})  # ours: exact
        order = sorted(pool, key=lambda w: (pool[w][0], w in self.workers), reverse=True)
        return {w: pool[w] for w in order if pool[w][0] > 0}

    async def _dispatch(self, row: Recording) -> bool:
        """Offer a pending recording to the worker with the most free capacity (any process).
        The claim is one transaction that counts the worker's recordings in SQL, so two
        processes dispatching at once neither both take the recording nor overfill a worker."""
        for worker_id, (_, capacity) in (await self._free_workers()).items():
            async with self.db.write() as s:
                taken = await rq.claim(s, row.id, worker_id, capacity)
                current = taken or await rq.get(s, row.id)
            if taken is not None:
                break
            if current is None or current.status != "pending" or current.worker_id is not None:
                return False  # claimed through another process meanwhile, or no longer pending
        else:
            log.info("recording %s waits for a worker with free capacity", row.id)
            return False
        live = self.calls.live.get(row.session_id)
        session = session_wire(live.row) if live else None
        self._to_worker(worker_id, {"type": "recording.job", "recording": recording_wire(taken), "session": session},
                        add=row.id)
        log.info("recording %s offered to worker %s", row.id, worker_id)
        return True

    async def _dispatch_waiting(self) -> None:
        async with self.db.read() as s:
            rows = [r for r in await rq.unfinished(s) if r.status == "pending" and r.worker_id is None]
        for row in rows:
            if not await self._dispatch(row):
                break

    async def recorder_joined(self, conn, session_id: int) -> None:
        """The worker holding this session's pending recording joined the call: it records."""
        worker = getattr(conn, "worker", None)
        if worker is None:
            return
        async with self.db.write() as s:
            row = await rq.active_for_session(s, session_id)
            if row is None or row.id not in worker.jobs or row.status != "pending":
                return
            row = await rq.transition(s, row.id, ("pending",), status="recording", started_at=utcnow())
        if row is None:
            return
        self._cancel_timer(row.id)
        self._announce(row, {"type": "recording.started", "recording": recording_wire(row)})
        log.info("recording %s started by worker %s", row.id, worker.worker_id)

    async def status(self, conn, msg: dict) -> dict:
        """``worker.status {recording, state, percent?, detail?}`` from the worker holding it:
        ``processing`` with a percent → ``recording.progress``; ``stopped`` (the worker
        stopped by itself, e.g. on SIGTERM) → processing; ``failed`` → failed with ``detail``."""
        worker = getattr(conn, "worker", None)
        try:
            rid = int(msg.get("recording"))
        except (TypeError, ValueError):
            raise BadRequest("recording must be a recording id") from None
        if worker is None or rid not in worker.jobs:
            raise Forbidden("this worker does not hold that recording")
        state = msg.get("state")
        row = await self._get(rid)
        if state == "processing":
            percent = msg.get("percent")
            if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 <= percent <= 100:
                raise BadRequest("percent must be a number from 0 to 100")
            self.progress[rid] = int(percent)
            self._announce(row, {"type": "recording.progress", "recording": recording_wire(row, progress=int(percent)),
                                 "percent": int(percent)})
        elif state == "stopped":
            if row.status == "recording":
                await self._stop(row, str(msg.get("detail") or "worker_shutdown")[:100])
        elif state == "failed":
            detail = msg.get("detail")
            await self.fail(rid, f"recording failed: {str(detail)[:400] if detail else 'unknown reason'}")
        elif state != "recording":
            raise BadRequest("state must be recording, stopped, processing or failed")
        return {}

    # -- endings ---------------------------------------------------------------------------
    async def _fail(self, recording_id: int, reason: str, from_=rq.UNFINISHED) -> Recording | None:
        async with self.db.write() as s:
            row = await rq.transition(s, recording_id, from_, status="failed", reason=reason[:500])
        if row is None:
            return None
        self._cancel_timer(recording_id)
        self.progress.pop(recording_id, None)
        self._to_worker(row.worker_id, {"type": "recording.stop", "recording": str(recording_id), "reason": "failed"},
                        drop=recording_id)
        self._announce(row, {"type": "recording.failed", "recording": recording_wire(row), "reason": reason})
        log.warning("recording %s failed: %s", recording_id, reason)
        return row

    async def fail(self, recording_id: int, reason: str, check: str | None = None) -> None:
        """Fail a recording; with ``check`` (see ``_timer``) only if that check still fails."""
        if check == "start":
            await self._fail(recording_id, reason, ("pending",))
            return
        if check == "grace":
            async with self.db.read() as s:
                row = await rq.get(s, recording_id)
            if row is None or row.status not in rq.UNFINISHED:
                return
            if row.worker_id is not None and row.status != "pending" and await self._registered(row.worker_id):
                return
        await self._fail(recording_id, reason)

    async def _registered(self, worker_id: str) -> bool:
        """Whether the worker is connected to this process or (with REDIS_URL) another one.
        When Redis cannot be read: yes (do not fail a recording we cannot see the worker of)."""
        if worker_id in self.workers:
            return True
        registered = await self._registered_workers()
        return registered is None or worker_id in registered

    async def completed(self, recording_id: int, row: Recording) -> None:
        """The worker finished: release the job and announce ``recording.ready``."""
        self.progress.pop(recording_id, None)
        self._to_worker(row.worker_id, None, drop=recording_id)
        self._announce(row, {"type": "recording.ready", "recording": recording_wire(row)})

    async def recover(self) -> None:
        """After a restart: unfinished recordings wait for their worker to re-register."""
        async with self.db.read() as s:
            rows = await rq.unfinished(s)
        grace = self.config.recording_worker_grace_s
        for row in rows:
            self._timer(row.id, grace, f"no recording worker came back for it within {grace:g} s of a restart",
                        "grace")
        if rows:
            log.info("waiting for workers to reclaim recordings %s", [r.id for r in rows])

    def start_sweeping(self) -> None:
        """With several processes: the timers above live in the process that set them, and die
        with it. Every process also sweeps the unfinished recordings now and then, so one whose
        worker is gone for longer than the grace, or that no worker took within the start
        timeout, fails even if the process that was watching it was killed."""
        if self._sweeper is None:
            self._sweeper = asyncio.ensure_future(self._sweep_loop())

    async def _sweep_loop(self) -> None:
        every = max(1.0, min(self.config.recording_worker_grace_s, self.config.recording_start_timeout_s) / 2)
        while True:
            await asyncio.sleep(every)
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sweeping unfinished recordings failed")

    async def sweep(self) -> None:
        async with self.db.read() as s:
            rows = await rq.unfinished(s)
        now, wall = asyncio.get_running_loop().time(), utcnow()
        registered = await self._registered_workers()
        if registered is None:
            return  # Redis cannot be read: fail nothing we cannot see
        start_timeout, grace = self.config.recording_start_timeout_s, self.config.recording_worker_grace_s
        seen = set()
        for row in rows:
            if row.status == "pending":
                if (wall - row.requested_at).total_seconds() > start_timeout + grace:
                    await self._fail(row.id, self._no_worker_joined(), ("pending",))
                continue
            if row.worker_id in registered:
                continue
            seen.add(row.id)
            first = self._missing_since.setdefault(row.id, now)
            if now - first > grace:
                await self.fail(row.id, self._worker_left(), check="grace")
        self._missing_since = {rid: t for rid, t in self._missing_since.items() if rid in seen}

    def close(self) -> None:
        for t in self._timers.values():
            t.cancel()
        self._timers.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()


def _offset(row: Recording, at: datetime) -> float:
    """Seconds from the start of the recording (the server's clock on both sides)."""
    return round(max(0.0, (at - row.started_at).total_seconds()), 3) if row.started_at else 0.0
