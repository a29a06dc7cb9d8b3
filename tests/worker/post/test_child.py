"""The post-processing child process and its async helper (media_worker/post/child.py,
``python -m media_worker.post``)."""
from __future__ import annotations

import asyncio

import psutil
import pytest

from media_worker.post import ManifestError, PostprocessError, postprocess, run
from tests.mediapattern import RecordingDir
from tests.worker.post.helpers import by_kind


def test_child_reports_progress_and_assets(class_recording):
    """The child prints rising percentages up to 100 and one asset dict per output file."""
    path, assets, progress = class_recording
    assert progress and progress == sorted(progress) and progress[-1] == 100
    kinds = by_kind(assets)
    assert set(kinds) == {"composite", "participant", "speakers", "chat", "thumbnail", "manifest"}
    assert sorted(a["file"] for a in kinds["participant"]) == [
        "participant-u1-0.mkv", "participant-u2-0.mkv"]
    for a in assets:
        assert set(a) == {"kind", "file", "content_type", "size", "duration_s"}
        assert a["size"] == (path / "out" / a["file"]).stat().st_size > 0
    assert kinds["composite"][0] | {"size": 0} == {
        "kind": "composite", "file": "class.mp4", "content_type": "video/mp4", "size": 0,
        "duration_s": 8.0}
    assert kinds["chat"][0]["content_type"] == "text/vtt"
    assert kinds["thumbnail"][0]["content_type"] == "image/jpeg"
    assert not list((path / "out").glob("*.part"))


def test_cancelling_postprocess_kills_the_child(tmp_path):
    """Cancelling the helper (the worker stopping) ends the child and its unfinished files."""
    rec = RecordingDir(tmp_path / "rec-cancel")
    rec.join(0.0, "pA", "u1", "Alice")
    rec.video_track("pA", 0, "vp8", 0.0, 4.0)
    rec.stop(30.0)  # a long composite: 30 s of mostly name tile
    path = rec.write()

    async def main() -> None:
        started = asyncio.Event()
        task = asyncio.create_task(postprocess(path, lambda p: started.set(), args=["--nice", "0"]))
        await asyncio.wait_for(started.wait(), 30)
        # Only our post-processing child: the session may have other children (the S3 server).
        children = [c for c in psutil.Process().children() if "media_worker.post" in " ".join(c.cmdline())]
        assert children
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for child in children:
            assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE

    asyncio.run(main())
    assert not (path / "out" / "class.mp4").exists()
    assert not list((path / "out").glob("*.part"))


def test_postprocess_raises_for_a_directory_without_events(tmp_path):
    """No events.jsonl: the child exits non-zero and the helper raises with its reason."""
    with pytest.raises(PostprocessError, match="events.jsonl") as err:
        asyncio.run(postprocess(tmp_path))
    assert err.value.returncode == 1
    with pytest.raises(ManifestError):
        run(tmp_path)
