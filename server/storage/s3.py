"""S3-compatible storage backend (AWS S3, MinIO, Ceph, R2, Bucketeer on Heroku, moto in tests).

Objects live at ``<prefix><fan-out>/<token>`` in one bucket. A :class:`S3Writer` keeps nothing
visible until :meth:`~S3Writer.commit`: a small object is one ``PutObject``; a large one is a
multipart upload whose parts go up while the next part is still being received (one part in
flight, so memory stays at two parts per upload) and that becomes visible only on
``CompleteMultipartUpload``. ``abort`` (or any failure) calls ``AbortMultipartUpload``, so a
refused or interrupted upload leaves no object and no billed parts. Configure a bucket
lifecycle rule "abort incomplete multipart uploads after 1 day" as a backstop for a process
killed mid-upload (docs/FILES.md).

Reads are ranged ``GetObject`` calls streamed through in chunks of at most CHUNK_BYTES; the
server never hands out S3 URLs (docs/FILES.md, "Storage on S3").
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from server.storage.base import CHUNK_BYTES, ChunkStream, InvalidRange, ObjectNotFound, Storage, StorageError, Writer, check_key

log = logging.getLogger(__name__)

MIB = 1024 * 1024
# S3 requires every part but the last to be at least 5 MiB; 8 MiB parts allow 80 GB objects
# within the 10,000-part limit, far above any configured upload limit.
PART_BYTES = 8 * MIB


@dataclass(frozen=True)
class S3Options:
    """Connection settings (docs/CONFIGURATION.md, "Storage"). ``None`` credentials fall back
    to botocore's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, instance role)."""

    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    addressing_style: str = "auto"  # "path" for MinIO/moto on an IP address, "virtual", "auto"
    max_connections: int = 50


def _code(e: Exception) -> str:
    return str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))


def _not_found(e: Exception) -> bool:
    return _code(e) in ("404", "NoSuchKey", "NotFound")


class S3Writer(Writer):
    def __init__(self, store: "S3Storage", key: str):
        self._s, self._key = store, key
        self._buf = bytearray()
        self._size = 0
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._pending: asyncio.Task | None = None  # the part being uploaded
        self._state = "open"

    async def _put_part(self, number: int, data: bytes) -> None:
        client = await self._s.client()
        r = await client.upload_part(Bucket=self._s.bucket, Key=self._key, UploadId=self._upload_id,
                                     PartNumber=number, Body=data)
        self._parts.append({"ETag": r["ETag"], "PartNumber": number})

    async def _wait_pending(self) -> None:
        task, self._pending = self._pending, None
        if task is not None:
            await task

    async def _ship(self, data: bytes) -> None:
        """Start uploading ``data`` as the next part once the previous part is done."""
        await self._wait_pending()
        if self._upload_id is None:
            client = await self._s.client()
            r = await client.create_multipart_upload(Bucket=self._s.bucket, Key=self._key)
            self._upload_id = r["UploadId"]
        self._pending = asyncio.ensure_future(self._put_part(len(self._parts) + 1, data))

    async def write(self, chunk: bytes) -> None:
        if self._state != "open":
            raise StorageError(f"write after {self._state}")
        self._buf += chunk
        self._size += len(chunk)
        if len(self._buf) >= PART_BYTES:
            data, self._buf = bytes(self._buf), bytearray()
            await self._ship(data)

    async def commit(self) -> int:
        if self._state != "open":
            raise StorageError(f"commit after {self._state}")
        data, self._buf = bytes(self._buf), bytearray()
        try:
            client = await self._s.client()
            if self._upload_id is None:
                await client.put_object(Bucket=self._s.bucket, Key=self._key, Body=data)
            else:
                if data:
                    await self._ship(data)
                await self._wait_pending()
                parts = sorted(self._parts, key=lambda p: p["PartNumber"])
                await client.complete_multipart_upload(Bucket=self._s.bucket, Key=self._key,
                                                       UploadId=self._upload_id,
                                                       MultipartUpload={"Parts": parts})
        except Exception as e:
            await self.abort()
            raise StorageError(f"S3 upload of {self._key} failed: {e}") from e
        self._state = "committed"
        return self._size

    async def abort(self) -> None:
        if self._state != "open":
            return
        self._state = "aborted"
        self._buf = bytearray()
        if self._pending is not None:
            with contextlib.suppress(Exception):
                await self._wait_pending()
        if self._upload_id is not None:
            try:
                client = await self._s.client()
                await client.abort_multipart_upload(Bucket=self._s.bucket, Key=self._key,
                                                    UploadId=self._upload_id)
            except Exception:
                log.exception("could not abort multipart upload %s of %s (a bucket lifecycle rule "
                              "removes it later)", self._upload_id, self._key)


