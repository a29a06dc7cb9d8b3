"""Classroom controls in a call (PROTOCOL §2.2): media state and raised hands, and the
instructor's mute and remove, which reach a participant connected to any process.

In a mesh call ``call.mute`` is a request (the target's client mutes itself). In an SFU call it
is enforced (docs/CALLS.md "Instructor controls"): the target's microphone is muted at Janus
(VideoRoom ``moderate`` on its audio), and — unless the instructor gave ``allow_unmute`` — it is
*held*: its own unmute (``call.unmute_self``, or ``call.media`` with audio on) is ``forbidden``
until the instructor allows it. The state is kept per user in the session
(``LiveSession.instructor_mutes``), so a second device, leaving and rejoining, or publishing
again does not escape it; the participant wire carries it (``muted_by_instructor``,
``may_unmute``), so late joiners see it too.
"""
from __future__ import annotations

import logging
from typing import Protocol

from server.calls.policy import may_send
from server.calls.sessions import Calls, LiveSession, Participant
from server.calls.wire import parse_flag, parse_media_change, parse_peer_id
from server.kernel.actor import Actor, parse_id
from server.kernel.errors import BadRequest, Forbidden, NotFound
from server.kernel.frames import event_frame
from server.realtime.notices import PeerFrame, SessionBan, SessionMute

log = logging.getLogger("podium.calls")


class AudioModerator(Protocol):
    """What enforces controls at the media router (``SfuSignaling``): the media path of a
    session, muting a participant's published audio, and kicking removed participants' feeds."""

    def media_path(self, session_id: int) -> str: ...

    async def moderate_audio(self, session_id: int, peer_id: str, mute: bool) -> None: ...

    async def kick(self, session_id: int, peer_ids: set[str]) -> None: ...


def parse_mute(msg: dict) -> tuple[str | None, bool]:
    """``call.mute``: ``peer_id`` (one participant) or ``all: true`` (every participant but the
    instructors and the recorder), and ``allow_unmute`` (default false) → (peer_id or None,
    allow_unmute)."""
    allow = msg.get("allow_unmute", False)
    if not isinstance(allow, bool):
        raise BadRequest("allow_unmute must be a boolean")
    everyone = msg.get("all", False)
    if not isinstance(everyone, bool):
        raise BadRequest("all must be a boolean")
    if everyone:
        if msg.get("peer_id") is not None:
            raise BadRequest("give peer_id or all, not both")
        return None, allow
    return parse_peer_id(msg), allow


