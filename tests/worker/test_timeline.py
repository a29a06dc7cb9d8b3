"""The server's recording timeline as manifest events (media_worker/timeline.py); no I/O."""
from __future__ import annotations

from media_worker.timeline import timeline_events

STARTED_AT = 1_700_000_000.5  # recording_started.t on the worker's clock


def test_offsets_are_placed_on_the_workers_clock_in_manifest_shapes():
    """Chat and marks get t = recording_started.t + offset_s, in the manifest's shapes."""
    timeline = {
        "chat": [{"seq": 4, "kind": "text", "text": "hé 👋", "offset_s": 2.25,
                  "user": {"id": 7, "display_name": "Ana", "username": "ana"}}],
        "marks": [{"label": "Intro", "offset_s": 1.0, "by": {"id": "1", "display_name": "Prof"}}]}
    events, malformed = timeline_events(timeline, STARTED_AT)
    assert malformed == 0
    assert events == [
        {"t": STARTED_AT + 2.25, "type": "chat", "seq": 4, "user": {"id": "7", "display_name": "Ana"},
         "text": "hé 👋"},
        {"t": STARTED_AT + 1.0, "type": "mark", "label": "Intro", "by": {"id": "1", "display_name": "Prof"}}]


def test_only_text_and_announcements_become_chat_events():
    """File messages are left out (not counted as malformed); a message without kind is text."""
    chat = [{"seq": n, "kind": kind, "text": kind or "plain", "offset_s": n, "user": {"id": 1}}
            for n, kind in enumerate(["text", "announcement", "file", None])]
    chat[3].pop("kind")
    events, malformed = timeline_events({"chat": chat, "marks": []}, 0.0)
    assert [e["text"] for e in events] == ["text", "announcement", "plain"] and malformed == 0


def test_malformed_entries_are_left_out_and_counted():
    """Entries with missing fields, bad offsets or no object shape are left out and counted."""
    timeline = {
        "chat": [{"seq": 1, "text": "ok", "offset_s": 1, "user": {"id": 1}},
                 {"seq": 2, "text": "no user", "offset_s": 1},
                 {"seq": 3, "text": "bad offset", "offset_s": "soon", "user": {"id": 1}},
                 "not an object"],
        "marks": [{"label": "ok", "offset_s": 2, "by": {"id": 1}},
                  {"label": "inf", "offset_s": float("inf"), "by": {"id": 1}},
                  {"offset_s": 3, "by": {"id": 1}}]}
    events, malformed = timeline_events(timeline, 0.0)
    assert [(e["type"], e["t"]) for e in events] == [("chat", 1.0), ("mark", 2.0)] and malformed == 5


def test_an_empty_timeline_gives_nothing():
    """A recording that never started (no chat or marks keys, or null lists) adds no event."""
    assert timeline_events({}, STARTED_AT) == ([], 0)
    assert timeline_events({"chat": None, "marks": None}, STARTED_AT) == ([], 0)
