"""Local-disk storage backend: ``<root>/<fan-out>/<token>``, temporaries in ``<root>/.tmp``.

All file I/O runs in worker threads (``asyncio.to_thread``) in chunks of at most 1 MiB, so a
large upload or download never blocks the event loop. Commit is write → flush → fsync →
``os.replace`` → fsync of the directory, so a crash leaves either the old state or the whole
new object, never a partial one under its key. A crash mid-write can leave an orphan in
``.tmp`` (invisible to readers); :meth:`DiskStorage.sweep_temp` removes old ones at start-up.
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import BinaryIO

from server.storage.base import CHUNK_BYTES, ChunkStream, InvalidRange, ObjectNotFound, Storage, StorageError, Writer, check_key

log = logging.getLogger(__name__)

TMP_DIR = ".tmp"  # keys never start with "." so this can never collide with an object


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


READAHEAD_BYTES = 8 * 1024 * 1024


def prefetch(fd: int, offset: int, count: int) -> None:
    """Ask the kernel to start reading ``min(count, READAHEAD_BYTES)`` bytes of ``fd`` from
    ``offset`` into the page cache, without waiting for them (a hint: may do nothing). Run in a
    worker thread: even starting the reads can block on a busy disk."""
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, offset, min(count, READAHEAD_BYTES), os.POSIX_FADV_WILLNEED)


class DiskWriter(Writer):
    """Buffers up to CHUNK_BYTES in memory, then writes from a worker thread."""

    def __init__(self, final: Path, tmp: Path, f: BinaryIO):
        self._final, self._tmp, self._f = final, tmp, f
        self._buf = bytearray()
        self._size = 0
        self._state = "open"  # open → committed | aborted

    async def write(self, chunk: bytes) -> None:
        if self._state != "open":
            raise StorageError(f"write after {self._state}")
        self._buf += chunk
        self._size += len(chunk)
        if len(self._buf) >= CHUNK_BYTES:
            data, self._buf = self._buf, bytearray()
            await asyncio.to_thread(self._f.write, data)  # on error the caller aborts

    def _commit(self, data: bytes) -> None:
        self._f.write(data)
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        self._final.parent.mkdir(exist_ok=True)
        os.replace(self._tmp, self._final)
        _fsync_dir(self._final.parent)

    async def commit(self) -> int:
        if self._state != "open":
            raise StorageError(f"commit after {self._state}")
        data, self._buf = self._buf, bytearray()
        try:
            await asyncio.to_thread(self._commit, bytes(data))
        except Exception:
            # Not on cancellation: the thread may still rename, so the outcome is unknown and
            # the caller must delete the key itself if it needs certainty.
            await self.abort()
            raise
        self._state = "committed"
        return self._size

    def _discard(self) -> None:
        try:
            self._f.close()
        finally:
            try:
                self._tmp.unlink()
            except FileNotFoundError:
                pass  # already gone: nothing left to discard

    async def abort(self) -> None:
        if self._state != "open":
            return
        self._state = "aborted"
        self._buf = bytearray()
        await asyncio.to_thread(self._discard)


class DiskChunkStream(ChunkStream):
    """Reads ``remaining`` bytes from an already-positioned file, ≤ CHUNK_BYTES per chunk."""

    def __init__(self, f: BinaryIO, remaining: int):
        self._f: BinaryIO | None = f
        self._remaining = remaining

    async def __anext__(self) -> bytes:
        if self._f is None or self._remaining <= 0:
            await self.aclose()
            raise StopAsyncIteration
        data = await asyncio.to_thread(self._f.read, min(CHUNK_BYTES, self._remaining))
        if not data:  # truncated underneath us; the object is immutable, so this is an error
            await self.aclose()
            raise StorageError("object shorter than expected")
        self._remaining -= len(data)
        return data

    async def aclose(self) -> None:
        f, self._f = self._f, None
        if f is not None:
            f.close()  # closing a read-only descriptor does not block


class DiskStorage(Storage):
    """Objects as files under ``root`` (created if missing)."""

    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()
        self.tmp_dir = self.root / TMP_DIR
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"DiskStorage({str(self.root)!r})"

    def path(self, key: str) -> Path:
        """The file for ``key``; raises InvalidKey for anything :func:`new_key` cannot produce."""
        fan, token = check_key(key).split("/")
        return self.root / fan / token

    async def open_writer(self, key: str) -> Writer:
        final = self.path(key)
        tmp = self.tmp_dir / f"{final.name}.{secrets.token_hex(8)}.part"

        def _open() -> BinaryIO:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            return os.fdopen(fd, "wb")

        return DiskWriter(final, tmp, await asyncio.to_thread(_open))

    def _open_checked(self, key: str, start: int, end: int) -> BinaryIO:
        """(In a worker thread) the object's file, positioned at ``start``."""
        path = self.path(key)
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        try:
            size = os.fstat(f.fileno()).st_size
            if not (0 <= start <= end < size):
                raise InvalidRange(f"range {start}-{end} outside 0-{size - 1}")
            f.seek(start)
        except BaseException:
            f.close()
            raise
        return f

    async def open_range(self, key: str, start: int, end: int) -> ChunkStream:
        return DiskChunkStream(await asyncio.to_thread(self._open_checked, key, start, end), end - start + 1)

    async def open_file(self, key: str, start: int, end: int) -> BinaryIO:
        """The object's own file, for ``os.sendfile`` (server/files/sendfile.py). The kernel is
        asked to read ahead the first window of the range, so the first sends find it cached."""

        def _open() -> BinaryIO:
            f = self._open_checked(key, start, end)
            prefetch(f.fileno(), start, end - start + 1)
            return f

        return await asyncio.to_thread(_open)

    async def size(self, key: str) -> int:
        path = self.path(key)
        try:
            return (await asyncio.to_thread(os.stat, path)).st_size
        except FileNotFoundError:
            raise ObjectNotFound(key) from None

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path(key).is_file)

    async def delete(self, key: str) -> bool:
        path = self.path(key)
        try:
            await asyncio.to_thread(path.unlink)
        except FileNotFoundError:
            return False
        return True

    async def copy(self, src: str, dst: str) -> None:
        """A hard link: objects are immutable (a commit replaces the directory entry, never the
        inode's bytes), so two keys may share one inode; deleting either unlinks only its own.
        Falls back to a byte copy through a temporary where links are not allowed."""
        src_path, dst_path = self.path(src), self.path(dst)

        def _copy() -> None:
            dst_path.parent.mkdir(exist_ok=True)
            try:
                os.link(src_path, dst_path)
                return
            except FileNotFoundError:
                raise ObjectNotFound(src) from None
            except OSError as e:  # EPERM/EMLINK/EXDEV: copy bytes instead
                log.info("hard link %s → %s refused (%s); copying", src, dst, e)
            tmp = self.tmp_dir / f"{dst_path.name}.{secrets.token_hex(8)}.part"
            try:
                shutil.copyfile(src_path, tmp)
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
                os.replace(tmp, dst_path)
            except FileNotFoundError:
                raise ObjectNotFound(src) from None
            finally:
                tmp.unlink(missing_ok=True)
            _fsync_dir(dst_path.parent)

        await asyncio.to_thread(_copy)

    async def inventory(self) -> list[str]:
        def _walk() -> list[str]:
            return sorted(str(Path(d, f).relative_to(self.root)) for d, _, names in os.walk(self.root)
                          for f in names)

        return await asyncio.to_thread(_walk)

    async def sweep_temp(self, max_age_s: float, now: float | None = None) -> int:
        """Remove temporaries older than ``max_age_s`` (orphans of crashed uploads); return
        how many were removed. Call at start-up with an age well above any upload's duration."""
        cutoff = (time.time() if now is None else now) - max_age_s

        def _sweep() -> int:
            removed = 0
            for entry in os.scandir(self.tmp_dir):
                try:
                    if entry.is_file() and entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
                        removed += 1
                except FileNotFoundError:
                    continue  # a concurrent commit or abort already moved it
            return removed

        removed = await asyncio.to_thread(_sweep)
        if removed:
            log.info("removed %d orphaned upload temporaries from %s", removed, self.tmp_dir)
        return removed
