"""What the playback page needs (issue 15.1; docs/RECORDING.md "Watching a recording"):
``GET /api/recordings/{id}/playback`` → ``{recording, duration_s, chapters, chat, speakers}``,
every time in seconds from the start of the class video.

- Who: the members of the recording's room (as ``GET /api/recordings/{id}`` decides), once the
  recording is ready; before that (or when it failed) ``409`` says why.
- ``chapters``: the marks and polls of the recorded span, by the worker's rule
  (media_worker/post/chapters.py): marks within 0.5 s are one chapter ("A / B"), the first
  starts at 0 ("Start" unless a mark is there), each runs to the next or to the end.
- ``chat``: the room's messages of the span that are still there (a deleted one is gone from
  the replay too), the same offsets the worker put the subtitles at.
- ``speakers``: who spoke when, from the recording's ``speakers.json`` asset (kind
  ``speakers``, written by the worker); ``[]`` without one or when it cannot be read.
"""
from __future__ import annotations

import json
import logging
import math

from server.db import recordings as rq
from server.kernel.actor import Actor
from server.kernel.errors import Conflict
from server.recordings.library import RecordingLibrary
from server.storage import StorageError

log = logging.getLogger("podium.recordings")

SAME_INSTANT_S = 0.5
MAX_SPEAKERS_BYTES = 4 * 1024 * 1024
MAX_NAME = 200


def watch_path(recording_id: int | str) -> str:
    """The playback page of a recording in the web client (a hash route)."""
    return f"/#/recordings/{recording_id}"


def chapters_from_marks(marks: list[dict], duration_s: float | None) -> list[dict]:
    """``[{title, start_s, end_s}]`` from ``[{label, offset_s}]`` (see the module's docstring)."""
    end = duration_s if duration_s is not None else math.inf
    starts: list[tuple[float, list[str]]] = []
    for mark in sorted(marks, key=lambda m: m["offset_s"]):
        t = max(0.0, float(mark["offset_s"]))
        if t >= end:
            continue
        if starts and t - starts[-1][0] < SAME_INSTANT_S:
            starts[-1][1].append(mark["label"])
        else:
            starts.append((t, [mark["label"]]))
    if not starts:
        return []
    if starts[0][0] >= SAME_INSTANT_S:
        starts.insert(0, (0.0, ["Start"]))
    else:
        starts[0] = (0.0, starts[0][1])
    last = duration_s if duration_s is not None else None
    return [{"title": " / ".join(labels), "start_s": round(t, 3),
             "end_s": round(starts[i + 1][0], 3) if i + 1 < len(starts) else last}
            for i, (t, labels) in enumerate(starts)]


def parse_speakers(raw: bytes) -> list[dict]:
    """``{"speakers": [{user_id, display_name, segments: [[start_s, end_s], ...]}]}`` →
    the speakers with their well-formed segments (sorted); ValueError when it is not that."""
    data = json.loads(raw)
    if not isinstance(data, dict) or not isinstance(data.get("speakers"), list):
        raise ValueError("no speakers list")
    out = []
    for sp in data["speakers"]:
        if not isinstance(sp, dict) or not isinstance(sp.get("segments"), list):
            raise ValueError("a speaker without segments")
        segments = []
        for seg in sp["segments"]:
            if (isinstance(seg, list) and len(seg) == 2
                    and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in seg)
                    and 0 <= seg[0] < seg[1]):
                segments.append([round(float(seg[0]), 3), round(float(seg[1]), 3)])
        out.append({"user_id": str(sp.get("user_id", "")), "display_name": str(sp.get("display_name") or "?")[:MAX_NAME],
                    "segments": sorted(segments)})
    return out


class Playback:
    def __init__(self, deps, base_url: str = ""):
        self.deps = deps
        self.library = RecordingLibrary(deps, base_url)

    async def read(self, actor: Actor, recording_id: int) -> dict:
        wire = await self.library.get(actor, recording_id)  # NotFound; Forbidden for non-members
        if wire["status"] == "failed":
            raise Conflict("this recording failed, so there is nothing to watch"
                           + (f": {wire['reason']}" if wire.get("reason") else ""))
        if wire["status"] != "ready":
            raise Conflict(f"this recording is not ready to watch yet (it is {wire['status']})")
        row = await self.deps.recordings.get(recording_id)
        video = next((a for a in wire["assets"] if a["kind"] == "composite"), None)
        duration = (video or {}).get("duration_s") or row.duration_s
        span = await self.library.span(row)
        chat = [{"seq": m["seq"], "kind": m["kind"], "text": m["text"] or "", "t_s": m["offset_s"], "user": m["user"]}
                for m in span["chat"]]
        return {"recording": wire, "duration_s": duration,
                "chapters": chapters_from_marks(span["marks"], duration),
                "chat": chat, "speakers": await self._speakers(row.id)}

    async def _speakers(self, recording_id: int) -> list[dict]:
        async with self.deps.db.read() as s:
            pairs = (await rq.assets(s, [recording_id]))[recording_id]
        f = next((f for a, f in pairs if a.kind == "speakers"), None)
        if f is None:
            return []
        if f.size > MAX_SPEAKERS_BYTES:
            log.warning("recording %s: speakers.json is %d bytes, not shown", recording_id, f.size)
            return []
        try:
            size = await self.deps.storage.size(f.storage_key)
            if size == 0:
                return []
            async with await self.deps.storage.open_range(f.storage_key, 0, size - 1) as chunks:
                raw = b"".join([chunk async for chunk in chunks])
            return parse_speakers(raw)
        except (StorageError, ValueError, UnicodeDecodeError) as e:
            log.warning("recording %s: cannot read its speaker timeline: %s", recording_id, e)
            return []
