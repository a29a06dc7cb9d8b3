"""Recordings over HTTP (PROTOCOL §2.3, §3; docs/RECORDING.md): what room members see (with
fresh signed links), the timeline a worker needs to build subtitles and chapters, and the
assets a worker uploads.

Assets are files (``files`` rows, owned by the instructor who asked for the recording, in
folder ``recordings/<id>``, not attached to the room so they do not crowd its Files panel);
``recording_assets`` names them. Students see the class video, the chat subtitles and the
thumbnail of a ready recording; instructors see every asset (per-participant files, manifest).
"""
from __future__ import annotations

import hashlib
import logging
import re
import time
from datetime import datetime

from server.kernel.clock import utcnow
from server.kernel.actor import Actor
from server.db import files as fq
from server.db import recordings as rq
from server.db.models import ASSET_KINDS, File, Recording
from server.kernel.errors import BadRequest, Conflict, Forbidden, TooLarge
from server.files import links
from server.files.rules import new_file_id
from server.recordings import STUDENT_ASSET_KINDS, recording_wire
from server.storage import StorageError, Writer, new_key

log = logging.getLogger("podium.recordings")

ASSET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
ASSET_TYPES = {  # extension → (content type, file category)
    "mp4": ("video/mp4", "video"), "mkv": ("video/x-matroska", "video"), "webm": ("video/webm", "video"),
    "vtt": ("text/vtt", "document"), "jpg": ("image/jpeg", "image"), "json": ("application/json", "document"),
}
LINK_TTL_S = 3600


