"""Messages: send (through the group-commit writer), history, sync, edits, deletions,
reactions and read positions (PROTOCOL §2.1, §3).

Every operation checks the caller's room role (rooms.membership); every write commits before
anything is acked or broadcast (ARCHITECTURE principle 1).
"""
from __future__ import annotations

from typing import Awaitable, Callable

from server.chat.wire import MAX_SEQ, MAX_SYNC, SendRequest, new_message_frame, parse_edit, parse_page, parse_reaction
from server.chat.writer import MessageWriter
from server.db import messages as mq
from server.db import rooms as rq
from server.db.engine import Database
from server.db.models import MESSAGE_KINDS
from server.kernel.actor import Actor, bounded_int
from server.kernel.clock import utcnow
from server.kernel.errors import BadRequest, Conflict, Forbidden, NotFound
from server.kernel.frames import event_frame
from server.realtime.registry import Registry
from server.rooms.membership import require_open, room_role
from server.rooms.wire import message_wire


async def message_wires(s, rows) -> list[dict]:
    """Wire shapes of ``(message, sender name)`` rows, with their reactions (one query)."""
    reactions = await mq.reactions_for(s, [m.id for m, _ in rows])
    return [message_wire(m, name, reactions.get(m.id)) for m, name in rows]


# ``await fields(session, [(message row, wire)])`` adds a kind's own fields to its wires.
KindFields = Callable[[object, list[tuple[object, dict]]], Awaitable[None]]


