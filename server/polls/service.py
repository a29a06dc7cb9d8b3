"""Polls and quick quizzes (issue 16.1): a poll is a message of kind ``poll`` in the room's
history (its ``content`` is the question), so it is synced, paged and recovered like any
message; its options, state and votes live in ``polls`` / ``poll_votes``.

Rules: the room's instructors create, close, re-open and share a poll; every member answers
once (a new answer replaces the old one) while it is open; students see counts only while the
results are public, and the correct answer of a quiz once it is closed. Every write commits
before anything is acked or broadcast; a refused request changes nothing.
"""
from __future__ import annotations

import json
import uuid
from types import SimpleNamespace

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError

from server.db import messages as mq
from server.db import polls as pq
from server.db import rooms as rq
from server.db.engine import Database
from server.db.models import Poll
from server.kernel.actor import Actor
from server.kernel.clock import utcnow
from server.kernel.errors import Conflict, Forbidden, NotFound
from server.polls.push import PUSH_INTERVAL_S, ResultsPush
from server.polls.wire import (
    NewPoll, ballots_wire, correct_of, count_list, option_list, options_of, parse_new, parse_public, public_wire,
)
from server.realtime.registry import Registry
from server.rooms.membership import effective_role, require_instructor, room_role
from server.rooms.wire import message_wire


