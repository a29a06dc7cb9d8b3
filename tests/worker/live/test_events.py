"""The manifest writer (media_worker/live/events.py)."""
from __future__ import annotations

from media_worker.live import EventLog


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
