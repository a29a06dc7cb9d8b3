"""The chat and marks of a recorded span, from the server's timeline
(``GET /api/recordings/{id}/timeline``) to manifest events (docs/RECORDING.md).

SQL is the authority on what was said and marked: the worker reads this once, after the
stop, instead of listening for chat and marks live, so nothing said during a reconnect is
missing. The server gives offsets from the recording's start on *its* clock; adding them to
``recording_started.t`` places each event on the worker's clock, so the two machines' clocks
need not agree. No I/O here.
"""
from __future__ import annotations

import math
from typing import Any

CHAT_KINDS = ("text", "announcement", "poll")  # what becomes subtitles; other kinds (files) do not


def _who(user: Any) -> dict[str, Any]:
    return {"id": str(user["id"]), "display_name": user.get("display_name")}


def _offset(entry: Any) -> float:
    offset = float(entry["offset_s"])
    if not math.isfinite(offset):
        raise ValueError(f"offset_s is {offset}")
    return offset


def timeline_events(timeline: dict[str, Any], started_at: float) -> tuple[list[dict[str, Any]], int]:
    """``chat`` (``seq``, ``user``, ``text``) and ``mark`` (``label``, ``by``) events, each with
    ``t = started_at + offset_s``, in the manifest's shapes (ids as strings), and how many
    entries were malformed (missing or unusable fields: left out, for the caller to log).
    Chat messages of other kinds (files) are left out without counting."""
    events: list[dict[str, Any]] = []
    skipped = 0
    for m in timeline.get("chat") or []:
        try:
            if m.get("kind", "text") not in CHAT_KINDS:
                continue
            events.append({"t": started_at + _offset(m), "type": "chat", "seq": int(m["seq"]),
                           "user": _who(m["user"]), "text": str(m["text"])})
        except (AttributeError, KeyError, TypeError, ValueError):
            skipped += 1
    for k in timeline.get("marks") or []:
        try:
            events.append({"t": started_at + _offset(k), "type": "mark", "label": str(k["label"]),
                           "by": _who(k["by"])})
        except (AttributeError, KeyError, TypeError, ValueError):
            skipped += 1
    return events, skipped
