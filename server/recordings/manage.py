"""Recordings managed by the room's instructors (issue 15.2; docs/RECORDING.md "Managing
recordings"): a title (default: the room's name and the date), renaming, deleting, and the
retention sweep (``RECORDING_RETENTION_DAYS``).

- ``PATCH /api/recordings/{id} {title}`` → ``{recording}``: 1–200 characters; the files of
  its assets are renamed after it, so downloads are called "<title>.mp4", "<title> - chat.vtt".
- ``DELETE /api/recordings/{id}`` → ``{}``: a finished (ready or failed) recording and every
  asset — the stored bytes (disk or S3), the file rows, the recording; one still being made
  is ``409`` (stop it first). Links to its files stop working at once (their rows are gone).
- The room hears ``recording.updated {recording}`` / ``recording.deleted {recording: {id, room}}``.
- With ``RECORDING_RETENTION_DAYS`` > 0 a sweep (at start, then daily) deletes finished
  recordings older than that many days.
"""
from __future__ import annotations

import asyncio
import logging
import re
from datetime import timedelta

from sqlalchemy import delete, select

from server.db import recordings as rq
from server.db.engine import Database
from server.db.models import File, Recording, RecordingAsset, Room
from server.kernel.actor import Actor
from server.kernel.clock import utcnow
from server.kernel.errors import BadRequest, Conflict, NotFound
from server.realtime.registry import Registry
from server.rooms.membership import require_instructor
from server.storage import Storage, StorageError

log = logging.getLogger("podium.recordings")
MAX_TITLE = 200
FINISHED = ("ready", "failed")
SWEEP_EVERY_S = 24 * 3600
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')


def default_title(room_name: str, row: Recording) -> str:
    """"Physics 101 — 6 Dec 2026, 09h53" (UTC; no colon: it names downloaded files) for a
    recording without a title of its own."""
    at = row.started_at or row.requested_at
    return f"{room_name} — {at.day} {at:%b %Y}, {at:%H}h{at:%M}"


def title_of(room_name: str, row: Recording) -> str:
    return row.title or default_title(room_name, row)


def file_name(title: str, asset_name: str, kind: str | None) -> str:
    """An asset's download name: the class video is "<title>.mp4", the others
    "<title> - <asset name>"; characters no file system takes become spaces."""
    safe = " ".join(_UNSAFE.sub(" ", title).split())[:150] or "Recording"
    if kind == "composite":
        ext = asset_name.rsplit(".", 1)[-1] if "." in asset_name else "mp4"
        return f"{safe}.{ext}"
    return f"{safe} - {asset_name}"


async def name_files_in(s, recording_id: int) -> str:
    """Inside ``s``: the files of a recording's assets named after its title — at completion in
    the same transaction that makes it ready, so no link is ever minted with the old names.
    Returns the title."""
    row = await rq.get(s, recording_id)
    room = await s.get(Room, row.room_id)
    title = title_of(room.name, row)
    for asset, f in (await rq.assets(s, [recording_id]))[recording_id]:
        f.name = file_name(title, asset.name, asset.kind)
    return title


def parse_title(body) -> str:
    title = body.get("title") if isinstance(body, dict) else None
    if not isinstance(title, str) or not title.strip() or len(title.strip()) > MAX_TITLE:
        raise BadRequest(f"title must be 1 to {MAX_TITLE} characters")
    return " ".join(title.split())


class RecordingManager:
    def __init__(self, db: Database, storage: Storage, registry: Registry, retention_days: int = 0):
        self.db, self.storage, self.registry, self.retention_days = db, storage, registry, retention_days
        self._sweeper: asyncio.Task | None = None

    async def _instructor_row(self, actor: Actor, recording_id: int) -> tuple[Recording, Room]:
        async with self.db.read() as s:
            row = await rq.get(s, recording_id)
            if row is None:
                raise NotFound("no such recording")
            room = await require_instructor(s, row.room_id, actor,
                                            "only the room's instructors manage its recordings")
        return row, room

    async def name_files(self, recording_id: int) -> None:
        """The files of a recording's assets renamed after its title (on rename)."""
        async with self.db.write() as s:
            await name_files_in(s, recording_id)

    async def rename(self, actor: Actor, recording_id: int, body) -> dict:
        title = parse_title(body)
        row, _ = await self._instructor_row(actor, recording_id)
        async with self.db.write() as s:
            (await rq.get(s, recording_id)).title = title
        await self.name_files(recording_id)
        log.info("recording %s renamed by %s", recording_id, actor.id)
        return {"id": str(recording_id), "room": str(row.room_id), "title": title}

    async def delete(self, actor: Actor | None, recording_id: int) -> None:
        """Delete a finished recording and its stored assets (``actor`` None: the sweep)."""
        if actor is not None:
            row, _ = await self._instructor_row(actor, recording_id)
            if row.status not in FINISHED:
                raise Conflict("this recording is still being made: stop it first")
        async with self.db.write() as s:
            row = await rq.get(s, recording_id)
            if row is None or row.status not in FINISHED:
                return
            pairs = (await rq.assets(s, [recording_id]))[recording_id]
            keys = [f.storage_key for _, f in pairs]
            file_ids = [f.id for _, f in pairs]
            await s.execute(delete(RecordingAsset).where(RecordingAsset.recording_id == recording_id))
            if file_ids:
                await s.execute(delete(File).where(File.id.in_(file_ids)))
            await s.delete(row)
        for key in keys:  # after the rows: a link can no longer reach them
            try:
                await self.storage.delete(key)
            except StorageError:
                log.exception("recording %s: deleting stored asset %s failed", recording_id, key)
        self.registry.broadcast(row.room_id, {"type": "recording.deleted",
                                              "recording": {"id": str(recording_id), "room": str(row.room_id)}})
        log.info("recording %s deleted (%s), %d assets", recording_id,
                 "retention" if actor is None else f"by {actor.id}", len(keys))

    async def sweep(self) -> int:
        """Delete finished recordings older than the retention; how many went."""
        if self.retention_days <= 0:
            return 0
        cutoff = utcnow() - timedelta(days=self.retention_days)
        async with self.db.read() as s:
            ids = list((await s.execute(select(Recording.id).where(
                Recording.status.in_(FINISHED), Recording.requested_at < cutoff))).scalars())
        for rid in ids:
            await self.delete(None, rid)
        if ids:
            log.info("retention: %d recordings older than %d days deleted", len(ids), self.retention_days)
        return len(ids)

    def start(self) -> None:
        if self.retention_days > 0 and self._sweeper is None:
            self._sweeper = asyncio.ensure_future(self._sweep_daily())

    async def _sweep_daily(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("the recordings' retention sweep failed")
            await asyncio.sleep(SWEEP_EVERY_S)

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
