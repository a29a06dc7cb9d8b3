"""Blob storage for files and recordings: one small async interface, disk and S3 backends.

Contracts every backend keeps:

- Keys come from :func:`new_key` (``"<2-char fan-out>/<32-char token>"``, 192 random bits) and
  are validated on every call (:func:`check_key`), so a key can never name anything outside
  the store.
- Nothing partial is ever visible: a :class:`Writer` writes to a hidden temporary object and
  makes it visible under its key atomically on :meth:`Writer.commit`; :meth:`Writer.abort` (or
  leaving ``async with`` without committing) deletes it.
- Reads are inclusive byte ranges delivered in chunks of at most :data:`CHUNK_BYTES`.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from server.config import ConfigError
from server.storage.base import (CHUNK_BYTES, ChunkStream, InvalidKey, InvalidRange, ObjectNotFound, Storage,
                                 StorageError, Writer, check_key, new_key)

if TYPE_CHECKING:
    from server.storage.s3 import S3Options

__all__ = ["CHUNK_BYTES", "ChunkStream", "InvalidKey", "InvalidRange", "ObjectNotFound", "Storage", "StorageError",
           "Writer", "check_key", "new_key", "storage_from_url"]


def storage_from_url(url: str, base_dir: Path | str, s3: "S3Options | None" = None) -> Storage:
    """Build the backend for ``STORAGE_URL``.

    ``file://./data/files`` and ``file://data/files`` are relative to ``base_dir``;
    ``file:///abs/path`` is absolute. ``s3://bucket`` or ``s3://bucket/prefix`` uses ``s3``
    for the endpoint and credentials. Any other scheme raises ConfigError.
    """
    from urllib.parse import unquote

    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(f"STORAGE_URL {url!r} must be a URL such as file://./data/files or s3://bucket/prefix")
    scheme = scheme.lower()
    if scheme == "file":
        path_text = unquote(rest)
        if not path_text:
            raise ConfigError("STORAGE_URL file:// needs a directory")
        path = Path(path_text)
        if not path.is_absolute():
            path = Path(base_dir) / path
        from server.storage.disk import DiskStorage

        return DiskStorage(path)
    if scheme == "s3":
        from server.storage.s3 import S3Options, S3Storage

        bucket, _, prefix = rest.partition("/")
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
            raise ConfigError(f"STORAGE_URL {url!r}: {bucket!r} is not a valid S3 bucket name")
        prefix = prefix.strip("/")
        if prefix and not re.fullmatch(r"[A-Za-z0-9!_.*'()/-]+", prefix):
            raise ConfigError(f"STORAGE_URL {url!r}: the prefix may hold letters, digits and !_.*'()/- only")
        return S3Storage(bucket, prefix + "/" if prefix else "", s3 or S3Options())
    raise ConfigError(f"STORAGE_URL scheme {scheme!r} is not supported (file:// or s3://)")
