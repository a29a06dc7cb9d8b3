"""Instructor marks as chapters (media_worker/post/chapters.py); no I/O."""
from __future__ import annotations

from fractions import Fraction

from media_worker.post.chapters import chapters_from_marks, to_av
from media_worker.post.manifest import Mark


def test_chapters_start_at_zero_and_merge_simultaneous_marks():
    """A chapter always starts at 0; marks within 0.5 s are one chapter; late marks dropped."""
    marks = [Mark(3.0, "B", ""), Mark(3.2, "C", ""), Mark(0.2, "A", ""), Mark(9.0, "Z", "")]
    chapters = chapters_from_marks(marks, 8.0)
    assert [(c.start_s, c.end_s, c.title) for c in chapters] == [
        (0.0, 3.0, "A"), (3.0, 8.0, "B / C")]


def test_no_marks_no_chapters():
    """A recording without marks has no chapter list at all (not a lone "Start")."""
    assert chapters_from_marks([], 60.0) == []


def test_a_start_chapter_is_added_before_a_late_first_mark():
    """A first mark 0.5 s or more in gets a "Start" chapter from 0 to it."""
    chapters = chapters_from_marks([Mark(0.5, "Intro", "P"), Mark(30.0, "Questions", "P")], 60.0)
    assert [(c.start_s, c.end_s, c.title) for c in chapters] == [
        (0.0, 0.5, "Start"), (0.5, 30.0, "Intro"), (30.0, 60.0, "Questions")]


def test_marks_only_past_the_end_give_no_chapters():
    """Marks at or after the end are dropped; with none left there are no chapters."""
    assert chapters_from_marks([Mark(60.0, "Late", ""), Mark(61.0, "Later", "")], 60.0) == []


def test_a_mark_before_the_recording_clock_zero_opens_the_first_chapter():
    """A mark stamped slightly before zero (clock skew) becomes the chapter at 0."""
    chapters = chapters_from_marks([Mark(-0.3, "Welcome", "")], 10.0)
    assert [(c.start_s, c.end_s, c.title) for c in chapters] == [(0.0, 10.0, "Welcome")]


def test_chapters_in_pyav_form_are_milliseconds_numbered_from_one():
    """to_av gives ids from 1, start and end in ms with a 1/1000 time base, and the title."""
    av_chapters = to_av(chapters_from_marks([Mark(2.0, "A", ""), Mark(5.25, "B", "")], 8.0))
    assert [(c["id"], c["start"], c["end"], c["time_base"], c["metadata"]) for c in av_chapters] == [
        (1, 0, 2000, Fraction(1, 1000), {"title": "Start"}), (2, 2000, 5250, Fraction(1, 1000), {"title": "A"}),
        (3, 5250, 8000, Fraction(1, 1000), {"title": "B"})]
