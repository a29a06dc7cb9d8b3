"""Breakout rooms (issue 16.2; docs/PROTOCOL-ADDITIONS.md "Breakout rooms"): an instructor
splits a call's students into groups, each with a room of its own (chat) and a call of its own
(mesh or through Janus, as any call), optionally for a set time; then brings everyone back.

- ``POST /api/sessions/{id}/breakouts {count | groups, duration_s?}`` (the room's
  instructors) → ``{breakout}``. ``count`` (2–50): the call's students are shuffled and dealt
  into that many groups; ``groups``: ``[[user id, …], …]`` chosen by the instructor (each a
  member of the room, in one group at most). Each group becomes a ``group`` room named
  "<room> — Group N" whose members are its students and the room's instructors, with a live
  call. Every assigned student receives ``call.breakout_started {session, breakout, group}``
  (their client moves to the group's call); instructors receive it with ``group: null``.
- ``POST /api/breakouts/{id}/broadcast {text}``: an announcement from the instructor in every
  group's room.
- ``POST /api/breakouts/{id}/end`` (or the timer, ``duration_s`` after the start): every group
  call ends, and everyone assigned or in the main call receives ``call.breakout_ended
  {session, breakout}``: their clients go back to the main call. Ending twice is harmless.
- ``GET /api/sessions/{id}/breakouts`` → ``{breakout}`` (the open one, or null): members of
  the room; for a student only their own group is listed.

A student cannot join a group's call they were not assigned to: they are not a member of its
room. Attendance of the main session counts the time in its breakout groups' calls
(calls/attendance.py). The timer is kept by the process that started the breakout and by any
process that starts while it runs (``recover``); ending is one conditional UPDATE, so only
one of them acts.
"""
from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import select, update

from server.calls.sessions import Calls
from server.calls.wire import session_wire
from server.db import calls as cq
from server.db import rooms as rq
from server.db.engine import Database
from server.db.models import Breakout, BreakoutGroup, Membership, Room
from server.kernel.actor import Actor
from server.kernel.clock import iso, utcnow
from server.kernel.errors import BadRequest, Conflict, NotFound
from server.kernel.frames import event_frame as _frame
from server.realtime.registry import Registry
from server.rooms.membership import room_role, system_message

log = logging.getLogger("podium.calls")
MAX_GROUPS = 50
MIN_DURATION_S, MAX_DURATION_S = 5, 4 * 3600
MAX_BROADCAST = 2000


def parse_plan(body: dict) -> tuple[int | None, list[list[int]] | None, int | None]:
    """(count, groups, duration_s) of a start request; BadRequest otherwise."""
    if not isinstance(body, dict):
        raise BadRequest("send {count} or {groups}, and optionally duration_s")
    count, groups, duration = body.get("count"), body.get("groups"), body.get("duration_s")
    if (count is None) == (groups is None):
        raise BadRequest("send count (a number of groups) or groups (lists of user ids), not both")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or not 2 <= count <= MAX_GROUPS):
        raise BadRequest(f"count must be a whole number from 2 to {MAX_GROUPS}")
    if groups is not None:
        if (not isinstance(groups, list) or not 1 <= len(groups) <= MAX_GROUPS
                or not all(isinstance(g, list) and g for g in groups)):
            raise BadRequest(f"groups must be 1 to {MAX_GROUPS} non-empty lists of user ids")
        try:
            groups = [[int(u) for u in g] for g in groups]
        except (TypeError, ValueError):
            raise BadRequest("groups must hold user ids") from None
        flat = [u for g in groups for u in g]
        if len(flat) != len(set(flat)):
            raise BadRequest("a user can be in one group only")
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int)
                                 or not MIN_DURATION_S <= duration <= MAX_DURATION_S):
        raise BadRequest(f"duration_s must be a whole number of seconds from {MIN_DURATION_S} to {MAX_DURATION_S}")
    return count, groups, duration


def deal(users: list[int], count: int, rng: random.Random) -> list[list[int]]:
    """``users`` shuffled and dealt into ``count`` groups (as even as can be; none empty
    when there are enough users)."""
    order = list(users)
    rng.shuffle(order)
    groups: list[list[int]] = [[] for _ in range(min(count, max(1, len(order))))]
    for i, u in enumerate(order):
        groups[i % len(groups)].append(u)
    return groups


