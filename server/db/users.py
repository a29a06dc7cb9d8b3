"""Storage functions for users."""
from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.kernel.clock import utcnow
from server.db.models import User


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


async def get_user_by_username(s: AsyncSession, username: str) -> User | None:
    return (await s.execute(select(User).where(User.username == username.lower()))).scalar_one_or_none()


async def search_users(s: AsyncSession, prefix: str, limit: int) -> list[User]:
    """Users whose username or display name starts with ``prefix`` (case-insensitive)."""
    like = prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    stmt = (select(User).where(or_(User.username.like(like, escape="\\"),
                                   func.lower(User.display_name).like(like, escape="\\")))
            .where(User.role != "recorder").order_by(User.username).limit(limit))
    return list((await s.execute(stmt)).scalars())
