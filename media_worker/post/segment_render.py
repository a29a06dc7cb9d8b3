"""Live segments, rendering one (issue 15.4): the class video rendered piece by piece while
the class runs.

While recording, the worker (``media_worker/live_render.py``) runs ``python -m
media_worker.post.segment_render <dir> <k0> <k1>`` every ``WORKER_SEGMENT_S``: it renders output
frames ``[k0, k1)`` of the composite from the track files written so far (growing Matroska
files, read up to their last complete cluster) with the composite's own per-frame code
(``composite.compose`` / ``draw_frame``), and the mixed audio of the same span, encoded with
the same settings into ``<dir>/live/seg-<k0>-<k1>.nut`` plus a ``.json`` of what the rendering
depended on. This module also reads the segments back (``load_segments``) and keeps the
worker's note that it stopped rendering live (``write_off`` / ``live_off``). After the stop,
``segment_join.finish_composite`` reuses the segments that are still valid and joins them.

Rendered so that they join without seams:

* video: every segment starts with an IDR frame and is encoded from frame pts ``k`` (absolute),
  so with a constant B-frame delay the segments' dts follow each other exactly;
* audio: a segment covers the AAC packets whose pts lie in ``[A(k0), A(k1))``, ``A`` rounding
  down to whole AAC frames (1024 samples); it mixes and encodes from ``PREROLL_FRAMES`` AAC
  frames earlier (the limiter and the encoder's overlap settle) and a few frames past the end;
* timestamps in a segment file are offset by ``TS_OFFSET_S`` so none is negative (the muxer
  would otherwise shift them).
"""
from __future__ import annotations

import hashlib
import json
import logging
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from media_worker.post.audio import RATE, AudioTrackReader
from media_worker.post.child_cli import child_parser, start_child
from media_worker.post.composite import (AUDIO_CHUNK_S, EncodeSettings, add_audio_stream,
                                         add_video_stream, compose, draw_frame, frame_count,
                                         mixer_for, plan_key)
from media_worker.post.manifest import load_manifest
from media_worker.post.part_output import part_output
from media_worker.post.speakers import SpeakerActivity
from media_worker.post.timeline import Timeline, build_timeline
from media_worker.post.trackfile import open_track, packets

log = logging.getLogger("podium.worker.post")

LIVE_DIR = "live"
OFF_FILE = "off.json"  # the worker stopped live rendering: {"reason", "detail"}
AAC_FRAME = 1024
PREROLL_FRAMES = 47  # ~1 s of audio mixed and encoded before a segment's first packet
POSTROLL_FRAMES = 30  # ~0.64 s: the speaker levels a frame reads and the last level block
TS_OFFSET_S = 10
# Left out of a segment's events digest: chat and marks (added after the stop; they never change
# a frame) and track_clock — the worker refines where a track's pts 0 sits and dates the event
# there, inside a span rendered long before (at the track's end, too); what it changes is the
# track's start, which ``segment_join`` compares itself (``MOVED_S``).
IGNORED_EVENTS = ("chat", "mark", "track_clock")


@dataclass
class Segment:
    k0: int
    k1: int
    last: bool
    file: str  # relative to the recording directory
    plan: list
    tracks: dict[str, list[float]]  # name -> [offset_s, end_s] as read when rendering
    events: str  # digest of the events before the span's end
    wall_s: float = 0.0
    cpu_s: float = 0.0
    width: int = 0
    height: int = 0
    # speaker levels of the blocks starting in this segment's audio span:
    # user id -> [[block, sum, count], ...] (``speakers.SpeakerActivity``)
    levels: dict[str, list] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return self.k1 - self.k0


def audio_boundary(k: int, fps: int) -> int:
    """The first AAC packet (sample pts) of the segment starting at frame ``k``."""
    return round(k * RATE / fps) // AAC_FRAME * AAC_FRAME


def events_digest(timeline: Timeline, until_s: float) -> str:
    m = timeline.manifest
    h = hashlib.sha256()
    for ev in m.events:
        t = ev.get("t")
        if ev.get("type") in IGNORED_EVENTS or not isinstance(t, (int, float)):
            continue
        if t - m.started_t < until_s:
            h.update(json.dumps(ev, sort_keys=True).encode())
    return h.hexdigest()[:32]


def track_facts(timeline: Timeline) -> dict[str, list[float]]:
    return {i.track.name: [round(i.start_s, 6), round(i.end_s, 6)]
            for i in timeline.tracks if i.has_media}


def _keyframe_before(info, t: float) -> float | None:
    """The recording-clock time of the last keyframe at or before ``t`` (demux only)."""
    container = open_track(info.path)
    if container is None:
        return None
    best = None
    with container:
        tb = container.streams[0].time_base
        for pkt in packets(container, info.path, from_s=t - info.start_s):
            at = info.start_s + float(pkt.pts * tb)
            if at > t + 0.001:
                break
            if pkt.is_keyframe:
                best = at
    return best


def _levels(activity: SpeakerActivity, lo: int | None, hi: int | None) -> dict[str, list]:
    """The level blocks starting in ``[lo, hi)`` (samples; None: unbounded)."""
    return activity.blocks(lo, hi)


