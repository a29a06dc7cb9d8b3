"""Files (PROTOCOL §3 "Files"): who may see, list, move, copy and delete a file; folders and
statistics; signed download links. Upload ingestion is ``server/uploads.py``; what a file may
be is ``server/file_rules.py``."""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

from server import signing
from server.kernel.actor import Actor, parse_id
from server.kernel.clock import iso, utcnow
from server.config import FILE_CATEGORIES, Config
from server.db import files as fq
from server.db.models import File
from server.kernel.errors import BadRequest, Forbidden, NotFound
from server.file_rules import (
    INLINE_SAFE,
    UnsupportedMediaType,
    file_wire,
    new_file_id,
    normalize_folder,
)
from server.storage import Storage, StorageError, new_key
from server.uploads import Upload

__all__ = ["Files", "UnsupportedMediaType"]

log = logging.getLogger("podium.files")


class Files:
    """Access rules and operations on stored files."""

    def __init__(self, deps):
        self.config: Config = deps.config
        self.db = deps.db
        self.chat = deps.chat
        self.storage: Storage = deps.storage
        self.signing: signing.SigningKeys = deps.signing

    def upload(self, actor: Actor, boundary: bytes) -> Upload:
        return Upload(self, actor, boundary)

    async def _visible(self, actor: Actor, file_id: str) -> File:
        """The file if ``actor`` may see it: its owner, an admin, or (room files) a room member.
        NotFound otherwise, so ids of others' files are not confirmed."""
        async with self.db.read() as s:
            f = await fq.get_file(s, file_id)
        if f is None:
            raise NotFound("no such file")
        if f.owner_id == actor.id or actor.is_admin:
            return f
        if f.room_id is not None:
            try:
                await self.chat.room_role(f.room_id, actor)
                return f
            except (Forbidden, NotFound):
                pass
        raise NotFound("no such file")

    async def get(self, actor: Actor, file_id: str) -> dict:
        return file_wire(await self._visible(actor, file_id))

    async def _scope(self, actor: Actor, room) -> dict:
        """``room_id=`` a room the actor belongs to (when ``room`` is given), else ``owner_id=``
        the actor: the scope of listing, folders and statistics."""
        if room is not None:
            room_id = parse_id(room, "room")
            await self.chat.room_role(room_id, actor)  # NotFound / Forbidden
            return {"room_id": room_id}
        return {"owner_id": actor.id}

    async def list(self, actor: Actor, folder, room) -> list[dict]:
        """Room files (members) when ``room`` is given, else the actor's own files."""
        folder = normalize_folder(folder) if folder is not None else None
        scope = await self._scope(actor, room)
        async with self.db.read() as s:
            rows = await fq.list_files(s, folder=folder, **scope)
        return [file_wire(r) for r in rows]

    async def folders(self, actor: Actor, room) -> list[dict]:
        """Each folder holding files in the scope, with the count and bytes directly in it."""
        scope = await self._scope(actor, room)
        async with self.db.read() as s:
            rows = await fq.totals_by(s, fq.scope_filter(**scope), File.folder)
        return [{"folder": f, "files": n, "bytes": b} for f, n, b in rows]

    async def folder_size(self, actor: Actor, folder, room) -> dict:
        """Files and bytes in ``folder`` and every folder below it."""
        folder = normalize_folder(folder)
        scope = await self._scope(actor, room)
        async with self.db.read() as s:
            n, b = await fq.totals(s, fq.scope_filter(**scope) + [fq.in_folder_tree(folder)])
        return {"folder": folder, "files": n, "bytes": b}

    async def statistics(self, actor: Actor, room) -> dict:
        """Totals, and counts and bytes by category (all five, zeros included) and by folder."""
        scope = await self._scope(actor, room)
        where = fq.scope_filter(**scope)
        async with self.db.read() as s:
            n, b = await fq.totals(s, where)
            cats = {c: (n_, b_) for c, n_, b_ in await fq.totals_by(s, where, File.category)}
            folders = await fq.totals_by(s, where, File.folder)
        return {"room": str(scope["room_id"]) if "room_id" in scope else None,
                "files": n, "bytes": b,
                "by_category": [{"category": c, "files": cats.get(c, (0, 0))[0], "bytes": cats.get(c, (0, 0))[1]}
                                for c in FILE_CATEGORIES],
                "by_folder": [{"folder": f, "files": n_, "bytes": b_} for f, n_, b_ in folders]}

    async def _check_manage(self, actor: Actor, f: File, verb: str) -> None:
        """Owner, admin, or an instructor of the file's room may delete or move it."""
        if f.owner_id != actor.id and not actor.is_admin:
            role = await self.chat.room_role(f.room_id, actor) if f.room_id is not None else None
            if role != "instructor":
                raise Forbidden(f"only the owner or a room instructor can {verb} this file")

    async def move(self, actor: Actor, file_id: str, body: dict) -> dict:
        """Into another folder of the same scope; its signed links keep working."""
        f = await self._visible(actor, file_id)
        if "folder" not in body:
            raise BadRequest("folder is required")
        folder = normalize_folder(body["folder"])
        await self._check_manage(actor, f, "move")
        async with self.db.write() as s:
            moved = await fq.set_folder(s, f.id, folder)
        if moved is None:
            raise NotFound("no such file")
        log.info("user %s moved file %s to folder %r", actor.id, f.id, folder)
        return file_wire(moved)

    async def copy(self, actor: Actor, file_id: str, body: dict) -> dict:
        """A new file owned by the actor, with its own id and blob, in ``folder`` of the same
        room as the original, or of ``room`` when given (``null``: the actor's own files);
        the actor must belong to that room, as for an upload."""
        f = await self._visible(actor, file_id)
        if "folder" not in body:
            raise BadRequest("folder is required")
        folder = normalize_folder(body["folder"])
        room_id = f.room_id
        if "room" in body:
            room_id = None if body["room"] is None else parse_id(body["room"], "room")
        if room_id is not None:
            await self.chat.room_role(room_id, actor)
        row = File(id=new_file_id(), owner_id=actor.id, room_id=room_id, folder=folder, name=f.name,
                   storage_key=new_key(), content_type=f.content_type, category=f.category,
                   size=f.size, sha256=f.sha256, created_at=utcnow())
        await self.storage.copy(f.storage_key, row.storage_key)
        try:
            async with self.db.write() as s:
                await fq.add_files(s, [row])
        except BaseException:
            await self.storage.delete(row.storage_key)
            raise
        log.info("user %s copied file %s to %s (folder %r, room %s)", actor.id, f.id, row.id, folder, room_id)
        return file_wire(row)

    async def delete(self, actor: Actor, file_id: str) -> None:
        """Owner, admin, or an instructor of the file's room. Marks the row deleted (revoking
        links at once), then deletes the blob."""
        f = await self._visible(actor, file_id)
        await self._check_manage(actor, f, "delete")
        async with self.db.write() as s:
            if not await fq.mark_deleted(s, f.id, utcnow()):
                raise NotFound("no such file")
        try:
            await self.storage.delete(f.storage_key)
        except StorageError:
            log.exception("file %s deleted but its blob %s could not be removed", f.id, f.storage_key)
        log.info("user %s deleted file %s", actor.id, f.id)

    async def signed_url(self, actor: Actor, file_id: str, body: dict) -> tuple[str, str]:
        """``(path, expires_at iso)`` of a GET link for the file."""
        f = await self._visible(actor, file_id)
        disposition = body.get("disposition", "attachment")
        if disposition not in signing.DISPOSITIONS:
            raise BadRequest("disposition must be 'attachment' or 'inline'")
        expires_in = body.get("expires_in", 300)
        if isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in <= 0:
            raise BadRequest("expires_in must be a positive integer of seconds")
        path, exp = signing.signed_path(self.signing, f.id, f.name, disposition, expires_in,
                                        self.config.signed_url_max_ttl_s, time.time())
        return path, iso(datetime.fromtimestamp(exp, timezone.utc).replace(tzinfo=None))

    async def for_download(self, method: str, file_id: str, name: str, query) -> tuple[File, str]:
        """Verify a signed link, then that the file still exists under that name; return the
        file and the disposition to serve (inline only for :data:`INLINE_SAFE` types)."""
        disp = signing.verify(self.signing, "GET" if method == "HEAD" else method, file_id, name,
                              query, time.time())
        async with self.db.read() as s:
            f = await fq.get_file(s, file_id)
        if f is None or f.name != name:
            raise Forbidden("this link no longer works")
        if disp == "inline" and f.content_type not in INLINE_SAFE:
            disp = "attachment"
        return f, disp
