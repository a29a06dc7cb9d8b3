"""Live segments, after the stop (issue 15.4): ``finish_composite`` checks each segment
``segment_render`` wrote during the class against the final timeline, renders what is missing
or no longer valid (the tail, at least) and joins the pieces into ``class.mp4`` without
re-encoding (``segment_render`` says how the segments' timestamps line up).

A segment is reused only if rendering it from the final timeline would give the same frames:
the same ``plan_key`` (canvas, cells, who has one, settings; a different key — someone joined
later, a bigger source arrived — means no segment is reusable and the whole composite is
rendered as before), every track that matters for its span already there with the same offset
and either as long as it ended up or already ``HORIZON_S`` past the span's end, and the same events (joins,
leaves, media changes) before its end.
"""
from __future__ import annotations

import fractions
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av

from media_worker.post.audio import RATE
from media_worker.post.chapters import Chapter
from media_worker.post.composite import (CompositeResult, EncodeSettings, add_metadata, frame_count,
                                         plan_changes, plan_key)
from media_worker.post.part_output import part_output
from media_worker.post.segment_render import (AAC_FRAME, TS_OFFSET_S, Segment, events_digest,
                                              load_segments, render_segment)
from media_worker.post.speakers import SpeakerActivity
from media_worker.post.subtitles import Cue
from media_worker.post.timeline import Timeline
from media_worker.post.video import OPEN_AHEAD_S

log = logging.getLogger("podium.worker.post")

# A track still being written must reach this far past a span's end for the span to render
# as it will from the complete file: video needs the frame after each instant (a reader that
# runs out holds its last picture only EOF_HOLD_S), audio the speaker look-ahead (0.3 s) and one
# AAC frame.
HORIZON_S = 0.5
# A track whose start the worker refined by less than this since a segment was rendered keeps
# that segment: the worker keeps refining a track's clock from its least-delayed packets (by
# ~1.3 ms after a few seconds in a real call), a shift nobody sees or hears (a frame lasts 33 ms).
MOVED_S = 0.005


def invalid_because(seg: Segment, timeline: Timeline, settings: EncodeSettings) -> str | None:
    """Why ``seg`` would render differently from ``timeline``, or None when it is reusable."""
    end = seg.k1 / settings.fps
    if seg.plan != json.loads(json.dumps(plan_key(timeline, settings, end))):
        return "layout changed"
    for info in timeline.tracks:
        if not info.has_media or info.start_s >= end + OPEN_AHEAD_S:
            continue
        snap = seg.tracks.get(info.track.name)
        if snap is None:
            return f"track {info.track.name} was not written yet"
        if abs(snap[0] - round(info.start_s, 6)) > MOVED_S:
            return f"track {info.track.name} moved"
        if snap[1] < end + HORIZON_S and info.end_s > snap[1] + 1e-6:
            return f"track {info.track.name} had not reached the span's end"
    if seg.events != events_digest(timeline, end):
        return "events changed"
    return None


def merged_speakers(timeline: Timeline, segs: list[Segment]) -> SpeakerActivity:
    """One ``SpeakerActivity`` for the whole recording from the segments' level blocks."""
    activity = SpeakerActivity(p.user.id for p in timeline.participants)
    for seg in segs:
        activity.merge(seg.levels)
    return activity


@dataclass
class FinishPlan:
    reused: list[Segment]
    to_render: list[tuple[int, int, bool]]  # (k0, k1, last)
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> segments

    @property
    def frames_to_render(self) -> int:
        return sum(k1 - k0 for k0, k1, _ in self.to_render)


def plan_finish(recording_dir: Path, timeline: Timeline, settings: EncodeSettings) -> FinishPlan | None:
    """What the stop has left to render, or None when no live segment can be used (none, or
    the layout of the whole video changed). Segments finished before the worker turned live
    rendering off (it could not keep up) are used like any other: only the rest is rendered."""
    fps = settings.fps
    segs = load_segments(recording_dir)
    if not segs:
        return None
    n = frame_count(timeline.duration_s, fps)
    reused, dropped, to_render, k = [], {}, [], 0
    for seg in segs:
        if seg.k0 != k or seg.last or seg.k1 > n:
            continue
        why = invalid_because(seg, timeline, settings)
        if why == "layout changed":
            log.info("live segments not used: the layout changed after frame %d (%s)", seg.k0,
                     plan_changes(seg.plan, json.loads(json.dumps(plan_key(timeline, settings, seg.k1 / fps)))))
            return None
        if why is not None:
            dropped[why] = dropped.get(why, 0) + 1
            to_render.append((seg.k0, seg.k1, False))
        else:
            reused.append(seg)
        k = seg.k1
    if not reused:
        log.info("live segments not used: %s", dropped or "none followed on from the first frame")
        return None
    to_render.append((k, n, True))
    return FinishPlan(reused, to_render, dropped)