def render_segment(recording_dir: Path, timeline: Timeline, k0: int, k1: int, *, last: bool,
                   settings: EncodeSettings | None = None,
                   on_frame: Callable[[], None] | None = None) -> Segment:
    """Frames ``[k0, k1)`` (and with ``last`` the end of the audio) into ``live/seg-….nut``."""
    started, cpu0 = time.monotonic(), time.process_time()
    settings = settings or EncodeSettings()
    fps = settings.fps
    recording_dir = Path(recording_dir)
    (recording_dir / LIVE_DIR).mkdir(exist_ok=True)
    name = f"{LIVE_DIR}/seg-{k0:08d}-{k1:08d}.nut"
    path = recording_dir / name
    grid, canvas, scene = compose(timeline, settings)
    t0 = k0 / fps
    if k0 > 0:
        for reader in scene.video_readers:
            if reader.info.start_s < t0:
                reader.decode_from = _keyframe_before(reader.info, t0)

    total_samples = round(frame_count(timeline.duration_s, fps) / fps * RATE)
    lo = audio_boundary(k0, fps) if k0 > 0 else None
    hi = None if last else audio_boundary(k1, fps)
    s0 = max(0, (lo or 0) - PREROLL_FRAMES * AAC_FRAME)
    s_end = total_samples if last else hi + POSTROLL_FRAMES * AAC_FRAME
    audio_readers = [AudioTrackReader(i) for p in timeline.participants for i in p.audio_tracks]
    for r in audio_readers:
        r.decode_from = s0 / RATE - 0.1
    mixer = mixer_for(timeline, scene, audio_readers)
    off_v, off_a = TS_OFFSET_S * fps, TS_OFFSET_S * RATE

    with part_output(path, "nut") as output:
        video = add_video_stream(output, grid, settings)
        audio = add_audio_stream(output, settings)

        def keep(pkts):
            for pkt in pkts:
                p = pkt.pts - off_a if pkt.pts is not None else None
                if p is None or (lo is not None and p < lo) or (hi is not None and p >= hi):
                    continue
                output.mux(pkt)

        def mix(frames):
            for af in frames:
                af.pts += off_a
                keep(audio.encode(af))

        chunk = round(AUDIO_CHUNK_S * RATE)
        audio_done = s0
        for k in range(k0, k1):
            t = k / fps
            while audio_done < s_end and audio_done <= (t + AUDIO_CHUNK_S) * RATE:
                n = min(chunk, s_end - audio_done)
                mix(mixer.mix(audio_done, n))
                audio_done += n
            frame = draw_frame(canvas, scene, t)
            frame.pts = k + off_v
            frame.time_base = video.codec_context.time_base
            output.mux(video.encode(frame))
            if on_frame is not None:
                on_frame()
        while audio_done < s_end:
            n = min(chunk, s_end - audio_done)
            mix(mixer.mix(audio_done, n))
            audio_done += n
        mix(mixer.flush())
        keep(audio.encode(None))
        output.mux(video.encode(None))
    seg = Segment(k0, k1, last, name, json.loads(json.dumps(plan_key(timeline, settings, k1 / fps))),
                  track_facts(timeline), events_digest(timeline, k1 / fps),
                  wall_s=round(time.monotonic() - started, 3),
                  cpu_s=round(time.process_time() - cpu0, 3), width=grid.width, height=grid.height,
                  levels=_levels(scene.speakers, lo, hi))
    meta = path.with_suffix(".json")
    meta_tmp = meta.with_name(meta.name + ".part")
    meta_tmp.write_text(json.dumps(asdict(seg)))
    meta_tmp.replace(meta)
    return seg


def load_segments(recording_dir: Path) -> list[Segment]:
    """The complete live segments, by first frame (a segment without its ``.json`` is not)."""
    out = []
    for meta in sorted((Path(recording_dir) / LIVE_DIR).glob("seg-*.json")):
        try:
            seg = Segment(**json.loads(meta.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            log.warning("live segment %s unreadable (%s): left out", meta.name, exc)
            continue
        if (Path(recording_dir) / seg.file).exists():
            out.append(seg)
    return sorted(out, key=lambda s: s.k0)


def live_off(recording_dir: Path) -> dict | None:
    """The worker's note that it stopped rendering live (``{"reason", "detail"}``), if any."""
    try:
        return json.loads((Path(recording_dir) / LIVE_DIR / OFF_FILE).read_text())
    except (OSError, ValueError):
        return None


def write_off(recording_dir: Path, reason: str, detail: str) -> None:
    d = Path(recording_dir) / LIVE_DIR
    d.mkdir(parents=True, exist_ok=True)
    (d / OFF_FILE).write_text(json.dumps({"reason": reason, "detail": detail}))


def main(argv: list[str] | None = None) -> int:
    """``python -m media_worker.post.segment_render <dir> <k0> <k1>``: render one live segment
    from the track files as they are now; prints ``{"segment": {...}}`` or ``{"error"}``."""
    parser = child_parser("python -m media_worker.post.segment_render")
    parser.add_argument("k0", type=int)
    parser.add_argument("k1", type=int)
    args = parser.parse_args(argv)
    settings = start_child(args)
    try:
        d = Path(args.recording_dir)
        timeline = build_timeline(d, load_manifest(d))
        seg = render_segment(d, timeline, args.k0, args.k1, last=False, settings=settings)
    except Exception as exc:
        log.exception("live segment failed")
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"segment": asdict(seg), "cpu_s": usage.ru_utime + usage.ru_stime}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
