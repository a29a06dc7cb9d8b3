"""Chat as timed text (media_worker/post/subtitles.py): chat.vtt from the class recording, and
the cue and WebVTT builders on their own (no I/O)."""
from __future__ import annotations

from media_worker.post.subtitles import vtt_escape
from tests.worker.post.helpers import parse_vtt


def test_chat_vtt_parses(class_recording):
    """chat.vtt is WebVTT with one voice span per message, text escaped and recoverable."""
    path, _, _ = class_recording
    cues = parse_vtt((path / "out" / "chat.vtt").read_text())
    assert [c["voices"] for c in cues] == [
        [("Alice Teacher", "Welcome & hello <everyone>")],
        [("Bob <B>", "a --> b")],
        [("Alice Teacher", "line one\nline two")]]
    assert [(c["start"], c["end"]) for c in cues] == [(1.0, 3.5), (3.5, 6.0), (6.0, 8.0)]


def test_vtt_escape_removes_markup_and_arrows():
    """Cue text cannot open a tag, start an entity, or contain a timing arrow."""
    assert vtt_escape("a<b>&c --> d") == "a&lt;b&gt;&amp;c --&gt; d"