class Controls:
    def __init__(self, calls: Calls):
        self.calls = calls
        self.moderator: AudioModerator | None = None

    def enforce_with(self, moderator: AudioModerator) -> None:
        """Mutes are enforced through ``moderator`` in sessions whose media path is ``sfu``."""
        self.moderator = moderator

    def enforced(self, session_id: int) -> bool:
        return self.moderator is not None and self.moderator.media_path(session_id) == "sfu"

    async def media(self, conn, msg: dict) -> dict:
        live, me = self.calls.participant(conn, msg)
        change = parse_media_change(msg)
        for kind in ("video", "screen"):
            if change.get(kind) and not may_send(live, me, kind):
                raise Forbidden("the instructor turned "
                                + ("cameras" if kind == "video" else "screen sharing") + " off for students in this call")
        if change.get("audio") and me.muted_by_instructor:
            await self._unmute_self(live, me)  # forbidden while held
        me.media.update(change)
        return await self._changed(live, me)

    async def unmute_self(self, conn, msg: dict) -> dict:
        """``call.unmute_self {session}`` → ``{participant}``: the sender's microphone is on
        again (audio relayed by Janus again); ``forbidden`` while the instructor holds it."""
        live, me = self.calls.participant(conn, msg)
        if me.muted_by_instructor:
            await self._unmute_self(live, me)
        me.media["audio"] = True
        return await self._changed(live, me)

    async def _unmute_self(self, live: LiveSession, me: Participant) -> None:
        """The user's microphone is released at Janus on every device (in every process);
        ``me``'s new state goes out with the caller's own ``call.media_changed``."""
        if not me.may_unmute:
            raise Forbidden("the instructor muted you: wait until they allow you to unmute")
        me.muted_by_instructor = False
        if self.moderator is not None:
            await self.moderator.moderate_audio(live.id, me.peer_id, False)
        if live.publish is not None:
            live.publish(SessionMute(live.id, [me.user_id], True, False), b"")
        if self.calls.directory is not None:
            await self.calls.directory.unmute(live.id, me.user_id)
        await self.apply_mute(live, {me.user_id}, True, False, b"")

    async def _changed(self, live: LiveSession, p: Participant) -> dict:
        if self.calls.directory is not None:
            await self.calls.directory.put(live.id, p.wire())
        live.send({"type": "call.media_changed", "session": str(live.id), "participant": p.wire()})
        return {"participant": p.wire()}

    async def hand(self, conn, msg: dict) -> dict:
        live, me = self.calls.participant(conn, msg)
        me.hand = parse_flag(msg, "raised")
        if self.calls.directory is not None:
            await self.calls.directory.put(live.id, me.wire())
        live.send({"type": "call.hand_changed", "session": str(live.id), "participant": me.wire()})
        return {"participant": me.wire()}

    async def _instructor_session(self, actor: Actor, msg: dict) -> LiveSession:
        live = await self.calls.load(parse_id(msg.get("session"), "session"))
        await self.calls.require_instructor(actor, live.room_id)
        return live

    async def _target(self, actor: Actor, msg: dict) -> tuple[LiveSession, str, dict]:
        """The session, and the target participant's peer_id and wire (it may be connected to
        another process)."""
        live = await self._instructor_session(actor, msg)
        peer_id = parse_peer_id(msg)
        return (live, peer_id, await self._wire_of(live, peer_id))

    async def _wire_of(self, live: LiveSession, peer_id: str) -> dict:
        target = live.participants.get(peer_id)
        if target is not None:
            return target.wire()
        if self.calls.directory is not None:
            entry = (await self.calls.directory.entries(live.id)).get(peer_id)
            if entry is not None:
                return entry[0]
        raise NotFound("no such participant in this session")

    async def _everyone(self, live: LiveSession) -> dict[str, dict]:
        """Every participant's wire by peer_id, in every process."""
        out = {}
        if self.calls.directory is not None:
            out = {pid: wire for pid, (wire, _) in (await self.calls.directory.entries(live.id)).items()}
        out.update({p.peer_id: p.wire() for p in live.participants.values()})
        return out

    async def mute(self, actor: Actor, msg: dict) -> None:
        """``call.mute {session, peer_id | all: true, allow_unmute?}``."""
        live = await self._instructor_session(actor, msg)
        peer_id, allow = parse_mute(msg)
        if peer_id is not None:
            targets = {peer_id: await self._wire_of(live, peer_id)}
            if targets[peer_id]["recorder"]:
                raise BadRequest("the recorder has no microphone to mute")
        else:
            targets = {pid: w for pid, w in (await self._everyone(live)).items()
                       if not w["recorder"] and w["user"]["role"] != "instructor"}
        event = {"type": "call.mute_requested", "session": str(live.id), "by": str(actor.id)}
        if not self.enforced(live.id):  # a mesh call: a request to each target, as before
            frame = event_frame(event)
            for pid in targets:
                target = live.participants.get(pid)
                if target is not None:
                    target.conn.send_frame(frame)
                else:
                    live.publish(PeerFrame(pid), frame)
            return
        frame = event_frame({**event, "enforced": True, "allow_unmute": allow})
        users = {int(w["user"]["id"]) for w in targets.values()}
        if self.calls.directory is not None:  # and a process that loads the session later
            await self.calls.directory.set_mutes(live.id, users, allow)
        if live.publish is not None:  # every process applies it to its own participants
            live.publish(SessionMute(live.id, sorted(users), allow, True), frame)
        await self.apply_mute(live, users, allow, True, frame)
        log.info("session %s: %s muted by %s (allow_unmute %s)", live.id,
                 peer_id or "everyone", actor.id, allow)

    async def apply_mute(self, live: LiveSession, users: set[int], allow: bool, mute: bool,
                         frame: bytes) -> None:
        """This process's share of an enforced mute (``mute``: of ``users``, held unless
        ``allow``; each of their participants here gets ``frame``) or of a user's own unmute
        (``mute`` false: their other devices here are unmuted at Janus too)."""
        for user_id in users:
            if mute:
                live.instructor_mutes[user_id] = allow
            else:
                live.instructor_mutes.pop(user_id, None)
        for p in [p for p in live.participants.values() if p.user_id in users and not p.recorder]:
            if mute:
                p.conn.send_frame(frame)
                p.media["audio"] = False
            elif not p.muted_by_instructor:
                continue
            p.muted_by_instructor, p.may_unmute = mute, allow or not mute
            if self.moderator is not None:
                await self.moderator.moderate_audio(live.id, p.peer_id, mute)
            await self._changed(live, p)

    async def remove(self, actor: Actor, msg: dict) -> None:
        """Remove a user from the call — every device of theirs, in every process — and keep
        them out of it until it ends."""
        live, _, wire = await self._target(actor, msg)
        if wire["recorder"]:
            raise BadRequest("stop the recording instead of removing the recorder")
        user_id = int(wire["user"]["id"])
        devices = {pid for pid, w in (await self._everyone(live)).items() if w["user"]["id"] == wire["user"]["id"]}
        frame = event_frame({"type": "call.removed", "session": str(live.id), "by": str(actor.id)})
        if self.calls.directory is not None:
            await self.calls.directory.ban(live.id, user_id)
            live.publish(SessionBan(live.id, user_id), frame)
        await self.remove_local(live, user_id, frame)
        if self.enforced(live.id):  # their feeds published through any process leave Janus now
            await self.moderator.kick(live.id, devices)
        log.info("session %s: user %s removed by %s", live.id, user_id, actor.id)

    async def remove_local(self, live: LiveSession, user_id: int, frame: bytes) -> None:
        live.banned.add(user_id)
        for p in live.participants_of(user_id):
            p.conn.send_frame(frame)
            await self.calls.drop(live, p.peer_id)
