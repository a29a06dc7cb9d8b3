"""Which live segments the stop reuses (media_worker/post/segment_join.invalid_because, issue
15.4): a segment stays valid when what was written after it does not change its frames."""
from __future__ import annotations

from media_worker.post.composite import EncodeSettings, plan_key
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
    assert invalid_because(seg, timeline, plan_key(timeline, settings), FPS) is None

    # The camera turned off inside the span (an event that changes frames), written late.
    rec.media(0.5, "pA", audio=True, video=False)
    d, timeline = timeline_of(rec)
    assert invalid_because(seg, timeline, plan_key(timeline, settings), FPS) == "events changed"