class S3ChunkStream(ChunkStream):
    def __init__(self, body: Any, remaining: int):
        self._body, self._remaining = body, remaining

    async def __anext__(self) -> bytes:
        if self._body is None or self._remaining <= 0:
            await self.aclose()
            raise StopAsyncIteration
        want = min(CHUNK_BYTES, self._remaining)
        data = bytearray()
        try:  # the HTTP body arrives in small pieces; hand out whole chunks (fewer flushes)
            while len(data) < want:
                piece = await self._body.read(want - len(data))
                if not piece:
                    raise StorageError("object shorter than expected")
                data += piece
        except Exception as e:
            await self.aclose()
            raise e if isinstance(e, StorageError) else StorageError(f"S3 read failed: {e}") from e
        self._remaining -= len(data)
        return bytes(data)

    async def aclose(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            body.close()


class S3Storage(Storage):
    """Objects in ``bucket`` under ``prefix`` (``""`` or ending in ``/``)."""

    def __init__(self, bucket: str, prefix: str, options: S3Options):
        self.bucket, self.prefix, self.options = bucket, prefix, options
        self._client: Any = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"S3Storage(s3://{self.bucket}/{self.prefix}, endpoint={self.options.endpoint_url})"

    async def client(self) -> Any:
        """The shared aiobotocore client, created on first use (it needs a running loop)."""
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    from aiobotocore.config import AioConfig
                    from aiobotocore.session import get_session

                    o = self.options
                    stack = contextlib.AsyncExitStack()
                    config = AioConfig(max_pool_connections=o.max_connections, retries={"max_attempts": 3},
                                       s3={"addressing_style": o.addressing_style})
                    self._client = await stack.enter_async_context(get_session().create_client(
                        "s3", endpoint_url=o.endpoint_url, region_name=o.region, config=config,
                        aws_access_key_id=o.access_key_id, aws_secret_access_key=o.secret_access_key))
                    self._stack = stack
        return self._client

    def object_key(self, key: str) -> str:
        return self.prefix + check_key(key)

    async def check(self) -> None:
        client = await self.client()
        try:
            await client.head_bucket(Bucket=self.bucket)
        except Exception as e:
            raise StorageError(f"S3 bucket {self.bucket!r} at {self.options.endpoint_url or 'AWS'} "
                               f"is not reachable: {e}") from e

    async def open_writer(self, key: str) -> Writer:
        return S3Writer(self, self.object_key(key))

    async def open_range(self, key: str, start: int, end: int) -> ChunkStream:
        okey = self.object_key(key)
        if start < 0 or end < start:
            raise InvalidRange(f"range {start}-{end}")
        client = await self.client()
        try:
            r = await client.get_object(Bucket=self.bucket, Key=okey, Range=f"bytes={start}-{end}")
        except Exception as e:
            if _not_found(e):
                raise ObjectNotFound(key) from None
            if _code(e) == "InvalidRange":
                raise InvalidRange(f"range {start}-{end}: {e}") from None
            raise StorageError(f"S3 read of {okey} failed: {e}") from e
        if r["ContentLength"] != end - start + 1:  # S3 clips a range that runs past the end
            r["Body"].close()
            raise InvalidRange(f"range {start}-{end} outside the object ({r.get('ContentRange')})")
        return S3ChunkStream(r["Body"], end - start + 1)

    async def size(self, key: str) -> int:
        okey = self.object_key(key)
        client = await self.client()
        try:
            r = await client.head_object(Bucket=self.bucket, Key=okey)
        except Exception as e:
            if _not_found(e):
                raise ObjectNotFound(key) from None
            raise StorageError(f"S3 head of {key} failed: {e}") from e
        return int(r["ContentLength"])

    async def exists(self, key: str) -> bool:
        try:
            await self.size(key)
        except ObjectNotFound:
            return False
        return True

    async def delete(self, key: str) -> bool:
        okey = self.object_key(key)
        existed = await self.exists(key)  # DeleteObject answers 204 either way
        if existed:
            client = await self.client()
            await client.delete_object(Bucket=self.bucket, Key=okey)
        return existed

    async def copy(self, src: str, dst: str) -> None:
        """A server-side ``CopyObject`` (atomic; no bytes pass through Podium; up to 5 GB)."""
        src_key, dst_key = self.object_key(src), self.object_key(dst)
        client = await self.client()
        try:
            await client.copy_object(Bucket=self.bucket, Key=dst_key,
                                     CopySource={"Bucket": self.bucket, "Key": src_key})
        except Exception as e:
            if _not_found(e):
                raise ObjectNotFound(src) from None
            raise StorageError(f"S3 copy of {src_key} failed: {e}") from e

    async def inventory(self) -> list[str]:
        client = await self.client()
        names: list[str] = []
        async for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            names += [o["Key"] for o in page.get("Contents", [])]
        r = await client.list_multipart_uploads(Bucket=self.bucket, Prefix=self.prefix)
        names += [f"{u['Key']} (incomplete upload {u['UploadId']})" for u in r.get("Uploads", [])]
        return names

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()
