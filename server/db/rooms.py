"""Storage functions for rooms, memberships and read positions."""
from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.kernel.clock import utcnow
from server.kernel.wire import avatar_wire
from server.db.models import Membership, ReadPosition, Room, User


async def create_room(s: AsyncSession, kind: str, name: str, creator_id: int,
                      members: dict[int, str], direct_key: str | None = None) -> Room:
    """Insert a room and its memberships (``members`` maps user id → room role)."""
    now = utcnow()
    room = Room(kind=kind, name=name, created_by=creator_id, created_at=now, last_seq=0,
                last_activity_at=now, direct_key=direct_key)
    s.add(room)
    await s.flush()
    for uid, role in members.items():
        s.add(Membership(room_id=room.id, user_id=uid, role=role, joined_at=now))
    await s.flush()
    return room


async def get_room(s: AsyncSession, room_id: int) -> Room | None:
    return await s.get(Room, room_id)


async def get_direct_room(s: AsyncSession, direct_key: str) -> Room | None:
    return (await s.execute(select(Room).where(Room.direct_key == direct_key))).scalar_one_or_none()


async def get_membership(s: AsyncSession, room_id: int, user_id: int) -> Membership | None:
    return await s.get(Membership, (room_id, user_id))


async def rooms_for_user(s: AsyncSession, user_id: int) -> list[tuple[Room, str, int, int]]:
    """``(room, my_role, my_read_seq, members_count)`` for every room the user is in."""
    counts = (select(Membership.room_id, func.count().label("n")).group_by(Membership.room_id)
              .subquery())
    stmt = (select(Room, Membership.role, func.coalesce(ReadPosition.seq, 0), counts.c.n)
            .join(Membership, Membership.room_id == Room.id)
            .join(counts, counts.c.room_id == Room.id)
            .outerjoin(ReadPosition, (ReadPosition.room_id == Room.id) & (ReadPosition.user_id == user_id))
            .where(Membership.user_id == user_id)
            .order_by(Room.last_activity_at.desc(), Room.id.desc()))
    return [tuple(r) for r in (await s.execute(stmt)).all()]


async def members(s: AsyncSession, room_id: int) -> list[tuple[User, Membership]]:
    stmt = (select(User, Membership).join(Membership, Membership.user_id == User.id)
            .where(Membership.room_id == room_id).order_by(Membership.role, User.display_name))
    return [tuple(r) for r in (await s.execute(stmt)).all()]


async def member_users(s: AsyncSession, room_id: int) -> list[dict]:
    """The room's members as wire users with their ``room_role`` (columns only: a room.join
    in a 500-member course must not build 1,000 ORM objects)."""
    stmt = (select(User.id, User.username, User.display_name, User.role, User.avatar, Membership.role)
            .join(Membership, Membership.user_id == User.id).where(Membership.room_id == room_id)
            .order_by(Membership.role, User.display_name))
    return [{"id": str(uid), "username": uname, "display_name": name, "role": grole,
             "avatar": avatar_wire(avatar), "room_role": rrole}
            for uid, uname, name, grole, avatar, rrole in (await s.execute(stmt)).all()]


async def room_ids_of(s: AsyncSession, user_id: int) -> list[int]:
    """The rooms ``user_id`` is a member of."""
    return list((await s.execute(select(Membership.room_id).where(Membership.user_id == user_id))).scalars())


async def member_ids(s: AsyncSession, room_id: int) -> list[int]:
    stmt = select(Membership.user_id).where(Membership.room_id == room_id)
    return list((await s.execute(stmt)).scalars())


async def count_members(s: AsyncSession, room_id: int) -> int:
    stmt = select(func.count()).select_from(Membership).where(Membership.room_id == room_id)
    return (await s.execute(stmt)).scalar_one()


async def upsert_member(s: AsyncSession, room_id: int, user_id: int, role: str) -> tuple[Membership, bool]:
    """Add the member or update their role; ``created`` is True only for the transaction whose
    INSERT took the row. ``ON CONFLICT DO NOTHING`` waits for a concurrent insert of the same
    member to commit or roll back, so exactly one of several racing adds sees True."""
    if s.bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    stmt = (dialect_insert(Membership).values(room_id=room_id, user_id=user_id, role=role, joined_at=utcnow())
            .on_conflict_do_nothing(index_elements=["room_id", "user_id"]).returning(Membership.user_id))
    created = (await s.execute(stmt)).first() is not None
    if not created:
        await s.execute(update(Membership).where(Membership.room_id == room_id, Membership.user_id == user_id)
                        .values(role=role))
    m = await s.get(Membership, (room_id, user_id), populate_existing=True)
    return m, created


async def remove_member(s: AsyncSession, room_id: int, user_id: int) -> bool:
    res = await s.execute(delete(Membership).where(Membership.room_id == room_id,
                                                   Membership.user_id == user_id))
    return res.rowcount > 0


async def set_read(s: AsyncSession, room_id: int, user_id: int, seq: int) -> int:
    """Move the read position forward (never back); return the stored position."""
    rp = await s.get(ReadPosition, (room_id, user_id), with_for_update=True)
    if rp is None:
        rp = ReadPosition(room_id=room_id, user_id=user_id, seq=seq, updated_at=utcnow())
        s.add(rp)
    elif seq > rp.seq:
        rp.seq = seq
        rp.updated_at = utcnow()
    await s.flush()
    return rp.seq


async def read_onto(s: AsyncSession, room_id: int, user_id: int, seq: int) -> int | None:
    """Move the read position onto ``seq`` if it stands just before it (the user had read
    everything up to it); return the new position, or None when it did not move."""
    rp = await s.get(ReadPosition, (room_id, user_id), with_for_update=True)
    if (rp.seq if rp is not None else 0) != seq - 1:
        return None
    return await set_read(s, room_id, user_id, seq)


async def reads(s: AsyncSession, room_id: int) -> dict[str, int]:
    stmt = select(ReadPosition.user_id, ReadPosition.seq).where(ReadPosition.room_id == room_id)
    return {str(uid): seq for uid, seq in (await s.execute(stmt)).all()}


async def next_seq(s: AsyncSession, room_id: int) -> int:
    """Take the next seq of a room inside the caller's transaction (row-locks the room on
    PostgreSQL until commit, which is what keeps seq gapless and in commit order)."""
    stmt = (update(Room).where(Room.id == room_id)
            .values(last_seq=Room.last_seq + 1, last_activity_at=utcnow())
            .returning(Room.last_seq))
    return (await s.execute(stmt)).scalar_one()


async def next_change(s: AsyncSession, room_id: int) -> int:
    """Take the room's next change number (edits, deletes, reactions) in the caller's
    transaction; like ``next_seq`` it row-locks the room on PostgreSQL until commit."""
    stmt = (update(Room).where(Room.id == room_id).values(last_change=Room.last_change + 1)
            .returning(Room.last_change))
    return (await s.execute(stmt)).scalar_one()
