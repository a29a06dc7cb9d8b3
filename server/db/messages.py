"""Storage functions for messages, reactions, search and statistics."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from server.db.models import Membership, Message, Reaction, Room, User

_WITH_SENDER = select(Message, User.display_name).outerjoin(User, User.id == Message.sender_id)


async def insert_message(s: AsyncSession, *, room_id: int, seq: int, sender_id: int | None,
                         kind: str, content: str, client_msg_id: str, file_id: str | None,
                         reply_to: int | None, created_at: datetime) -> Message:
    values = dict(room_id=room_id, seq=seq, sender_id=sender_id, kind=kind, content=content,
                  client_msg_id=client_msg_id, file_id=file_id, reply_to=reply_to,
                  created_at=created_at)
    new_id = (await s.execute(insert(Message).values(**values).returning(Message.id))).scalar_one()
    return Message(id=new_id, edited_at=None, deleted_at=None, **values)


async def get_message(s: AsyncSession, message_id: int) -> tuple[Message, str] | None:
    row = (await s.execute(_WITH_SENDER.where(Message.id == message_id))).first()
    return tuple(row) if row else None


async def after(s: AsyncSession, room_id: int, since: int, limit: int) -> tuple[list[tuple[Message, str]], bool]:
    """Messages with seq > since, ascending; ``complete`` is False when more remain."""
    stmt = (_WITH_SENDER.where(Message.room_id == room_id, Message.seq > since)
            .order_by(Message.seq).limit(limit + 1))
    rows = [tuple(r) for r in (await s.execute(stmt)).all()]
    return rows[:limit], len(rows) <= limit


async def changed_since(s: AsyncSession, room_id: int, since: int, upto_seq: int,
                        limit: int) -> tuple[list[tuple[Message, str]], bool]:
    """Messages with seq <= upto_seq changed after change number ``since``, in change order."""
    stmt = (_WITH_SENDER.where(Message.room_id == room_id, Message.change_seq > since,
                               Message.seq <= upto_seq)
            .order_by(Message.change_seq).limit(limit + 1))
    rows = [tuple(r) for r in (await s.execute(stmt)).all()]
    return rows[:limit], len(rows) <= limit


async def mark_changed(s: AsyncSession, message_id: int, change_seq: int) -> None:
    await s.execute(update(Message).where(Message.id == message_id).values(change_seq=change_seq))


async def page(s: AsyncSession, room_id: int, *, before: int | None, after_seq: int | None,
               limit: int, kind: str | None) -> tuple[list[tuple[Message, str]], bool]:
    """A history page in ascending seq order.

    With ``before`` (or neither bound) the newest ``limit`` messages below it; ``complete`` is
    True when nothing older remains. With ``after`` the oldest ``limit`` above it; ``complete``
    is True when nothing newer remains.
    """
    stmt = _WITH_SENDER.where(Message.room_id == room_id)
    if kind:
        stmt = stmt.where(Message.kind == kind)
    if after_seq is not None:
        stmt = stmt.where(Message.seq > after_seq)
    if before is not None:
        stmt = stmt.where(Message.seq < before)
    if after_seq is not None and before is None:
        rows = [tuple(r) for r in (await s.execute(stmt.order_by(Message.seq).limit(limit + 1))).all()]
        return rows[:limit], len(rows) <= limit
    rows = [tuple(r) for r in (await s.execute(stmt.order_by(Message.seq.desc()).limit(limit + 1))).all()]
    complete = len(rows) <= limit
    return list(reversed(rows[:limit])), complete


# The longest prefix of a message's content the room list reads (its preview is shorter still).
PREVIEW_SOURCE_CHARS = 2000


_NEWEST = aliased(Message, name="newest")
# Per room, the id of its newest message nobody deleted: a correlated ORDER BY seq DESC LIMIT 1
# that walks the (room_id, seq) index from its top.
_LAST_ID = (select(_NEWEST.id).where(_NEWEST.room_id == Room.id, _NEWEST.deleted_at.is_(None))
            .order_by(_NEWEST.seq.desc()).limit(1).correlate(Room).scalar_subquery())
_LAST_COLUMNS = (Message.room_id, Message.id, Message.seq, Message.sender_id, User.display_name, Message.kind,
                 func.substr(Message.content, 1, PREVIEW_SOURCE_CHARS), Message.file_id, Message.created_at,
                 Message.edited_at)


async def last_messages(s: AsyncSession, *, member: int | None = None,
                        room: int | None = None) -> dict[int, tuple]:
    """The newest message nobody deleted of every room ``member`` is in (or of ``room``):
    ``{room_id: (id, seq, sender_id, sender_name, kind, content_prefix, file_id, created_at,
    edited_at)}``; rooms without such a message are absent.

    For a member, one statement for all their rooms (a correlated subquery per room, SQLite
    and PostgreSQL alike); for one room, the top of its ``(room_id, seq)`` index.
    """
    if room is not None:
        stmt = (select(*_LAST_COLUMNS).outerjoin(User, User.id == Message.sender_id)
                .where(Message.room_id == room, Message.deleted_at.is_(None))
                .order_by(Message.seq.desc()).limit(1))
    else:
        stmt = (select(*_LAST_COLUMNS).select_from(Room).join(Message, Message.id == _LAST_ID)
                .outerjoin(User, User.id == Message.sender_id)
                .join(Membership, (Membership.room_id == Room.id) & (Membership.user_id == member)))
    return {row[0]: tuple(row[1:]) for row in (await s.execute(stmt)).all()}


async def reactions_for(s: AsyncSession, message_ids: list[int]) -> dict[int, dict[str, list[str]]]:
    """``{message_id: {emoji: [user_id, ...]}}`` in reaction order."""
    if not message_ids:
        return {}
    stmt = (select(Reaction.message_id, Reaction.emoji, Reaction.user_id)
            .where(Reaction.message_id.in_(message_ids))
            .order_by(Reaction.created_at, Reaction.user_id))
    out: dict[int, dict[str, list[str]]] = defaultdict(dict)
    for mid, emoji, uid in (await s.execute(stmt)).all():
        out[mid].setdefault(emoji, []).append(str(uid))
    return out


async def set_reaction(s: AsyncSession, message_id: int, user_id: int, emoji: str, on: bool,
                       now: datetime) -> None:
    existing = await s.get(Reaction, (message_id, user_id, emoji))
    if on and existing is None:
        s.add(Reaction(message_id=message_id, user_id=user_id, emoji=emoji, created_at=now))
    elif not on and existing is not None:
        await s.execute(delete(Reaction).where(Reaction.message_id == message_id,
                                               Reaction.user_id == user_id, Reaction.emoji == emoji))
    await s.flush()


async def search(s: AsyncSession, room_id: int, query: str, limit: int) -> list[tuple[Message, str]]:
    """Full-text search within a room, newest first.

    SQLite: FTS5 (``messages_fts``, unicode61 tokenizer, each word as a prefix). PostgreSQL:
    ``to_tsvector('simple', content)`` against a GIN expression index. Deleted messages never match.
    """
    words = [w for w in "".join(c if c.isalnum() else " " for c in query).split() if w][:16]
    if not words:
        return []
    dialect = s.bind.dialect.name
    stmt = _WITH_SENDER.where(Message.room_id == room_id, Message.deleted_at.is_(None))
    if dialect == "sqlite":
        match = " ".join(f'"{w}"*' for w in words)
        ids = select(text("rowid")).select_from(text("messages_fts")).where(
            text("messages_fts MATCH :q")).scalar_subquery()
        stmt = stmt.where(Message.id.in_(ids)).params(q=match)
    elif dialect == "postgresql":
        tsq = " & ".join(f"{w}:*" for w in words)
        stmt = stmt.where(func.to_tsvector("simple", Message.content).op("@@")(
            func.to_tsquery("simple", tsq)))
    else:  # an indexed fallback for other dialects: substring match of every word
        for w in words:
            stmt = stmt.where(Message.content.ilike(f"%{w}%"))
    stmt = stmt.order_by(Message.seq.desc()).limit(limit)
    return [tuple(r) for r in (await s.execute(stmt)).all()]


async def statistics(s: AsyncSession, room_id: int) -> dict:
    """Counts by kind, by sender and per day, plus first/last message times (deleted excluded)."""
    live = (Message.room_id == room_id) & Message.deleted_at.is_(None)
    by_kind = dict((await s.execute(select(Message.kind, func.count()).where(live)
                                    .group_by(Message.kind))).all())
    by_sender_rows = (await s.execute(
        select(Message.sender_id, User.display_name, func.count()).outerjoin(User, User.id == Message.sender_id)
        .where(live).group_by(Message.sender_id, User.display_name).order_by(func.count().desc()))).all()
    day = func.date(Message.created_at) if s.bind.dialect.name == "sqlite" else func.to_char(Message.created_at, "YYYY-MM-DD")
    per_day = [(str(d), n) for d, n in (await s.execute(
        select(day, func.count()).where(live).group_by(day).order_by(day))).all()]
    first_last = (await s.execute(select(func.min(Message.created_at), func.max(Message.created_at),
                                         func.count()).where(live))).one()
    return {"by_kind": by_kind,
            "by_sender": [{"user_id": str(uid) if uid is not None else None, "display_name": name or "",
                           "count": n} for uid, name, n in by_sender_rows],
            "per_day": [{"day": d, "count": n} for d, n in per_day],
            "first": first_last[0], "last": first_last[1], "total": first_last[2]}
