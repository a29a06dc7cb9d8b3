"""What every storage backend is: keys, writers, ranged readers, and the errors they raise."""
from __future__ import annotations

import re
import secrets
from abc import ABC, abstractmethod
from typing import AsyncIterator, BinaryIO



CHUNK_BYTES = 1024 * 1024
_KEY_RE = re.compile(r"([A-Za-z0-9_-]{2})/([A-Za-z0-9_-]{16,128})")


class StorageError(Exception):
    """A storage operation failed."""


class InvalidKey(StorageError, ValueError):
    """The key is not of the form :func:`new_key` produces."""


class ObjectNotFound(StorageError, LookupError):
    """No committed object exists under the key."""


class InvalidRange(StorageError, ValueError):
    """The byte range is not satisfiable (callers answer 416 before asking)."""


def new_key() -> str:
    """A fresh, unguessable key: ``"<first 2 chars of token>/<token_urlsafe(24)>"``."""
    token = secrets.token_urlsafe(24)
    return f"{token[:2]}/{token}"


def check_key(key: str) -> str:
    """Return ``key`` if it has the :func:`new_key` shape (url-safe base64 characters, fan-out
    equal to the token's first two characters); raise InvalidKey otherwise."""
    m = _KEY_RE.fullmatch(key) if isinstance(key, str) else None
    if m is None or m.group(2)[:2] != m.group(1):
        raise InvalidKey(f"invalid storage key {key!r}")
    return key


class Writer(ABC):
    """One upload in progress. Call ``write`` sequentially (await each), then exactly one of
    ``commit`` / ``abort``. As an async context manager it aborts unless committed."""

    @abstractmethod
    async def write(self, chunk: bytes) -> None:
        """Append ``chunk``; raises StorageError after commit/abort."""

    @abstractmethod
    async def commit(self) -> int:
        """Make the object durable and visible under its key (replacing any previous object);
        return its size in bytes. On failure nothing new is visible and the temp is removed."""

    @abstractmethod
    async def abort(self) -> None:
        """Discard everything written; idempotent; a no-op after commit."""

    async def __aenter__(self) -> "Writer":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.abort()


class ChunkStream(ABC):
    """An async iterator of ``bytes`` chunks (each ≤ CHUNK_BYTES) holding an open handle until
    exhausted or ``aclose``\\ d; usable as ``async with``."""

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    @abstractmethod
    async def __anext__(self) -> bytes: ...

    @abstractmethod
    async def aclose(self) -> None:
        """Release the handle; idempotent."""

    async def __aenter__(self) -> "ChunkStream":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class Storage(ABC):
    """A flat store of immutable blobs addressed by :func:`new_key` keys."""

    @abstractmethod
    async def open_writer(self, key: str) -> Writer:
        """Start writing the object ``key``; nothing is visible until ``commit``."""

    @abstractmethod
    async def open_range(self, key: str, start: int, end: int) -> ChunkStream:
        """Open bytes ``start..end`` inclusive. Raises ObjectNotFound, or InvalidRange unless
        ``0 <= start <= end < size`` (so an empty object has no readable range)."""

    @abstractmethod
    async def size(self, key: str) -> int:
        """Size in bytes of the committed object; raises ObjectNotFound."""

    @abstractmethod
    async def exists(self, key: str) -> bool:
        """Whether a committed object exists under ``key``."""

    @abstractmethod
    async def delete(self, key: str) -> bool:
        """Delete the object; return False if there was none (idempotent)."""

    @abstractmethod
    async def copy(self, src: str, dst: str) -> None:
        """Make ``dst`` a committed object with the bytes of ``src``, atomically (as a commit
        would); raises ObjectNotFound when ``src`` does not exist."""

    @abstractmethod
    async def inventory(self) -> list[str]:
        """Everything the backend holds for this store, committed or not (temporaries,
        incomplete multipart uploads): for operators and for tests that prove nothing leaks."""

    async def open_file(self, key: str, start: int, end: int) -> BinaryIO | None:
        """An open local file holding the object's bytes, checked as :meth:`open_range` checks
        them (ObjectNotFound, InvalidRange), for zero-copy sending (``os.sendfile``); None when
        the backend keeps no local file (S3), and callers use :meth:`open_range` instead. The
        caller closes it."""
        return None

    async def check(self) -> None:
        """Raise StorageError with a clear reason when the store is unusable (run at start-up)."""

    async def close(self) -> None:
        """Release connections; the store may not be used afterwards."""
