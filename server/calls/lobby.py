"""A call's waiting room (issue 16.3; docs/PROTOCOL-ADDITIONS.md "Waiting room"): with the
session's ``lobby`` on, people who are not the room's instructors wait until an instructor
admits them.

- ``call.join`` of someone not yet admitted answers ``{session, waiting: true}`` and puts the
  socket in the queue (it is not a participant: no media, no signals). The session's
  instructors receive ``call.lobby_changed {session, waiting}`` (how many wait) and read the
  queue with ``call.lobby {session}`` → ``{waiting: [{user, since}]}``.
- ``call.admit {session, user_id | all: true}`` (instructors): the user's waiting sockets get
  ``call.admitted {session, by}`` and join again (now admitted for the rest of the session —
  a reconnect does not queue them again); ``call.deny {session, user_id}``: they get
  ``call.denied {session, by}`` and leave the queue (they may knock again).
- A waiting socket that closes, or sends ``call.leave``, leaves the queue.
- Turning the lobby off (``call.permissions {lobby: false}``) admits everyone waiting.

Admitted: admitted in this session (this process, or — with Redis — any), or ever in the call
(an attendance interval: a student who was in before the lobby was turned on, or who rejoins).
With several processes the queue is a Redis hash per session and each control travels as a
``SessionControl`` notice that every process applies to its own waiting sockets.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from server.calls.sessions import Calls, LiveSession
from server.calls.wire import session_wire
from server.db.models import AttendanceInterval
from server.kernel.actor import Actor, parse_id
from server.kernel.clock import iso, utcnow
from server.kernel.errors import BadRequest, NotFound
from server.kernel.frames import event_frame
from server.realtime.notices import SessionControl

log = logging.getLogger("podium.calls")


@dataclass
class Waiter:
    conn: object
    user_id: int
    display_name: str
    since: datetime

    def wire(self) -> dict:
        return {"user": {"id": str(self.user_id), "display_name": self.display_name}, "since": iso(self.since)}


class Lobby:
    def __init__(self, calls: Calls):
        self.calls = calls
        self.waiting: dict[int, dict[str, Waiter]] = {}  # session → connection id → waiter
        self.admitted: dict[int, set[int]] = {}  # session → users admitted (as this process knows)

    # -- joining ------------------------------------------------------------------------------
    async def hold(self, conn, actor: Actor, live: LiveSession) -> dict | None:
        """None when ``actor`` may join now; else the waiting ack (the socket is queued)."""
        if await self.is_admitted(live, actor.id):
            return None
        queue = self.waiting.setdefault(live.id, {})
        if conn.connection_id not in queue:
            waiter = Waiter(conn, actor.id, actor.display_name, utcnow())
            queue[conn.connection_id] = waiter
            if self.calls.directory is not None:
                await self.calls.directory.put_waiting(live.id, conn.connection_id, waiter.wire())
            log.info("session %s: user %s waits in the lobby", live.id, actor.id)
            await self._changed(live)
        return {"session": session_wire(live.row, live.recording), "waiting": True}

    async def is_admitted(self, live: LiveSession, user_id: int) -> bool:
        if user_id in self.admitted.get(live.id, ()):
            return True
        if self.calls.directory is not None and await self.calls.directory.admitted(live.id, user_id):
            return True
        async with self.calls.db.read() as s:
            was_in = (await s.execute(select(AttendanceInterval.id).where(
                AttendanceInterval.session_id == live.id, AttendanceInterval.user_id == user_id).limit(1))).first()
        return was_in is not None

    # -- the instructors' side ------------------------------------------------------------------
    async def _instructor_session(self, actor: Actor, msg: dict) -> LiveSession:
        live = await self.calls.load(parse_id(msg.get("session"), "session"))
        await self.calls.require_instructor(actor, live.room_id)
        return live

    async def queue(self, actor: Actor, msg: dict) -> dict:
        """``call.lobby {session}`` → ``{waiting: [{user, since}]}``, oldest first, one entry per
        user (whatever their number of sockets)."""
        live = await self._instructor_session(actor, msg)
        return {"waiting": await self._everyone_waiting(live)}

    async def _everyone_waiting(self, live: LiveSession) -> list[dict]:
        wires = [w.wire() for w in self.waiting.get(live.id, {}).values()]
        if self.calls.directory is not None:
            wires = list((await self.calls.directory.waiting(live.id)).values())
        by_user: dict[str, dict] = {}
        for w in sorted(wires, key=lambda w: w["since"]):
            by_user.setdefault(w["user"]["id"], w)
        return list(by_user.values())

    async def admit(self, actor: Actor, msg: dict) -> dict:
        """``call.admit {session, user_id | all: true}`` → ``{admitted: [user ids]}``."""
        live = await self._instructor_session(actor, msg)
        if msg.get("all") is True:
            users = [int(w["user"]["id"]) for w in await self._everyone_waiting(live)]
        else:
            users = [parse_id(msg.get("user_id"), "user_id")]
            if not any(int(w["user"]["id"]) == users[0] for w in await self._everyone_waiting(live)):
                raise NotFound("this user is not waiting")
        await self.let_in(live, users, actor.id)
        return {"admitted": [str(u) for u in users]}

    async def let_in(self, live: LiveSession, users: list[int], by: int | None) -> None:
        """Admit ``users`` in every process: their waiting sockets are told to join."""
        self.admitted.setdefault(live.id, set()).update(users)
        if self.calls.directory is not None:
            await self.calls.directory.admit(live.id, users)
        frame = event_frame({"type": "call.admitted", "session": str(live.id), "by": str(by) if by else None})
        if live.publish is not None:
            live.publish(SessionControl(live.id, "admit", users=list(users)), frame)
        await self.apply(live, "admit", users, frame)
        log.info("session %s: users %s admitted by %s", live.id, users, by)

    async def deny(self, actor: Actor, msg: dict) -> dict:
        """``call.deny {session, user_id}`` → ``{}``: the user leaves the queue, told so."""
        live = await self._instructor_session(actor, msg)
        user = parse_id(msg.get("user_id"), "user_id")
        if not any(int(w["user"]["id"]) == user for w in await self._everyone_waiting(live)):
            raise NotFound("this user is not waiting")
        frame = event_frame({"type": "call.denied", "session": str(live.id), "by": str(actor.id)})
        if live.publish is not None:
            live.publish(SessionControl(live.id, "deny", users=[user]), frame)
        await self.apply(live, "deny", [user], frame)
        return {}

    async def apply(self, live: LiveSession, what: str, users: list[int], frame: bytes) -> None:
        """This process's share of an admit or deny: ``frame`` to the users' waiting sockets
        here, which leave the queue."""
        if what == "admit":
            self.admitted.setdefault(live.id, set()).update(users)
        queue = self.waiting.get(live.id, {})
        gone = [cid for cid, w in queue.items() if w.user_id in users]
        for cid in gone:
            queue.pop(cid).conn.send_frame(frame)
        await self._forget(live, gone)

    # -- leaving the queue ----------------------------------------------------------------------
    async def cancel(self, conn, session_id: int) -> bool:
        """``call.leave`` of a waiting socket: True when it was waiting (it is no longer)."""
        live = self.calls.live.get(session_id)
        queue = self.waiting.get(session_id, {})
        if live is None or queue.pop(conn.connection_id, None) is None:
            return False
        await self._forget(live, [conn.connection_id])
        return True

    def socket_closed(self, conn, rooms_left, user_gone) -> None:
        """Dispatcher hook: a waiting socket that closes leaves every queue."""
        for session_id, queue in list(self.waiting.items()):
            if queue.pop(conn.connection_id, None) is not None:
                live = self.calls.live.get(session_id)
                if live is not None:
                    self.calls.spawn(self._forget(live, [conn.connection_id]))

    async def _forget(self, live: LiveSession, conn_ids: list[str]) -> None:
        if not conn_ids:
            return
        if self.calls.directory is not None:
            await self.calls.directory.remove_waiting(live.id, conn_ids)
        await self._changed(live)

    async def _changed(self, live: LiveSession) -> None:
        """``call.lobby_changed {session, waiting}`` to the session's instructors, everywhere."""
        frame = event_frame({"type": "call.lobby_changed", "session": str(live.id),
                             "waiting": len(await self._everyone_waiting(live))})
        if live.publish is not None:
            live.publish(SessionControl(live.id, "lobby"), frame)
        self.tell_instructors(live, frame)

    @staticmethod
    def tell_instructors(live: LiveSession, frame: bytes) -> None:
        for p in list(live.participants.values()):
            if p.role == "instructor":
                p.conn.send_frame(frame)

    async def opened(self, live: LiveSession, by: int | None) -> None:
        """The lobby was turned off: everyone waiting comes in."""
        users = sorted({int(w["user"]["id"]) for w in await self._everyone_waiting(live)})
        if users:
            await self.let_in(live, users, by)

    async def ended(self, session_id: int) -> None:
        """The call ended: its queue goes (the waiting sockets hear ``call.ended`` in the room)."""
        self.waiting.pop(session_id, None)
        self.admitted.pop(session_id, None)


def parse_lobby(msg: dict) -> bool | None:
    value = msg.get("lobby")
    if value is not None and not isinstance(value, bool):
        raise BadRequest("lobby must be a boolean")
    return value
