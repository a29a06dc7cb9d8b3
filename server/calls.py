"""Live calls: sessions, participants (one per socket), signaling relay, classroom controls,
attendance (PROTOCOL §2.2, §3 sessions/attendance).

Participants live in memory in the process that holds their socket; sessions and attendance
intervals are stored. Signals are relayed only between two current participants of one
session and are never dropped as droppable traffic (a reader too slow even for them is
closed with 4008 and reconnects).
"""
from __future__ import annotations

import asyncio
import csv
import io
import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from server.kernel.clock import iso, utcnow
from server import codec
from server.kernel.actor import Actor, parse_id
from server.chat import Chat
from server.config import Config
from server.db import calls as cq
from server.db.engine import Database
from server.kernel.errors import BadRequest, Conflict, Forbidden, NotFound
from server.ice import ice_servers
from server.kernel.frames import event_frame
from server.realtime.notices import PeerFrame, SessionBan, SessionEnded, SessionFrame
from server.realtime.registry import Registry

log = logging.getLogger("podium.calls")

MEDIA_KINDS = ("audio", "video", "screen")
MAX_SDP_BYTES = 60 * 1024
MAX_NEGOTIATION_ID = 64


def session_wire(session, recording: dict | None = None) -> dict:
    return {"id": str(session.id), "room": str(session.room_id), "started_by": str(session.started_by),
            "started_at": iso(session.started_at), "ended_at": iso(session.ended_at),
            "recording": recording}


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
                "recorder": self.recorder}


