"""An instructor's classroom rules in a call beyond mute and remove (issue 16.4;
docs/PROTOCOL-ADDITIONS.md "Moderation"): lowering hands, and whether students may turn their
cameras on and share their screens.

- ``call.lower_hands {session, peer_id?}`` (instructors): that participant's raised hand, or
  every raised hand, goes down in every process; each lowered participant receives
  ``call.hand_lowered {session, by}``, everyone ``call.hand_changed``.
- ``call.permissions {session, video?, screen?}`` → ``{session}`` (instructors): whether
  students may send their camera / their screen in this call. Stored with the session, in its
  wire (``students_video``, ``students_screen``), announced to the participants as
  ``call.permissions_changed {session, by}`` and to the room as a system message. Turning one
  off turns it off for every student at once: their ``media`` state goes false, and in an SFU
  call Janus stops relaying their video (``moderate``) and their screen publisher is removed.
  While off, a student's ``call.media {video|screen: true}`` and ``sfu.publish {source:
  "screen"}`` are ``forbidden``, and a student's camera is moderated at Janus as it publishes.
  In a mesh call the server refuses the state changes and the clients stop sending (a mesh's
  media never reaches the server).
"""
from __future__ import annotations

import logging
from typing import Protocol

from server.calls.sessions import Calls, LiveSession, Participant
from server.calls.wire import session_wire
from server.db import calls as cq
from server.kernel.actor import Actor, parse_id
from server.kernel.errors import BadRequest, NotFound
from server.kernel.frames import event_frame
from server.realtime.notices import SessionControl
from server.rooms.membership import system_message

log = logging.getLogger("podium.calls")
ALLOWED = {"video": "allowed students to turn their cameras on", "screen": "allowed students to share their screens"}
STOPPED = {"video": "turned students' cameras off", "screen": "stopped students' screen sharing"}


def may_send(live: LiveSession, me: Participant, kind: str) -> bool:
    """May ``me`` send ``kind`` ("video" or "screen") in this call? Instructors (and the
    recorder) always; students while the session allows it."""
    if me.role in ("instructor", "recorder"):
        return True
    return getattr(live.row, f"students_{kind}") is not False


class MediaEnforcer(Protocol):
    """What stops a student's media at the media router (``SfuSignaling``)."""

    async def moderate_video(self, session_id: int, peer_id: str, mute: bool) -> None: ...

    async def stop_screen(self, session_id: int, peer_id: str) -> None: ...


class CallPolicy:
    def __init__(self, calls: Calls, enforcer: MediaEnforcer | None = None, lobby=None):
        """``lobby``: the waiting room (calls/lobby.py), which ``lobby`` in call.permissions
        turns on and off."""
        self.calls, self.enforcer, self.lobby = calls, enforcer, lobby

    async def _instructor_session(self, actor: Actor, msg: dict) -> LiveSession:
        live = await self.calls.load(parse_id(msg.get("session"), "session"))
        await self.calls.require_instructor(actor, live.room_id)
        return live

    # -- hands -------------------------------------------------------------------------------
    async def lower_hands(self, actor: Actor, msg: dict) -> dict:
        """``call.lower_hands {session, peer_id?}`` → ``{lowered}`` (how many, this process's
        count for a session spread over several)."""
        live = await self._instructor_session(actor, msg)
        peer = msg.get("peer_id")
        if peer is not None and not isinstance(peer, str):
            raise BadRequest("peer_id must be a string (or absent: every raised hand)")
        if peer is not None and peer not in live.participants and not await self._elsewhere(live, peer):
            raise NotFound("no such participant in this session")
        frame = event_frame({"type": "call.hand_lowered", "session": str(live.id), "by": str(actor.id)})
        if live.publish is not None:
            live.publish(SessionControl(live.id, "hands", peer), frame)
        lowered = await self.apply_hands(live, peer, frame)
        log.info("session %s: %s hand(s) lowered by %s", live.id, peer or "every", actor.id)
        return {"lowered": lowered}

    async def _elsewhere(self, live: LiveSession, peer: str) -> bool:
        directory = self.calls.directory
        return directory is not None and peer in await directory.entries(live.id)

    async def apply_hands(self, live: LiveSession, peer: str | None, frame: bytes) -> int:
        """This process's share: lower ``peer``'s hand (None: every raised hand here)."""
        targets = [p for p in live.participants.values() if p.hand and (peer is None or p.peer_id == peer)]
        for p in targets:
            p.hand = False
            p.conn.send_frame(frame)
            await self._changed(live, p, "call.hand_changed")
        return len(targets)

    # -- what students may send --------------------------------------------------------------
    async def permissions(self, actor: Actor, msg: dict) -> dict:
        """``call.permissions {session, video?, screen?, lobby?}`` → ``{session}``."""
        live = await self._instructor_session(actor, msg)
        change = {k: msg[k] for k in ("video", "screen") if k in msg}
        lobby = msg.get("lobby", live.row.lobby is True)
        if (not change and "lobby" not in msg) or not all(isinstance(v, bool) for v in [*change.values(), lobby]):
            raise BadRequest("send video, screen and/or lobby as booleans")
        video = change.get("video", may_send_default(live, "video"))
        screen = change.get("screen", may_send_default(live, "screen"))
        opened = live.row.lobby is True and not lobby
        async with self.calls.db.write() as s:
            await cq.set_policy(s, live.id, video, screen, lobby)
            notes = [await system_message(s, live.room_id, f"{actor.display_name} {(ALLOWED if on else STOPPED)[k]}")
                     for k, on in change.items() if on != may_send_default(live, k)]
        live.row.lobby = lobby
        if opened and self.lobby is not None:  # no more waiting room: everyone waiting comes in
            await self.lobby.opened(live, actor.id)
        for note in notes:
            self.calls.registry.broadcast(live.room_id, {"type": "message.new", "message": note})
        live.row.students_video, live.row.students_screen = video, screen
        frame = event_frame({"type": "call.permissions_changed", "session": session_wire(live.row, live.recording),
                             "by": str(actor.id)})
        if live.publish is not None:
            live.publish(SessionControl(live.id, "policy", None, video, screen), frame)
        await self.apply_policy(live, video, screen, frame)
        log.info("session %s: students' video %s, screen %s (by %s)", live.id, video, screen, actor.id)
        return {"session": session_wire(live.row, live.recording)}

    async def apply_policy(self, live: LiveSession, video: bool, screen: bool, frame: bytes) -> None:
        """This process's share: the session's rules, ``frame`` (``call.permissions_changed``)
        to its participants, and every student here who now sends what they may not stops
        (state, and at Janus)."""
        live.row.students_video, live.row.students_screen = video, screen
        live.send_local(frame)
        for p in list(live.participants.values()):
            if p.role in ("instructor", "recorder"):
                continue
            off = {k: False for k, allowed in (("video", video), ("screen", screen)) if not allowed and p.media.get(k)}
            if self.enforcer is not None:
                await self.enforcer.moderate_video(live.id, p.peer_id, not video)
                if not screen:
                    await self.enforcer.stop_screen(live.id, p.peer_id)
            if off:
                p.media.update(off)
                await self._changed(live, p, "call.media_changed")

    async def _changed(self, live: LiveSession, p: Participant, event: str) -> None:
        if self.calls.directory is not None:
            await self.calls.directory.put(live.id, p.wire())
        live.send({"type": event, "session": str(live.id), "participant": p.wire()})


def may_send_default(live: LiveSession, kind: str) -> bool:
    """The session's current rule for students' ``kind``."""
    return getattr(live.row, f"students_{kind}") is not False
