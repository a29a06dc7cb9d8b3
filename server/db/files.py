"""Storage functions for file metadata (the bytes live in ``server.storage``)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select, update
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


def scope_filter(*, owner_id: int | None = None, room_id: int | None = None) -> list[ColumnElement]:
    """Live files of one owner or one room (the scopes of list, folders and statistics)."""
    where = [File.deleted_at.is_(None)]
    if owner_id is not None:
        where.append(File.owner_id == owner_id)
    if room_id is not None:
        where.append(File.room_id == room_id)
    return where


def in_folder_tree(folder: str) -> ColumnElement:
    """The folder itself and every folder below it (``a`` matches ``a`` and ``a/b``, not ``ab``).
    ``substr`` instead of LIKE, so ``%`` and ``_`` in folder names need no escaping."""
    return or_(File.folder == folder, func.substr(File.folder, 1, len(folder) + 1) == folder + "/")


async def totals_by(s: AsyncSession, where: list[ColumnElement], column) -> list[tuple[str, int, int]]:
    """``(value, files, bytes)`` per distinct ``column`` value, sorted by value."""
    q = (select(column, func.count(), func.coalesce(func.sum(File.size), 0))
         .where(*where).group_by(column).order_by(column))
    return [(v, int(n), int(b)) for v, n, b in (await s.execute(q)).all()]


async def totals(s: AsyncSession, where: list[ColumnElement]) -> tuple[int, int]:
    n, b = (await s.execute(select(func.count(), func.coalesce(func.sum(File.size), 0)).where(*where))).one()
    return int(n), int(b)


async def set_folder(s: AsyncSession, file_id: str, folder: str) -> File | None:
    """Move a live file; None when it is gone."""
    await s.execute(update(File).where(File.id == file_id, File.deleted_at.is_(None)).values(folder=folder))
    return await get_file(s, file_id)


async def set_name(s: AsyncSession, file_id: str, name: str) -> File | None:
    """Rename a live file; None when it is gone."""
    await s.execute(update(File).where(File.id == file_id, File.deleted_at.is_(None)).values(name=name))
    return await get_file(s, file_id)


async def name_taken(s: AsyncSession, where: list[ColumnElement], folder: str, name: str,
                     except_id: str | None = None) -> bool:
    """Whether a live file of the scope ``where`` already has ``name`` in ``folder``
    (case-insensitively, as people read names)."""
    q = select(File.id).where(*where, File.folder == folder, func.lower(File.name) == name.lower())
    if except_id is not None:
        q = q.where(File.id != except_id)
    return (await s.execute(q.limit(1))).first() is not None


async def files_in_tree(s: AsyncSession, where: list[ColumnElement], folder: str) -> list[File]:
    """Live files of the scope in ``folder`` and every folder below it."""
    return list((await s.execute(select(File).where(*where, in_folder_tree(folder)))).scalars())
