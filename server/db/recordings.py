"""Storage functions for recordings, their assets and marks."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import File, Message, Recording, RecordingAsset, RecordingMark, User

ACTIVE = ("pending", "recording")
UNFINISHED = ("pending", "recording", "processing")


async def create(s: AsyncSession, session_id: int, room_id: int, by: int, now: datetime) -> Recording:
    row = Recording(session_id=session_id, room_id=room_id, requested_by=by, status="pending", requested_at=now)
    s.add(row)
    await s.flush()
    return row


async def get(s: AsyncSession, recording_id: int) -> Recording | None:
    return await s.get(Recording, recording_id, populate_existing=True)


async def active_for_session(s: AsyncSession, session_id: int) -> Recording | None:
    q = select(Recording).where(Recording.session_id == session_id, Recording.status.in_(ACTIVE))
    return (await s.execute(q)).scalars().first()


async def unfinished(s: AsyncSession) -> list[Recording]:
    q = select(Recording).where(Recording.status.in_(UNFINISHED)).order_by(Recording.id)
    return list((await s.execute(q)).scalars())


async def for_room(s: AsyncSession, room_id: int, limit: int) -> list[Recording]:
    q = (select(Recording).where(Recording.room_id == room_id)
         .order_by(Recording.requested_at.desc(), Recording.id.desc()).limit(limit))
    return list((await s.execute(q)).scalars())


_ANY = object()


async def transition(s: AsyncSession, recording_id: int, from_: tuple[str, ...], *, claimed_by=_ANY,
                     **values) -> Recording | None:
    """Set ``values`` if the recording is in one of ``from_`` (and, with ``claimed_by``, is
    given to that worker — None: to none); the updated row or None."""
    cond = [Recording.id == recording_id, Recording.status.in_(from_)]
    if claimed_by is not _ANY:
        cond.append(Recording.worker_id.is_(None) if claimed_by is None else Recording.worker_id == claimed_by)
    res = await s.execute(update(Recording).where(*cond).values(**values))
    if res.rowcount != 1:
        return None
    return await get(s, recording_id)


async def claim(s: AsyncSession, recording_id: int, worker_id: str, capacity: int) -> Recording | None:
    """Give a pending, unclaimed recording to ``worker_id`` if that worker holds fewer than
    ``capacity`` unfinished recordings; the updated row, or None (claimed meanwhile, no longer
    pending, or the worker is full). What a worker holds is counted here, in SQL, under a lock
    on the worker's id for the rest of the transaction (PostgreSQL: an advisory lock; SQLite
    has one writer), so processes dispatching at the same moment cannot overfill a worker."""
    if s.bind.dialect.name == "postgresql":
        await s.execute(select(func.pg_advisory_xact_lock(func.hashtext("podium.worker:" + worker_id))))
    held = (await s.execute(select(func.count()).select_from(Recording)
                            .where(Recording.worker_id == worker_id, Recording.status.in_(UNFINISHED)))).scalar_one()
    if held >= capacity:
        return None
    return await transition(s, recording_id, ("pending",), claimed_by=None, worker_id=worker_id)


async def assets(s: AsyncSession, recording_ids: list[int]) -> dict[int, list[tuple[RecordingAsset, File]]]:
    out: dict[int, list[tuple[RecordingAsset, File]]] = {r: [] for r in recording_ids}
    if not recording_ids:
        return out
    q = (select(RecordingAsset, File).join(File, File.id == RecordingAsset.file_id)
         .where(RecordingAsset.recording_id.in_(recording_ids), File.deleted_at.is_(None))
         .order_by(RecordingAsset.id))
    for asset, f in (await s.execute(q)).all():
        out[asset.recording_id].append((asset, f))
    return out


async def asset_by_name(s: AsyncSession, recording_id: int, name: str) -> RecordingAsset | None:
    q = select(RecordingAsset).where(RecordingAsset.recording_id == recording_id, RecordingAsset.name == name)
    return (await s.execute(q)).scalars().first()


async def asset_of_file(s: AsyncSession, file_id: str) -> tuple[RecordingAsset, Recording] | None:
    """The recording asset stored as ``file_id`` and its recording, if the file is one."""
    q = (select(RecordingAsset, Recording).join(Recording, Recording.id == RecordingAsset.recording_id)
         .where(RecordingAsset.file_id == file_id))
    row = (await s.execute(q)).first()
    return (row[0], row[1]) if row is not None else None


async def add_asset(s: AsyncSession, recording_id: int, name: str, file_id: str) -> None:
    s.add(RecordingAsset(recording_id=recording_id, name=name, file_id=file_id))
    await s.flush()


async def drop_asset(s: AsyncSession, asset_id: int) -> None:
    await s.execute(delete(RecordingAsset).where(RecordingAsset.id == asset_id))


async def describe_asset(s: AsyncSession, recording_id: int, name: str, kind: str, duration_s: float | None) -> bool:
    res = await s.execute(update(RecordingAsset)
                          .where(RecordingAsset.recording_id == recording_id, RecordingAsset.name == name)
                          .values(kind=kind, duration_s=duration_s))
    return res.rowcount == 1


async def add_mark(s: AsyncSession, recording_id: int, at: datetime, label: str, by: int) -> RecordingMark:
    row = RecordingMark(recording_id=recording_id, at=at, label=label, by=by)
    s.add(row)
    await s.flush()
    return row


async def marks(s: AsyncSession, recording_id: int) -> list[tuple[RecordingMark, User]]:
    q = (select(RecordingMark, User).join(User, User.id == RecordingMark.by)
         .where(RecordingMark.recording_id == recording_id).order_by(RecordingMark.at, RecordingMark.id))
    return list((await s.execute(q)).all())


async def chat_between(s: AsyncSession, room_id: int, start: datetime, end: datetime,
                       limit: int = 5000) -> list[tuple[Message, User]]:
    """Live (not deleted) user messages of a room sent in ``[start, end]``, in seq order."""
    q = (select(Message, User).join(User, User.id == Message.sender_id)
         .where(Message.room_id == room_id, Message.created_at >= start, Message.created_at <= end,
                Message.deleted_at.is_(None), Message.kind != "system")
         .order_by(Message.seq).limit(limit))
    return list((await s.execute(q)).all())
