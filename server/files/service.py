"""Files (PROTOCOL §3 "Files"): who may see, list, move, copy and delete a file; folders and
statistics; signed download links. Upload ingestion is ``server/files/uploads.py``; what a file
may be is ``server/files/rules.py``; links are ``server/files/links.py``."""
from __future__ import annotations

import logging
import time
from typing import Awaitable, Callable

from server.config import Config
from server.db import files as fq
from server.db import users as uq
from server.db.engine import Database
from server.db.models import File
from server.files import links
from server.files.rules import INLINE_SAFE, new_file_id, rename_target
from server.files.uploads import Upload
from server.files.wire import CopyRequest, LinkRequest, Statistics
from server.kernel.actor import Actor
from server.kernel.clock import utcnow
from server.kernel.errors import BadRequest, Conflict, Forbidden, NotFound, PodiumError
from server.kernel.signing_keys import SigningKeys
from server.storage import Storage, StorageError, new_key

log = logging.getLogger("podium.files")

RoomRole = Callable[[int, Actor], Awaitable[str]]
"""``room_role(room_id, actor)``: the actor's role in the room; NotFound / Forbidden otherwise."""
AccessRule = Callable[[File, Actor], Awaitable[bool | None]]
"""``rule(file, actor)``: True/False when the rule decides who may read the file, None when it
has no say (registered by features that own files outside rooms: recording assets)."""


