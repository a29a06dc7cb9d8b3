"""Recording assets a worker uploads (PROTOCOL §2.3): streamed into storage with SHA-256, then
a file row (owned by the instructor who asked for the recording, in folder
``recordings/<id>``, not attached to the room so they do not crowd its Files panel) that
``recording_assets`` names. Making the recording ready is the lifecycle's ``complete``.
"""
from __future__ import annotations

import hashlib
import logging
import re

from server.db import files as fq
from server.db import recordings as rq
from server.db.models import File, Recording
from server.files.rules import new_file_id
from server.kernel.actor import Actor
from server.kernel.clock import utcnow
from server.kernel.errors import BadRequest, Forbidden, NotFound, TooLarge
from server.recordings.wire import STUDENT_ASSET_KINDS
from server.storage import StorageError, Writer, new_key

log = logging.getLogger("podium.recordings")

ASSET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
ASSET_TYPES = {  # extension → (content type, file category)
    "mp4": ("video/mp4", "video"), "mkv": ("video/x-matroska", "video"), "webm": ("video/webm", "video"),
    "vtt": ("text/vtt", "document"), "jpg": ("image/jpeg", "image"), "json": ("application/json", "document"),
}


class Assets:
    def __init__(self, deps):
        self.deps = deps

    async def open_asset(self, actor: Actor, recording_id: int, worker_id: str | None, name: str,
                         length: int | None) -> "AssetUpload":
        row = await self.deps.recordings.held_by(actor, recording_id, worker_id)
        if not ASSET_NAME.fullmatch(name) or name.rpartition(".")[2].lower() not in ASSET_TYPES:
            raise BadRequest(f"asset names are [A-Za-z0-9._-] ending in one of {', '.join(sorted(ASSET_TYPES))}")
        limit = self.deps.config.recording_max_asset_bytes
        if length is not None and length > limit:
            raise TooLarge(f"recording assets are limited to {limit} bytes")
        key = new_key()
        return AssetUpload(self.deps, row, name, key, await self.deps.storage.open_writer(key), limit)


class AssetUpload:
    """One streamed ``PUT /api/recordings/{id}/assets/{name}``: bytes to storage with SHA-256,
    then a file row; re-uploading a name replaces the earlier asset (a retried upload)."""

    def __init__(self, deps, row: Recording, name: str, key: str, writer: Writer, limit: int):
        self.deps, self.row, self.name, self.key, self.writer, self.limit = deps, row, name, key, writer, limit
        self.sha = hashlib.sha256()
        self.size = 0
        self.done = False

    async def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise TooLarge(f"recording assets are limited to {self.limit} bytes")
        self.sha.update(chunk)
        await self.writer.write(chunk)

    async def finish(self) -> dict:
        await self.writer.commit()
        ext = self.name.rpartition(".")[2].lower()
        ctype, category = ASSET_TYPES[ext]
        f = File(id=new_file_id(), owner_id=self.row.requested_by, room_id=None, folder=f"recordings/{self.row.id}",
                 name=self.name, storage_key=self.key, content_type=ctype, category=category, size=self.size,
                 sha256=self.sha.hexdigest(), created_at=utcnow())
        replaced = None
        try:
            async with self.deps.db.write() as s:
                old = await rq.asset_by_name(s, self.row.id, self.name)
                if old is not None:
                    replaced = await fq.get_file(s, old.file_id)
                    await rq.drop_asset(s, old.id)
                    await fq.mark_deleted(s, old.file_id, utcnow())
                await fq.add_files(s, [f])
                await rq.add_asset(s, self.row.id, self.name, f.id)
        except BaseException:
            await self.deps.storage.delete(self.key)
            raise
        self.done = True
        if replaced is not None:
            try:
                await self.deps.storage.delete(replaced.storage_key)
            except StorageError:
                log.exception("could not remove the blob of replaced asset %s", replaced.id)
        log.info("recording %s: asset %s stored (%d bytes)", self.row.id, self.name, self.size)
        return {"name": self.name, "file_id": f.id, "size": self.size, "sha256": f.sha256, "content_type": ctype}

    async def abort(self) -> None:
        if not self.done:
            await self.writer.abort()


class AssetAccess:
    """Who may read a recording's asset files (they live outside rooms; a link to one is
    checked at download): the recording room's instructors every asset; its other members the
    class video, chat and thumbnail of a ready recording. Files of no recording: no say."""

    def __init__(self, db, rooms):
        self.db, self.rooms = db, rooms

    async def __call__(self, f: File, actor: Actor) -> bool | None:
        if f.room_id is not None or not (f.folder or "").startswith("recordings/"):
            return None
        async with self.db.read() as s:
            found = await rq.asset_of_file(s, f.id)
        if found is None:
            return None
        asset, recording = found
        try:
            role = await self.rooms.role(recording.room_id, actor)
        except (Forbidden, NotFound):
            return False
        return role == "instructor" or (recording.status == "ready" and asset.kind in STUDENT_ASSET_KINDS)
