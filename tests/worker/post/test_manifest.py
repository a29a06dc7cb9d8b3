"""Reading events.jsonl (media_worker/post/manifest.py)."""
from __future__ import annotations

from media_worker.post.manifest import load_manifest


def test_manifest_skips_truncated_and_malformed_lines(tmp_path):
    """Complete lines are kept whatever surrounds them; broken ones are counted."""
    (tmp_path / "events.jsonl").write_text(
        '{"t": 10.0, "type": "recording_started", "recording": "1"}\n'
        'garbage\n'
        '{"t": 11.5, "type": "mark", "label": "A"}\n'
        '{"t": 12.0, "type": "chat", "seq": 1, "user": {"id": "u", "disp')
    m = load_manifest(tmp_path)
    assert m.skipped_lines == 2 and m.stopped_s is None
    assert [(mk.t_s, mk.label) for mk in m.marks] == [(1.5, "A")]


def test_track_source_is_read_and_anything_else_is_unmarked(tmp_path):
    """``source`` "screen"/"camera" on track_started is kept; absent or unknown is None."""
    lines = ['{"t": 10.0, "type": "recording_started", "recording": "1"}']
    for name, source in (("a", '"screen"'), ("b", '"camera"'), ("c", None), ("d", '"window"')):
        extra = f', "source": {source}' if source else ""
        lines.append(f'{{"t": 11.0, "type": "track_started", "track": "{name}", "peer_id": "p", '
                     f'"kind": "video"{extra}}}')
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    assert [(t.name, t.source) for t in load_manifest(tmp_path).tracks] == [
        ("a", "screen"), ("b", "camera"), ("c", None), ("d", None)]