class Files:
    """Access rules and operations on stored files."""

    def __init__(self, config: Config, db: Database, storage: Storage, keys: SigningKeys, room_role: RoomRole):
        self.config, self.db, self.storage, self.keys = config, db, storage, keys
        self.room_role = room_role
        self._rules: list[AccessRule] = []
        # ``room_open(room_id)``: raises when the room is archived (read-only: no uploads).
        self.room_open: Callable[[int], Awaitable[None]] | None = None
        # ``tell_room(room_id, event)``: a room's files changed (its members' Files panels follow).
        self.tell_room: Callable[[int, dict], object] | None = None

    def add_access_rule(self, rule: AccessRule) -> None:
        """Let a feature decide who may read files it owns (consulted before the room rule)."""
        self._rules.append(rule)

    async def may_read(self, actor: Actor, f: File) -> bool:
        """Whether ``actor`` may read ``f``: its owner, an admin, what a registered rule says,
        or (room files) a member of its room."""
        if f.owner_id == actor.id or actor.is_admin:
            return True
        for rule in self._rules:
            verdict = await rule(f, actor)
            if verdict is not None:
                return verdict
        if f.room_id is not None:
            try:
                await self.room_role(f.room_id, actor)
                return True
            except (Forbidden, NotFound):
                return False
        return False

    def upload(self, actor: Actor, boundary: bytes) -> Upload:
        async def role_for_upload(room_id: int, who: Actor) -> str:
            role = await self.room_role(room_id, who)
            if self.room_open is not None:
                await self.room_open(room_id)
            return role
        return Upload(actor, boundary, config=self.config, db=self.db, storage=self.storage,
                      room_role=role_for_upload)

    async def _visible(self, actor: Actor, file_id: str) -> File:
        """The file if ``actor`` may see it: its owner, an admin, or (room files) a room member.
        NotFound otherwise, so ids of others' files are not confirmed."""
        async with self.db.read() as s:
            f = await fq.get_file(s, file_id)
        if f is None or not await self.may_read(actor, f):
            raise NotFound("no such file")  # others' files are not confirmed
        return f

    async def get(self, actor: Actor, file_id: str) -> File:
        return await self._visible(actor, file_id)

    async def _scope(self, actor: Actor, room_id: int | None) -> dict:
        """``room_id=`` a room the actor belongs to (when given), else ``owner_id=`` the actor:
        the scope of listing, folders and statistics."""
        if room_id is not None:
            await self.room_role(room_id, actor)  # NotFound / Forbidden
            return {"room_id": room_id}
        return {"owner_id": actor.id}

    async def list(self, actor: Actor, folder: str | None, room_id: int | None) -> list[File]:
        """Room files (members) when ``room_id`` is given, else the actor's own files."""
        scope = await self._scope(actor, room_id)
        async with self.db.read() as s:
            return await fq.list_files(s, folder=folder, **scope)

    async def folders(self, actor: Actor, room_id: int | None) -> list[tuple[str, int, int]]:
        """``(folder, files, bytes)`` for each folder holding files in the scope (directly in it)."""
        scope = await self._scope(actor, room_id)
        async with self.db.read() as s:
            return await fq.totals_by(s, fq.scope_filter(**scope), File.folder)

    async def folder_size(self, actor: Actor, folder: str, room_id: int | None) -> tuple[int, int]:
        """``(files, bytes)`` in ``folder`` and every folder below it."""
        scope = await self._scope(actor, room_id)
        async with self.db.read() as s:
            return await fq.totals(s, fq.scope_filter(**scope) + [fq.in_folder_tree(folder)])

    async def statistics(self, actor: Actor, room_id: int | None) -> Statistics:
        """Totals, and counts and bytes by category and by folder."""
        scope = await self._scope(actor, room_id)
        where = fq.scope_filter(**scope)
        async with self.db.read() as s:
            n, b = await fq.totals(s, where)
            cats = {c: (n_, b_) for c, n_, b_ in await fq.totals_by(s, where, File.category)}
            folders = await fq.totals_by(s, where, File.folder)
        return Statistics(scope.get("room_id"), n, b, cats, folders)

    def _changed(self, room_id: int | None, action: str, ids: list[str]) -> None:
        """``files.changed {room, action, files: [ids]}`` to the room's members (room files only)."""
        if room_id is not None and self.tell_room is not None and ids:
            self.tell_room(room_id, {"type": "files.changed", "room": str(room_id), "action": action, "files": ids})

    async def _check_manage(self, actor: Actor, f: File, verb: str) -> None:
        """Owner, admin, or an instructor of the file's room may delete or move it."""
        if f.owner_id != actor.id and not actor.is_admin:
            role = await self.room_role(f.room_id, actor) if f.room_id is not None else None
            if role != "instructor":
                raise Forbidden(f"only the owner or a room instructor can {verb} this file")

    async def move(self, actor: Actor, file_id: str, folder: str) -> File:
        """Into another folder of the same scope (a folder that does not exist yet comes into
        being); its signed links keep working. Conflict when the folder already holds a file of
        that name."""
        f = await self._visible(actor, file_id)
        await self._check_manage(actor, f, "move")
        async with self.db.write() as s:
            if folder != f.folder and await fq.name_taken(s, _siblings(f), folder, f.name, f.id):
                raise Conflict(f"“{folder or 'the top level'}” already has a file named “{f.name}”")
            moved = await fq.set_folder(s, f.id, folder)
        if moved is None:
            raise NotFound("no such file")
        self._changed(f.room_id, "moved", [f.id])
        log.info("user %s moved file %s to folder %r", actor.id, f.id, folder)
        return moved

    async def rename(self, actor: Actor, file_id: str, name: str) -> File:
        """A new display name (``rules.rename_target``: the extension is kept); its signed
        links keep working. Conflict when its folder already holds a file of that name."""
        f = await self._visible(actor, file_id)
        await self._check_manage(actor, f, "rename")
        name = rename_target(f.name, name)
        async with self.db.write() as s:
            if await fq.name_taken(s, _siblings(f), f.folder, name, f.id):
                raise Conflict(f"this folder already has a file named “{name}”")
            renamed = await fq.set_name(s, f.id, name)
        if renamed is None:
            raise NotFound("no such file")
        self._changed(f.room_id, "renamed", [f.id])
        log.info("user %s renamed file %s", actor.id, f.id)
        return renamed

    async def _folder_scope(self, actor: Actor, room_id: int | None, verb: str) -> list:
        """The files a folder operation acts on: a room's (its instructors only: a folder holds
        everyone's files) or the actor's own files outside rooms."""
        if room_id is None:
            return fq.scope_filter(owner_id=actor.id) + [File.room_id.is_(None)]
        if await self.room_role(room_id, actor) != "instructor":
            raise Forbidden(f"only room instructors can {verb} folders")
        return fq.scope_filter(room_id=room_id)

    async def move_folder(self, actor: Actor, room_id: int | None, folder: str, to: str) -> int:
        """Rename or move ``folder`` (and every folder below it) to the path ``to``; returns
        how many files moved. BadRequest for the top level or a move into itself, NotFound for
        a folder holding no files, Conflict when ``to`` already holds files (no merging)."""
        if not folder or not to:
            raise BadRequest("a folder needs a name: the top level cannot be moved or renamed")
        if to == folder or to.startswith(folder + "/"):
            raise BadRequest("a folder cannot be moved into itself")
        where = await self._folder_scope(actor, room_id, "rename or move")
        async with self.db.write() as s:
            rows = await fq.files_in_tree(s, where, folder)
            if not rows:
                raise NotFound(f"no folder “{folder}” here")
            if await fq.totals(s, where + [fq.in_folder_tree(to)]) != (0, 0):
                raise Conflict(f"a folder “{to}” already exists: choose another name")
            for f in rows:
                await fq.set_folder(s, f.id, to + f.folder[len(folder):])
        self._changed(room_id, "moved", [f.id for f in rows])
        log.info("user %s moved folder %r to %r (room %s, %d files)", actor.id, folder, to, room_id, len(rows))
        return len(rows)

    async def delete_folder(self, actor: Actor, room_id: int | None, folder: str) -> int:
        """Delete ``folder``, every folder below it and every file in them (their links stop at
        once); returns how many files were deleted. NotFound for a folder holding no files."""
        if not folder:
            raise BadRequest("name the folder to delete: the top level cannot be deleted")
        where = await self._folder_scope(actor, room_id, "delete")
        now = utcnow()
        async with self.db.write() as s:
            rows = await fq.files_in_tree(s, where, folder)
            if not rows:
                raise NotFound(f"no folder “{folder}” here")
            for f in rows:
                await fq.mark_deleted(s, f.id, now)
        self._changed(room_id, "deleted", [f.id for f in rows])
        for f in rows:
            await self._delete_blob(f)
        log.info("user %s deleted folder %r (room %s, %d files)", actor.id, folder, room_id, len(rows))
        return len(rows)

    async def _delete_blob(self, f: File) -> None:
        try:
            await self.storage.delete(f.storage_key)
        except StorageError:
            log.exception("file %s deleted but its blob %s could not be removed", f.id, f.storage_key)

    async def copy(self, actor: Actor, file_id: str, req: CopyRequest) -> File:
        """A new file owned by the actor, with its own id and blob, in ``req.folder`` of the same
        room as the original, or of the room asked for (None: the actor's own files); the actor
        must belong to that room, as for an upload."""
        f = await self._visible(actor, file_id)
        room_id = req.room_id if req.room_given else f.room_id
        if room_id is not None:
            await self.room_role(room_id, actor)
        row = File(id=new_file_id(), owner_id=actor.id, room_id=room_id, folder=req.folder, name=f.name,
                   storage_key=new_key(), content_type=f.content_type, category=f.category,
                   size=f.size, sha256=f.sha256, created_at=utcnow())
        await self.storage.copy(f.storage_key, row.storage_key)
        try:
            async with self.db.write() as s:
                await fq.add_files(s, [row])
        except BaseException:
            await self.storage.delete(row.storage_key)
            raise
        log.info("user %s copied file %s to %s (folder %r, room %s)", actor.id, f.id, row.id, req.folder, room_id)
        return row

    async def delete(self, actor: Actor, file_id: str) -> None:
        """Owner, admin, or an instructor of the file's room. Marks the row deleted (revoking
        links at once), then deletes the blob."""
        f = await self._visible(actor, file_id)
        await self._check_manage(actor, f, "delete")
        async with self.db.write() as s:
            if not await fq.mark_deleted(s, f.id, utcnow()):
                raise NotFound("no such file")
        self._changed(f.room_id, "deleted", [f.id])
        await self._delete_blob(f)
        log.info("user %s deleted file %s", actor.id, f.id)

    async def signed_url(self, actor: Actor, file_id: str, req: LinkRequest, base_url: str) -> dict:
        """``{url, expires_at}`` of a GET link for a file the actor may see."""
        f = await self._visible(actor, file_id)
        return links.file_link(self.keys, f, holder=actor.id, base_url=base_url, disposition=req.disposition,
                               expires_in=req.expires_in, max_ttl_s=self.config.signed_url_max_ttl_s,
                               now=time.time())

    async def for_download(self, method: str, file_id: str, name: str, query) -> tuple[File, str]:
        """Verify a signed link, then that the file still exists (410 ``gone`` once deleted) and
        that the link's holder may still read it (links follow access); return the file and the
        disposition to serve (inline only for :data:`INLINE_SAFE` types). A renamed file's
        links keep working (the id is unique; the MAC covers the name it was signed with) and
        download under its new name."""
        disp, holder = links.verify(self.keys, "GET" if method == "HEAD" else method, file_id, name,
                                    query, time.time())
        async with self.db.read() as s:
            f = await s.get(File, file_id)
            user = await uq.get_user(s, holder)
        if f is None:
            raise NotFound("this file no longer exists")
        if f.deleted_at is not None:
            raise PodiumError("this file was deleted", "gone")  # 410, at once
        if user is None or not await self.may_read(Actor(user.id, user.display_name, user.role), f):
            raise Forbidden("this link no longer works: its holder has no access to the file any more")
        if disp == "inline" and f.content_type not in INLINE_SAFE:
            disp = "attachment"
        return f, disp


def _siblings(f: File) -> list:
    """The live files sharing ``f``'s scope: its room's, or its owner's outside rooms."""
    if f.room_id is not None:
        return fq.scope_filter(room_id=f.room_id)
    return fq.scope_filter(owner_id=f.owner_id) + [File.room_id.is_(None)]