class Polls:
    def __init__(self, db: Database, registry: Registry, push_interval_s: float = PUSH_INTERVAL_S):
        self.db, self.registry = db, registry
        self.push = ResultsPush(db, registry, push_interval_s)

    # -- the poll field of poll messages, wherever messages are read -------------------------
    async def message_fields(self, s, pairs: list[tuple[object, dict]]) -> None:
        """Add ``poll`` (``wire.public_wire``; null once the message is deleted) to the wires
        of poll messages (``[(message row, wire)]``), in the caller's session."""
        polls = await pq.for_messages(s, [m.id for m, _ in pairs])
        counted = await pq.counts(s, [mid for mid, p in polls.items() if p.results_public])
        for m, wire in pairs:
            p = polls.get(m.id)
            wire["poll"] = public_wire(p, counted.get(m.id)) if p is not None and m.deleted_at is None else None

    async def _wire(self, s, msg, sender_name: str) -> dict:
        wire = message_wire(msg, sender_name, (await mq.reactions_for(s, [msg.id])).get(msg.id))
        await self.message_fields(s, [(msg, wire)])
        return wire

    # -- creating -----------------------------------------------------------------------------
    async def create(self, actor: Actor, room_id: int, body: dict) -> tuple[dict, bool]:
        """Store a poll (a new message of the room) and broadcast its ``message.new``; a resent
        ``client_msg_id`` returns the stored poll, ``created`` False."""
        new = parse_new(body)
        cmid = new.client_msg_id or f"poll-{uuid.uuid4().hex}"
        try:
            return await self._create(actor, room_id, new, cmid)
        except IntegrityError:  # the same client_msg_id raced itself: the other one won
            return await self._create(actor, room_id, new, cmid)

    async def _create(self, actor: Actor, room_id: int, new: NewPoll, cmid: str) -> tuple[dict, bool]:
        async with self.db.write() as s:
            await require_instructor(s, room_id, actor, "only the room's instructors create polls")
            stored = await pq.message_by_client_id(s, room_id, actor.id, cmid)
            if stored is not None:
                if stored.kind != "poll":
                    raise Conflict("client_msg_id is already used by a message that is not a poll")
                return await self._wire(s, stored, actor.display_name), False
            seq = await rq.next_seq(s, room_id)
            msg = await mq.insert_message(s, room_id=room_id, seq=seq, sender_id=actor.id, kind="poll",
                                          content=new.question, client_msg_id=cmid, file_id=None,
                                          reply_to=None, created_at=utcnow())
            await pq.insert_poll(s, message_id=msg.id, room_id=room_id, options=new.options, multiple=new.multiple,
                                 anonymous=new.anonymous, correct=new.correct, results_public=new.results_public)
            wire = await self._wire(s, msg, actor.display_name)
        self.registry.broadcast(room_id, {"type": "message.new", "message": wire})
        return wire, True

    # -- answering ----------------------------------------------------------------------------
    async def _load(self, s, actor: Actor, message_id: int):
        row = await pq.get(s, message_id)
        if row is None:
            raise NotFound("no such poll")
        poll, msg = row
        _, role = await room_role(s, msg.room_id, actor)
        if msg.deleted_at is not None:
            raise Conflict("the poll was deleted")
        return poll, msg, role

    async def vote(self, actor: Actor, message_id: int, choices) -> dict:
        """Record the caller's answer (replacing an earlier one); Conflict once closed.

        One write transaction (``pq.cast_vote``); a student's answer to a poll with private
        results is acked from what it read, without another round of reads."""
        def decide(row, member_role):
            if row is None:
                raise NotFound("no such poll")
            if effective_role(member_role, actor) is None:
                raise Forbidden("you are not a member of this room")
            if row.deleted_at is not None:
                raise Conflict("the poll was deleted")
            if row.closed_at is not None:
                raise Conflict("the poll is closed")
            return option_list(choices, len(json.loads(row.options)), row.multiple, "choices")

        row, role, version = await self._write_sync(pq.cast_vote, message_id, actor.id, decide, utcnow())
        if version is None:
            raise Conflict("the poll is closed")
        self.push.touched(message_id)
        if effective_role(role, actor) == "instructor" or row.results_public:
            return await self.view(actor, message_id)
        poll = SimpleNamespace(message_id=message_id, version=version, **{
            k: getattr(row, k) for k in ("options", "multiple", "anonymous", "correct", "results_public", "closed_at")})
        mine = option_list(choices, len(options_of(poll)), poll.multiple, "choices")
        return {"message_id": str(message_id), "room": str(row.room_id), "question": row.content,
                **public_wire(poll, None), "my_choices": mine, "my_correct": None}

    async def _write_sync(self, fn, *args):
        """``fn(sync connection, *args)`` in one write transaction. SQLite: one hop to the
        writer thread (``Database.run_write``). PostgreSQL: on the main pool, not on the chat
        writer's own small one, so a burst of votes never holds up chat sends."""
        if self.db.is_sqlite:
            return await self.db.run_write(fn, *args)
        async with self.db.write() as s:
            return await s.run_sync(lambda session: fn(session.connection(), *args))

    async def view(self, actor: Actor, message_id: int) -> dict:
        """The poll as the caller may see it: the public fields, ``my_choices``, counts when
        the caller is an instructor or the results are public, the correct answer for
        instructors (for everyone once closed), ``my_correct`` once a quiz is closed, and the
        ballots of a named poll for instructors."""
        async with self.db.read() as s:
            poll, msg, role = await self._load(s, actor, message_id)
            counted = (await pq.counts(s, [message_id]))[message_id]
            mine = (await pq.choices_of(s, [message_id], actor.id)).get(message_id, [])
            instructor = role == "instructor"
            ballots = ballots_wire(await pq.ballots(s, message_id)) if instructor and not poll.anonymous else None
        out = {"message_id": str(message_id), "room": str(msg.room_id), "question": msg.content,
               **public_wire(poll, counted), "my_choices": mine}
        if instructor:
            out.update(counts=count_list(poll, counted[0]), voters=counted[1], correct=correct_of(poll),
                       ballots=ballots)
        closed, correct = poll.closed_at is not None, correct_of(poll)
        out["my_correct"] = (mine == correct) if closed and correct is not None and mine else None
        return out

    # -- the instructor's controls ------------------------------------------------------------
    async def close(self, actor: Actor, message_id: int) -> dict:
        return await self._change(actor, message_id, closed_at=func.coalesce(Poll.closed_at, utcnow()))

    async def reopen(self, actor: Actor, message_id: int) -> dict:
        return await self._change(actor, message_id, closed_at=None)

    async def share(self, actor: Actor, message_id: int, results_public) -> dict:
        return await self._change(actor, message_id, results_public=parse_public(results_public))

    async def _change(self, actor: Actor, message_id: int, **values) -> dict:
        """An instructor's change of the poll's state: the message is updated (a change of the
        room, broadcast as ``message.updated``) and live results follow."""
        async with self.db.write() as s:
            _, msg, role = await self._load(s, actor, message_id)
            if role != "instructor":
                raise Forbidden("only the room's instructors close, re-open or share a poll")
            await pq.bump(s, message_id, only_open=False)
            await pq.set_state(s, message_id, **values)
            await pq.reload(s, message_id)
            change = await rq.next_change(s, msg.room_id)
            await mq.mark_changed(s, message_id, change)
            name = (await mq.get_message(s, message_id))[1]
            wire = await self._wire(s, msg, name)
        self.registry.broadcast(msg.room_id, {"type": "message.updated", "message": wire}, change=change)
        self.push.touched(message_id)
        return wire

    async def shutdown(self) -> None:
        """Stop live results (the process is stopping)."""
        await self.push.close()
