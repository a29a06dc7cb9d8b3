"""The SQL of a batch of chat sends (``chat.writer``): membership, dedupe, seqs, one insert.

One membership query, one dedupe query, one ``UPDATE rooms SET last_seq = last_seq + k`` per
room (seqs stay gapless and in commit order; rooms in id order so batches cannot deadlock),
one multi-row INSERT. Core statements on the session's connection: this runs once per batch
on the hot path, and ORM entity loading would cost more than the SQL itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sqlalchemy import insert, select, update

from server.db import messages as mq
from server.db.models import File, Membership, Message, Room, User
from server.kernel.clock import utcnow
from server.kernel.errors import BadRequest, Forbidden, NotFound

_ROOMS, _MEMBERS, _MESSAGES = Room.__table__, Membership.__table__, Message.__table__
_FILES = File.__table__
# A message of these kinds must carry a file of the same category; ``file`` takes any.
_KIND_CATEGORY = {"image": "image", "video": "video", "audio": "audio"}


@dataclass(frozen=True, slots=True)
class Stored:
    """A send's message row as stored (``created``) or as found stored before (a resend)."""

    message: Message
    sender_name: str | None
    reactions: dict | None
    created: bool


def attachment_error(req, row) -> Exception | None:
    """Why ``req`` may not carry its ``file_id`` (None when it may). ``row`` is the file's
    ``(owner_id, room_id, category, deleted_at)`` or None. The sender must see the file: their
    own upload not yet in a room (it then becomes the room's), or a file of this room."""
    if row is None or row[3] is not None:
        return NotFound("no such file")
    owner_id, room_id, category, _ = row
    if room_id != req.room_id and not (room_id is None and owner_id == req.actor.id):
        return Forbidden("attach a file you uploaded, or one of this room")
    want = _KIND_CATEGORY.get(req.kind)
    if want and category != want:
        return BadRequest(f"a {req.kind} message needs a {want} file, not a {category}")
    return None


async def file_rows(conn, file_ids: set[str]) -> dict[str, tuple]:
    if not file_ids:
        return {}
    stmt = select(_FILES.c.id, _FILES.c.owner_id, _FILES.c.room_id, _FILES.c.category,
                  _FILES.c.deleted_at).where(_FILES.c.id.in_(file_ids))
    return {fid: tuple(rest) for fid, *rest in (await conn.execute(stmt)).all()}


async def attach_files(conn, attach: dict[str, int]) -> None:
    """Files attached to a message become visible to its room."""
    for file_id, room_id in attach.items():
        await conn.execute(update(_FILES).where(_FILES.c.id == file_id, _FILES.c.room_id.is_(None))
                           .values(room_id=room_id))


