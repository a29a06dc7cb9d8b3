"""Joining a live call (PROTOCOL §2.2 ``call.join``), and taking an earlier peer id back with a
resume token (calls/resume.py). Mixed into ``Calls`` (sessions.py), whose state and hooks it
uses."""
from __future__ import annotations

import logging
from typing import Awaitable, Callable

from server.calls.ice import ice_servers
from server.calls.live import LiveSession, Participant
from server.calls.resume import ResumeTokens
from server.calls.wire import parse_join_media, session_wire
from server.config import Config
from server.db import calls as cq
from server.db.engine import Database
from server.kernel.actor import Actor
from server.kernel.clock import utcnow
from server.kernel.errors import Conflict, Forbidden
from server.realtime.call_directory import CallDirectory
from server.rooms.service import Rooms

log = logging.getLogger("podium.calls")


class Joining:
    """``join`` and what it reads; ``load``, ``drop`` and ``_joined`` are ``Calls``'."""

    db: Database
    rooms: Rooms
    config: Config
    directory: CallDirectory | None
    live: dict[int, LiveSession]
    tokens: ResumeTokens
    lobby: object
    ringing: object
    _recorder_joined: list[Callable[[object, int], Awaitable[None]]]
    _resumed: list[Callable[[object, LiveSession, Participant], Awaitable[dict]]]
    _recording_of: Callable[[int], Awaitable[dict | None]] | None
    _media_path: Callable[[int], str] | None

    async def join(self, conn, actor: Actor, session_id: int, media=None, resume=None) -> dict:
        """Join as a participant; ``media`` ({audio, video, screen} booleans) is the state the
        others see from the start, so nobody flashes as muted before the first call.media.
        ``resume``: the ``resume`` token of this user's earlier join: the same peer id again
        (when no live socket elsewhere holds it), and the hooks of ``on_resumed``."""
        media = parse_join_media(media)
        live = await self.load(session_id)
        if actor.role == "recorder":
            role = "recorder"
        else:
            role = await self.rooms.role(live.room_id, actor)
            if actor.id in live.banned or (self.directory is not None
                                           and await self.directory.banned(session_id, actor.id)):
                raise Forbidden("you were removed from this call")
            if self.directory is not None and actor.id not in live.instructor_mutes:
                # muted through another process, maybe before this one knew the session (SFU)
                allow = await self.directory.mute_of(session_id, actor.id)
                if allow is not None:
                    live.instructor_mutes[actor.id] = allow
        wanted = self.tokens.check(resume, session_id, actor.id) if resume is not None and role != "recorder" else None
        me = live.of_conn(conn)
        if (me is None and self.lobby is not None and live.row.lobby is True
                and role not in ("instructor", "recorder")):
            held = await self.lobby.hold(conn, actor, live)  # a waiting room: until admitted
            if held is not None:
                return held
        resumed = False
        if me is None:
            peer_id = conn.connection_id
            if wanted is not None and await self._may_resume(live, wanted):
                peer_id, resumed = wanted, True
            now = utcnow()
            interval_id = None
            if role != "recorder":
                async with self.db.write() as s:
                    interval_id = await cq.open_interval(s, session_id, actor.id, peer_id, now)
            ended = session_id not in self.live  # ended while we were writing
            gone = not conn.is_open()
            if ended or gone:  # a socket that died meanwhile must not stay as a ghost
                if interval_id is not None:
                    async with self.db.write() as s:
                        await cq.close_interval(s, interval_id, live.row.ended_at or now)
                if ended:
                    raise Conflict("the call has ended")
                raise Conflict("the connection closed while joining")
            me = Participant(conn, actor.id, actor.display_name, role, now, interval_id,
                             resumed_as=peer_id if resumed else None)
            me.media.update(media)
            if role != "recorder" and actor.id in live.instructor_mutes:  # still muted (SFU)
                me.muted_by_instructor, me.may_unmute = True, live.instructor_mutes[actor.id]
                me.media["audio"] = False
            live.participants[me.peer_id] = me
            if resumed:
                live.resumed[conn.connection_id] = me.peer_id
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
            elif self.ringing is not None:  # someone rung came in: the ringing stops everywhere
                await self.ringing.joined(session_id, actor.id)
        extra = {}
        for hook in self._resumed if resumed else ():
            extra.update(await hook(conn, live, me))
        servers, ttl = ice_servers(self.config, actor.id)
        recording = live.recording
        if self.directory is not None and self._recording_of is not None:  # may be known only elsewhere
            recording = await self._recording_of(session_id)
        return {"session": session_wire(live.row, recording), "peer_id": me.peer_id,
                "participants": await self._others(live, me.peer_id),
                "ice_servers": servers, "ice_ttl_s": ttl,
                "media_path": self._media_path(session_id) if self._media_path else "mesh",
                # SFU calls: the joiner's own instructor mute (calls/controls.py)
                "muted_by_instructor": me.muted_by_instructor, "may_unmute": me.may_unmute,
                # resuming after a dropped socket (calls/resume.py)
                "resume": None if me.recorder else self.tokens.make(session_id, me.user_id, me.peer_id),
                "resumed": resumed, **extra}

    async def _may_resume(self, live: LiveSession, peer_id: str) -> bool:
        """May a join take ``peer_id`` back? Yes unless a live socket of another process
        holds it; one of this process whose close was not noticed yet is replaced (dropped)."""
        if peer_id in live.participants:
            await self.drop(live, peer_id, resumable=True)
            return True
        if self.directory is not None:
            entry = (await self.directory.entries(live.id)).get(peer_id)
            if entry is not None and entry[1] != self.directory.origin:
                return False
        return True

    async def everyone(self, live: LiveSession) -> list[dict]:
        """Every participant's wire, in every process."""
        return await self._others(live, "")

    async def _others(self, live: LiveSession, me: str) -> list[dict]:
        """Everyone else in the call: from every process with REDIS_URL, else this one."""
        if self.directory is None:
            return [p.wire() for p in live.participants.values() if p.peer_id != me]
        local = {p.peer_id: p.wire() for p in live.participants.values()}
        everyone = {pid: wire for pid, (wire, _) in (await self.directory.entries(live.id)).items()}
        everyone.update(local)  # this process's view of its own participants is the freshest
        return [w for pid, w in everyone.items() if pid != me]
