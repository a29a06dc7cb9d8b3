"""The class recording most post-processing tests read: built once per test session and run
through the real child process, as the worker runs it."""
from __future__ import annotations

import asyncio

import pytest

from media_worker.post import postprocess
from tests.mediapattern import RecordingDir
from tests.worker.post.helpers import CHATS


@pytest.fixture(scope="session")
def class_recording(tmp_path_factory):
    """Alice (VP8 + Opus) from 0.2 s, Bob (H.264 + Opus) joining at 2.37 s with his pattern
    0.4 s out of phase with hers; chat, two marks, stopped at 8 s. Post-processed by
    ``postprocess`` (the async helper the worker uses)."""
    rec = RecordingDir(tmp_path_factory.mktemp("class") / "rec-17")
    rec.join(0.1, "pA", "u1", "Alice Teacher", "instructor")
    rec.video_track("pA", 0, "vp8", 0.2, 8.0)
    rec.audio_track("pA", 0, 0.2, 8.0)
    rec.join(2.3, "pB", "u2", "Bob <B>")
    rec.video_track("pB", 0, "h264", 2.37, 8.0, phase=0.4)
    rec.audio_track("pB", 0, 2.37, 8.0, phase=0.4)
    for chat in CHATS:
        rec.chat(*chat)
    rec.mark(2.0, "Intro")
    rec.mark(5.0, "Exercise")
    rec.stop(8.0)
    path = rec.write()
    progress: list[int] = []
    assets = asyncio.run(postprocess(path, progress.append))
    return path, assets, progress
