"""Live call sessions (PROTOCOL §2.2, §3 sessions): start, join, leave, end, and who takes
part.

Participants live in memory in the process that holds their socket; sessions and attendance
intervals are stored. A call ends when its instructors have all been gone for
``CALL_END_GRACE_S`` (checked across processes with REDIS_URL). Recordings hook in when
``deps`` builds the app: a recorder joining, a call ending, the current recording.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Awaitable, Callable

from sqlalchemy.exc import IntegrityError

from server.calls.ice import ice_servers
from server.calls.wire import parse_join_media, session_wire
from server.config import Config
from server.db import calls as cq
from server.db.engine import Database
from server.kernel.actor import Actor, parse_id
from server.kernel.clock import iso, utcnow
from server.kernel.errors import Conflict, Forbidden, NotFound
from server.kernel.frames import event_frame
from server.realtime.call_directory import CallDirectory
from server.realtime.notices import SessionEnded, SessionFrame
from server.realtime.registry import Registry
from server.rooms.membership import room_role, system_message
from server.rooms.service import Rooms

log = logging.getLogger("podium.calls")


@dataclass
class Participant:
    conn: object  # the ChatSocket
    user_id: int
    display_name: str
    role: str  # room role, or "recorder"
    joined_at: datetime
    interval_id: int | None
    media: dict = field(default_factory=lambda: {"audio": False, "video": False, "screen": False})
    hand: bool = False
    # SFU calls: muted at Janus by an instructor; ``may_unmute`` false while they hold it.
    muted_by_instructor: bool = False
    may_unmute: bool = True

    @property
    def peer_id(self) -> str:
        return self.conn.connection_id

    @property
    def recorder(self) -> bool:
        return self.role == "recorder"

    def wire(self) -> dict:
        return {"peer_id": self.peer_id,
                "user": {"id": str(self.user_id), "display_name": self.display_name, "role": self.role},
                "joined_at": iso(self.joined_at), "media": dict(self.media), "hand": self.hand,
                "recorder": self.recorder, "muted_by_instructor": self.muted_by_instructor,
                "may_unmute": self.may_unmute}


@dataclass
class LiveSession:
    row: object  # CallSession
    participants: dict[str, Participant] = field(default_factory=dict)
    banned: set[int] = field(default_factory=set)
    end_timer: asyncio.TimerHandle | None = None
    recording: dict | None = None  # the recording being made, as last announced
    publish: object = None  # with REDIS_URL: (header, frame) → the other processes
    # SFU calls: user id → allow_unmute, for users an instructor muted (calls/controls.py)
    instructor_mutes: dict[int, bool] = field(default_factory=dict)

    @property
    def id(self) -> int:
        return self.row.id

    @property
    def room_id(self) -> int:
        return self.row.room_id

    def has_instructor(self) -> bool:
        return any(p.role == "instructor" for p in self.participants.values())

    def send(self, event: dict, exclude: str | None = None) -> None:
        """To every participant, in every process (never dropped: signaling state)."""
        frame = event_frame(event)
        self.send_local(frame, exclude)
        if self.publish is not None:
            self.publish(SessionFrame(self.id, exclude), frame)

    def send_local(self, frame: bytes, exclude: str | None = None) -> None:
        for p in tuple(self.participants.values()):
            if p.peer_id != exclude:
                p.conn.send_frame(frame)

    def participants_of(self, user_id: int) -> list[Participant]:
        return [p for p in self.participants.values() if p.user_id == user_id and not p.recorder]


class Calls:
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
        self._participant_left: list[Callable[[int, str], Awaitable[None]]] = []
        self._media_path: Callable[[int], str] | None = None

    def on_participant_left(self, hook: Callable[[int, str], Awaitable[None]]) -> None:
        """``await hook(session_id, peer_id)`` after a participant left (or was dropped)."""
        self._participant_left.append(hook)

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
    async def start(self, actor: Actor, room_id: int) -> dict:
        async with self.db.read() as s:
            room, role = await room_role(s, room_id, actor)
        if actor.role == "recorder" or (role != "instructor" and room.kind != "group"):
            raise Forbidden("only the room's instructors start calls")
        try:
            async with self.db.write() as s:
                existing = await cq.live_session_for_room(s, room_id)
                if existing is not None:
                    return {"session": session_wire(existing)}
                row = await cq.create_session(s, room_id, actor.id, utcnow())
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
        return {"session": wire}

    async def join(self, conn, actor: Actor, session_id: int, media=None) -> dict:
        """Join as a participant; ``media`` ({audio, video, screen} booleans) is the state the
        others see from the start, so nobody flashes as muted before the first call.media."""
        media = parse_join_media(media)
        live = await self.load(session_id)
        if actor.role == "recorder":
            role = "recorder"
        else:
            role = await self.rooms.role(live.room_id, actor)
            if actor.id in live.banned or (self.directory is not None
                                           and await self.directory.banned(session_id, actor.id)):
                raise Forbidden("you were removed from this call")
        me = live.participants.get(conn.connection_id)
        if me is None:
            now = utcnow()
            interval_id = None
            if role != "recorder":
                async with self.db.write() as s:
                    interval_id = await cq.open_interval(s, session_id, actor.id, conn.connection_id, now)
            ended = session_id not in self.live  # ended while we were writing
            gone = not conn.is_open()
            if ended or gone:  # a socket that died meanwhile must not stay as a ghost
                if interval_id is not None:
                    async with self.db.write() as s:
                        await cq.close_interval(s, interval_id, live.row.ended_at or now)
                if ended:
                    raise Conflict("the call has ended")
                raise Conflict("the connection closed while joining")
            me = Participant(conn, actor.id, actor.display_name, role, now, interval_id)
            me.media.update(media)
            if role != "recorder" and actor.id in live.instructor_mutes:  # still muted (SFU)
                me.muted_by_instructor, me.may_unmute = True, live.instructor_mutes[actor.id]
                me.media["audio"] = False
            live.participants[me.peer_id] = me
            self._joined(conn, session_id)
            if role == "instructor" and live.end_timer:
                live.end_timer.cancel()
                live.end_timer = None
            if self.directory is not None:
                await self.directory.put(session_id, me.wire())
            live.send({"type": "call.participant_joined", "session": str(session_id),
                       "participant": me.wire()}, exclude=me.peer_id)
            log.info("session %s: peer %s (user %s, %s) joined", session_id, me.peer_id, actor.id, role)
            if role == "recorder":
                for hook in self._recorder_joined:
                    await hook(conn, session_id)
        servers, ttl = ice_servers(self.config, actor.id)
        recording = live.recording
        if self.directory is not None and self._recording_of is not None:  # may be known only elsewhere
            recording = await self._recording_of(session_id)
        return {"session": session_wire(live.row, recording), "peer_id": me.peer_id,
                "participants": await self._others(live, me.peer_id),
                "ice_servers": servers, "ice_ttl_s": ttl,
                "media_path": self._media_path(session_id) if self._media_path else "mesh",
                # SFU calls: the joiner's own instructor mute (calls/controls.py)
                "muted_by_instructor": me.muted_by_instructor, "may_unmute": me.may_unmute}

    async def _others(self, live: LiveSession, me: str) -> list[dict]:
        """Everyone else in the call: from every process with REDIS_URL, else this one."""
        if self.directory is None:
            return [p.wire() for p in live.participants.values() if p.peer_id != me]
        local = {p.peer_id: p.wire() for p in live.participants.values()}
        everyone = {pid: wire for pid, (wire, _) in (await self.directory.entries(live.id)).items()}
        everyone.update(local)  # this process's view of its own participants is the freshest
        return [w for pid, w in everyone.items() if pid != me]

    async def leave(self, conn, session_id: int) -> None:
        live = self.live.get(session_id)
        if live is None or conn.connection_id not in live.participants:
            raise NotFound("you are not in this session")
        await self.drop(live, conn.connection_id)

    async def member_removed(self, room_id: int, user_id: int) -> None:
        """Someone removed from a room leaves its live call at once (and is told why)."""
        for live in [lv for lv in self.live.values() if lv.room_id == room_id]:
            gone = live.participants_of(user_id)
            frame = event_frame({"type": "call.removed", "session": str(live.id), "by": None,
                                 "reason": "removed from the room"})
            for p in gone:
                p.conn.send_frame(frame)
                await self.drop(live, p.peer_id)

    async def leave_all(self, conn) -> None:
        """A socket that closes (or stops answering heartbeats) leaves every session it was in."""
        for session_id in tuple(self.sessions_of(conn)):
            live = self.live.get(session_id)
            if live is not None and conn.connection_id in live.participants:
                try:
                    await self.drop(live, conn.connection_id)
                except Exception:  # one session's storage failure must not skip the others
                    log.exception("session %s: leaving on close failed", session_id)

    async def drop(self, live: LiveSession, peer_id: str) -> None:
        p = live.participants.pop(peer_id, None)
        if p is None:
            return
        self._left(p.conn, live.id)
        if p.interval_id is not None:
            async with self.db.write() as s:
                await cq.close_interval(s, p.interval_id, utcnow())
        if self.directory is not None:
            await self.directory.remove(live.id, peer_id)
        live.send({"type": "call.participant_left", "session": str(live.id), "peer_id": peer_id})
        log.info("session %s: peer %s (user %s) left", live.id, peer_id, p.user_id)
        for hook in self._participant_left:
            await hook(live.id, peer_id)
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
        """With several processes the instructor may be connected to another one."""
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
                self.spawn(hook(live.id, p.peer_id))
        live.participants.clear()

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
        me = live.participants.get(conn.connection_id) if live else None
        if me is None:
            raise Forbidden("you are not a participant of this session")
        return live, me
