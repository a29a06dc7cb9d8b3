"""Storage functions for participants' Janus sessions (``SfuPeer``, calls/sfu_resume.py).

Each write names its ``holder`` (a random id per owner). ``take`` deletes the row whoever holds
it (a rejoin takes it over); ``park`` and ``forget`` act only for the holder and say whether
they did, so of "a rejoin took it over" and "the grace ran out: destroy it in Janus" exactly
one happens, whichever processes run them.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import SfuPeer


def _row(session_id: int, peer_id: str):
    return (SfuPeer.session_id == session_id, SfuPeer.peer_id == peer_id)


async def save(s: AsyncSession, session_id: int, peer_id: str, user_id: int, janus_url: str,
               janus_session: int, state: str, holder: str, at: datetime) -> None:
    """Insert or replace the participant's row (not parked)."""
    await s.execute(delete(SfuPeer).where(*_row(session_id, peer_id)))
    s.add(SfuPeer(session_id=session_id, peer_id=peer_id, user_id=user_id, janus_url=janus_url,
                  janus_session=janus_session, state=state, holder=holder, updated_at=at))
    await s.flush()


async def park(s: AsyncSession, session_id: int, peer_id: str, holder: str, at: datetime) -> bool:
    """No socket holds it now; False when ``holder`` no longer holds it (or there is none)."""
    res = await s.execute(update(SfuPeer).where(*_row(session_id, peer_id), SfuPeer.holder == holder)
                          .values(parked_at=at))
    return res.rowcount > 0


async def take(s: AsyncSession, session_id: int, peer_id: str, user_id: int) -> SfuPeer | None:
    """Delete and return the row of ``user_id``'s participant ``peer_id`` (None: none, or
    someone else's)."""
    stmt = (delete(SfuPeer).where(*_row(session_id, peer_id), SfuPeer.user_id == user_id)
            .returning(SfuPeer.janus_url, SfuPeer.janus_session, SfuPeer.state, SfuPeer.holder,
                       SfuPeer.parked_at))
    row = (await s.execute(stmt)).first()
    if row is None:
        return None
    return SfuPeer(session_id=session_id, peer_id=peer_id, user_id=user_id, janus_url=row[0],
                   janus_session=row[1], state=row[2], holder=row[3], parked_at=row[4])


async def forget(s: AsyncSession, session_id: int, peer_id: str, holder: str) -> bool:
    """Delete the row if ``holder`` holds it; True when this call deleted it."""
    res = await s.execute(delete(SfuPeer).where(*_row(session_id, peer_id), SfuPeer.holder == holder))
    return res.rowcount > 0


async def forget_session(s: AsyncSession, session_id: int) -> None:
    await s.execute(delete(SfuPeer).where(SfuPeer.session_id == session_id))
