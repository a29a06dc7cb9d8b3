"""The manifest writer (media_worker/live/events.py)."""
from __future__ import annotations

import json

import pytest

from media_worker.live import EventLog
from media_worker.live.events import recording_started_at
from media_worker.post.manifest import load_manifest


def test_event_log_lines_are_complete_before_close(tmp_path):
    """Each event is one flushed JSON line as soon as write() returns (another reader sees it
    while the log is open), with t first and non-ASCII text kept."""
    log = EventLog(tmp_path / "events.jsonl", clock=lambda: 12.5)
    log.write("chat", seq=1, user={"id": "7", "display_name": "Zoë"}, text="ça va ?")
    log.write("mark", t=13.0, label="Q&A", by={"id": "1", "display_name": "P"})
    text = (tmp_path / "events.jsonl").read_text(encoding="utf-8")
    assert text.splitlines() == [
        '{"t":12.5,"type":"chat","seq":1,"user":{"id":"7","display_name":"Zoë"},"text":"ça va ?"}',
        '{"t":13.0,"type":"mark","label":"Q&A","by":{"id":"1","display_name":"P"}}']
    log.close()
    log.close()


def test_append_dated_writes_in_time_order_with_given_times(tmp_path):
    """Dated events are appended sorted by t (ties keep their order), each one line with that t."""
    log = EventLog(tmp_path / "events.jsonl", clock=lambda: 99.0)
    added = log.append_dated([
        {"t": 12.0, "type": "mark", "label": "B", "by": {"id": "1", "display_name": "P"}},
        {"t": 11.0, "type": "chat", "seq": 1, "user": {"id": "7", "display_name": "Ana"}, "text": "x"},
        {"t": 12, "type": "chat", "seq": 2, "user": {"id": "7", "display_name": "Ana"}, "text": "y"}])
    log.close()
    lines = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert added == 3
    assert [(e["t"], e["type"], e.get("seq") or e.get("label")) for e in lines] == [
        (11.0, "chat", 1), (12.0, "mark", "B"), (12.0, "chat", 2)]
    assert all(isinstance(e["t"], float) for e in lines)


def test_append_dated_refuses_an_undated_event_before_writing_any(tmp_path):
    """One event without a numeric t (or a type) raises ValueError and nothing is appended."""
    log = EventLog(tmp_path / "events.jsonl")
    for bad in ({"type": "chat"}, {"t": "12", "type": "chat"}, {"t": True, "type": "chat"}, {"t": 1.0}):
        with pytest.raises(ValueError, match="not a dated event"):
            log.append_dated([{"t": 1.0, "type": "mark", "label": "ok"}, bad])
    log.close()
    assert (tmp_path / "events.jsonl").read_text() == "" and log.lines == 0


def test_reopening_after_a_cut_line_keeps_new_events_whole(tmp_path):
    """Reopening a log cut mid-line by a crash ends that line, so appended events stay readable."""
    path = tmp_path / "events.jsonl"
    path.write_text('{"t":10.0,"type":"recording_started","recording":"1","session":"s","room":"r"}\n'
                    '{"t":11.0,"type":"participant_jo')
    with EventLog(path) as log:
        log.append_dated([{"t": 12.5, "type": "mark", "label": "Q", "by": {"id": "1", "display_name": "P"}}])
    manifest = load_manifest(tmp_path)
    assert manifest.skipped_lines == 1
    assert [(m.t_s, m.label) for m in manifest.marks] == [(2.5, "Q")]


def test_recording_started_at_reads_the_first_line(tmp_path):
    """The recording's zero is t of the opening recording_started line; anything else raises."""
    path = tmp_path / "events.jsonl"
    path.write_text('{"t":1700000000.25,"type":"recording_started","recording":"1"}\n{"t":1.0,"type":"x"}\n')
    assert recording_started_at(path) == 1700000000.25
    path.write_text('{"t":1.0,"type":"participant_joined"}\n')
    with pytest.raises(ValueError, match="recording_started"):
        recording_started_at(path)
    path.write_text("[1, 2]\n")
    with pytest.raises(ValueError):
        recording_started_at(path)
