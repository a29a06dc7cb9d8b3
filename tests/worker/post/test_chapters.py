"""Instructor marks as chapters (media_worker/post/chapters.py); no I/O."""
from __future__ import annotations

from media_worker.post.chapters import chapters_from_marks
from media_worker.post.manifest import Mark


def test_chapters_start_at_zero_and_merge_simultaneous_marks():
    """A chapter always starts at 0; marks within 0.5 s are one chapter; late marks dropped."""
    marks = [Mark(3.0, "B", ""), Mark(3.2, "C", ""), Mark(0.2, "A", ""), Mark(9.0, "Z", "")]
    chapters = chapters_from_marks(marks, 8.0)
    assert [(c.start_s, c.end_s, c.title) for c in chapters] == [
        (0.0, 3.0, "A"), (3.0, 8.0, "B / C")]