class RecordingLibrary:
    def __init__(self, deps, base_url: str = ""):
        self.deps, self.base_url = deps, base_url.rstrip("/")
        self.db, self.chat, self.recordings = deps.db, deps.chat, deps.recordings

    # -- reading ---------------------------------------------------------------------------
    async def _wires(self, rows: list[Recording], role: str) -> list[dict]:
        async with self.db.read() as s:
            by_rec = await rq.assets(s, [r.id for r in rows])
        now = time.time()
        out = []
        for row in rows:
            assets = []
            for asset, f in by_rec[row.id]:
                if asset.kind is None or (role != "instructor" and asset.kind not in STUDENT_ASSET_KINDS):
                    continue
                if role != "instructor" and row.status != "ready":
                    continue
                assets.append(self._asset_wire(asset, f, now))
            out.append(recording_wire(row, assets, self.recordings.progress.get(row.id)))
        return out

    def _asset_wire(self, asset, f: File, now: float) -> dict:
        link = links.file_link(self.deps.signing, f, base_url=self.base_url, expires_in=LINK_TTL_S,
                               max_ttl_s=self.deps.config.signed_url_max_ttl_s, now=now, with_inline=True)
        return {"id": str(asset.id), "kind": asset.kind, "name": asset.name, "file_id": f.id,
                "content_type": f.content_type, "size": f.size, "duration_s": asset.duration_s} | link

    async def for_room(self, actor: Actor, room_id: int, limit: int) -> list[dict]:
        role = await self.chat.room_role(room_id, actor)
        async with self.db.read() as s:
            rows = await rq.for_room(s, room_id, limit)
        return await self._wires(rows, role)

    async def get(self, actor: Actor, recording_id: int) -> dict:
        row = await self.recordings._get(recording_id)
        role = "instructor" if actor.role == "recorder" else await self.chat.room_role(row.room_id, actor)
        return (await self._wires([row], role))[0]

    async def timeline(self, actor: Actor, recording_id: int) -> dict:
        """Chat and marks of the recorded span, as offsets from its start on the server's clock
        (so a worker needs no clock agreement with the server)."""
        row = await self.recordings._get(recording_id)
        if actor.role != "recorder" and await self.chat.room_role(row.room_id, actor) != "instructor":
            raise Forbidden("only instructors and workers read a recording's timeline")
        if row.started_at is None:
            return {"recording": recording_wire(row), "chat": [], "marks": []}
        end = row.stopped_at or utcnow()
        async with self.db.read() as s:
            chat = await rq.chat_between(s, row.room_id, row.started_at, end)
            marks = await rq.marks(s, row.id)

        def offset(at: datetime) -> float:
            return round(max(0.0, (at - row.started_at).total_seconds()), 3)

        return {"recording": recording_wire(row),
                "chat": [{"seq": m.seq, "kind": m.kind, "text": m.content, "offset_s": offset(m.created_at),
                          "user": {"id": str(u.id), "display_name": u.display_name}} for m, u in chat],
                "marks": [{"label": k.label, "offset_s": offset(k.at),
                           "by": {"id": str(u.id), "display_name": u.display_name}} for k, u in marks]}

    # -- worker side -----------------------------------------------------------------------
    async def _held(self, actor: Actor, recording_id: int, worker_id: str | None) -> Recording:
        if actor.role != "recorder":
            raise Forbidden("only media workers upload recording assets")
        row = await self.recordings._get(recording_id)
        if not worker_id or row.worker_id != worker_id:
            raise Forbidden("this worker does not hold that recording (X-Worker-Id)")
        if row.status not in ("recording", "processing"):
            raise Conflict(f"the recording is {row.status}")
        return row

    async def open_asset(self, actor: Actor, recording_id: int, worker_id: str | None, name: str,
                         length: int | None) -> "AssetUpload":
        row = await self._held(actor, recording_id, worker_id)
        if not ASSET_NAME.fullmatch(name) or name.rpartition(".")[2].lower() not in ASSET_TYPES:
            raise BadRequest(f"asset names are [A-Za-z0-9._-] ending in one of {', '.join(sorted(ASSET_TYPES))}")
        limit = self.deps.config.recording_max_asset_bytes
        if length is not None and length > limit:
            raise TooLarge(f"recording assets are limited to {limit} bytes")
        key = new_key()
        return AssetUpload(self, row, name, key, await self.deps.storage.open_writer(key), limit)

    async def complete(self, actor: Actor, recording_id: int, worker_id: str | None, body: dict) -> dict:
        """``{assets:[{name, kind, duration_s?}], duration_s?}``: name the uploaded assets and
        make the recording ready."""
        row = await self._held(actor, recording_id, worker_id)
        items, duration = body.get("assets"), body.get("duration_s")
        if not isinstance(items, list) or not items:
            raise BadRequest("assets must be a non-empty list")
        if duration is not None and (isinstance(duration, bool) or not isinstance(duration, (int, float)) or duration < 0):
            raise BadRequest("duration_s must be a non-negative number")
        for item in items:
            if not isinstance(item, dict) or item.get("kind") not in ASSET_KINDS or not isinstance(item.get("name"), str):
                raise BadRequest(f"each asset needs a name and a kind in {', '.join(ASSET_KINDS)}")
            d = item.get("duration_s")
            if d is not None and (isinstance(d, bool) or not isinstance(d, (int, float))):
                raise BadRequest("an asset's duration_s must be a number")
        async with self.db.write() as s:
            for item in items:
                if not await rq.describe_asset(s, row.id, item["name"], item["kind"], item.get("duration_s")):
                    raise BadRequest(f"asset {item['name']!r} was not uploaded")
            values = {"status": "ready"}
            if duration is not None:
                values["duration_s"] = float(duration)
            ready = await rq.transition(s, row.id, ("recording", "processing"), **values)
        if ready is None:
            raise Conflict("the recording changed state meanwhile")
        await self.recordings.completed(row.id, ready)
        log.info("recording %s ready with %d assets", row.id, len(items))
        return {"recording": (await self._wires([ready], "instructor"))[0]}


class AssetUpload:
    """One streamed ``PUT /api/recordings/{id}/assets/{name}``: bytes to storage with SHA-256,
    then a file row; re-uploading a name replaces the earlier asset (a retried upload)."""

    def __init__(self, lib: RecordingLibrary, row: Recording, name: str, key: str, writer: Writer, limit: int):
        self.lib, self.row, self.name, self.key, self.writer, self.limit = lib, row, name, key, writer, limit
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
            async with self.lib.db.write() as s:
                old = await rq.asset_by_name(s, self.row.id, self.name)
                if old is not None:
                    replaced = await fq.get_file(s, old.file_id)
                    await rq.drop_asset(s, old.id)
                    await fq.mark_deleted(s, old.file_id, utcnow())
                await fq.add_files(s, [f])
                await rq.add_asset(s, self.row.id, self.name, f.id)
        except BaseException:
            await self.lib.deps.storage.delete(self.key)
            raise
        self.done = True
        if replaced is not None:
            try:
                await self.lib.deps.storage.delete(replaced.storage_key)
            except StorageError:
                log.exception("could not remove the blob of replaced asset %s", replaced.id)
        log.info("recording %s: asset %s stored (%d bytes)", self.row.id, self.name, self.size)
        return {"name": self.name, "file_id": f.id, "size": self.size, "sha256": f.sha256, "content_type": ctype}

    async def abort(self) -> None:
        if not self.done:
            await self.writer.abort()
