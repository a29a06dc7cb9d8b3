"""Storage backends: the contract every backend keeps (atomic commit, nothing partial visible,
ranged reads in bounded chunks, key validation), run on disk and on a real S3-protocol server
(moto on loopback); then what is particular to each (disk temporaries and their sweep, S3
multipart uploads and their abort), and STORAGE_URL parsing."""
import asyncio
import os
import re
import subprocess
import sys
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
from server.storage.s3 import PART_BYTES, S3Options, S3Storage
from tests.conftest import free_port
from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY

MIB = 1024 * 1024


def s3_store(s3_server, bucket: str, prefix: str = "pfx/") -> S3Storage:
    return S3Storage(bucket, prefix, S3Options(endpoint_url=s3_server.endpoint_url, region=REGION,
                                               access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY,
                                               addressing_style="path"))


@pytest.fixture(params=["disk", "s3"])
def store(request, tmp_path, io_loop):
    if request.param == "disk":
        s = DiskStorage(tmp_path / "files")
    else:
        s3 = request.getfixturevalue("s3_server")
        s = s3_store(s3, s3.new_bucket())
    yield s
    io_loop.run_sync(s.close)


@pytest.fixture
def disk(tmp_path) -> DiskStorage:
    return DiskStorage(tmp_path / "files")


@pytest.fixture
def s3(s3_server, io_loop):
    s = s3_store(s3_server, s3_server.new_bucket())
    yield s
    io_loop.run_sync(s.close)


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
    """Every file under the disk root outside the temp directory."""
    return [p for p in store.root.rglob("*") if p.is_file() and ".tmp" not in p.parts]


def temp_files(store):
    return list(store.tmp_dir.iterdir())


def object_name(store, key: str) -> str:
    """How ``key`` appears in the backend's inventory."""
    return key if isinstance(store, DiskStorage) else store.prefix + key


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
    """A committed object reads back byte-for-byte, reports its size, and is the only thing stored, under its key."""
    key = new_key()
    data = pattern(200_000)
    assert await put(store, key, data) == len(data)
    assert await store.exists(key) and await store.size(key) == len(data)
    assert await read(store, key, 0, len(data) - 1) == data
    assert await store.inventory() == [object_name(store, key)]


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
    await w.write(pattern(PART_BYTES + 5))  # past the disk buffer and one S3 part: bytes are stored
    assert not await store.exists(key)
    with pytest.raises(ObjectNotFound):
        await store.size(key)
    with pytest.raises(ObjectNotFound):
        await store.open_range(key, 0, 0)
    [pending] = await store.inventory()  # the temp file / the incomplete multipart upload
    assert ".tmp/" in pending or "incomplete upload" in pending
    await w.abort()
    assert await store.inventory() == []


async def test_abort_leaves_nothing(io_loop, store):
    """abort removes everything written (temp file, uploaded parts); no object appears; abort is idempotent; writes then fail."""
    key = new_key()
    w = await store.open_writer(key)
    await w.write(pattern(2 * PART_BYTES + 3))
    await w.abort()
    await w.abort()
    assert not await store.exists(key)
    assert await store.inventory() == []
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
            await w.write(pattern(PART_BYTES + 1))
            raise ClientVanished()
    assert not await store.exists(key)
    assert await store.inventory() == []


async def test_context_manager_without_commit_aborts(io_loop, store):
    """Leaving `async with` without commit discards the upload; with commit it is kept."""
    k1, k2 = new_key(), new_key()
    async with await store.open_writer(k1) as w:
        await w.write(b"forgotten")
    async with await store.open_writer(k2) as w:
        await w.write(b"kept")
        assert await w.commit() == 4
    assert not await store.exists(k1) and await read(store, k2, 0, 3) == b"kept"
    assert await store.inventory() == [object_name(store, k2)]


async def test_disk_failed_commit_leaves_nothing(io_loop, disk, monkeypatch):
    """Disk: if the final rename fails, commit raises, nothing is visible and the temp is gone."""
    store = disk
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


async def test_disk_crashed_writer_orphan_is_swept(io_loop, disk):
    """Disk: a writer abandoned without commit/abort (process crash) stays invisible; sweep_temp removes it."""
    store = disk
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


def test_storage_from_url_s3():
    """s3://bucket and s3://bucket/prefix build an S3 store with the given options; the prefix always ends in '/'."""
    opts = S3Options(endpoint_url="http://127.0.0.1:9", region="eu-west-1")
    s = storage_from_url("s3://my-bucket/classes/2026/", "/nonexistent", opts)
    assert isinstance(s, S3Storage) and (s.bucket, s.prefix, s.options) == ("my-bucket", "classes/2026/", opts)
    assert storage_from_url("s3://my-bucket", "/nonexistent").prefix == ""
    assert s.object_key("ab/abcdefghijklmnopqrst") == "classes/2026/ab/abcdefghijklmnopqrst"