class Messages:
    def __init__(self, db: Database, registry: Registry, max_content_bytes: int):
        self.db, self.registry, self.max_content_bytes = db, registry, max_content_bytes
        self.writer = MessageWriter(db, self._broadcast_stored)
        self._kind_fields: dict[str, KindFields] = {}

    def add_kind_fields(self, kind: str, fields: KindFields) -> None:
        """Messages of ``kind`` carry more than their row (a poll its options and state):
        ``fields`` adds it to their wires wherever messages are read here — sync, history,
        changes, edits, deletions and the SQL gap filling of other processes' deliveries."""
        self._kind_fields[kind] = fields

    async def wires(self, s, rows) -> list[dict]:
        """``message_wires`` plus the fields registered for their kinds."""
        out = await message_wires(s, rows)
        for kind, fields in self._kind_fields.items():
            mine = [(m, wire) for (m, _), wire in zip(rows, out) if m.kind == kind]
            if mine:
                await fields(s, mine)
        return out

    def _broadcast_stored(self, stored: list[tuple[int, dict]]) -> None:
        """Broadcast a committed batch: per room, all its ``message.new`` frames in seq order
        as one buffer, so each subscriber costs one write per batch, not one per message."""
        by_room: dict[int, list[bytes]] = {}
        seqs: dict[int, list[tuple[int, int]]] = {}
        for room_id, wire in stored:
            frame = new_message_frame(wire)
            by_room.setdefault(room_id, []).append(frame)
            seqs.setdefault(room_id, []).append((wire["seq"], len(frame)))
        for room_id, frames in by_room.items():
            self.registry.broadcast_frame(room_id, b"".join(frames), seqs=seqs[room_id])

    # -- catching up (other processes' gaps, PROTOCOL §2.1 room.sync / room.changes) ------------
    async def frames_after(self, room_id: int, after: int, until: int | None) -> list[tuple[int, bytes]]:
        """``message.new`` frames for seqs in ``(after, until]`` from SQL (gap filling)."""
        out: list[tuple[int, bytes]] = []
        while until is None or after < until:
            async with self.db.read() as s:
                rows, complete = await mq.after(s, room_id, after, MAX_SYNC)
                wires = await self.wires(s, rows)
            for wire in wires:
                seq = int(wire["seq"])
                if until is not None and seq > until:
                    return out
                out.append((seq, new_message_frame(wire)))
                after = seq
            if complete or not wires:
                break
        return out

    async def change_frames_after(self, room_id: int, since: int) -> tuple[list[bytes], int]:
        """The current state of every message of the room changed after change number
        ``since`` (``message.updated``/``message.deleted`` frames, in change order), and the
        change number that state covers (catching up after missed notices)."""
        frames: list[bytes] = []
        upto = since
        while True:
            async with self.db.read() as s:
                room = await rq.get_room(s, room_id)
                if room is None:
                    return frames, upto
                rows, complete = await mq.changed_since(s, room_id, since, room.last_seq, MAX_SYNC)
                wires = await self.wires(s, rows)
            upto = max(upto, room.last_change, *(m.change_seq for m, _ in rows))
            for wire in wires:
                kind = "message.deleted" if wire.get("deleted_at") else "message.updated"
                frames.append(event_frame({"type": kind, "message": wire}))
            if complete or not rows:
                return frames, upto
            since = rows[-1][0].change_seq

    async def sync(self, actor: Actor, room_id: int, since, limit) -> dict:
        since, limit = parse_page(since, limit)
        async with self.db.read() as s:
            room, _ = await room_role(s, room_id, actor)
            rows, complete = await mq.after(s, room_id, since, limit)
            out = await self.wires(s, rows)
        return {"messages": out, "complete": complete, "last_seq": room.last_seq}

    async def changes(self, actor: Actor, room_id: int, since, upto, limit) -> dict:
        """Messages up to seq ``upto`` edited, deleted or re-reacted after change number
        ``since`` (what a reconnecting client missed besides new messages)."""
        since, limit = parse_page(since, limit)
        async with self.db.read() as s:
            room, _ = await room_role(s, room_id, actor)
            upto = bounded_int(upto, "upto", 0, MAX_SEQ, default=room.last_seq)
            rows, complete = await mq.changed_since(s, room_id, since, upto, limit)
            out = await self.wires(s, rows)
        last = rows[-1][0].change_seq if rows and not complete else room.last_change
        return {"messages": out, "complete": complete, "last_change": last}

    async def history(self, actor: Actor, room_id: int, before: int | None, after: int | None,
                      limit: int, kind: str | None) -> dict:
        if kind is not None and kind not in MESSAGE_KINDS:
            raise BadRequest("unknown kind")
        async with self.db.read() as s:
            await room_role(s, room_id, actor)
            rows, complete = await mq.page(s, room_id, before=before, after_seq=after, limit=limit, kind=kind)
            return {"messages": await self.wires(s, rows), "complete": complete}

    # -- writing ---------------------------------------------------------------------------
    async def send(self, req: SendRequest) -> tuple[dict, bool]:
        """Store a message (or find the stored copy of a resent ``client_msg_id``).

        Returns ``(message, created)``. A new message is broadcast as ``message.new`` after
        commit; a resend is only returned.
        """
        return await self.writer.enqueue(req)

    async def _load_for_change(self, s, actor: Actor, message_id: int, writing: bool = False):
        """The message, its sender's name and the actor's role in its room; ``writing`` (an
        edit, a reaction): RoomArchived in an archived room (deleting stays possible)."""
        row = await mq.get_message(s, message_id)
        if row is None:
            raise NotFound("no such message")
        msg, name = row
        room, role = await room_role(s, msg.room_id, actor)
        if writing:
            require_open(room)
        return msg, name, role

    async def edit(self, actor: Actor, message_id: int, content) -> dict:
        content = parse_edit(content, self.max_content_bytes)
        async with self.db.write() as s:
            msg, name, _ = await self._load_for_change(s, actor, message_id, writing=True)
            if msg.sender_id != actor.id:
                raise Forbidden("only the author edits a message")
            if msg.deleted_at is not None:
                raise Conflict("the message is deleted")
            msg = await s.merge(msg)
            msg.content = content
            msg.edited_at = utcnow()
            msg.change_seq = await rq.next_change(s, msg.room_id)
            await s.flush()
            wire = (await self.wires(s, [(msg, name)]))[0]
        self.registry.broadcast(msg.room_id, {"type": "message.updated", "message": wire}, change=msg.change_seq)
        return wire

    async def delete(self, actor: Actor, message_id: int) -> dict:
        async with self.db.write() as s:
            msg, name, role = await self._load_for_change(s, actor, message_id)
            if msg.sender_id != actor.id and role != "instructor":
                raise Forbidden("only the author or a room instructor deletes a message")
            msg = await s.merge(msg)
            if msg.deleted_at is None:
                msg.deleted_at = utcnow()
                msg.content = ""
                msg.change_seq = await rq.next_change(s, msg.room_id)
                await s.flush()
            wire = (await self.wires(s, [(msg, name)]))[0]
        self.registry.broadcast(msg.room_id, {"type": "message.deleted", "message": wire}, change=msg.change_seq)
        return wire

    async def react(self, actor: Actor, message_id: int, emoji, on) -> dict:
        emoji, on = parse_reaction(emoji, on)
        async with self.db.write() as s:
            msg, _, _ = await self._load_for_change(s, actor, message_id, writing=True)
            if msg.deleted_at is not None:
                raise Conflict("the message is deleted")
            await mq.set_reaction(s, message_id, actor.id, emoji, on, utcnow())
            change = await rq.next_change(s, msg.room_id)
            await mq.mark_changed(s, message_id, change)
            reactions = (await mq.reactions_for(s, [message_id])).get(message_id, {})
        data = {"room": str(msg.room_id), "message_id": str(message_id), "reactions": reactions}
        self.registry.broadcast(msg.room_id, {"type": "message.reaction", **data}, change=change)
        return {"message_id": str(message_id), "reactions": reactions}

    async def read(self, actor: Actor, room_id: int, seq) -> dict:
        seq = bounded_int(seq, "seq", 0, MAX_SEQ)
        async with self.db.write() as s:
            room, _ = await room_role(s, room_id, actor)
            stored = await rq.set_read(s, room_id, actor.id, min(seq, room.last_seq))
        self.registry.broadcast(room_id, {"type": "read", "room": str(room_id), "user_id": str(actor.id),
                                          "seq": stored})
        return {"room": str(room_id), "seq": stored}