async def store_batch(s, batch: list, role_of: Callable) -> list["Stored | Exception"]:
    """Store a batch of validated sends (``chat.writer.SendRequest``) in ``s``, with a
    handful of statements whatever its size; one outcome per send, in order: a ``Stored`` or
    the send's own error. ``role_of(membership role or None, actor)`` is the room-role rule
    (rooms.membership.effective_role). Nothing is committed here."""
    conn = await s.connection()
    room_ids = {r.room_id for r in batch}
    user_ids = {r.actor.id for r in batch}
    member_rows = (await conn.execute(
        select(_ROOMS.c.id, _MEMBERS.c.user_id, _MEMBERS.c.role)
        .select_from(_ROOMS.outerjoin(_MEMBERS, (_MEMBERS.c.room_id == _ROOMS.c.id)
                                      & _MEMBERS.c.user_id.in_(user_ids)))
        .where(_ROOMS.c.id.in_(room_ids)))).all()
    rooms = {rid for rid, _, _ in member_rows}
    roles = {(rid, uid): role for rid, uid, role in member_rows if uid is not None}
    cmids = {r.client_msg_id for r in batch}
    found = {(rid, uid, cmid): mid for mid, rid, uid, cmid in (await conn.execute(
        select(_MESSAGES.c.id, _MESSAGES.c.room_id, _MESSAGES.c.sender_id, _MESSAGES.c.client_msg_id)
        .where(_MESSAGES.c.room_id.in_(room_ids), _MESSAGES.c.sender_id.in_(user_ids),
               _MESSAGES.c.client_msg_id.in_(cmids)))).all()}
    existing = {}
    if found:  # resends are rare: load their full rows only then
        by_id = {mid: key for key, mid in found.items()}
        for msg, name in (await s.execute(
                select(Message, User.display_name).outerjoin(User, User.id == Message.sender_id)
                .where(Message.id.in_(by_id)))).all():
            existing[by_id[msg.id]] = (msg, name)
    reply_ids = {r.reply_to for r in batch if r.reply_to is not None}
    reply_room = dict((await conn.execute(select(_MESSAGES.c.id, _MESSAGES.c.room_id)
                                          .where(_MESSAGES.c.id.in_(reply_ids))))
                      .all()) if reply_ids else {}

    files = await file_rows(conn, {r.file_id for r in batch if r.file_id})
    attach: dict[str, int] = {}  # unattached file → the room it joins in this batch

    outcomes: list[Stored | Exception | None] = [None] * len(batch)
    first_of: dict[tuple, int] = {}
    fresh: list[int] = []
    for i, req in enumerate(batch):
        if req.room_id not in rooms:
            outcomes[i] = NotFound("no such room")
            continue
        role = role_of(roles.get((req.room_id, req.actor.id)), req.actor)
        if role is None:
            outcomes[i] = Forbidden("you are not a member of this room")
        elif req.key in existing or req.key in first_of:
            continue  # a resend: answered below with the stored copy
        elif req.kind == "announcement" and role != "instructor":
            outcomes[i] = Forbidden("only room instructors send announcements")
        elif req.reply_to is not None and reply_room.get(req.reply_to) != req.room_id:
            outcomes[i] = BadRequest("reply_to must be a message of this room")
        elif req.file_id is not None and (err := attachment_error(req, files.get(req.file_id))):
            outcomes[i] = err
        elif req.file_id is not None and attach.get(req.file_id, req.room_id) != req.room_id:
            outcomes[i] = Forbidden("attach a file you uploaded, or one of this room")
        else:
            first_of[req.key] = i
            fresh.append(i)
            if req.file_id is not None and files[req.file_id][1] is None:
                attach[req.file_id] = req.room_id

    now = utcnow()
    seqs: dict[int, int] = {}
    by_room: dict[int, list[int]] = {}
    for i in fresh:
        by_room.setdefault(batch[i].room_id, []).append(i)
    for room_id in sorted(by_room):
        idxs = by_room[room_id]
        last = (await conn.execute(update(_ROOMS).where(_ROOMS.c.id == room_id)
                                   .values(last_seq=_ROOMS.c.last_seq + len(idxs), last_activity_at=now)
                                   .returning(_ROOMS.c.last_seq))).scalar_one()
        for n, i in enumerate(idxs):
            seqs[i] = last - len(idxs) + 1 + n
    if fresh:
        rows = [dict(room_id=batch[i].room_id, seq=seqs[i], sender_id=batch[i].actor.id,
                     kind=batch[i].kind, content=batch[i].content,
                     client_msg_id=batch[i].client_msg_id, file_id=batch[i].file_id,
                     reply_to=batch[i].reply_to, created_at=now) for i in fresh]
        # One multi-row INSERT. RETURNING order is not guaranteed, so ids are matched back by
        # (room, seq); asking SQLAlchemy to sort would make it one statement per row.
        ids = {(rid, seq): mid for mid, rid, seq in (await conn.execute(
            insert(_MESSAGES).returning(_MESSAGES.c.id, _MESSAGES.c.room_id, _MESSAGES.c.seq), rows)).all()}
        await attach_files(conn, attach)
        for i, row in zip(fresh, rows):
            new_id = ids[(row["room_id"], row["seq"])]
            msg = Message(id=new_id, edited_at=None, deleted_at=None, **row)
            outcomes[i] = Stored(msg, batch[i].actor.display_name, None, True)

    old = [m.id for m, _ in existing.values()]
    reactions = await mq.reactions_for(s, old) if old else {}
    for i, req in enumerate(batch):
        if outcomes[i] is not None:
            continue
        # What is left are resends: of a stored message, or of a send earlier in this batch.
        if req.key in existing:
            msg, name = existing[req.key]
            outcomes[i] = Stored(msg, name, reactions.get(msg.id), False)
        else:
            first = outcomes[first_of[req.key]]
            outcomes[i] = Stored(first.message, first.sender_name, first.reactions, False)
    return outcomes  # type: ignore[return-value]
