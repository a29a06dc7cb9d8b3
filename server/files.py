"""Files (PROTOCOL §3 "Files"): upload rules, streaming multipart ingestion, access, signed links.

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

import codecs
import hashlib
import logging
import re
import secrets
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone

import filetype
from python_multipart.multipart import MultipartParser, parse_options_header

from server import signing
from server.chat import Actor, parse_id
from server.codec import iso, utcnow
from server.config import FILE_CATEGORIES, Config
from server.db import files as fq
from server.db.models import File
from server.errors import BadRequest, Forbidden, NotFound, PodiumError, TooLarge
from server.storage import Storage, StorageError, Writer, new_key

log = logging.getLogger("podium.files")

MAX_NAME_CHARS = 200
MAX_FOLDER_CHARS = 255
MAX_FIELD_BYTES = 1024
MAX_HEADER_BYTES = 8 * 1024
SNIFF_BYTES = 8 * 1024

CONTENT_TYPES = {
    "pdf": "application/pdf", "txt": "text/plain", "md": "text/markdown", "csv": "text/csv",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt": "application/vnd.ms-powerpoint",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "odt": "application/vnd.oasis.opendocument.text",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "odp": "application/vnd.oasis.opendocument.presentation",
    "rtf": "application/rtf",
    "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
    "webp": "image/webp",
    "mp4": "video/mp4", "webm": "video/webm", "ogv": "video/ogg", "mov": "video/quicktime",
    "mp3": "audio/mpeg", "ogg": "audio/ogg", "oga": "audio/ogg", "wav": "audio/wav",
    "m4a": "audio/mp4",
    "zip": "application/zip", "gz": "application/gzip", "tgz": "application/gzip",
    "7z": "application/x-7z-compressed", "tar": "application/x-tar",
}
TEXT_EXTENSIONS = frozenset({"txt", "md", "csv"})
_MP4_FAMILY = frozenset({"mp4", "m4v", "m4a", "mov", "3gp"})
_OLE = frozenset({"doc", "xls", "ppt"})
# What ``filetype.guess`` may answer for content carrying each extension.
MAGIC = {
    "pdf": {"pdf"}, "rtf": {"rtf"}, "doc": _OLE, "xls": _OLE, "ppt": _OLE,
    "docx": {"docx", "zip"}, "xlsx": {"xlsx", "zip"}, "pptx": {"pptx", "zip"},
    "odt": {"odt", "zip"}, "ods": {"ods", "zip"}, "odp": {"odp", "zip"},
    "png": {"png", "apng"}, "jpg": {"jpg"}, "jpeg": {"jpg"}, "gif": {"gif"}, "webp": {"webp"},
    "mp4": _MP4_FAMILY, "mov": _MP4_FAMILY, "m4a": _MP4_FAMILY, "webm": {"webm", "mkv"},
    "ogv": {"ogg"}, "ogg": {"ogg"}, "oga": {"ogg"}, "mp3": {"mp3"}, "wav": {"wav"},
    "zip": {"zip"}, "gz": {"gz"}, "tgz": {"gz"}, "7z": {"7z"}, "tar": {"tar"},
}
# Served inline only when asked for and on this list; everything else (SVG, HTML, PDF, office
# documents, archives) is always an attachment. Every download also carries nosniff.
INLINE_SAFE = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "audio/mpeg",
                         "audio/ogg", "audio/wav", "audio/mp4", "video/mp4", "video/webm",
                         "video/ogg", "text/plain"})

_UNSAFE_CHARS = re.compile(r'[\\/:*?"<>|]')


class UnsupportedMediaType(PodiumError):
    code = "unsupported_media_type"


def sanitize_name(raw: str) -> str:
    """A display name safe to store and to put in a URL path segment: the last path component,
    NFC-normalised, without control/format characters or ``\\/:*?"<>|``, without leading dots,
    at most 200 characters (the extension is kept when shortening). Empty → ``"file"``."""
    name = unicodedata.normalize("NFC", raw).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Zl", "Zp"))
    name = _UNSAFE_CHARS.sub("_", name).strip().lstrip(".").strip()
    if len(name) > MAX_NAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16:
            name = stem[:MAX_NAME_CHARS - len(ext) - 1] + "." + ext
        else:
            name = name[:MAX_NAME_CHARS]
    return name or "file"


def normalize_folder(raw) -> str:
    """``"a/b"`` style folder path: segments stripped, empty segments dropped; ``.``/``..``,
    control characters and over-long paths are a bad request. ``""`` is the root."""
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise BadRequest("folder must be a string")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in raw):
        raise BadRequest("folder contains control characters")
    parts = [p.strip() for p in unicodedata.normalize("NFC", raw).replace("\\", "/").split("/")]
    parts = [p for p in parts if p]
    if any(p in (".", "..") for p in parts):
        raise BadRequest("folder may not contain '.' or '..'")
    folder = "/".join(parts)
    if len(folder) > MAX_FOLDER_CHARS:
        raise BadRequest(f"folder is longer than {MAX_FOLDER_CHARS} characters")
    return folder


def category_of(config: Config, name: str) -> tuple[str, str]:
    """``(extension, category)`` for an allowed name; UnsupportedMediaType otherwise."""
    _, dot, ext = name.rpartition(".")
    ext = ext.lower() if dot else ""
    for cat, exts in config.file_extensions.items():
        if ext and ext in exts and ext in CONTENT_TYPES:
            return ext, cat
    raise UnsupportedMediaType(f"files of type .{ext or '(none)'} are not allowed")


def file_wire(f: File) -> dict:
    return {"id": f.id, "name": f.name, "folder": f.folder,
            "room": str(f.room_id) if f.room_id is not None else None,
            "content_type": f.content_type, "category": f.category, "size": f.size,
            "sha256": f.sha256, "created_at": iso(f.created_at), "owner": str(f.owner_id)}


def new_file_id() -> str:
    return secrets.token_urlsafe(16)


class ContentCheck:
    """Checks bytes against the extension as they stream: text must decode as UTF-8 with no NUL;
    anything else must have magic bytes ``filetype`` maps to the extension."""

    def __init__(self, ext: str):
        self.ext = ext
        self.text = ext in TEXT_EXTENSIONS
        self._decoder = codecs.getincrementaldecoder("utf-8")() if self.text else None
        self._head = bytearray()
        self._checked = False

    def _fail(self) -> UnsupportedMediaType:
        return UnsupportedMediaType(f"the content is not a .{self.ext} file")

    def feed(self, data: bytes) -> None:
        if self._decoder is not None:
            if b"\0" in data:
                raise self._fail()
            try:
                self._decoder.decode(data)
            except UnicodeDecodeError:
                raise self._fail() from None
            return
        if not self._checked:
            self._head += data[:SNIFF_BYTES - len(self._head)]
            if len(self._head) >= SNIFF_BYTES:
                self._check_magic()

    def _check_magic(self) -> None:
        self._checked = True
        kind = filetype.guess(bytes(self._head))
        self._head = bytearray()
        if kind is None or kind.extension not in MAGIC.get(self.ext, ()):
            raise self._fail()

    def finish(self) -> None:
        if self._decoder is not None:
            try:
                self._decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                raise self._fail() from None
        elif not self._checked:
            self._check_magic()


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
    may come before or after the files; other fields are a bad request."""

    def __init__(self, files: "Files", actor: Actor, boundary: bytes):
        self.files, self.actor = files, actor
        self.config = files.config
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
            writer = await self.files.storage.open_writer(key)
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
            await self.files.chat.room_role(room_id, self.actor)  # NotFound / Forbidden
            self._room_checked = room_id
        return room_id

    async def finish(self) -> list[dict]:
        """After the whole body: check the room, store the rows, return the file wires."""
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
        async with self.files.db.write() as s:
            await fq.add_files(s, rows)
        self._stored = []  # owned by the rows now
        log.info("user %s uploaded %s", self.actor.id,
                 ", ".join(f"{r.id} ({r.size} bytes)" for r in rows))
        return [file_wire(r) for r in rows]

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
                await self.files.storage.delete(st.key)
            except StorageError:
                log.exception("deleting blob %s of a failed upload failed", st.key)


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
