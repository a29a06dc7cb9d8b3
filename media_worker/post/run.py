"""``run(recording_dir, progress_cb)``: every post-processing output of one recording.

Blocking and CPU-bound: call it in a child process (``python -m media_worker.post``, or
``media_worker.post.child.postprocess`` from the worker's event loop), never on an event loop.
Outputs go to ``<recording_dir>/out/``; each is written under a temporary name and renamed, so
a file that exists is complete.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av

from media_worker.post.chapters import chapters_from_marks
from media_worker.post.composite import EncodeSettings, thumbnail_time, write_composite
from media_worker.post.manifest import load_manifest
from media_worker.post.remux import remux_participants
from media_worker.post.speakers import speakers_document
from media_worker.post.segment_join import finish_composite, plan_finish
from media_worker.post.segment_render import live_off
from media_worker.post.subtitles import chat_cues, webvtt
from media_worker.post.thumbnail import write_jpeg
from media_worker.post.timeline import Timeline, build_timeline

log = logging.getLogger("podium.worker.post")

OUT_DIR = "out"
MANIFEST_VERSION = 1


def asset(out_dir: Path, kind: str, path: Path, content_type: str,
          duration_s: float | None) -> dict[str, Any]:
    """The asset dict the worker uploads: ``file`` is relative to ``out/``; ``duration_s`` is
    where the asset ends on the recording clock (a participant file starts where the
    participant joined), None for assets without a timeline (thumbnail, manifest)."""
    return {"kind": kind, "file": path.relative_to(out_dir).as_posix(),
            "content_type": content_type, "size": path.stat().st_size,
            "duration_s": None if duration_s is None else round(duration_s, 3)}


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def run(recording_dir: str | Path, progress_cb: Callable[[int], None] | None = None, *,
        settings: EncodeSettings | None = None) -> list[dict[str, Any]]:
    """Build every output; returns the asset dicts in the order composite, participant…,
    speakers, chat, thumbnail, manifest. Raises ``ManifestError`` when there is no usable manifest;
    a damaged track only loses its damaged part (logged)."""
    started = time.monotonic()
    recording_dir = Path(recording_dir)
    out_dir = recording_dir / OUT_DIR
    out_dir.mkdir(exist_ok=True)
    settings = settings or EncodeSettings()

    manifest = load_manifest(recording_dir)
    timeline = build_timeline(recording_dir, manifest)
    duration = timeline.duration_s
    cues = chat_cues(manifest.chats, duration)
    chapters = chapters_from_marks(manifest.marks, duration)

    thumb_path = out_dir / "thumbnail.jpg"
    composite_started, composite_cpu = time.monotonic(), time.process_time()
    live = plan_finish(recording_dir, timeline, settings)
    if live is not None:
        composite = finish_composite(
            recording_dir, timeline, out_dir / "class.mp4", live, cues=cues, chapters=chapters,
            settings=settings, on_progress=progress_cb, thumbnail_at=thumbnail_time(duration),
            on_thumbnail=lambda frame: write_jpeg(frame, thumb_path))
        live_note = {"segments_reused": len(live.reused), "frames_rendered_after_stop": live.frames_to_render,
                     "segments_rendered_again": live.dropped, "off": live_off(recording_dir)}
    else:
        composite = write_composite(
            timeline, out_dir / "class.mp4", cues=cues, chapters=chapters, settings=settings,
            on_progress=progress_cb, thumbnail_at=thumbnail_time(duration),
            on_thumbnail=lambda frame: write_jpeg(frame, thumb_path))
        live_note = {"segments_reused": 0, "off": live_off(recording_dir)}
    # Wall time is what the instructor waits; CPU time (every thread of this child) is what the
    # work cost, whatever else the machine was doing.
    live_note["composite_s"] = round(time.monotonic() - composite_started, 2)
    live_note["composite_cpu_s"] = round(time.process_time() - composite_cpu, 2)
    log.info("class video of %s: %s", recording_dir.name, live_note)
    assets = [asset(out_dir, "composite", composite.path, "video/mp4", composite.duration_s)]

    for pf in remux_participants(timeline, out_dir):
        assets.append(asset(out_dir, "participant", pf.path,
                            "video/x-matroska" if pf.has_video else "audio/x-matroska", pf.end_s))

    if composite.speakers is not None:
        speakers_path = out_dir / "speakers.json"
        names = {p.user.id: p.user.display_name for p in timeline.participants}
        _write_text(speakers_path, json.dumps(
            speakers_document(composite.speakers, names, composite.duration_s), ensure_ascii=False))
        assets.append(asset(out_dir, "speakers", speakers_path, "application/json", composite.duration_s))

    chat_path = out_dir / "chat.vtt"
    _write_text(chat_path, webvtt(cues))
    assets.append(asset(out_dir, "chat", chat_path, "text/vtt", duration))
    if thumb_path.exists():
        assets.append(asset(out_dir, "thumbnail", thumb_path, "image/jpeg", None))

    manifest_path = out_dir / "manifest.json"
    doc = manifest_document(timeline, composite, chapters, cues, assets,
                            elapsed_s=time.monotonic() - started)
    doc["processing"]["live"] = live_note
    _write_text(manifest_path, json.dumps(doc, indent=1, ensure_ascii=False))
    assets.append(asset(out_dir, "manifest", manifest_path, "application/json", None))
    log.info("post-processing of %s done in %.1f s for %.1f s of recording",
             recording_dir.name, time.monotonic() - started, duration)
    return assets


def manifest_document(timeline: Timeline, composite, chapters, cues, assets,
                      elapsed_s: float) -> dict[str, Any]:
    """``manifest.json``: the parsed events, the tracks with their offsets, the participants,
    chapters and outputs."""
    m = timeline.manifest
    return {
        "version": MANIFEST_VERSION,
        "recording": m.ids,
        "started_at": m.started_t,
        "stopped": m.stopped_s is not None,
        "stop_reason": m.stop_reason,
        "duration_s": round(timeline.duration_s, 3),
        "duration_from": timeline.duration_source,
        "skipped_event_lines": m.skipped_lines,
        "canvas": {"width": composite.width, "height": composite.height, "fps": composite.fps},
        "participants": [{
            "user_id": p.user.id, "display_name": p.user.display_name, "role": p.user.role,
            "peers": [{"peer_id": peer.peer_id, "joined_s": peer.joined_s, "left_s": peer.left_s}
                      for peer in p.peers],
            "tracks": [t.track.name for t in p.tracks],
        } for p in timeline.participants],
        "tracks": [{
            "track": i.track.name, "peer_id": i.track.peer_id, "user_id": i.user.id,
            "kind": i.track.kind, "codec": i.probe.codec or i.track.codec, "file": i.track.file,
            "offset_s": round(i.track.offset_s, 6),
            "duration_s": round(i.probe.end_s, 3) if i.probe.end_s is not None else None,
            "frames": i.probe.packets, "frames_announced": i.track.frames,
            "ended_s": i.track.ended_s,
            "sizes": sorted({(w, h) for w, h in i.probe.sizes} | {(w, h) for _, w, h in i.track.sizes}),
            "error": i.probe.error,
        } for i in timeline.tracks],
        "chapters": [{"start_s": round(c.start_s, 3), "end_s": round(c.end_s, 3), "title": c.title}
                     for c in chapters],
        "chat_cues": len(cues),
        "outputs": assets,
        "events": m.events,
        "processing": {"elapsed_s": round(elapsed_s, 2), "pyav": av.__version__},
    }
