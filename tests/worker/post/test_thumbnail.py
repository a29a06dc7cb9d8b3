"""The thumbnail (media_worker/post/thumbnail.py)."""
from __future__ import annotations

import av
import pytest


def test_thumbnail_decodes(class_recording):
    """thumbnail.jpg is a JPEG of the composite, at most 640 px wide."""
    path, _, _ = class_recording
    with av.open(str(path / "out" / "thumbnail.jpg")) as c:
        frame = next(c.decode(video=0))
    assert frame.width <= 640 and frame.width / frame.height == pytest.approx(640 / 240, rel=0.02)
