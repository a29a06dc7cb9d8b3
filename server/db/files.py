"""Storage functions for file metadata (the bytes live in ``server.storage``)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import File


async def add_files(s: AsyncSession, rows: list[File]) -> None:
    s.add_all(rows)
    await s.flush()


async def get_file(s: AsyncSession, file_id: str) -> File | None:
    """The file, or None when missing or deleted."""
    row = await s.get(File, file_id)
    return row if row is not None and row.deleted_at is None else None


async def list_files(s: AsyncSession, *, owner_id: int | None = None, room_id: int | None = None,
                     folder: str | None = None, limit: int = 500) -> list[File]:
    """Live files by owner and/or room, optionally in one folder, newest first."""
    q = select(File).where(File.deleted_at.is_(None))
    if owner_id is not None:
        q = q.where(File.owner_id == owner_id)
    if room_id is not None:
        q = q.where(File.room_id == room_id)
    if folder is not None:
        q = q.where(File.folder == folder)
    q = q.order_by(File.created_at.desc(), File.id).limit(limit)
    return list((await s.execute(q)).scalars())


async def mark_deleted(s: AsyncSession, file_id: str, now: datetime) -> bool:
    """Soft-delete; False when it was already deleted or missing."""
    res = await s.execute(update(File).where(File.id == file_id, File.deleted_at.is_(None))
                          .values(deleted_at=now))
    return res.rowcount == 1
