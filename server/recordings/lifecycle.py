"""The recording lifecycle (PROTOCOL §2.2–§2.3, docs/RECORDING.md): every state transition.

The web process never touches media: it keeps each recording's state in SQL, hands jobs to
registered media workers over ``/ws`` (recordings.workers), relays their progress to the
room, and stores the assets they upload (recordings.assets). A recording moves ``pending``
(asked for) → ``recording`` (a worker joined the call) → ``processing`` (stopped; the worker
builds the assets) → ``ready`` (the worker completed it), or ``failed`` with a reason the
instructor sees:

- no worker joins within ``RECORDING_START_TIMEOUT_S``;
- the worker holding it disconnects and does not re-register within
  ``RECORDING_WORKER_GRACE_S`` (a worker that reconnects — after a web-server restart, say —
  lists the recordings it still holds and keeps them);
- the worker reports a failure.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from server.calls.sessions import Calls
from server.calls.wire import session_wire
from server.config import Config
from server.db import recordings as rq
from server.db.engine import Database
from server.db.models import Recording
from server.kernel.actor import Actor
from server.kernel.clock import iso, utcnow
from server.kernel.errors import BadRequest, Conflict, Forbidden, NotFound
from server.kernel.frames import event_frame
from server.realtime.notices import SessionFrame
from server.realtime.registry import Registry
from server.realtime.worker_directory import WorkerDirectory
from server.recordings.manage import name_files_in
from server.recordings.playback import watch_path
from server.rooms.membership import system_message
from server.recordings.wire import (parse_completion, parse_label, parse_recording_id, parse_registration,
                                    parse_worker_status, recording_wire)
from server.recordings.workers import Worker, WorkerPool

log = logging.getLogger("podium.recordings")


class Recordings:
    def __init__(self, db: Database, registry: Registry, calls: Calls, config: Config,
                 directory: WorkerDirectory | None = None):
        self.db, self.registry, self.calls, self.config = db, registry, calls, config
        self.pool = WorkerPool(db, registry, directory, calls.spawn)
        self.pool.on_capacity_freed(self._dispatch_waiting)
        self.progress: dict[int, int] = {}
        self.processing: dict[int, dict] = {}  # the worker's latest {eta_s, fallback} (issue 15.4)
        self._timers: dict[int, asyncio.TimerHandle] = {}  # start timeout / worker grace
        self._missing_since: dict[int, float] = {}  # sweep: recording → when its worker was first missed
        self._sweeper: asyncio.Task | None = None

    @property
    def workers(self) -> dict[str, Worker]:
        """The workers registered through this process."""
        return self.pool.workers

    def hook_into(self, calls: Calls) -> None:
        """What recordings need to hear from calls (registered when ``deps`` builds the app)."""
        calls.on_recorder_joined(self.recorder_joined)
        calls.on_ended(self.call_ended)
        calls.recording_from(self.current)

    # -- helpers ---------------------------------------------------------------------------
    async def get(self, recording_id: int) -> Recording:
        """The recording's row; NotFound."""
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

    async def _tell_room(self, row: Recording, text: str) -> None:
        """A system message in the call's room (everyone, in the call or not, sees it)."""
        try:
            async with self.db.write() as s:
                note = await system_message(s, row.room_id, text)
            self.registry.broadcast(row.room_id, {"type": "message.new", "message": note})
        except Exception:  # the recording goes on; the room just misses the note
            log.exception("recording %s: telling the room failed", row.id)

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

    async def current(self, session_id: int) -> dict | None:
        """The session's recording being asked for or made (pending, recording), from SQL."""
        async with self.db.read() as s:
            row = await rq.active_for_session(s, session_id)
        return recording_wire(row) if row is not None else None

    # -- instructor controls -----------------------------------------------------------------
    async def start(self, actor: Actor, session_id: int) -> dict:
        live = await self.calls.load(session_id)
        await self.calls.require_instructor(actor, live.room_id)
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
        live = await self.calls.load(session_id)
        await self.calls.require_instructor(actor, live.room_id)
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
            return recording_wire(await self.get(row.id))
        self.pool.send(stopped.worker_id, {"type": "recording.stop", "recording": str(row.id), "reason": reason})
        wire = recording_wire(stopped)
        self._announce(stopped, {"type": "recording.stopped", "recording": wire})
        await self._tell_room(stopped, "Recording stopped")
        log.info("recording %s stopped (%s) after %.1f s", row.id, reason, duration or 0)
        return wire

    async def call_ended(self, session_id: int) -> None:
        """A call that ends stops its recording (the worker hears ``call.ended`` too)."""
        async with self.db.read() as s:
            row = await rq.active_for_session(s, session_id)
        if row is not None:
            await self._stop(row, "call_ended")

    async def mark(self, actor: Actor, session_id: int, label) -> dict:
        live = await self.calls.load(session_id)
        await self.calls.require_instructor(actor, live.room_id)
        label = parse_label(label)
        async with self.db.write() as s:
            row = await rq.active_for_session(s, session_id)
            if row is None or row.status != "recording":
                raise Conflict("marks can be set only while recording")
            mark = await rq.add_mark(s, row.id, utcnow(), label, actor.id)
        wire = {"label": mark.label, "at": iso(mark.at), "offset_s": _offset(row, mark.at),
                "by": {"id": str(actor.id), "display_name": actor.display_name}}
        # The worker reads marks from the timeline when it stops (one path: SQL is the record).
        self._announce(row, {"type": "recording.marked", "recording": str(row.id), "mark": wire})
        return {"mark": wire}

    # -- workers ---------------------------------------------------------------------------
    async def register(self, conn, actor: Actor, msg: dict) -> dict:
        """``worker.register {capacity, worker_id, recordings?}``: a worker (re)joins the pool;
        ``recordings`` lists the jobs it still holds after a reconnect."""
        if actor.role != "recorder":
            raise Forbidden("only media workers (recorder tokens) register")
        reg = parse_registration(msg)
        worker = await self.pool.add(conn, reg.worker_id, reg.capacity)
        kept = []
        for rid in reg.held:
            async with self.db.read() as s:
                row = await rq.get(s, rid)
            if row is not None and row.status in rq.UNFINISHED and row.worker_id in (None, reg.worker_id):
                worker.jobs.add(rid)
                if row.status != "pending":
                    self._cancel_timer(rid)
                kept.append(str(rid))
        if kept:
            self.pool.list(worker)
        log.info("worker %s registered (capacity %d, holding %s)", reg.worker_id, reg.capacity, kept or "nothing")
        self.calls.spawn(self._dispatch_waiting())
        return {"worker_id": reg.worker_id, "recordings": kept}

    def socket_closed(self, conn, rooms_left: list[int], user_gone: bool) -> None:
        """Dispatcher hook: a worker's socket closed."""
        if self.pool.of(conn) is not None:
            self.calls.spawn(self.worker_gone(conn))

    async def worker_gone(self, conn) -> None:
        """A worker's socket closed: its jobs wait ``RECORDING_WORKER_GRACE_S`` for it to come back."""
        worker = await self.pool.remove(conn)
        if worker is None:
            return
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

    async def _dispatch(self, row: Recording) -> bool:
        """Offer a pending recording to a worker (any process); False when it waits."""
        taken = await self.pool.claim(row)
        if taken is None:
            return False
        live = self.calls.live.get(row.session_id)
        session = session_wire(live.row) if live else None
        self.pool.send(taken.worker_id, {"type": "recording.job", "recording": recording_wire(taken),
                                         "session": session}, add=row.id)
        log.info("recording %s offered to worker %s", row.id, taken.worker_id)
        return True

    async def _dispatch_waiting(self) -> None:
        async with self.db.read() as s:
            rows = [r for r in await rq.unfinished(s) if r.status == "pending" and r.worker_id is None]
        for row in rows:
            if not await self._dispatch(row):
                break

    async def recorder_joined(self, conn, session_id: int) -> None:
        """The worker holding this session's pending recording joined the call: it records."""
        worker = self.pool.of(conn)
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
        await self._tell_room(row, "Recording started: this call is being recorded")  # consent (issue 15.7)
        log.info("recording %s started by worker %s", row.id, worker.worker_id)

    async def status(self, conn, msg: dict) -> dict:
        """``worker.status {recording, state, percent?, detail?}`` from the worker holding it:
        ``processing`` with a percent → ``recording.progress``; ``stopped`` (the worker
        stopped by itself, e.g. on SIGTERM) → processing; ``failed`` → failed with ``detail``."""
        worker = self.pool.of(conn)
        rid = parse_recording_id(msg)
        if worker is None or rid not in worker.jobs:
            raise Forbidden("this worker does not hold that recording")
        st = parse_worker_status(msg)
        row = await self.get(rid)
        if st.state == "processing":
            self.progress[rid] = st.percent
            self.processing[rid] = info = {"eta_s": st.eta_s, "fallback": st.fallback}
            self._announce(row, {"type": "recording.progress",
                                 "recording": recording_wire(row, progress=st.percent, processing=info),
                                 "percent": st.percent, "eta_s": st.eta_s})
        elif st.state == "stopped":
            if row.status == "recording":
                await self._stop(row, (st.detail or "worker_shutdown")[:100])
        elif st.state == "failed":
            await self.fail(rid, f"recording failed: {st.detail[:400] if st.detail else 'unknown reason'}")
        return {}

    # -- endings ---------------------------------------------------------------------------
    async def _fail(self, recording_id: int, reason: str, from_=rq.UNFINISHED) -> Recording | None:
        async with self.db.write() as s:
            row = await rq.transition(s, recording_id, from_, status="failed", reason=reason[:500])
        if row is None:
            return None
        self._cancel_timer(recording_id)
        self.progress.pop(recording_id, None)
        self.processing.pop(recording_id, None)
        self.pool.send(row.worker_id, {"type": "recording.stop", "recording": str(recording_id), "reason": "failed"},
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
            if row.worker_id is not None and row.status != "pending" and await self.pool.registered(row.worker_id):
                return
        await self._fail(recording_id, reason)

    async def held_by(self, actor: Actor, recording_id: int, worker_id: str | None) -> Recording:
        """The recording, when the calling worker (``X-Worker-Id``) holds it and it is still
        being recorded or processed; Forbidden/Conflict otherwise."""
        if actor.role != "recorder":
            raise Forbidden("only media workers upload recording assets")
        row = await self.get(recording_id)
        if not worker_id or row.worker_id != worker_id:
            raise Forbidden("this worker does not hold that recording (X-Worker-Id)")
        if row.status not in ("recording", "processing"):
            raise Conflict(f"the recording is {row.status}")
        return row

    async def complete(self, actor: Actor, recording_id: int, worker_id: str | None, body: dict) -> Recording:
        """``{assets:[{name, kind, duration_s?}], duration_s?}``: name the uploaded assets and
        make the recording ready; release the job and announce ``recording.ready``."""
        row = await self.held_by(actor, recording_id, worker_id)
        done = parse_completion(body)
        async with self.db.write() as s:
            for item in done.assets:
                if not await rq.describe_asset(s, row.id, item.name, item.kind, item.duration_s):
                    raise BadRequest(f"asset {item.name!r} was not uploaded")
            title = await name_files_in(s, row.id)  # downloads named after its title (recordings/manage.py)
            values = {"status": "ready"}
            if done.duration_s is not None:
                values["duration_s"] = done.duration_s
            ready = await rq.transition(s, row.id, ("recording", "processing"), **values)
        if ready is None:
            raise Conflict("the recording changed state meanwhile")
        self.progress.pop(recording_id, None)
        self.processing.pop(recording_id, None)
        self.pool.send(ready.worker_id, None, drop=recording_id)
        self._announce(ready, {"type": "recording.ready", "recording": recording_wire(ready)})
        # Students are told, with a link to the playback page (issue 15.1).
        link = (self.config.public_url or "").rstrip("/") + watch_path(ready.id)
        await self._tell_room(ready, f"Recording ready: {title} — watch it: {link}")
        log.info("recording %s ready with %d assets", row.id, len(done.assets))
        return ready

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
        registered = await self.pool.registered_workers()
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
