"""The sendfile path is for disk storage only (server/files/sendfile.py): on S3 the same
download is streamed, on disk it is sent by sendfile, as counted in /metrics."""
from __future__ import annotations

import hashlib

from tests.files.test_files import link, upload
from tests.files.test_sendfile_downloads import MIB, absolute, config_overrides, downloads, httpget, video  # noqa: F401
from tests.s3server import storage_settings  # noqa: F401  (runs on disk and on S3)


async def test_s3_keeps_streaming_and_disk_sends_files(server, storage_settings):
    """The sendfile path is for disk storage only: on S3 the same download is streamed."""
    _, tok = await server.user("ana")
    data = video(3 * MIB)
    [f] = await upload(server, tok, [("clip.mp4", data)])
    url = absolute(server, await link(server, tok, f["id"]))
    before = await downloads(server)
    [r] = await httpget(url, "--range", f"bytes={MIB - 10}-{2 * MIB + 9}")
    assert r["status"] == 206 and r["sha256"] == hashlib.sha256(data[MIB - 10:2 * MIB + 10]).hexdigest()
    after = await downloads(server)
    on_disk = not storage_settings
    assert after["sendfile"] - before["sendfile"] == (1 if on_disk else 0)
    assert after["streamed"] - before["streamed"] == (0 if on_disk else 1)
