"""Storage functions for call sessions and attendance intervals."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import AttendanceInterval, Breakout, BreakoutGroup, CallSession, User


async def create_session(s: AsyncSession, room_id: int, user_id: int, at: datetime, lobby: bool = False) -> CallSession:
    session = CallSession(room_id=room_id, started_by=user_id, started_at=at, lobby=lobby)
    s.add(session)
    await s.flush()
    return session


async def get_session(s: AsyncSession, session_id: int) -> CallSession | None:
    return await s.get(CallSession, session_id)


async def live_session_for_room(s: AsyncSession, room_id: int) -> CallSession | None:
    stmt = (select(CallSession).where(CallSession.room_id == room_id, CallSession.ended_at.is_(None))
            .order_by(CallSession.id.desc()).limit(1))
    return (await s.execute(stmt)).scalar_one_or_none()


async def live_sessions(s: AsyncSession) -> list[CallSession]:
    return list((await s.execute(select(CallSession).where(CallSession.ended_at.is_(None)))).scalars())


async def sessions_for_room(s: AsyncSession, room_id: int, limit: int) -> list[CallSession]:
    stmt = (select(CallSession).where(CallSession.room_id == room_id)
            .order_by(CallSession.started_at.desc(), CallSession.id.desc()).limit(limit))
    return list((await s.execute(stmt)).scalars())


async def is_breakout_group(s: AsyncSession, session_id: int) -> bool:
    return (await s.execute(select(BreakoutGroup.id).where(BreakoutGroup.session_id == session_id).limit(1))).first() is not None


async def breakout_sessions(s: AsyncSession, session_id: int) -> list[int]:
    """The calls of the breakout groups of ``session_id`` (their time counts as its attendance)."""
    return list((await s.execute(select(BreakoutGroup.session_id).join(Breakout, Breakout.id == BreakoutGroup.breakout_id)
                                 .where(Breakout.session_id == session_id))).scalars())


async def set_policy(s: AsyncSession, session_id: int, video: bool, screen: bool, lobby: bool) -> None:
    await s.execute(update(CallSession).where(CallSession.id == session_id)
                    .values(students_video=video, students_screen=screen, lobby=lobby))


async def end_session(s: AsyncSession, session_id: int, at: datetime) -> None:
    """Mark the session ended and close every interval still open."""
    await s.execute(update(CallSession).where(CallSession.id == session_id, CallSession.ended_at.is_(None))
                    .values(ended_at=at))
    await s.execute(update(AttendanceInterval)
                    .where(AttendanceInterval.session_id == session_id, AttendanceInterval.left_at.is_(None))
                    .values(left_at=at))


async def open_interval(s: AsyncSession, session_id: int, user_id: int, peer_id: str, at: datetime) -> int:
    interval = AttendanceInterval(session_id=session_id, user_id=user_id, peer_id=peer_id, joined_at=at)
    s.add(interval)
    await s.flush()
    return interval.id


async def close_interval(s: AsyncSession, interval_id: int, at: datetime) -> None:
    await s.execute(update(AttendanceInterval)
                    .where(AttendanceInterval.id == interval_id, AttendanceInterval.left_at.is_(None))
                    .values(left_at=at))


async def close_orphaned_intervals(s: AsyncSession, at: datetime, keep_peers: set[str] = frozenset()) -> int:
    """Close intervals left open by a process that died, except those of ``keep_peers``
    (participants other live processes still hold)."""
    stmt = update(AttendanceInterval).where(AttendanceInterval.left_at.is_(None))
    if keep_peers:
        stmt = stmt.where(AttendanceInterval.peer_id.not_in(sorted(keep_peers)))
    res = await s.execute(stmt.values(left_at=at))
    return res.rowcount


async def intervals(s: AsyncSession, session_id: int) -> list[tuple[AttendanceInterval, User]]:
    stmt = (select(AttendanceInterval, User).join(User, User.id == AttendanceInterval.user_id)
            .where(AttendanceInterval.session_id == session_id)
            .order_by(User.display_name, AttendanceInterval.joined_at))
    return [tuple(r) for r in (await s.execute(stmt)).all()]