def finish_composite(recording_dir: Path, timeline: Timeline, path: Path, plan: FinishPlan, *,
                     cues: list[Cue], chapters: list[Chapter], settings: EncodeSettings,
                     on_progress: Callable[[int], None] | None = None,
                     thumbnail_at: float | None = None,
                     on_thumbnail: Callable[[av.VideoFrame], None] | None = None) -> CompositeResult:
    """Render ``plan.to_render`` from the final timeline and join every segment into ``path``."""
    fps = settings.fps
    total = max(1, plan.frames_to_render)
    done, percent = [0], [-1]

    def tick():
        done[0] += 1
        now = min(99, done[0] * 100 // total)
        if now != percent[0] and on_progress is not None:
            percent[0] = now
            on_progress(now)

    rendered = [render_segment(recording_dir, timeline, k0, k1, last=last, settings=settings,
                               on_frame=tick) for k0, k1, last in plan.to_render]
    segs = sorted(plan.reused + rendered, key=lambda s: s.k0)
    n = segs[-1].k1
    result = join_segments(recording_dir, timeline, segs, path, cues=cues, chapters=chapters,
                           fps=fps)
    if on_thumbnail is not None:
        frame = frame_at(path, min(n - 1, int((thumbnail_at or 0.0) * fps)), fps)
        if frame is not None:
            on_thumbnail(frame)
    if on_progress is not None:
        on_progress(100)
    return result


def join_segments(recording_dir: Path, timeline: Timeline, segs: list[Segment], path: Path, *,
                  cues: list[Cue], chapters: list[Chapter], fps: int) -> CompositeResult:
    """Concatenate the segments' packets (no re-encoding) into an MP4 with the chat stream,
    chapters and metadata of ``write_composite``."""
    vtb, atb = fractions.Fraction(1, fps), fractions.Fraction(1, RATE)
    off_v, off_a = TS_OFFSET_S * fps, TS_OFFSET_S * RATE
    first = av.open(str(Path(recording_dir) / segs[0].file))
    with part_output(path, "mp4", container_options={"movflags": "+faststart"}) as output:
        with first:
            video = output.add_stream_from_template(first.streams.video[0])
            audio = output.add_stream_from_template(first.streams.audio[0])
        add_metadata(output, timeline, cues, chapters)
        for seg in segs:
            with av.open(str(Path(recording_dir) / seg.file)) as inp:
                # NUT leaves the dts of the first (B-frame delay) packets unset: with a constant
                # frame rate the j-th video packet's dts is k0 + j - delay.
                j, delay = 0, None
                held = []
                for pkt in inp.demux():
                    if pkt.size == 0 or pkt.pts is None:
                        continue
                    tb = pkt.stream.time_base
                    if pkt.stream.type == "video":
                        pts = round(pkt.pts * tb * fps) - off_v
                        if delay is None and pkt.dts is not None:
                            delay = seg.k0 + j - (round(pkt.dts * tb * fps) - off_v)
                        dur = round((pkt.duration or 0) * tb * fps) or 1
                        pkt.stream, pkt.time_base = video, vtb
                        pkt.pts, pkt.duration = pts, dur
                        held.append((j, pkt))
                        j += 1
                        if delay is not None:
                            for i, q in held:
                                q.dts = seg.k0 + i - delay
                                output.mux(q)
                            held = []
                        continue
                    pts = round(pkt.pts * tb * RATE) - off_a
                    dur = round((pkt.duration or 0) * tb * RATE) or AAC_FRAME
                    pkt.stream, pkt.time_base = audio, atb
                    pkt.pts, pkt.dts, pkt.duration = pts, pts, dur
                    output.mux(pkt)
                for i, q in held:  # a segment too short to show its delay: no B-frames
                    q.dts = seg.k0 + i
                    output.mux(q)
    n = segs[-1].k1
    log.info("composite %s joined from %d segments (%d frames)", path.name, len(segs), n)
    return CompositeResult(path, segs[0].width, segs[0].height, fps, n, n / fps,
                           speakers=merged_speakers(timeline, segs))


def frame_at(path: Path, k: int, fps: int) -> av.VideoFrame | None:
    """The decoded frame ``k`` of an MP4 (decoding from the keyframe before it)."""
    with av.open(str(path)) as inp:
        stream = inp.streams.video[0]
        target = k / fps
        inp.seek(int(max(0.0, target - 0.001) / stream.time_base), stream=stream, backward=True)
        best = None
        for frame in inp.decode(stream):
            if frame.pts is None:
                continue
            if float(frame.pts * stream.time_base) > target + 0.5 / fps:
                break
            best = frame
        return best.reformat(format="yuv420p") if best is not None else None