class Breakouts:
    def __init__(self, db: Database, calls: Calls, registry: Registry,
                 announce: Callable[[Actor, int, str], Awaitable[None]], rng: random.Random | None = None):
        self.db, self.calls, self.registry, self.announce = db, calls, registry, announce
        self.rng = rng or random.Random()
        self._timers: dict[int, asyncio.TimerHandle] = {}

    # -- starting ---------------------------------------------------------------------------------
    async def start(self, actor: Actor, session_id: int, body: dict) -> dict:
        count, groups, duration = parse_plan(body)
        live = await self.calls.load(session_id)
        await self.calls.require_instructor(actor, live.room_id)
        if count is not None:
            students = sorted({int(w["user"]["id"]) for w in await self.calls.everyone(live)
                               if not w["recorder"] and w["user"]["role"] != "instructor"})
            if not students:
                raise Conflict("no students are in the call to split")
            groups = deal(students, count, self.rng)
        now = utcnow()
        async with self.db.write() as s:
            if (await s.execute(select(Breakout.id).where(Breakout.session_id == session_id,
                                                          Breakout.ended_at.is_(None)))).first():
                raise Conflict("this call already has breakout rooms: end them first")
            main = await s.get(Room, live.room_id)
            members = {m.user_id: m.role for m in (await s.execute(
                select(Membership).where(Membership.room_id == live.room_id))).scalars()}
            instructors = {u for u, r in members.items() if r == "instructor"}
            for g in groups:
                for u in g:
                    if members.get(u) != "student":
                        raise BadRequest(f"user {u} is not a student of this room")
            breakout = Breakout(session_id=session_id, created_by=actor.id, created_at=now,
                                ends_at=now + timedelta(seconds=duration) if duration else None)
            s.add(breakout)
            await s.flush()
            rows = []
            for n, g in enumerate(groups, 1):
                name = f"{main.name} — Group {n}"[:200]
                room = await rq.create_room(s, "group", name, actor.id,
                                            {**{u: "student" for u in g}, **{u: "instructor" for u in instructors}})
                call = await cq.create_session(s, room.id, actor.id, now)
                await system_message(s, room.id, f"{actor.display_name} opened this breakout room")
                group = BreakoutGroup(breakout_id=breakout.id, name=f"Group {n}", room_id=room.id, session_id=call.id)
                s.add(group)
                rows.append((group, call, g))
            await s.flush()
            note = await system_message(s, live.room_id, f"{actor.display_name} opened {len(groups)} breakout rooms"
                                        + (f" for {duration // 60} min" if duration and duration >= 60 else ""))
        self.registry.broadcast(live.room_id, {"type": "message.new", "message": note})
        wire = self._wire(breakout, [(gr, g) for gr, _, g in rows])
        for group, call, g in rows:
            self.calls.adopt(call)  # live here from now
            for uid in set(g) | instructors:
                self.registry.send_user(uid, _frame({"type": "room.added", "room": {"id": str(group.room_id)}}))
            group_wire = next(x for x in wire["groups"] if x["id"] == str(group.id))
            for uid in g:
                self.registry.send_user(uid, _frame({"type": "call.breakout_started", "session": str(session_id),
                                                     "breakout": wire, "group": group_wire}))
        for uid in instructors:
            self.registry.send_user(uid, _frame({"type": "call.breakout_started", "session": str(session_id),
                                                 "breakout": wire, "group": None}))
        if breakout.ends_at is not None:
            self._schedule(breakout.id, duration)
        log.info("session %s: %d breakout rooms by %s (%s)", session_id, len(groups), actor.id,
                 f"{duration}s" if duration else "no timer")
        return {"breakout": wire}

    @staticmethod
    def _wire(breakout: Breakout, groups: list[tuple[BreakoutGroup, list[int]]]) -> dict:
        return {"id": str(breakout.id), "session": str(breakout.session_id), "created_at": iso(breakout.created_at),
                "ends_at": iso(breakout.ends_at), "ended_at": iso(breakout.ended_at),
                "groups": [{"id": str(gr.id), "name": gr.name, "room": str(gr.room_id), "session": str(gr.session_id),
                            "members": [str(u) for u in members]} for gr, members in groups]}

    # -- reading --------------------------------------------------------------------------------
    async def _load(self, s, breakout: Breakout) -> list[tuple[BreakoutGroup, list[int]]]:
        groups = (await s.execute(select(BreakoutGroup).where(BreakoutGroup.breakout_id == breakout.id)
                                  .order_by(BreakoutGroup.id))).scalars().all()
        out = []
        for gr in groups:
            students = (await s.execute(select(Membership.user_id).where(
                Membership.room_id == gr.room_id, Membership.role == "student"))).scalars().all()
            out.append((gr, sorted(students)))
        return out

    async def current(self, actor: Actor, session_id: int) -> dict:
        """The session's open breakout (a student sees only their own group)."""
        async with self.db.read() as s:
            session = await cq.get_session(s, session_id)
            if session is None:
                raise NotFound("no such session")
            _, role = await room_role(s, session.room_id, actor)
            breakout = (await s.execute(select(Breakout).where(Breakout.session_id == session_id,
                                                               Breakout.ended_at.is_(None)))).scalars().first()
            if breakout is None:
                return {"breakout": None}
            groups = await self._load(s, breakout)
        if role != "instructor":
            groups = [(gr, m) for gr, m in groups if actor.id in m]
        return {"breakout": self._wire(breakout, groups)}

    async def _instructor_breakout(self, actor: Actor, breakout_id: int) -> Breakout:
        async with self.db.read() as s:
            breakout = await s.get(Breakout, breakout_id)
            if breakout is None:
                raise NotFound("no such breakout")
            session = await cq.get_session(s, breakout.session_id)
        await self.calls.require_instructor(actor, session.room_id)
        return breakout

    # -- during -----------------------------------------------------------------------------------
    async def broadcast(self, actor: Actor, breakout_id: int, body: dict) -> dict:
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_BROADCAST:
            raise BadRequest(f"text must be 1 to {MAX_BROADCAST} characters")
        breakout = await self._instructor_breakout(actor, breakout_id)
        if breakout.ended_at is not None:
            raise Conflict("these breakout rooms have ended")
        async with self.db.read() as s:
            groups = await self._load(s, breakout)
        for gr, _ in groups:
            await self.announce(actor, gr.room_id, text.strip())
        return {"sent": len(groups)}

    # -- ending -----------------------------------------------------------------------------------
    async def end(self, actor: Actor | None, breakout_id: int) -> dict:
        """End the breakout (``actor`` None: its timer): the group calls end and everyone goes
        back to the main call."""
        if actor is not None:
            await self._instructor_breakout(actor, breakout_id)
        now = utcnow()
        async with self.db.write() as s:
            res = await s.execute(update(Breakout).where(Breakout.id == breakout_id, Breakout.ended_at.is_(None))
                                  .values(ended_at=now))
            breakout = await s.get(Breakout, breakout_id)
            if breakout is None:
                raise NotFound("no such breakout")
            ours = res.rowcount > 0
            groups = await self._load(s, breakout) if ours else []
            main = await cq.get_session(s, breakout.session_id)
            instructors = set((await s.execute(select(Membership.user_id).where(
                Membership.room_id == main.room_id, Membership.role == "instructor"))).scalars().all())
        timer = self._timers.pop(breakout_id, None)
        if timer is not None:
            timer.cancel()
        if not ours:
            return {"breakout": self._wire(breakout, [])}
        wire = self._wire(breakout, groups)
        for gr, _ in groups:
            try:
                live = await self.calls.load(gr.session_id)
                await self.calls.end_session(live, "breakout ended")
            except (NotFound, Conflict):
                pass  # ended already
        event = _frame({"type": "call.breakout_ended", "session": str(breakout.session_id), "breakout": wire,
                        "main": session_wire(main)})
        for uid in {u for _, m in groups for u in m} | instructors:
            self.registry.send_user(uid, event)
        log.info("session %s: breakout %s ended (%s)", breakout.session_id, breakout_id,
                 "timer" if actor is None else f"by {actor.id}")
        return {"breakout": wire}

    def _schedule(self, breakout_id: int, delay_s: float) -> None:
        old = self._timers.pop(breakout_id, None)
        if old is not None:
            old.cancel()
        self._timers[breakout_id] = asyncio.get_running_loop().call_later(
            max(0.0, delay_s), lambda: self.calls.spawn(self._end_on_time(breakout_id)))

    async def _end_on_time(self, breakout_id: int) -> None:
        self._timers.pop(breakout_id, None)
        try:
            await self.end(None, breakout_id)
        except Exception:
            log.exception("breakout %s: ending on time failed", breakout_id)

    async def recover(self) -> None:
        """At start: keep the timers of breakouts still open (another process may too: only one
        ends each)."""
        async with self.db.read() as s:
            rows = (await s.execute(select(Breakout).where(Breakout.ended_at.is_(None),
                                                           Breakout.ends_at.is_not(None)))).scalars().all()
        now = utcnow()
        for b in rows:
            self._schedule(b.id, (b.ends_at - now).total_seconds())

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

