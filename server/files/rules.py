"""What a file may be (PROTOCOL §3 "Files"): display names, folders, categories and their
extension allow-lists, content checks by magic bytes, the inline-safe types, new file ids."""
from __future__ import annotations

import codecs
import re
import secrets
import unicodedata

import filetype

from server.config import Config
from server.kernel.errors import BadRequest, PodiumError

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


def rename_target(current: str, raw) -> str:
    """The new name of a file called ``current``: ``raw`` sanitised like an uploaded name, with
    ``current``'s extension appended when ``raw`` does not end with it (a rename never changes
    what kind of file it is). An empty or non-string name is a bad request."""
    if not isinstance(raw, str) or not raw.strip():
        raise BadRequest("name must be a non-empty string")
    name = sanitize_name(raw)
    _, dot, ext = current.rpartition(".")
    if dot and not name.lower().endswith("." + ext.lower()):
        name = sanitize_name(f"{name}.{ext}")
    return name


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
