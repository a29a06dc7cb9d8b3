"""Disk storage backend: atomic writes, ranged reads, key validation, URL parsing."""
import os
import re
from pathlib import Path

import pytest

from server.config import ConfigError
from server.storage import (
    CHUNK_BYTES,
    InvalidKey,
    InvalidRange,
    ObjectNotFound,
    StorageError,
    check_key,
    new_key,
    storage_from_url,
)
from server.storage.disk import DiskStorage

MIB = 1024 * 1024


@pytest.fixture
def store(tmp_path) -> DiskStorage:
    return DiskStorage(tmp_path / "files")


def pattern(n: int) -> bytes:
    """n bytes where every offset is distinguishable (no repeating 256-byte period issues)."""
    block = bytes(range(251)) * (n // 251 + 1)  # 251 is prime, so chunk seams never align
    return block[:n]


async def put(store, key, data, chunk=64 * 1024):
    w = await store.open_writer(key)
    for i in range(0, len(data), chunk):
        await w.write(data[i:i + chunk])
    return await w.commit()


async def read(store, key, start, end):
    chunks = []
    async with await store.open_range(key, start, end) as stream:
        async for c in stream:
            assert 0 < len(c) <= CHUNK_BYTES
            chunks.append(c)
    return b"".join(chunks)


def visible_files(store):
    """Every file under the root outside the temp directory."""
    return [p for p in store.root.rglob("*") if p.is_file() and ".tmp" not in p.parts]


def temp_files(store):
    return list(store.tmp_dir.iterdir())


def test_new_key_shape():
    """new_key is a 2-char fan-out plus a 32-char url-safe token, unique per call, and valid."""
    keys = {new_key() for _ in range(200)}
    assert len(keys) == 200
    for k in keys:
        assert re.fullmatch(r"[A-Za-z0-9_-]{2}/[A-Za-z0-9_-]{32}", k) and k[:2] == k[3:5]
        assert check_key(k) == k


@pytest.mark.parametrize("key", [
    "../etc/passwd", "ab/../../x", "/etc/passwd", "ab/..", "..", "", "ab", "ab/cd/efghijklmnopqrstuv",
    "ab/ab\x00cdefghijklmnopq", "ab/ab.cdefghijklmnopq", "ab\\abcdefghijklmnopqr", "xy/abcdefghijklmnopqrst",
    ".tmp/abcdefghijklmnopqrst", "ab/abcdefghijklmnopqrs/", "ab/abcdefghijklmnopqrs\n", None, 5,
])
async def test_traversal_keys_rejected(io_loop, store, key):
    """Keys that are not new_key-shaped (traversal, separators, dots, wrong fan-out) → InvalidKey."""
    with pytest.raises(InvalidKey):
        check_key(key)
    with pytest.raises(InvalidKey):
        await store.open_writer(key)
    with pytest.raises(InvalidKey):
        await store.open_range(key, 0, 0)
    for op in (store.size, store.exists, store.delete):
        with pytest.raises(InvalidKey):
            await op(key)


async def test_write_commit_read_whole(io_loop, store):
    """A committed object reads back byte-for-byte, reports its size, and lives at root/fan/token."""
    key = new_key()
    data = pattern(200_000)
    assert await put(store, key, data) == len(data)
    assert await store.exists(key) and await store.size(key) == len(data)
    assert await read(store, key, 0, len(data) - 1) == data
    assert visible_files(store) == [store.root / key[:2] / key[3:]]
    assert temp_files(store) == []


async def test_ranges_3mib(io_loop, store):
    """First byte, last byte, middle, and ranges spanning 1 MiB chunk seams read exactly."""
    key = new_key()
    data = pattern(3 * MIB)
    await put(store, key, data, chunk=100_003)
    n = len(data)
    for start, end in [(0, 0), (n - 1, n - 1), (n // 2 - 7, n // 2 + 7), (MIB - 1, MIB),
                       (MIB - 10, 2 * MIB + 10), (1, n - 2), (0, n - 1)]:
        assert await read(store, key, start, end) == data[start:end + 1], (start, end)


async def test_whole_3mib_in_bounded_chunks(io_loop, store):
    """A 3 MiB read arrives as three chunks of exactly 1 MiB."""
    key = new_key()
    await put(store, key, pattern(3 * MIB), chunk=3 * MIB)
    sizes = []
    async with await store.open_range(key, 0, 3 * MIB - 1) as stream:
        async for c in stream:
            sizes.append(len(c))
    assert sizes == [MIB, MIB, MIB]


async def test_invalid_ranges(io_loop, store):
    """Ranges outside 0 <= start <= end < size → InvalidRange; an empty object has none."""
    key = new_key()
    await put(store, key, b"0123456789")
    for start, end in [(-1, 3), (5, 4), (0, 10), (10, 10)]:
        with pytest.raises(InvalidRange):
            await store.open_range(key, start, end)
    empty = new_key()
    assert await put(store, empty, b"") == 0
    assert await store.size(empty) == 0
    with pytest.raises(InvalidRange):
        await store.open_range(empty, 0, 0)


async def test_uncommitted_is_invisible(io_loop, store):
    """While a writer is open the key does not exist and has no size or readable range."""
    key = new_key()
    w = await store.open_writer(key)
    await w.write(pattern(2 * MIB + 5))  # past the 1 MiB buffer, so bytes are on disk
    assert not await store.exists(key)
    with pytest.raises(ObjectNotFound):
        await store.size(key)
    with pytest.raises(ObjectNotFound):
        await store.open_range(key, 0, 0)
    assert visible_files(store) == [] and len(temp_files(store)) == 1
    await w.abort()


async def test_abort_leaves_nothing(io_loop, store):
    """abort removes the temp file; no object appears; abort is idempotent; writes then fail."""
    key = new_key()
    w = await store.open_writer(key)
    await w.write(pattern(3 * MIB))
    await w.abort()
    await w.abort()
    assert not await store.exists(key)
    assert visible_files(store) == [] and temp_files(store) == []
    with pytest.raises(StorageError):
        await w.write(b"x")
    with pytest.raises(StorageError):
        await w.commit()


async def test_failure_mid_write_leaves_nothing(io_loop, store):
    """An exception inside `async with` mid-upload aborts: no object and no temp file remain."""
    key = new_key()

    class ClientVanished(Exception):
        pass

    with pytest.raises(ClientVanished):
        async with await store.open_writer(key) as w:
            await w.write(pattern(MIB + 1))
            raise ClientVanished()
    assert not await store.exists(key)
    assert visible_files(store) == [] and temp_files(store) == []


async def test_context_manager_without_commit_aborts(io_loop, store):
    """Leaving `async with` without commit discards the upload; with commit it is kept."""
    k1, k2 = new_key(), new_key()
    async with await store.open_writer(k1) as w:
        await w.write(b"forgotten")
    async with await store.open_writer(k2) as w:
        await w.write(b"kept")
        assert await w.commit() == 4
    assert not await store.exists(k1) and await read(store, k2, 0, 3) == b"kept"
    assert temp_files(store) == []


async def test_failed_commit_leaves_nothing(io_loop, store, monkeypatch):
    """If the final rename fails, commit raises, nothing is visible and the temp is gone."""
    key = new_key()
    w = await store.open_writer(key)
    await w.write(b"data")

    def broken_replace(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        await w.commit()
    monkeypatch.undo()
    assert not await store.exists(key)
    assert visible_files(store) == [] and temp_files(store) == []


async def test_crashed_writer_orphan_is_swept(io_loop, store):
    """A writer abandoned without commit/abort (process crash) stays invisible; sweep_temp removes it."""
    key = new_key()
    w = await store.open_writer(key)
    await w.write(pattern(2 * MIB))
    w._f.close()  # simulate the process dying: no abort runs
    assert not await store.exists(key) and len(temp_files(store)) == 1
    assert await store.sweep_temp(3600) == 0  # young temporaries (live uploads) are kept
    assert await store.sweep_temp(3600, now=os.stat(temp_files(store)[0]).st_mtime + 3601) == 1
    assert temp_files(store) == []


async def test_delete_exists_size(io_loop, store):
    """delete removes a committed object (True), then is a no-op (False); size/exists follow."""
    key = new_key()
    assert not await store.exists(key)
    with pytest.raises(ObjectNotFound):
        await store.size(key)
    assert await store.delete(key) is False
    await put(store, key, b"abc")
    assert await store.exists(key) and await store.size(key) == 3
    assert await store.delete(key) is True
    assert not await store.exists(key) and await store.delete(key) is False
    with pytest.raises(ObjectNotFound):
        await store.open_range(key, 0, 0)


async def test_commit_replaces_atomically(io_loop, store):
    """Committing over an existing key replaces it whole; readers see old or new, never a mix."""
    key = new_key()
    await put(store, key, b"A" * 1000)
    w = await store.open_writer(key)
    await w.write(b"B" * 500)
    assert await read(store, key, 0, 999) == b"A" * 1000
    await w.commit()
    assert await read(store, key, 0, 499) == b"B" * 500 and await store.size(key) == 500


async def test_stream_aclose_early(io_loop, store):
    """A stream closed after one chunk stops yielding (client disconnect releases the file)."""
    key = new_key()
    await put(store, key, pattern(3 * MIB), chunk=MIB)
    stream = await store.open_range(key, 0, 3 * MIB - 1)
    first = await stream.__anext__()
    assert len(first) == MIB
    await stream.aclose()
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()


def test_storage_from_url_relative_and_absolute(tmp_path):
    """file://./x and file://x resolve under base_dir; file:///abs is absolute; the root is created."""
    s = storage_from_url("file://./data/files", tmp_path)
    assert isinstance(s, DiskStorage) and s.root == (tmp_path / "data" / "files").resolve()
    assert s.root.is_dir()
    assert storage_from_url("file://rel", tmp_path).root == (tmp_path / "rel").resolve()
    absolute = tmp_path / "abs dir"
    assert storage_from_url("file://" + str(absolute).replace(" ", "%20"), "/nonexistent").root == absolute


@pytest.mark.parametrize("url", ["s3://bucket/prefix", "http://example.com/x", "gs://b", "./data/files", "file://", ""])
def test_storage_from_url_unknown(url, tmp_path):
    """Unsupported schemes, bare paths and empty file URLs raise ConfigError naming the problem."""
    with pytest.raises(ConfigError, match="STORAGE_URL"):
        storage_from_url(url, tmp_path)
    assert not any(Path(tmp_path).iterdir())
