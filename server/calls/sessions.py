"""Live call sessions (PROTOCOL §2.2, §3 sessions): start, join, leave, end, and who takes
part.

Participants live in memory in the process that holds their socket; sessions and attendance
intervals are stored. A call ends when its instructors have all been gone for
``CALL_END_GRACE_S`` (checked across processes with REDIS_URL). Recordings hook in when
``deps`` builds the app: a recorder joining, a call ending, the current recording. Joining
and resuming are in join.py, the in-memory session and participants in live.py.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from sqlalchemy.exc import IntegrityError

from server.calls.join import Joining
from server.calls.live import LiveSession, Participant
from server.calls.resume import ResumeTokens
from server.calls.wire import session_wire
from server.config import Config
from server.db import calls as cq
from server.db import rooms as rq
from server.db.engine import Database
from server.kernel.actor import Actor, parse_id
from server.kernel.clock import utcnow
from server.kernel.errors import Conflict, Forbidden, NotFound
from server.kernel.frames import event_frame
from server.realtime.call_directory import CallDirectory
from server.realtime.notices import SessionEnded
from server.realtime.registry import Registry
from server.rooms.membership import require_open, room_role, system_message
from server.rooms.service import Rooms

log = logging.getLogger("podium.calls")


class Calls(Joining):
    def __init__(self, db: Database, registry: Registry, rooms: Rooms, config: Config,
                 directory: CallDirectory | None = None):
        """``directory``: with REDIS_URL, every process's participants (realtime.call_directory)."""
        self.db, self.registry, self.rooms, self.config = db, registry, rooms, config
        self.directory = directory
        self.live: dict[int, LiveSession] = {}
        self.relays = 0
        self._tasks: set[asyncio.Task] = set()
        self._sessions_of: dict[str, set[int]] = {}  # connection id → sessions it takes part in
        # Hooks registered when deps builds the app (recordings):
        self._recorder_joined: list[Callable[[object, int], Awaitable[None]]] = []
        self._ended: list[Callable[[int], Awaitable[None]]] = []
        self._recording_of: Callable[[int], Awaitable[dict | None]] | None = None
        # (sfu): participants leaving, and which media path a session's join ack names.
        self._participant_left: list[Callable[[int, str, bool], Awaitable[None]]] = []
        self._resumed: list[Callable[[object, LiveSession, Participant], Awaitable[dict]]] = []
        self._media_path: Callable[[int], str] | None = None
        self.tokens = ResumeTokens(config.jwt_secret)
        self.lobby = None  # the waiting room (calls/lobby.py), set when deps builds the app
        self.ringing = None  # ringing people (calls/ringing.py), set when deps builds the app

    def on_participant_left(self, hook: Callable[[int, str, bool], Awaitable[None]]) -> None:
        """``await hook(session_id, peer_id, resumable)`` after a participant left (or was
        dropped); ``resumable``: its socket closed, it may come back with its resume token."""
        self._participant_left.append(hook)

    def on_resumed(self, hook: Callable[[object, LiveSession, Participant], Awaitable[dict]]) -> None:
        """``await hook(conn, live, participant)`` → fields for the join ack, when a join took
        an earlier peer id back (``resume``; sfu_resume.py takes its Janus session back)."""
        self._resumed.append(hook)

    def media_path_from(self, provider: Callable[[int], str]) -> None:
        """``provider(session_id)`` → ``"sfu"`` or ``"mesh"`` for the join ack (mesh without)."""
        self._media_path = provider

    def on_recorder_joined(self, hook: Callable[[object, int], Awaitable[None]]) -> None:
        """``await hook(conn, session_id)`` when a recorder joins a call."""
        self._recorder_joined.append(hook)

    def on_ended(self, hook: Callable[[int], Awaitable[None]]) -> None:
        """``await hook(session_id)`` when a call ends, before ``call.ended`` goes out."""
        self._ended.append(hook)

    def recording_from(self, provider: Callable[[int], Awaitable[dict | None]]) -> None:
        """Where a join ack reads the session's current recording when it may be known only
        to another process (with REDIS_URL)."""
        self._recording_of = provider

    def sessions_of(self, conn) -> set[int]:
        """The live sessions this connection takes part in (in this process)."""
        return self._sessions_of.get(conn.connection_id, set())

    def _joined(self, conn, session_id: int) -> None:
        self._sessions_of.setdefault(conn.connection_id, set()).add(session_id)

    def _left(self, conn, session_id: int) -> None:
        sessions = self._sessions_of.get(conn.connection_id)
        if sessions is not None:
            sessions.discard(session_id)
            if not sessions:
                del self._sessions_of[conn.connection_id]

    def _live(self, row) -> LiveSession:
        live = self.live.get(row.id)
        if live is None:
            bus = self.registry.bus
            live = self.live[row.id] = LiveSession(row, publish=bus.publish if bus is not None else None)
        return live

    def spawn(self, coro) -> None:
        """Run call bookkeeping in the background; ``close()`` waits for it."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- lifecycle -----------------------------------------------------------------------
    async def recover(self) -> None:
        """After a restart: close intervals left open by the previous process and give every
        live session the usual grace to get an instructor back before it ends."""
        keep: set[str] = set()
        if self.directory is not None:  # other processes' participants are not orphans
            async with self.db.read() as s:
                for row in await cq.live_sessions(s):
                    keep |= set(await self.directory.entries(row.id))
        async with self.db.write() as s:
            closed = await cq.close_orphaned_intervals(s, utcnow(), keep)
            rows = await cq.live_sessions(s)
        for row in rows:
            live = self._live(row)
            self._schedule_end_check(live)
        if closed or rows:
            log.info("recovered %d live sessions, closed %d orphaned intervals", len(rows), closed)

    async def close(self) -> None:
        """Stop timers and let bookkeeping in flight (closing intervals) finish, bounded."""
        for live in self.live.values():
            if live.end_timer:
                live.end_timer.cancel()
        if self._tasks:
            await asyncio.wait(tuple(self._tasks), timeout=5)

    async def load(self, session_id: int) -> LiveSession:
        """The live session; NotFound, or Conflict when it has ended."""
        live = self.live.get(session_id)
        if live is not None:
            return live
        async with self.db.read() as s:
            row = await cq.get_session(s, session_id)
        if row is None:
            raise NotFound("no such session")
        if row.ended_at is not None:
            raise Conflict("the call has ended")
        return self._live(row)

    async def require_instructor(self, actor: Actor, room_id: int) -> None:
        """Forbidden unless the caller is one of the room's instructors."""
        if actor.role == "recorder" or await self.rooms.role(room_id, actor) != "instructor":
            raise Forbidden("only the room's instructors may do that")

    # -- start / join / leave / end ------------------------------------------------------
    async def start(self, actor: Actor, room_id: int, lobby: bool = False) -> dict:
        """``lobby``: the call opens with a waiting room (calls/lobby.py)."""
        async with self.db.read() as s:
            room, role = await room_role(s, room_id, actor)
        if actor.role == "recorder" or (role != "instructor" and room.kind != "group"):
            raise Forbidden("only the room's instructors start calls")
        require_open(room)  # an archived room is read-only: no calls
        try:
            async with self.db.write() as s:
                existing = await cq.live_session_for_room(s, room_id)
                if existing is not None:
                    return {"session": session_wire(existing)}
                row = await cq.create_session(s, room_id, actor.id, utcnow(), lobby)
                note = await system_message(s, room_id, f"{actor.display_name} started a call")
        except IntegrityError:
            # Another instructor started one at the same moment (one live call per room).
            async with self.db.read() as s:
                existing = await cq.live_session_for_room(s, room_id)
            if existing is None:
                raise
            return {"session": session_wire(existing)}
        self.registry.broadcast(room_id, {"type": "message.new", "message": note})
        live = self._live(row)
        # If the instructor who started it never joins, it ends like an abandoned call.
        self._schedule_end_check(live)
        wire = session_wire(live.row)
        self.registry.broadcast(room_id, {"type": "call.started", "session": wire})
        log.info("session %s started in room %s by user %s", row.id, room_id, actor.id)
        if self.ringing is not None:  # a direct room's call rings the other person
            await self.ringing.started(actor, live, room.kind)
        return {"session": wire}

    def adopt(self, row) -> LiveSession:
        """The live session of a row created elsewhere in this process (breakout groups)."""
        return self._live(row)

    async def end_session(self, live: LiveSession, why: str) -> None:
        """End ``live`` as ``call.end`` would, without an actor (errors are logged)."""
        await self._end_logged(live, why)

    async def leave(self, conn, session_id: int) -> None:
        live = self.live.get(session_id)
        me = live.of_conn(conn) if live is not None else None
        if me is None:
            raise NotFound("you are not in this session")
        await self.drop(live, me.peer_id)

    async def member_removed(self, room_id: int, user_id: int) -> None:
        """Someone removed from a room leaves its live call at once (and is told why)."""
        for live in [lv for lv in self.live.values() if lv.room_id == room_id]:
            gone = live.participants_of(user_id)
            frame = event_frame({"type": "call.removed", "session": str(live.id), "by": None,
                                 "reason": "removed from the room"})
            for p in gone:
                p.conn.send_frame(frame)
                await self.drop(live, p.peer_id)

    def room_archive_changed(self, room_id: int) -> None:
        """Rooms hook (run in the process that archived it): an archived room is read-only,
        so its live call ends for everyone, as after "End for all"."""
        self.spawn(self._end_if_archived(room_id))

    async def _end_if_archived(self, room_id: int) -> None:
        async with self.db.read() as s:
            room, row = await rq.get_room(s, room_id), await cq.live_session_for_room(s, room_id)
        if room is not None and room.archived_at is not None and row is not None:
            await self._end_logged(self._live(row), "the room was archived")

    async def leave_all(self, conn) -> None:
        """A socket that closes (or stops answering heartbeats) leaves every session it was in."""
        for session_id in tuple(self.sessions_of(conn)):
            live = self.live.get(session_id)
            me = live.of_conn(conn) if live is not None else None
            if me is not None:
                try:
                    await self.drop(live, me.peer_id, resumable=True)
                except Exception:  # one session's storage failure must not skip the others
                    log.exception("session %s: leaving on close failed", session_id)

    async def drop(self, live: LiveSession, peer_id: str, resumable: bool = False) -> None:
        """``peer_id`` leaves; ``resumable``: its socket closed (it may resume, resume.py)."""
        p = live.participants.pop(peer_id, None)
        if p is None:
            return
        live.resumed.pop(p.conn.connection_id, None)
        self._left(p.conn, live.id)
        if p.interval_id is not None:
            async with self.db.write() as s:
                await cq.close_interval(s, p.interval_id, utcnow())
        if self.directory is not None:
            await self.directory.remove(live.id, peer_id)
        live.send({"type": "call.participant_left", "session": str(live.id), "peer_id": peer_id})
        log.info("session %s: peer %s (user %s) left", live.id, peer_id, p.user_id)
        for hook in self._participant_left:
            await hook(live.id, peer_id, resumable)
        if self.ringing is not None and not resumable and not live.participants_of(p.user_id):
            await self.ringing.caller_left(live.id, p.user_id)  # nobody to answer to any more
        if p.role == "instructor":
            self._schedule_end_check(live)

    def _schedule_end_check(self, live: LiveSession) -> None:
        if not self.config.call_end_without_instructor or live.has_instructor() or live.end_timer:
            return

        def check() -> None:
            live.end_timer = None
            if not live.has_instructor() and live.id in self.live:
                self.spawn(self._end_unless_instructor_elsewhere(live))

        live.end_timer = asyncio.get_running_loop().call_later(self.config.call_end_grace_s, check)

    async def _end_unless_instructor_elsewhere(self, live: LiveSession) -> None:
        """With several processes the instructor may be connected to another one. A breakout
        group's call (calls/breakouts.py) ends with its breakout, not for want of an instructor."""
        async with self.db.read() as s:
            if await cq.is_breakout_group(s, live.id):
                return
        if self.directory is not None:
            try:
                entries = await self.directory.entries(live.id)
            except Exception:
                log.exception("session %s: reading participants from Redis failed; keeping the call", live.id)
                return
            if any(wire["user"]["role"] == "instructor" for wire, _ in entries.values()):
                return
        await self._end_logged(live, "no instructor left")

    async def _end_logged(self, live: LiveSession, why: str) -> None:
        try:
            await self._end(live, why)
        except Exception:
            log.exception("session %s: ending failed", live.id)

    async def end(self, actor: Actor, session_id: int) -> None:
        live = await self.load(session_id)
        await self.require_instructor(actor, live.room_id)
        await self._end(live, f"ended by user {actor.id}")

    async def _end(self, live: LiveSession, why: str) -> None:
        if self.live.pop(live.id, None) is None:
            return
        if live.end_timer:
            live.end_timer.cancel()
        now = utcnow()
        minutes = max(1, round((now - live.row.started_at).total_seconds() / 60))
        async with self.db.write() as s:
            await cq.end_session(s, live.id, now)
            note = await system_message(s, live.room_id, f"The call ended ({minutes} min)")
        self.registry.broadcast(live.room_id, {"type": "message.new", "message": note})
        live.row.ended_at = now
        for hook in self._ended:
            await hook(live.id)
        event = {"type": "call.ended", "session": session_wire(live.row)}
        frame = event_frame(event)
        self.registry.broadcast_frame(live.room_id, frame)  # the room, in every process
        self.ended_locally(live, frame)
        if live.publish is not None:
            live.publish(SessionEnded(live.id), frame)
        if self.directory is not None:
            await self.directory.clear(live.id)
        log.info("session %s ended (%s)", live.id, why)

    def send_outside_room(self, live: LiveSession, frame: bytes, recorders: bool = False) -> None:
        """To this process's participants who are not subscribed to the call's room (room
        subscribers get the room's broadcast); recorders only with ``recorders``."""
        in_room = self.registry.by_room.get(live.room_id, set())
        self.registry.send_to({p.conn for p in live.participants.values()
                               if (recorders or not p.recorder) and p.conn not in in_room}, frame)

    def ended_locally(self, live: LiveSession, frame: bytes) -> None:
        """``call.ended`` to this process's participants outside the room, who then leave it
        (their intervals were closed with the session)."""
        self.send_outside_room(live, frame, recorders=True)
        for p in live.participants.values():
            self._left(p.conn, live.id)
            for hook in self._participant_left:  # (sfu) their state elsewhere goes too
                self.spawn(hook(live.id, p.peer_id, False))
        live.participants.clear()
        live.resumed.clear()

    async def sessions(self, actor: Actor, room_id: int, limit: int) -> dict:
        await self.rooms.role(room_id, actor)
        async with self.db.read() as s:
            rows = await cq.sessions_for_room(s, room_id, limit)
        out = []
        for row in rows:
            wire = session_wire(row)
            live = self.live.get(row.id)
            wire["participants"] = len(live.participants) if live else 0
            out.append(wire)
        return {"sessions": out}

    def live_in_room(self, room_id: int) -> dict:
        """``{live_session}`` for a room.join answer: the room's live call, so a client shows
        "Join call" without another request."""
        live = next((lv for lv in self.live.values() if lv.room_id == room_id), None)
        return {"live_session": session_wire(live.row) if live else None}

    def socket_closed(self, conn, rooms_left: list[int], user_gone: bool) -> None:
        """Dispatcher hook: a closed socket leaves every session it was in."""
        if self.sessions_of(conn):
            self.spawn(self.leave_all(conn))

    def participant(self, conn, msg: dict) -> tuple[LiveSession, Participant]:
        """The session named by ``msg`` and this connection's participant in it; Forbidden
        when the connection does not take part."""
        session_id = parse_id(msg.get("session"), "session")
        live = self.live.get(session_id)
        me = live.of_conn(conn) if live else None
        if me is None:
            raise Forbidden("you are not a participant of this session")
        return live, me