@dataclass
class LiveSession:
    row: object  # CallSession
    participants: dict[str, Participant] = field(default_factory=dict)
    banned: set[int] = field(default_factory=set)
    end_timer: asyncio.TimerHandle | None = None
    recording: dict | None = None  # the recording being made, as last announced
    publish: object = None  # with REDIS_URL: (header, frame) → the other processes

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
    def __init__(self, db: Database, registry: Registry, chat: Chat, config: Config):
        self.db, self.registry, self.chat, self.config = db, registry, chat, config
        self.live: dict[int, LiveSession] = {}
        self.relays = 0
        self._tasks: set[asyncio.Task] = set()
        self.recordings = None  # server.recordings.Recordings sets itself here
        self.directory = None  # with REDIS_URL: server.realtime.call_directory.CallDirectory
        chat.member_removed_hooks.append(self.member_removed)

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

    async def _load(self, session_id: int) -> LiveSession:
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

    async def _require_instructor(self, actor: Actor, room_id: int) -> None:
        if actor.role == "recorder" or await self.chat.room_role(room_id, actor) != "instructor":
            raise Forbidden("only the room's instructors may do that")

    # -- start / join / leave / end ------------------------------------------------------
    async def start(self, actor: Actor, room_id: int) -> dict:
        async with self.db.read() as s:
            room, role = await self.chat._room_role(s, room_id, actor)
        if actor.role == "recorder" or (role != "instructor" and room.kind != "group"):
            raise Forbidden("only the room's instructors start calls")
        try:
            async with self.db.write() as s:
                existing = await cq.live_session_for_room(s, room_id)
                if existing is not None:
                    return {"session": session_wire(existing)}
                row = await cq.create_session(s, room_id, actor.id, utcnow())
                note = await self.chat._system_message(s, room_id, f"{actor.display_name} started a call")
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
        if media is not None and (not isinstance(media, dict) or not set(media) <= set(MEDIA_KINDS)
                                  or not all(isinstance(v, bool) for v in media.values())):
            raise BadRequest("media must map audio/video/screen to booleans")
        live = await self._load(session_id)
        if actor.role == "recorder":
            role = "recorder"
        else:
            role = await self.chat.room_role(live.room_id, actor)
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
            gone = getattr(conn, "ws_connection", None) is None or conn.ws_connection.is_closing()
            if ended or gone:  # a socket that died meanwhile must not stay as a ghost
                if interval_id is not None:
                    async with self.db.write() as s:
                        await cq.close_interval(s, interval_id, live.row.ended_at or now)
                if ended:
                    raise Conflict("the call has ended")
                raise Conflict("the connection closed while joining")
            me = Participant(conn, actor.id, actor.display_name, role, now, interval_id)
            me.media.update(media or {})
            live.participants[me.peer_id] = me
            conn.sessions.add(session_id)
            if role == "instructor" and live.end_timer:
                live.end_timer.cancel()
                live.end_timer = None
            if self.directory is not None:
                await self.directory.put(session_id, me.wire())
            live.send({"type": "call.participant_joined", "session": str(session_id),
                       "participant": me.wire()}, exclude=me.peer_id)
            log.info("session %s: peer %s (user %s, %s) joined", session_id, me.peer_id, actor.id, role)
            if role == "recorder" and self.recordings is not None:
                await self.recordings.recorder_joined(conn, session_id)
        servers, ttl = ice_servers(self.config, actor.id)
        recording = live.recording
        if self.directory is not None and self.recordings is not None:  # may be known only elsewhere
            recording = await self.recordings.current(session_id)
        return {"session": session_wire(live.row, recording), "peer_id": me.peer_id,
                "participants": await self._others(live, me.peer_id),
                "ice_servers": servers, "ice_ttl_s": ttl}

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
        await self._drop(live, conn.connection_id)

    async def member_removed(self, room_id: int, user_id: int) -> None:
        """Someone removed from a room leaves its live call at once (and is told why)."""
        for live in [lv for lv in self.live.values() if lv.room_id == room_id]:
            gone = live.participants_of(user_id)
            frame = event_frame({"type": "call.removed", "session": str(live.id), "by": None,
                                 "reason": "removed from the room"})
            for p in gone:
                p.conn.send_frame(frame)
                await self._drop(live, p.peer_id)

    async def socket_closed(self, conn) -> None:
        """A socket that closes (or stops answering heartbeats) leaves every session it was in."""
        for session_id in tuple(getattr(conn, "sessions", ())):
            live = self.live.get(session_id)
            if live is not None and conn.connection_id in live.participants:
                try:
                    await self._drop(live, conn.connection_id)
                except Exception:  # one session's storage failure must not skip the others
                    log.exception("session %s: leaving on close failed", session_id)

    async def _drop(self, live: LiveSession, peer_id: str) -> None:
        p = live.participants.pop(peer_id, None)
        if p is None:
            return
        p.conn.sessions.discard(live.id)
        if p.interval_id is not None:
            async with self.db.write() as s:
                await cq.close_interval(s, p.interval_id, utcnow())
        if self.directory is not None:
            await self.directory.remove(live.id, peer_id)
        live.send({"type": "call.participant_left", "session": str(live.id), "peer_id": peer_id})
        log.info("session %s: peer %s (user %s) left", live.id, peer_id, p.user_id)
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
        live = await self._load(session_id)
        await self._require_instructor(actor, live.room_id)
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
            note = await self.chat._system_message(s, live.room_id, f"The call ended ({minutes} min)")
        self.registry.broadcast(live.room_id, {"type": "message.new", "message": note})
        live.row.ended_at = now
        if self.recordings is not None:
            await self.recordings.call_ended(live.id)
        event = {"type": "call.ended", "session": session_wire(live.row)}
        frame = event_frame(event)
        self.registry.broadcast_frame(live.room_id, frame)  # the room, in every process
        self._ended_locally(live, frame)
        if live.publish is not None:
            live.publish(SessionEnded(live.id), frame)
        if self.directory is not None:
            await self.directory.clear(live.id)
        log.info("session %s ended (%s)", live.id, why)

    # -- signaling -----------------------------------------------------------------------
    async def relay(self, conn, kind: str, msg: dict) -> None:
        live, me = self._me(conn, msg)
        to = msg.get("to")
        if not isinstance(to, str):
            raise BadRequest("to must be a peer_id")
        target = live.participants.get(to)
        remote = False
        if target is None and self.directory is not None and to != me.peer_id:
            remote = to in await self.directory.entries(live.id)  # held by another process
        if (target is None and not remote) or to == me.peer_id:
            raise Forbidden("the target is not a participant of this session")
        negotiation_id = msg.get("negotiation_id")
        if negotiation_id is not None and (not isinstance(negotiation_id, (str, int)) or isinstance(negotiation_id, bool)
                                           or len(str(negotiation_id)) > MAX_NEGOTIATION_ID):
            raise BadRequest("negotiation_id must be a short string or number")
        event = {"type": kind, "session": str(live.id), "from": me.peer_id, "negotiation_id": negotiation_id}
        if kind == "rtc.ice":
            cand = msg.get("candidate")
            if cand is not None and not isinstance(cand, (dict, str)):
                raise BadRequest("candidate must be an object or null")
            event["candidate"] = cand
        else:
            sdp = msg.get("sdp")
            if isinstance(sdp, dict):  # an RTCSessionDescriptionInit is accepted too
                sdp = sdp.get("sdp")
            if not isinstance(sdp, str) or not sdp or len(sdp) > MAX_SDP_BYTES:
                raise BadRequest("sdp must be a non-empty SDP string")
            event["sdp"] = sdp
        if remote:
            live.publish(PeerFrame(to), event_frame(event))
        else:
            target.conn.send_frame(event_frame(event))  # never droppable: signaling must arrive
        self.relays += 1

    def _me(self, conn, msg: dict) -> tuple[LiveSession, Participant]:
        session_id = parse_id(msg.get("session"), "session")
        live = self.live.get(session_id)
        me = live.participants.get(conn.connection_id) if live else None
        if me is None:
            raise Forbidden("you are not a participant of this session")
        return live, me

    # -- state and controls --------------------------------------------------------------
    async def media(self, conn, msg: dict) -> dict:
        live, me = self._me(conn, msg)
        changes = {k: msg[k] for k in MEDIA_KINDS if k in msg}
        if not changes or not all(isinstance(v, bool) for v in changes.values()):
            raise BadRequest("send at least one of audio, video, screen as a boolean")
        me.media.update(changes)
        if self.directory is not None:
            await self.directory.put(live.id, me.wire())
        live.send({"type": "call.media_changed", "session": str(live.id), "participant": me.wire()})
        return {"participant": me.wire()}

    async def hand(self, conn, msg: dict) -> dict:
        live, me = self._me(conn, msg)
        raised = msg.get("raised")
        if not isinstance(raised, bool):
            raise BadRequest("raised must be a boolean")
        me.hand = raised
        if self.directory is not None:
            await self.directory.put(live.id, me.wire())
        live.send({"type": "call.hand_changed", "session": str(live.id), "participant": me.wire()})
        return {"participant": me.wire()}

    async def _target(self, actor: Actor, msg: dict) -> tuple[LiveSession, str, dict]:
        """The session, and the target participant's peer_id and wire (it may be connected to
        another process)."""
        live = await self._load(parse_id(msg.get("session"), "session"))
        await self._require_instructor(actor, live.room_id)
        peer_id = msg.get("peer_id")
        if not isinstance(peer_id, str):
            raise BadRequest("peer_id must be a participant's peer_id")
        target = live.participants.get(peer_id)
        if target is not None:
            return live, peer_id, target.wire()
        if self.directory is not None:
            entry = (await self.directory.entries(live.id)).get(peer_id)
            if entry is not None:
                return live, peer_id, entry[0]
        raise NotFound("no such participant in this session")

    async def mute(self, actor: Actor, msg: dict) -> None:
        live, peer_id, _ = await self._target(actor, msg)
        frame = event_frame({"type": "call.mute_requested", "session": str(live.id), "by": str(actor.id)})
        target = live.participants.get(peer_id)
        if target is not None:
            target.conn.send_frame(frame)
        else:
            live.publish(PeerFrame(peer_id), frame)

    async def remove(self, actor: Actor, msg: dict) -> None:
        """Remove a user from the call — every device of theirs, in every process — and keep
        them out of it until it ends."""
        live, _, wire = await self._target(actor, msg)
        if wire["recorder"]:
            raise BadRequest("stop the recording instead of removing the recorder")
        user_id = int(wire["user"]["id"])
        frame = event_frame({"type": "call.removed", "session": str(live.id), "by": str(actor.id)})
        if self.directory is not None:
            await self.directory.ban(live.id, user_id)
            live.publish(SessionBan(live.id, user_id), frame)
        await self._remove_local(live, user_id, frame)
        log.info("session %s: user %s removed by %s", live.id, user_id, actor.id)

    async def _remove_local(self, live: LiveSession, user_id: int, frame: bytes) -> None:
        live.banned.add(user_id)
        for p in live.participants_of(user_id):
            p.conn.send_frame(frame)
            await self._drop(live, p.peer_id)

    def send_outside_room(self, live: LiveSession, frame: bytes, recorders: bool = False) -> None:
        """To this process's participants who are not subscribed to the call's room (room
        subscribers get the room's broadcast); recorders only with ``recorders``."""
        in_room = self.registry.by_room.get(live.room_id, set())
        self.registry.send_to({p.conn for p in live.participants.values()
                               if (recorders or not p.recorder) and p.conn not in in_room}, frame)

    def _ended_locally(self, live: LiveSession, frame: bytes) -> None:
        """``call.ended`` to this process's participants outside the room, who then leave it
        (their intervals were closed with the session)."""
        self.send_outside_room(live, frame, recorders=True)
        for p in live.participants.values():
            p.conn.sessions.discard(live.id)
        live.participants.clear()

    def register_notices(self, router) -> None:
        """Call notices from other processes: a session broadcast, a frame for one of our
        participants, a user removed from the call, a session that ended."""
        router.on(SessionFrame, self._on_session_frame)
        router.on(PeerFrame, self._on_peer_frame)
        router.on(SessionBan, self._on_ban)
        router.on(SessionEnded, self._on_ended)

    def _on_peer_frame(self, n: PeerFrame, frame: bytes) -> None:
        conn = self.registry.connections.get(n.connection)
        if conn is not None:
            conn.send_frame(frame)

    def _on_session_frame(self, n: SessionFrame, frame: bytes) -> None:
        live = self.live.get(n.session)
        if live is None:
            return
        if n.outside_room:
            self.send_outside_room(live, frame)
        else:
            live.send_local(frame, n.exclude)

    def _on_ban(self, n: SessionBan, frame: bytes) -> None:
        live = self.live.get(n.session)
        if live is not None:
            self.spawn(self._remove_local(live, n.user, frame))

    def _on_ended(self, n: SessionEnded, frame: bytes) -> None:
        live = self.live.pop(n.session, None)
        if live is None:
            return
        if live.end_timer:
            live.end_timer.cancel()
        self._ended_locally(live, frame)

    # -- REST ----------------------------------------------------------------------------
    async def sessions(self, actor: Actor, room_id: int, limit: int) -> dict:
        await self.chat.room_role(room_id, actor)
        async with self.db.read() as s:
            rows = await cq.sessions_for_room(s, room_id, limit)
        out = []
        for row in rows:
            wire = session_wire(row)
            live = self.live.get(row.id)
            wire["participants"] = len(live.participants) if live else 0
            out.append(wire)
        return {"sessions": out}

    async def attendance(self, actor: Actor, session_id: int) -> dict:
        """Intervals, merged total seconds and percent of the session per attendee; students
        see only themselves."""
        return (await self._attendance(actor, session_id))[0]

    async def _attendance(self, actor: Actor, session_id: int) -> tuple[dict, str]:
        async with self.db.read() as s:
            row = await cq.get_session(s, session_id)
            if row is None:
                raise NotFound("no such session")
            role = await self.chat.room_role(row.room_id, actor)
            stays = await cq.intervals(s, session_id)
        end = row.ended_at or utcnow()
        span = max((end - row.started_at).total_seconds(), 0.0)
        people: dict[int, dict] = {}
        for interval, user in stays:
            if role != "instructor" and user.id != actor.id:
                continue
            entry = people.setdefault(user.id, {"user": codec.user_wire(user), "intervals": [], "_spans": []})
            left = interval.left_at or end
            entry["intervals"].append({"joined_at": iso(interval.joined_at), "left_at": iso(interval.left_at)})
            entry["_spans"].append((interval.joined_at, left))
        attendees = []
        for entry in people.values():
            total = _merged_seconds(entry.pop("_spans"))
            entry["total_s"] = round(total, 1)
            entry["percent"] = round(100.0 * total / span, 1) if span > 0 else 0.0
            attendees.append(entry)
        return {"session": session_wire(row), "duration_s": round(span, 1), "attendees": attendees}, role

    async def attendance_csv(self, actor: Actor, session_id: int) -> str:
        data, role = await self._attendance(actor, session_id)
        if role != "instructor":
            raise Forbidden("only instructors download attendance")
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["user_id", "username", "display_name", "joined_at", "left_at", "interval_s",
                    "total_s", "percent"])
        for a in data["attendees"]:
            for iv in a["intervals"]:
                joined = datetime.fromisoformat(iv["joined_at"].rstrip("Z"))
                left = datetime.fromisoformat((iv["left_at"] or data["session"]["ended_at"] or
                                               iso(utcnow())).rstrip("Z"))
                w.writerow([a["user"]["id"], _cell(a["user"]["username"]), _cell(a["user"]["display_name"]),
                            iv["joined_at"], iv["left_at"] or "", round((left - joined).total_seconds(), 1),
                            a["total_s"], a["percent"]])
        return out.getvalue()


def _merged_seconds(spans: list[tuple[datetime, datetime]]) -> float:
    """Length of the union of intervals: two devices at once count once."""
    total, cur_start, cur_end = 0.0, None, None
    for start, end in sorted(spans):
        if cur_end is None or start > cur_end:
            if cur_end is not None:
                total += (cur_end - cur_start).total_seconds()
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_end is not None:
        total += (cur_end - cur_start).total_seconds()
    return total


def _cell(value: str) -> str:
    """Neutralise spreadsheet formulas in user-controlled cells (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
