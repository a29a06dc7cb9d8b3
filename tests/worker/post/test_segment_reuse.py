"""Which live segments the stop reuses (media_worker/post/segment_join.invalid_because, issue
15.4): a segment stays valid when what was written after it does not change its frames — a
refined track clock, a first screen share after its span — and is rendered again when it does
(a camera turned off inside it, someone joining: a new cell in every frame)."""
from __future__ import annotations

import json

from media_worker.post.composite import PRESENTER, EncodeSettings, plan_extends, plan_key
from media_worker.post.manifest import load_manifest
from media_worker.post.segment_join import invalid_because
from media_worker.post.segment_render import render_segment
from media_worker.post.timeline import build_timeline
from tests.mediapattern import RecordingDir

FPS = 30


def timeline_of(rec: RecordingDir):
    d = rec.write()
    return d, build_timeline(d, load_manifest(d))


def test_a_track_clock_written_after_the_segment_keeps_it_and_a_camera_turned_off_does_not(tmp_path):
    rec = RecordingDir(tmp_path / "rec")
    rec.join(0.1, "pA", "u1", "Alice", "instructor")
    rec.video_track("pA", 0, "vp8", 0.2, 3.0)
    rec.audio_track("pA", 0, 0.2, 3.0)
    rec.stop(3.0)
    settings = EncodeSettings(fps=FPS)
    d, timeline = timeline_of(rec)
    seg = render_segment(d, timeline, 0, FPS, last=False, settings=settings)  # the first second

    # What the worker writes when a track ends: its clock, refined from the least-delayed
    # packets by ~1.3 ms, dated where pts 0 sits (inside the rendered span).
    rec.event(0.2 - 0.0013, "track_clock", track="pA-video-0")
    d, timeline = timeline_of(rec)
    assert invalid_because(seg, timeline, settings) is None

    # The camera turned off inside the span (an event that changes frames), written late.
    rec.media(0.5, "pA", audio=True, video=False)
    d, timeline = timeline_of(rec)
    assert invalid_because(seg, timeline, settings) == "events changed"


def test_a_first_screen_share_after_the_segment_keeps_it_and_a_new_participant_does_not(tmp_path):
    rec = RecordingDir(tmp_path / "rec")
    rec.join(0.1, "pA", "u1", "Alice", "instructor")
    rec.video_track("pA", 0, "vp8", 0.2, 4.0, sizes=[(0.0, 640, 480)])
    rec.stop(4.0)
    settings = EncodeSettings(fps=FPS)
    d, timeline = timeline_of(rec)
    seg = render_segment(d, timeline, 0, FPS, last=False, settings=settings)

    # Alice shares a screen from 2 s (small enough that the canvas keeps its size): the first
    # second is the same grid as before, so its segment stays.
    rec.video_track("pA", 1, "vp8", 2.0, 3.0, sizes=[(0.0, 320, 240)], source="screen", solid=(81, 90, 240))
    d, timeline = timeline_of(rec)
    assert timeline.shares and timeline.shares[0].start_s == 2.0
    assert invalid_because(seg, timeline, settings) is None
    # A segment over the share is rendered with the presenter layout, and a later one, with
    # the same key, extends the first (the live renderer does not render the first again).
    later = render_segment(d, timeline, 2 * FPS, 3 * FPS, last=False, settings=settings)
    assert later.plan[PRESENTER] is not None and seg.plan[PRESENTER] is None
    assert plan_extends(seg.plan, later.plan) and not plan_extends(later.plan, seg.plan)
    assert invalid_because(later, timeline, settings) is None

    # Bob joins at 3 s: he has a cell in every frame, so both segments must be rendered again.
    rec.join(3.0, "pB", "u2", "Bob")
    rec.video_track("pB", 0, "vp8", 3.0, 4.0)
    d, timeline = timeline_of(rec)
    assert invalid_because(seg, timeline, settings) == "layout changed"
    assert invalid_because(later, timeline, settings) == "layout changed"
    assert not plan_extends(seg.plan, plan_key(timeline, settings, 4.0))


def test_a_clock_refinement_that_reorders_the_starts_keeps_the_cells_in_place(tmp_path):
    """Alice's and Bob's cameras start 2 ms apart; the worker later finds Bob's clock 4 ms
    earlier. The grid keeps the order the tracks were announced in, so the segment stays."""
    rec = RecordingDir(tmp_path / "rec")
    rec.join(0.1, "pA", "u1", "Alice", "instructor")
    rec.join(0.1, "pB", "u2", "Bob")
    rec.video_track("pA", 0, "vp8", 0.200, 3.0)
    rec.video_track("pB", 0, "vp8", 0.202, 3.0)
    rec.stop(3.0)
    settings = EncodeSettings(fps=FPS)
    d, timeline = timeline_of(rec)
    assert [p.user.id for p in timeline.participants] == ["u1", "u2"]
    seg = render_segment(d, timeline, 0, FPS, last=False, settings=settings)
    # Appended after the other lines, as the worker writes it (its time is before Bob's start).
    with open(d / "events.jsonl", "a") as f:
        f.write(json.dumps({"t": rec.t0 + 0.198, "type": "track_clock", "track": "pB-video-0"}) + "\n")
    timeline = build_timeline(d, load_manifest(d))
    assert abs(next(i for i in timeline.tracks if i.track.name == "pB-video-0").start_s - 0.198) < 1e-6
    assert [p.user.id for p in timeline.participants] == ["u1", "u2"]
    assert invalid_because(seg, timeline, settings) is None
