"""Streaming multipart uploads (``POST /api/files``) into storage.

Guarantees:

- An upload is streamed part by part into storage (:class:`Upload`); at most one parser chunk
  is held in memory. SHA-256 and size are computed while streaming.
- A file is accepted only when its extension is on its category's allow-list, its size is within
  that category's limit (413 otherwise, checked as bytes arrive) and its content matches the
  extension (magic bytes via ``filetype``; text types must be UTF-8 without NUL) — 415 otherwise.
- Any failure aborts every writer and deletes every blob already committed by the request, so a
  rejected upload leaves nothing in storage and no row in the database.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from python_multipart.multipart import MultipartParser, parse_options_header

from server.config import Config
from server.db import files as fq
from server.db.engine import Database
from server.db.models import File
from server.files.rules import (
    CONTENT_TYPES,
    MAX_FIELD_BYTES,
    MAX_HEADER_BYTES,
    ContentCheck,
    category_of,
    new_file_id,
    normalize_folder,
    sanitize_name,
)
from server.kernel.actor import Actor, parse_id
from server.kernel.clock import utcnow
from server.kernel.errors import BadRequest, PodiumError, TooLarge
from server.storage import Storage, StorageError, Writer, new_key

log = logging.getLogger("podium.files")


@dataclass
class _FilePart:
    name: str
    ext: str
    category: str
    limit: int
    key: str
    writer: Writer
    check: ContentCheck
    sha: "hashlib._Hash" = field(default_factory=hashlib.sha256)
    size: int = 0


@dataclass
class _Stored:
    name: str
    ext: str
    category: str
    key: str
    size: int
    sha256: str


class Upload:
    """One ``multipart/form-data`` upload in progress. Feed body chunks with :meth:`feed`, then
    :meth:`finish` (which stores the rows) or :meth:`abort`. Fields ``folder`` and ``room``
    may come before or after the files; other fields are a bad request. ``room_role(room_id,
    actor)`` raises NotFound / Forbidden when the actor may not upload into that room."""

    def __init__(self, actor: Actor, boundary: bytes, *, config: Config, db: Database, storage: Storage,
                 room_role: Callable[[int, Actor], Awaitable[str]]):
        self.actor, self.config, self.db, self.storage, self.room_role = actor, config, db, storage, room_role
        self._events: list[tuple] = []
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, bytes] = {}
        self._header_bytes = 0
        self._parts = 0
        self._current: _FilePart | bytearray | None = None
        self._current_field: str | None = None
        self._fields: dict[str, str] = {}
        self._writers: list[Writer] = []
        self._stored: list[_Stored] = []
        self._ended = False
        self._room_checked: int | None = None
        self.parser = MultipartParser(boundary, callbacks={
            "on_part_begin": self._on_part_begin,
            "on_header_field": lambda d, s, e: self._header_chunk(self._header_field, d, s, e),
            "on_header_value": lambda d, s, e: self._header_chunk(self._header_value, d, s, e),
            "on_header_end": self._on_header_end,
            "on_headers_finished": lambda: self._events.append(("begin", dict(self._headers))),
            "on_part_data": lambda d, s, e: self._events.append(("data", bytes(d[s:e]))),
            "on_part_end": lambda: self._events.append(("end",)),
            "on_end": lambda: self._events.append(("done",)),
        })

    # -- parser callbacks (synchronous; they only queue events) --------------------------------
    def _on_part_begin(self) -> None:
        self._headers = {}
        self._header_bytes = 0

    def _header_chunk(self, buf: bytearray, data: bytes, start: int, end: int) -> None:
        self._header_bytes += end - start
        if self._header_bytes > MAX_HEADER_BYTES:
            raise BadRequest("multipart part headers are too large")
        buf += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[bytes(self._header_field).decode("latin-1").strip().lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    # -- streaming ---------------------------------------------------------------------------
    async def feed(self, chunk: bytes) -> None:
        """Parse one body chunk and stream its file data to storage. Raises BadRequest,
        TooLarge or UnsupportedMediaType; the caller must then :meth:`abort`."""
        try:
            self.parser.write(chunk)
        except PodiumError:
            raise
        except Exception as e:  # python-multipart raises its own parse errors
            raise BadRequest(f"malformed multipart body: {e}") from None
        events, self._events = self._events, []
        for ev in events:
            if ev[0] == "data":
                await self._data(ev[1])
            elif ev[0] == "begin":
                await self._begin(ev[1])
            elif ev[0] == "end":
                await self._end()
            else:
                self._ended = True

    async def _begin(self, headers: dict[str, bytes]) -> None:
        self._parts += 1
        if self._parts > self.config.upload_max_parts:
            raise BadRequest(f"too many parts (at most {self.config.upload_max_parts})")
        _, opts = parse_options_header(headers.get("content-disposition", b""))
        field_name = opts.get(b"name", b"").decode("utf-8", "replace")
        filename = opts.get(b"filename")
        if field_name == "file" and filename is not None:
            if sum(1 for s in self._stored) + 1 > self.config.upload_max_files:
                raise BadRequest(f"too many files (at most {self.config.upload_max_files})")
            name = sanitize_name(filename.decode("utf-8", "replace"))
            ext, category = category_of(self.config, name)
            if "room" in self._fields:
                await self._check_room()
            key = new_key()
            writer = await self.storage.open_writer(key)
            self._writers.append(writer)
            self._current = _FilePart(name, ext, category, self.config.file_limits[category], key,
                                      writer, ContentCheck(ext))
        elif field_name in ("folder", "room") and filename is None:
            if field_name in self._fields:
                raise BadRequest(f"{field_name} given twice")
            self._current_field = field_name
            self._current = bytearray()
        else:
            raise BadRequest(f"unexpected form field {field_name!r}")

    async def _data(self, data: bytes) -> None:
        part = self._current
        if isinstance(part, bytearray):
            part += data
            if len(part) > MAX_FIELD_BYTES:
                raise BadRequest(f"{self._current_field} is too long")
            return
        if part is None:
            return
        part.size += len(data)
        if part.size > part.limit:
            raise TooLarge(f"{part.name}: {part.category} files are limited to {part.limit} bytes")
        part.check.feed(data)
        part.sha.update(data)
        await part.writer.write(data)

    async def _end(self) -> None:
        part, self._current = self._current, None
        if isinstance(part, bytearray):
            try:
                self._fields[self._current_field] = part.decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequest(f"{self._current_field} is not UTF-8") from None
            if self._current_field == "folder":
                normalize_folder(self._fields["folder"])
            return
        if part is None:
            return
        part.check.finish()
        await part.writer.commit()
        self._writers.remove(part.writer)
        self._stored.append(_Stored(part.name, part.ext, part.category, part.key, part.size,
                                    part.sha.hexdigest()))

    async def _check_room(self) -> int:
        room_id = parse_id(self._fields["room"].strip(), "room")
        if self._room_checked != room_id:
            await self.room_role(room_id, self.actor)  # NotFound / Forbidden
            self._room_checked = room_id
        return room_id

    async def finish(self) -> list[File]:
        """After the whole body: check the room, store the rows and return them."""
        if not self._ended:
            raise BadRequest("multipart body ended early")
        if not self._stored:
            raise BadRequest("no file parts")
        room_id = await self._check_room() if "room" in self._fields else None
        folder = normalize_folder(self._fields.get("folder"))
        now = utcnow()
        rows = [File(id=new_file_id(), owner_id=self.actor.id, room_id=room_id, folder=folder,
                     name=s.name, storage_key=s.key, content_type=CONTENT_TYPES[s.ext],
                     category=s.category, size=s.size, sha256=s.sha256, created_at=now)
                for s in self._stored]
        async with self.db.write() as s:
            await fq.add_files(s, rows)
        self._stored = []  # owned by the rows now
        log.info("user %s uploaded %s", self.actor.id,
                 ", ".join(f"{r.id} ({r.size} bytes)" for r in rows))
        return rows

    async def abort(self) -> None:
        """Abort open writers and delete committed blobs; safe to call more than once."""
        writers, self._writers = self._writers, []
        stored, self._stored = self._stored, []
        for w in writers:
            try:
                await w.abort()
            except StorageError:
                log.exception("aborting an upload writer failed")
        for st in stored:
            try:
                await self.storage.delete(st.key)
            except StorageError:
                log.exception("deleting blob %s of a failed upload failed", st.key)
