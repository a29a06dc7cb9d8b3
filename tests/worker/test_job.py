"""What a job writes after the stop (media_worker/job.py, ``append_timeline``): the server's
chat and marks reach events.jsonl through EventLog, where post-processing reads them."""
from __future__ import annotations

import json

import pytest

from media_worker.job import append_timeline
from media_worker.post.manifest import load_manifest

TIMELINE = {
    "chat": [{"seq": 2, "kind": "text", "text": "second", "offset_s": 3.5, "user": {"id": "8", "display_name": "Ben"}},
             {"seq": 1, "kind": "text", "text": "first", "offset_s": 1.0, "user": {"id": "7", "display_name": "Ana"}}],
    "marks": [{"label": "Questions", "offset_s": 2.0, "by": {"id": "1", "display_name": "Prof"}}]}


def recording_dir(tmp_path, tail: str = '{"t":1000.5,"type":"recording_stopped","reason":"stop"}\n'):
    """A recording directory whose events.jsonl started at t=1000 (worker clock)."""
    d = tmp_path / "rec-9"
    d.mkdir()
    (d / "events.jsonl").write_text(
        '{"t":1000.0,"type":"recording_started","recording":"9","session":"s","room":"r"}\n' + tail)
    return d


def test_timeline_lands_in_the_manifest_on_the_recording_clock(tmp_path):
    """Timeline chat and marks are appended in time order and read back at their offsets."""
    d = recording_dir(tmp_path)
    assert append_timeline(d, TIMELINE) == (3, 0)
    lines = [json.loads(x) for x in (d / "events.jsonl").read_text().splitlines()]
    assert [e["type"] for e in lines] == ["recording_started", "recording_stopped", "chat", "mark", "chat"]
    manifest = load_manifest(d)
    assert [(c.t_s, c.seq, c.user.display_name, c.text) for c in manifest.chats] == [
        (1.0, 1, "Ana", "first"), (3.5, 2, "Ben", "second")]
    assert [(m.t_s, m.label, m.by) for m in manifest.marks] == [(2.0, "Questions", "Prof")]


def test_a_recovered_recording_cut_mid_line_keeps_every_timeline_event(tmp_path):
    """After a SIGKILL the manifest may end in half a line: the timeline's events still parse."""
    d = recording_dir(tmp_path, tail='{"t":1001.0,"type":"track_sta')
    assert append_timeline(d, TIMELINE) == (3, 0)
    manifest = load_manifest(d)
    assert manifest.skipped_lines == 1 and len(manifest.chats) == 2 and len(manifest.marks) == 1


def test_a_manifest_that_does_not_start_the_recording_is_refused(tmp_path):
    """A manifest not opened by recording_started raises and is left unchanged."""
    d = tmp_path / "rec-x"
    d.mkdir()
    (d / "events.jsonl").write_text('{"t":1.0,"type":"chat"}\n')
    with pytest.raises(ValueError, match="recording_started"):
        append_timeline(d, TIMELINE)
    assert (d / "events.jsonl").read_text() == '{"t":1.0,"type":"chat"}\n'
