"""The muxers' background file (media_worker/live/disk.py)."""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from media_worker.live.disk import BackgroundFile
from tests.worker.live.helpers import wait_for


async def test_background_file_writes_in_order_and_reports_errors(tmp_path):
    """BackgroundFile (the muxers' file, written on a thread) honours seeks and overwrites in
    order, and a failed write (here: disk full) is raised by a later call and by close()."""
    f = BackgroundFile(tmp_path / "x.bin")
    assert f.write(b"hello world") == 11 and f.tell() == 11
    assert f.seek(0) == 0 and f.write(b"J") == 1
    assert f.seek(0, os.SEEK_END) == 11 and f.write(b"!") == 1
    await asyncio.wrap_future(f.close())
    assert (tmp_path / "x.bin").read_bytes() == b"Jello world!"
    if not os.path.exists("/dev/full"):
        return
    full = BackgroundFile(Path("/dev/full"))
    full.write(b"x" * 100)
    await wait_for(lambda: full._error is not None, 5, "the failed write")
    with pytest.raises(OSError):
        full.write(b"y")
    with pytest.raises(OSError):
        await asyncio.wrap_future(full.close())
