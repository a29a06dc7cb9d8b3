"""Storage functions for users."""
from __future__ import annotations

from sqlalchemy import BigInteger, and_, any_, bindparam, case, cast, func, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from server.kernel.clock import utcnow
from server.db.models import Membership, User


async def any_person(s: AsyncSession) -> bool:
    """Is there any account yet (media workers' recorder accounts aside)?"""
    return (await s.execute(select(User.id).where(User.role != "recorder").limit(1))).first() is not None


async def create_user(s: AsyncSession, username: str, display_name: str, password_hash: str | None,
                      role: str) -> User:
    """Insert a user; the caller's transaction raises IntegrityError on a taken username."""
    user = User(username=username.lower(), display_name=display_name, password_hash=password_hash,
                role=role, created_at=utcnow())
    s.add(user)
    await s.flush()
    return user


async def get_user(s: AsyncSession, user_id: int) -> User | None:
    return await s.get(User, user_id)


_ROLE_COLUMNS = (User.id, User.display_name, User.role, User.token_version)
# PostgreSQL: the ids as one array parameter. An expanding IN list binds and renders one
# parameter per id: 5 µs of CPU per user against 1.6 here, and every connected user is
# re-read this way every few seconds (accounts.service.Accounts.keep_fresh).
_ROLE_ROWS_PG = select(*_ROLE_COLUMNS).where(User.id == any_(cast(bindparam("ids"), ARRAY(BigInteger))))


async def role_rows(s: AsyncConnection, user_ids: list[int]) -> list:
    """``(id, display_name, role, token_version)`` of each of ``user_ids`` that exists (one query)."""
    if s.dialect.name == "postgresql":
        return list((await s.execute(_ROLE_ROWS_PG, {"ids": user_ids})).all())
    return list((await s.execute(select(*_ROLE_COLUMNS).where(User.id.in_(user_ids)))).all())


async def get_user_by_username(s: AsyncSession, username: str) -> User | None:
    return (await s.execute(select(User).where(User.username == username.lower()))).scalar_one_or_none()


async def search_users(s: AsyncSession, query: str, limit: int, sharing_with: int | None = None) -> list[User]:
    """Users whose username or display name starts with ``query`` (case-insensitive), never
    recorders, the exact username match first. With ``sharing_with`` (a user id) the prefix
    matches are only users who share a room with that user, while the user whose username is
    exactly ``query`` is found wherever they are."""
    exact = query.lower()
    like = exact.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    found = or_(User.username.like(like, escape="\\"), func.lower(User.display_name).like(like, escape="\\"))
    if sharing_with is not None:
        their_rooms = select(Membership.room_id).where(Membership.user_id == sharing_with)
        roommates = select(Membership.user_id).where(Membership.room_id.in_(their_rooms))
        found = or_(User.username == exact, and_(found, User.id.in_(roommates)))
    stmt = (select(User).where(found, User.role != "recorder")
            .order_by(case((User.username == exact, 0), else_=1), User.username).limit(limit))
    return list((await s.execute(stmt)).scalars())
