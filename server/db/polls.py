"""Storage functions for polls and their votes (server/polls/).

A vote is counted inside one transaction that takes the poll's row (``cast_vote``): on
PostgreSQL the row lock orders every vote on one poll, on SQLite the single writer does, so a
voter's replaced answer and the counts read after commit are exact under concurrency.
"""
from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Membership, Message, Poll, PollVote, User


async def insert_poll(s: AsyncSession, *, message_id: int, room_id: int, options: list[str], multiple: bool,
                      anonymous: bool, correct: list[int] | None, results_public: bool) -> None:
    await s.execute(insert(Poll).values(
        message_id=message_id, room_id=room_id, options=json.dumps(options), multiple=multiple,
        anonymous=anonymous, correct=json.dumps(correct) if correct is not None else None,
        results_public=results_public, closed_at=None, version=0))


async def get(s: AsyncSession, message_id: int) -> tuple[Poll, Message] | None:
    row = (await s.execute(select(Poll, Message).join(Message, Message.id == Poll.message_id)
                           .where(Poll.message_id == message_id))).first()
    return tuple(row) if row else None


async def for_messages(s: AsyncSession, message_ids: list[int]) -> dict[int, Poll]:
    if not message_ids:
        return {}
    rows = (await s.execute(select(Poll).where(Poll.message_id.in_(message_ids)))).scalars().all()
    return {p.message_id: p for p in rows}


async def bump(s: AsyncSession, message_id: int, *, only_open: bool) -> int | None:
    """Take the poll's next version in the caller's transaction (row-locks it on PostgreSQL
    until commit). None when there is no such poll, or it is closed and ``only_open``."""
    stmt = update(Poll).where(Poll.message_id == message_id)
    if only_open:
        stmt = stmt.where(Poll.closed_at.is_(None))
    return (await s.execute(stmt.values(version=Poll.version + 1).returning(Poll.version))).scalar_one_or_none()


async def set_state(s: AsyncSession, message_id: int, **values) -> None:
    """Change ``closed_at`` and/or ``results_public`` (after ``bump``)."""
    await s.execute(update(Poll).where(Poll.message_id == message_id).values(**values))


async def choices_of(s: AsyncSession, message_ids: list[int], user_id: int) -> dict[int, list[int]]:
    """``{poll message id: [option, ...]}`` the user chose (polls they did not answer are absent)."""
    if not message_ids:
        return {}
    rows = (await s.execute(select(PollVote.message_id, PollVote.option)
                            .where(PollVote.message_id.in_(message_ids), PollVote.user_id == user_id)
                            .order_by(PollVote.option))).all()
    out: dict[int, list[int]] = defaultdict(list)
    for mid, option in rows:
        out[mid].append(option)
    return dict(out)


async def counts(s: AsyncSession, message_ids: list[int]) -> dict[int, tuple[dict[int, int], int]]:
    """``{poll message id: ({option: votes}, voters)}`` for every poll named (zeros included
    as absent options)."""
    out: dict[int, tuple[dict[int, int], int]] = {mid: ({}, 0) for mid in message_ids}
    if not message_ids:
        return out
    per_option = (await s.execute(select(PollVote.message_id, PollVote.option, func.count())
                                  .where(PollVote.message_id.in_(message_ids))
                                  .group_by(PollVote.message_id, PollVote.option))).all()
    voters = dict((await s.execute(select(PollVote.message_id, func.count(func.distinct(PollVote.user_id)))
                                   .where(PollVote.message_id.in_(message_ids))
                                   .group_by(PollVote.message_id))).all())
    for mid, option, n in per_option:
        out[mid][0][option] = n
    for mid in message_ids:
        out[mid] = (out[mid][0], voters.get(mid, 0))
    return out


async def ballots(s: AsyncSession, message_id: int) -> list[tuple[int, str, str, int, datetime]]:
    """Every chosen option with its voter: ``(user_id, username, display_name, option,
    voted_at)``, by voter name then option."""
    rows = (await s.execute(select(User.id, User.username, User.display_name, PollVote.option, PollVote.voted_at)
                            .join(User, User.id == PollVote.user_id)
                            .where(PollVote.message_id == message_id)
                            .order_by(User.display_name, User.id, PollVote.option))).all()
    return [tuple(r) for r in rows]


async def instructor_ids(s: AsyncSession, room_id: int) -> list[int]:
    """The room's members whose room role is instructor (who see live results)."""
    return list((await s.execute(select(Membership.user_id).where(
        Membership.room_id == room_id, Membership.role == "instructor"))).scalars().all())


async def message_by_client_id(s: AsyncSession, room_id: int, sender_id: int, client_msg_id: str) -> Message | None:
    """The sender's message of this ``client_msg_id`` in the room (a resent ``poll.create``)."""
    return (await s.execute(select(Message).where(
        Message.room_id == room_id, Message.sender_id == sender_id,
        Message.client_msg_id == client_msg_id))).scalar_one_or_none()


async def reload(s: AsyncSession, message_id: int) -> Poll:
    """The poll row as stored now (after ``set_state`` in the same transaction)."""
    return (await s.execute(select(Poll).where(Poll.message_id == message_id)
                            .execution_options(populate_existing=True))).scalar_one()


# The columns of a poll a vote reads (``cast_vote``), in order.
VOTE_COLUMNS = (Poll.room_id, Poll.options, Poll.multiple, Poll.anonymous, Poll.correct, Poll.results_public,
                Poll.closed_at, Message.content, Message.deleted_at)


def cast_vote(conn, message_id: int, user_id: int, decide, now: datetime):
    """A vote as one transaction on a synchronous connection (``Database.run_write``: one hop to
    the writer thread on SQLite). Reads the poll and the voter's membership role; ``decide(row,
    member_role)`` returns the options to store or raises (nothing is written: the transaction
    rolls back). Then takes the poll's next version only while it is open — on PostgreSQL this
    row lock orders the votes of one poll — and replaces the voter's answer.

    Returns ``(row, member_role, version)``; ``version`` None: the poll was closed meanwhile
    and nothing was stored."""
    row = conn.execute(select(*VOTE_COLUMNS).join(Message, Message.id == Poll.message_id)
                       .where(Poll.message_id == message_id)).first()
    role = None
    if row is not None:
        role = conn.execute(select(Membership.role).where(Membership.room_id == row.room_id,
                                                          Membership.user_id == user_id)).scalar_one_or_none()
    chosen = decide(row, role)
    version = conn.execute(update(Poll).where(Poll.message_id == message_id, Poll.closed_at.is_(None))
                           .values(version=Poll.version + 1).returning(Poll.version)).scalar_one_or_none()
    if version is None:
        return row, role, None
    conn.execute(delete(PollVote).where(PollVote.message_id == message_id, PollVote.user_id == user_id))
    conn.execute(insert(PollVote), [{"message_id": message_id, "user_id": user_id, "option": o, "voted_at": now}
                                    for o in chosen])
    return row, role, version