@pytest.mark.parametrize("url", ["s3://Bad_Bucket/x", "s3://", "s3://ab", "s3://bucket/../x y",
                                 "http://example.com/x", "gs://b", "./data/files", "file://", ""])
def test_storage_from_url_unknown(url, tmp_path):
    """Unsupported schemes, invalid bucket names or prefixes, bare paths and empty file URLs raise ConfigError naming the problem."""
    with pytest.raises(ConfigError, match="STORAGE_URL"):
        storage_from_url(url, tmp_path)
    assert not any(Path(tmp_path).iterdir())


# -- S3 particulars ----------------------------------------------------------------------------
async def test_s3_large_object_is_a_multipart_upload(io_loop, s3, s3_server):
    """An object above one part is a multipart upload, visible only at commit, that reads back exactly across seams."""
    key = new_key()
    data = pattern(2 * PART_BYTES + 12345)
    w = await s3.open_writer(key)
    for i in range(0, len(data), 300_001):
        await w.write(data[i:i + 300_001])
    uploads = s3_server.client().list_multipart_uploads(Bucket=s3.bucket).get("Uploads", [])
    assert len(uploads) == 1 and not await s3.exists(key)  # parts are up, nothing is visible
    assert await w.commit() == len(data)
    head = s3_server.client().head_object(Bucket=s3.bucket, Key=s3.object_key(key))
    assert int(head["ETag"].strip('"').split("-")[1]) >= 2  # multipart ETag: "<md5 of md5s>-<parts>"
    assert await s3.inventory() == [s3.object_key(key)]
    for start, end in [(0, len(data) - 1), (PART_BYTES - 3, PART_BYTES + 3),
                       (2 * PART_BYTES - 1, len(data) - 1)]:
        assert await read(s3, key, start, end) == data[start:end + 1]


async def test_s3_failed_commit_leaves_nothing(io_loop, s3, s3_server):
    """When S3 refuses to complete the upload, commit raises StorageError and neither object nor parts remain."""
    key = new_key()
    w = await s3.open_writer(key)
    await w.write(pattern(PART_BYTES + 10))
    await asyncio.sleep(0)
    client = s3_server.client()
    [up] = client.list_multipart_uploads(Bucket=s3.bucket)["Uploads"]
    await w._wait_pending()  # let the in-flight part land before pulling the upload away
    client.abort_multipart_upload(Bucket=s3.bucket, Key=up["Key"], UploadId=up["UploadId"])
    with pytest.raises(StorageError, match="S3 upload"):
        await w.commit()
    assert not await s3.exists(key) and await s3.inventory() == []


async def test_s3_check_names_the_problem(io_loop, s3_server):
    """check() passes for an existing bucket and names the bucket when it is missing or the endpoint is down."""
    ok = s3_store(s3_server, s3_server.new_bucket())
    missing = s3_store(s3_server, "podium-no-such-bucket")
    nowhere = S3Storage("podium-x", "", S3Options(endpoint_url=f"http://127.0.0.1:{free_port()}",
                                                   access_key_id="a", secret_access_key="b",
                                                   addressing_style="path"))
    try:
        await ok.check()
        for store in (missing, nowhere):
            with pytest.raises(StorageError, match="is not reachable"):
                await asyncio.wait_for(store.check(), 30)
    finally:
        for store in (ok, missing, nowhere):
            await store.close()


def test_server_refuses_to_start_without_its_bucket(tmp_path, s3_server):
    """`python -m server serve` with a missing bucket exits non-zero at once with a message naming it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("S3_", "AWS_", "PODIUM", "DATABASE"))}
    env.update(DATA_DIR=str(tmp_path), PORT=str(free_port()), HOST="127.0.0.1",
               STORAGE_URL="s3://podium-missing-bucket/files", S3_ENDPOINT_URL=s3_server.endpoint_url,
               S3_ACCESS_KEY_ID=ACCESS_KEY, S3_SECRET_ACCESS_KEY=SECRET_KEY, S3_ADDRESSING_STYLE="path")
    r = subprocess.run([sys.executable, "-m", "server", "serve"], env=env, capture_output=True,
                       text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert r.returncode != 0
    assert "cannot start" in r.stderr and "podium-missing-bucket" in r.stderr, r.stderr[-2000:]
