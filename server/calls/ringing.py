"""Ringing (issue 19.1; docs/PROTOCOL-ADDITIONS.md "Ringing"): a call placed to people rings
them on every device where they are signed in, until they answer, decline, or
``RING_TIMEOUT_S`` (30 s) passes.

- Starting a call in a direct room rings the other person. In a group or course room the
  room's instructors (any member in a group room) ring the members not in the call with
  ``call.ring {session, user_ids?}`` → ``{ringing, busy}``.
- The callee's sockets, in every process, get ``call.ringing {session, room, caller:
  {user wire}, expires_at, ring_s}``; ``call.answer {session, accept}`` from any of them stops the ringing
  on all of them (``call.ring_stopped {session, reason: answered|declined}``) and tells the
  caller ``call.ring_answered`` or ``call.declined {session, user}``; the callee who accepts
  then joins as usual.
- Unanswered: the caller gets ``call.no_answer {session, user, display_name}``, the
  callee's sockets ``call.ring_stopped {reason: missed}``, and the room a system message
  "Missed call from Ana" (the callee's unread badge counts it). The same when the call ends,
  or the caller leaves before anyone answers (``reason: cancelled``).
- Someone already in another live call is not rung: the caller gets ``call.busy {session,
  user, display_name}`` and the callee a missed-call message.
- In a group or course room one ``call.ring`` leaves one message, once all its rings are
  over, naming who missed it: "Missed call from Ana: Ben, Cleo (in another call)" (none when
  everyone answered or declined), not one per member.

The ring's timer lives in the process that rang; an answer reaching another process travels
as a ``SessionControl`` notice ("answered") that stops it there. Who is in a call is read from
SQL (open attendance intervals), so "busy" holds across processes.

A socket of the callee that connects while they are rung (a device signed in just now, a
reconnect) rings too: the rings are listed per callee — in memory, and with Redis in a hash
``<prefix>:rings:<user>`` (field session → the frame and its end, expiring with the ring) that
the process keeping the ring writes and clears — and sent after the socket's ``hello`` with
``ring_s`` the time left.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select

from server.calls.sessions import Calls, LiveSession
from server.db import rooms as rq
from server.db.models import AttendanceInterval, CallSession, Membership, Room, User
from server.kernel.actor import Actor, parse_id
from server.kernel.clock import iso, utcnow
from server.kernel.errors import BadRequest, Forbidden
from server.kernel.frames import event_frame
from server.kernel.wire import user_wire
from server.realtime.notices import SessionControl
from server.rooms.membership import room_role, system_message

log = logging.getLogger("podium.calls")
MAX_RING = 200


@dataclass
class Batch:
    """The people one ``call.ring`` of a group or course room rang: their room gets one
    missed-call message, naming those who missed it, once every ring of the batch is over."""
    room_id: int
    caller: int
    caller_name: str
    pending: set[int] = field(default_factory=set)
    missed: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)


@dataclass
class Ring:
    session_id: int
    room_id: int
    callee: int
    caller: int
    caller_name: str
    frame: dict
    until: float  # time.time() when it stops ringing
    timer: asyncio.TimerHandle | None = None
    callee_name: str = ""
    batch: Batch | None = None  # group and course rooms; a direct room's miss is its own message


class Ringing:
    def __init__(self, calls: Calls, timeout_s: float):
        self.calls, self.timeout_s = calls, timeout_s
        self.rings: dict[tuple[int, int], Ring] = {}  # (session, callee) → the ring this process keeps

    def _send(self, user_id: int, event: dict) -> None:
        self.calls.registry.send_user(user_id, event_frame(event))

    # -- who is rung now, for sockets that connect meanwhile --------------------------------------
    def _rings_key(self, user_id: int) -> str:
        return f"{self.calls.directory.prefix}:rings:{user_id}"

    async def _remember(self, ring: "Ring") -> None:
        d = self.calls.directory
        if d is None:
            return
        key = self._rings_key(ring.callee)
        try:
            await d.redis.hset(key, str(ring.session_id), json.dumps({"f": ring.frame, "until": ring.until}))
            await d.redis.expire(key, int(self.timeout_s) + 5)
        except Exception as e:  # the ring itself goes on; only late sockets miss it
            log.warning("listing a ring in Redis failed: %r", e)

    def _forget(self, ring: "Ring") -> None:
        d = self.calls.directory
        if d is None:
            return

        async def forget() -> None:
            try:
                await d.redis.hdel(self._rings_key(ring.callee), str(ring.session_id))
            except Exception as e:  # the entry's ``until`` has passed soon anyway
                log.warning("clearing a ring in Redis failed: %r", e)
        self.calls.spawn(forget())

    async def pending(self, user_id: int) -> list[dict]:
        """The ``call.ringing`` frames of the rings of ``user_id`` not over yet (any process),
        each with ``ring_s`` the seconds left."""
        now = time.time()
        found: dict[str, tuple[dict, float]] = {}
        for r in self.rings.values():
            if r.callee == user_id:
                found[str(r.session_id)] = (r.frame, r.until)
        if self.calls.directory is not None:
            raw = await self.calls.directory.redis.hgetall(self._rings_key(user_id))
            for k, v in raw.items():
                entry = json.loads(v)
                found.setdefault(k.decode() if isinstance(k, bytes) else str(k), (entry["f"], entry["until"]))
        return [{**frame, "ring_s": round(until - now, 1)} for frame, until in found.values() if until - now > 0.5]

    def socket_authenticated(self, conn, first: bool) -> None:
        """A socket of a user who is being rung rings too (sent after its ``hello``)."""
        async def ring_it() -> None:
            try:
                frames = await self.pending(conn.user_id)
            except Exception as e:
                log.warning("reading the rings of user %s failed: %r", conn.user_id, e)
                return
            for frame in frames:
                if conn.is_open():
                    conn.send_frame(event_frame(frame))
        if self.rings or self.calls.directory is not None:
            self.calls.spawn(ring_it())

    # -- ringing ------------------------------------------------------------------------------
    async def started(self, actor: Actor, live: LiveSession, kind: str) -> None:
        """``call.start`` in a direct room: ring the other member."""
        if kind != "direct":
            return
        async with self.calls.db.read() as s:
            others = list((await s.execute(select(Membership.user_id).where(
                Membership.room_id == live.room_id, Membership.user_id != actor.id))).scalars())
        await self.ring_users(actor, live, others)

    async def ring(self, actor: Actor, msg: dict) -> dict:
        """``call.ring {session, user_ids?}`` → ``{ringing: [ids], busy: [ids]}``."""
        live = await self.calls.load(parse_id(msg.get("session"), "session"))
        async with self.calls.db.read() as s:
            room, role = await room_role(s, live.room_id, actor)
            if actor.role == "recorder" or (role != "instructor" and room.kind != "group"):
                raise Forbidden("only the room's instructors ring its members")
            members = set((await s.execute(select(Membership.user_id).where(Membership.room_id == live.room_id))).scalars())
        wanted = msg.get("user_ids")
        if wanted is None:
            targets = members - {actor.id}
        else:
            if not isinstance(wanted, list) or not wanted or len(wanted) > MAX_RING:
                raise BadRequest(f"user_ids must be a list of 1 to {MAX_RING} member ids")
            targets = {parse_id(u, "user_ids") for u in wanted}
            if not targets <= members:
                raise BadRequest("user_ids must be members of the room")
            targets.discard(actor.id)
        in_call = {int(w["user"]["id"]) for w in await self.calls.everyone(live)}
        return await self.ring_users(actor, live, sorted(targets - in_call))

    async def ring_users(self, actor: Actor, live: LiveSession, users: list[int]) -> dict:
        busy = await self._busy(live.id, users)
        ringing = [u for u in users if u not in busy]
        expires = utcnow() + timedelta(seconds=self.timeout_s)
        caller = {"id": str(actor.id), "display_name": actor.display_name}
        async with self.calls.db.read() as s:
            me = await s.get(User, actor.id)
            if me is not None:
                caller = user_wire(me)
            room = await s.get(Room, live.room_id)
            names = dict((await s.execute(select(User.id, User.display_name).where(User.id.in_(users)))).all()) if users else {}
        batch = None
        if room is not None and room.kind != "direct":
            batch = Batch(live.room_id, actor.id, actor.display_name, busy=[names.get(u, "?") for u in sorted(busy)])
        for u in ringing:
            key = (live.id, u)
            old = self.rings.pop(key, None)
            if old is not None:  # rung again before this ring ended: the new one counts
                if old.timer is not None:
                    old.timer.cancel()
                await self._settle(old, missed=False)
            frame = {"type": "call.ringing", "session": str(live.id), "room": str(live.room_id),
                     "caller": caller, "expires_at": iso(expires), "ring_s": self.timeout_s}
            ring = Ring(live.id, live.room_id, u, actor.id, actor.display_name, frame, time.time() + self.timeout_s,
                        callee_name=names.get(u, "?"), batch=batch)
            if batch is not None:
                batch.pending.add(u)
            ring.timer = asyncio.get_running_loop().call_later(self.timeout_s, lambda k=key: self.calls.spawn(self._unanswered(k)))
            self.rings[key] = ring
            self._send(u, frame)
            await self._remember(ring)
        for u in busy:
            if batch is None:
                await self._missed(live.room_id, actor.id, actor.display_name, busy=True)
            self._send(actor.id, {"type": "call.busy", "session": str(live.id), "user": str(u),
                                  "display_name": names.get(u)})
        if batch is not None and not batch.pending:
            await self._flush(batch)
        if ringing or busy:
            log.info("session %s: %s rings %s (busy: %s)", live.id, actor.id, ringing, sorted(busy))
        return {"ringing": [str(u) for u in ringing], "busy": [str(u) for u in sorted(busy)]}

    async def _busy(self, session_id: int, users: list[int]) -> set[int]:
        """Those of ``users`` in another live call now (open intervals, any process)."""
        if not users:
            return set()
        async with self.calls.db.read() as s:
            rows = await s.execute(select(AttendanceInterval.user_id).join(
                CallSession, CallSession.id == AttendanceInterval.session_id).where(
                AttendanceInterval.user_id.in_(users), AttendanceInterval.left_at.is_(None),
                CallSession.ended_at.is_(None), CallSession.id != session_id))
            return set(rows.scalars())

    # -- answering ------------------------------------------------------------------------------
    async def answer(self, conn, msg: dict) -> dict:
        """``call.answer {session, accept}`` (the callee, from any device) → ``{}``."""
        session_id = parse_id(msg.get("session"), "session")
        accept = msg.get("accept")
        if not isinstance(accept, bool):
            raise BadRequest("accept must be a boolean")
        actor = conn.actor
        live = await self.calls.load(session_id)
        async with self.calls.db.read() as s:
            await room_role(s, live.room_id, actor)  # a member of the room
        reason = "answered" if accept else "declined"
        self._send(actor.id, {"type": "call.ring_stopped", "session": str(session_id), "reason": reason})
        if live.publish is not None:
            live.publish(SessionControl(session_id, "answered", peer=reason, users=[actor.id]), b"")
        await self.stopped(session_id, actor.id, reason, actor.display_name)
        return {}

    async def stopped(self, session_id: int, callee: int, reason: str, callee_name: str | None = None) -> None:
        """The callee answered (here or through another process): this process's ring of them
        stops, and its caller hears how. ``reason`` "joined": they joined from a socket of
        another process without answering; their devices hear it from here (answered)."""
        ring = self.rings.pop((session_id, callee), None)
        if ring is None:
            return
        self._forget(ring)
        if reason == "joined":
            reason = "answered"
            self._send(callee, {"type": "call.ring_stopped", "session": str(session_id), "reason": reason})
        if ring.timer is not None:
            ring.timer.cancel()
        kind = "call.ring_answered" if reason == "answered" else "call.declined"
        self._send(ring.caller, {"type": kind, "session": str(session_id), "user": str(callee),
                                 "display_name": callee_name})
        await self._settle(ring, missed=False)

    async def _unanswered(self, key: tuple[int, int], reason: str = "missed") -> None:
        ring = self.rings.pop(key, None)
        if ring is None:
            return
        self._forget(ring)
        if ring.timer is not None:
            ring.timer.cancel()
        # The missed call is stored first: whoever hears of it can read it.
        if ring.batch is None:
            await self._missed(ring.room_id, ring.caller, ring.caller_name)
        else:
            await self._settle(ring, missed=True)
        self._send(ring.callee, {"type": "call.ring_stopped", "session": str(ring.session_id), "reason": reason})
        self._send(ring.caller, {"type": "call.no_answer", "session": str(ring.session_id), "user": str(ring.callee),
                                 "display_name": ring.callee_name})

    async def _settle(self, ring: Ring, missed: bool) -> None:
        """A ring of a batch is over: the batch's message once all of them are."""
        batch = ring.batch
        if batch is None or ring.callee not in batch.pending:
            return
        batch.pending.discard(ring.callee)
        if missed:
            batch.missed.append(ring.callee_name)
        if not batch.pending:
            await self._flush(batch)

    async def _flush(self, batch: Batch) -> None:
        """"Missed call from Ana: Ben, Cleo (in another call)" — nothing when all answered."""
        who = sorted(batch.missed) + [f"{n} (in another call)" for n in sorted(batch.busy)]
        if who:
            await self._post(batch.room_id, batch.caller, f"Missed call from {batch.caller_name}: {', '.join(who)}")

    async def _missed(self, room_id: int, caller: int, caller_name: str, busy: bool = False) -> None:
        await self._post(room_id, caller, f"Missed call from {caller_name}" + (" (you were in another call)" if busy else ""))

    async def _post(self, room_id: int, caller: int, text: str) -> None:
        """The missed-call message. The caller knows of their own call: it is not unread for
        them (their read position moves onto it if they had read everything before it)."""
        async with self.calls.db.write() as s:
            note = await system_message(s, room_id, text)
            read = await rq.read_onto(s, room_id, caller, note["seq"])
        self.calls.registry.broadcast(room_id, {"type": "message.new", "message": note})
        if read is not None:
            self.calls.registry.broadcast(room_id, {"type": "read", "room": str(room_id), "user_id": str(caller),
                                                    "seq": read})

    # -- the call moves on -------------------------------------------------------------------------
    async def joined(self, session_id: int, user_id: int) -> None:
        """Someone rung joined (from any device): the ring is answered. A ring kept by another
        process hears it through a ``SessionControl`` "answered" notice (peer "joined")."""
        if (session_id, user_id) in self.rings:
            self._send(user_id, {"type": "call.ring_stopped", "session": str(session_id), "reason": "answered"})
            await self.stopped(session_id, user_id, "answered")
            return
        live = self.calls.live.get(session_id)
        if live is not None and live.publish is not None:
            live.publish(SessionControl(session_id, "answered", peer="joined", users=[user_id]), b"")

    async def caller_left(self, session_id: int, caller: int) -> None:
        """The caller left (or the call ended) before an answer: their rings are cancelled."""
        for key in [k for k, r in self.rings.items() if r.session_id == session_id and r.caller == caller]:
            await self._unanswered(key, "cancelled")

    async def ended(self, session_id: int) -> None:
        for key in [k for k in self.rings if k[0] == session_id]:
            await self._unanswered(key, "cancelled")

    def close(self) -> None:
        for ring in self.rings.values():
            if ring.timer is not None:
                ring.timer.cancel()
        self.rings.clear()

