"""Classroom controls in a call (PROTOCOL §2.2): media state and raised hands, and the
instructor's mute and remove, which reach a participant connected to any process."""
from __future__ import annotations

import logging

from server.calls.sessions import Calls, LiveSession
from server.calls.wire import parse_flag, parse_media_change, parse_peer_id
from server.kernel.actor import Actor, parse_id
from server.kernel.errors import BadRequest, NotFound
from server.kernel.frames import event_frame
from server.realtime.notices import PeerFrame, SessionBan

log = logging.getLogger("podium.calls")


class Controls:
    def __init__(self, calls: Calls):
        self.calls = calls

    async def media(self, conn, msg: dict) -> dict:
        live, me = self.calls.participant(conn, msg)
        me.media.update(parse_media_change(msg))
        if self.calls.directory is not None:
            await self.calls.directory.put(live.id, me.wire())
        live.send({"type": "call.media_changed", "session": str(live.id), "participant": me.wire()})
        return {"participant": me.wire()}

    async def hand(self, conn, msg: dict) -> dict:
        live, me = self.calls.participant(conn, msg)
        me.hand = parse_flag(msg, "raised")
        if self.calls.directory is not None:
            await self.calls.directory.put(live.id, me.wire())
        live.send({"type": "call.hand_changed", "session": str(live.id), "participant": me.wire()})
        return {"participant": me.wire()}

    async def _target(self, actor: Actor, msg: dict) -> tuple[LiveSession, str, dict]:
        """The session, and the target participant's peer_id and wire (it may be connected to
        another process)."""
        live = await self.calls.load(parse_id(msg.get("session"), "session"))
        await self.calls.require_instructor(actor, live.room_id)
        peer_id = parse_peer_id(msg)
        target = live.participants.get(peer_id)
        if target is not None:
            return live, peer_id, target.wire()
        if self.calls.directory is not None:
            entry = (await self.calls.directory.entries(live.id)).get(peer_id)
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
        if self.calls.directory is not None:
            await self.calls.directory.ban(live.id, user_id)
            live.publish(SessionBan(live.id, user_id), frame)
        await self.remove_local(live, user_id, frame)
        log.info("session %s: user %s removed by %s", live.id, user_id, actor.id)

    async def remove_local(self, live: LiveSession, user_id: int, frame: bytes) -> None:
        live.banned.add(user_id)
        for p in live.participants_of(user_id):
            p.conn.send_frame(frame)
            await self.calls.drop(live, p.peer_id)
