"""The class video (media_worker/post/composite.py): streams, alignment of every cell's picture
with its sound on the recording clock, chat subtitles and chapters inside it, and the grid's
cells through resolution changes, audio-only participants, camera off and rejoins."""
from __future__ import annotations

import av
import pytest

from media_worker.post import run
from tests.mediapattern import RecordingDir, beep_times, decode_audio_mono, flash_times, mean_luma
from tests.worker.post.helpers import SYNC_LIMIT_S, assert_in_sync, by_kind, decode_video, frame_at


def test_composite_streams_duration_and_faststart(class_recording):
    """class.mp4 has decodable H.264 video and AAC audio spanning the recording, moov first."""
    path, _, _ = class_recording
    mp4 = path / "out" / "class.mp4"
    head = mp4.read_bytes()
    assert 0 < head.find(b"moov") < head.find(b"mdat")
    with av.open(str(mp4)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert c.streams.audio[0].codec_context.name == "aac"
        assert abs(c.duration / 1e6 - 8.0) <= 0.05 * 8.0
    frames = decode_video(mp4)
    assert (frames[0][1].width, frames[0][1].height) == (640, 240)  # two 320x240 cells
    assert abs(len(frames) / 30 - 8.0) <= 0.05 * 8.0
    samples, _ = decode_audio_mono(mp4)
    assert abs(len(samples) / 48000 - 8.0) <= 0.05 * 8.0


def test_composite_flashes_align_with_beeps_on_the_recording_clock(class_recording):
    """Each cell flashes where its track's pattern says on the recording clock (Bob's track
    starts 2.37 s in), and every flash has a beep of the mix within 80 ms."""
    path, _, _ = class_recording
    mp4 = path / "out" / "class.mp4"
    frames = decode_video(mp4)
    w, h = frames[0][1].width, frames[0][1].height
    alice = flash_times(frames, (0, 0, w // 2, h))
    bob = flash_times(frames, (w // 2, 0, w // 2, h))
    samples, start = decode_audio_mono(mp4)
    beeps = [start + b for b in beep_times(samples)]
    assert len(alice) == 7 and len(bob) == 6 and len(beeps) == 13
    for t in alice:
        assert abs(t - round(t)) < SYNC_LIMIT_S
    for t in bob:
        assert t > 2.37 and abs(t - 0.4 - round(t - 0.4)) < SYNC_LIMIT_S
    for t in alice + bob:
        assert min(abs(t - b) for b in beeps) < SYNC_LIMIT_S, (t, beeps)


def test_composite_has_chat_subtitles(class_recording):
    """A mov_text stream carries every chat message with its sender, at its time."""
    path, _, _ = class_recording
    with av.open(str(path / "out" / "class.mp4")) as c:
        stream = c.streams.subtitles[0]
        assert stream.codec_context.name == "mov_text"
        shown = []
        for pkt in c.demux(stream):
            for sub in pkt.decode():
                shown.append((float(pkt.pts * pkt.time_base), sub.dialogue.decode()))
    texts = [(round(t, 2), text) for t, text in shown if text]
    assert texts == [(1.0, "Alice Teacher: Welcome & hello <everyone>"),
                     (3.5, "Bob <B>: a --> b"),
                     (6.0, "Alice Teacher: line one\nline two")]


def test_composite_has_chapters_from_marks(class_recording):
    """Chapters start at 0 and at each mark, titled with the mark labels."""
    path, _, _ = class_recording
    with av.open(str(path / "out" / "class.mp4")) as c:
        chapters = [(float(ch["start"] * ch["time_base"]), ch["metadata"]["title"])
                    for ch in c.chapters()]
    assert [title for _, title in chapters] == ["Start", "Intro", "Exercise"]
    for (start, _), want in zip(chapters, [0.0, 2.0, 5.0]):
        assert abs(start - want) <= 0.5


def test_track_files_from_the_live_writer_post_process_in_sync(tmp_path):
    """Track files written by the live path's own writer (media_worker.live.matroska: Opus
    with its OpusHead, short clusters) come out aligned like ours."""
    live = pytest.importorskip("media_worker.live.matroska")
    rec = RecordingDir(tmp_path / "rec-live", writer=live.MatroskaTrackFile)
    rec.join(0.0, "pA", "u1", "Alice")
    rec.video_track("pA", 0, "h264", 0.3, 5.0)
    rec.audio_track("pA", 0, 0.3, 5.0)
    rec.join(1.0, "pB", "u2", "Bob")
    rec.video_track("pB", 0, "vp8", 1.23, 5.0, phase=0.4)
    rec.audio_track("pB", 0, 1.23, 5.0, phase=0.4)
    rec.stop(5.0)
    path = rec.write()
    run(path)
    assert_in_sync(path / "out" / "class.mp4",
                   [((0, 0, 320, 240), 0.3, 0.0), ((320, 0, 320, 240), 1.23, 0.4)])


def test_audio_only_zero_frame_tracks_resolution_changes_camera_off_and_rejoin(tmp_path):
    """Alice's H.264 goes 320x180 -> 640x360 -> 480x360; Carla sends audio only (with a 1 s
    gap); Dan's tracks hold no frame; Eve turns her camera off, leaves and rejoins. Dan gets no
    cell and no file, the grid is sized from 640x360, Carla is a name tile, Alice's 4:3 picture
    is letterboxed, Eve shows a tile, then nothing, then video, and gets two files."""
    rec = RecordingDir(tmp_path / "rec-mixed")
    rec.join(0.0, "pA", "u1", "Alice", "instructor")
    rec.video_track("pA", 0, "h264", 0.1, 6.0,
                    sizes=[(0.0, 320, 180), (2.0, 640, 360), (4.0, 480, 360)])
    rec.join(0.5, "pC", "u3", "Carla")
    rec.audio_track("pC", 0, 0.5, 6.0, drop=(2.2, 3.2))
    rec.join(1.0, "pD", "u4", "Dan")
    with av.open(str(rec.path / "tracks/pD-video-0.mkv"), "w", format="matroska") as out:
        out.add_mux_stream("vp8", width=320, height=240)
        out.start_encoding()  # a header and no frame
    rec.event(1.1, "track_started", track="pD-video-0", peer_id="pD", kind="video",
              codec="vp8", file="tracks/pD-video-0.mkv")
    (rec.path / "tracks/pD-audio-0.mkv").write_bytes(b"")
    rec.event(1.1, "track_started", track="pD-audio-0", peer_id="pD", kind="audio",
              codec="opus", file="tracks/pD-audio-0.mkv")
    rec.join(1.5, "pE", "u5", "Eve")
    rec.video_track("pE", 0, "vp8", 1.5, 4.0)
    rec.event(3.0, "media", peer_id="pE", media={"audio": True, "video": False, "screen": False})
    rec.leave(4.0, "pE")
    rec.join(4.5, "pE2", "u5", "Eve")
    rec.video_track("pE2", 0, "vp8", 4.6, 6.0)
    rec.stop(6.0)
    path = rec.write()

    assets = run(path, None)
    kinds = by_kind(assets)
    assert {a["file"]: a["content_type"] for a in kinds["participant"]} == {
        "participant-u1-0.mkv": "video/x-matroska", "participant-u3-0.mkv": "audio/x-matroska",
        "participant-u5-0.mkv": "video/x-matroska", "participant-u5-1.mkv": "video/x-matroska"}
    frames = decode_video(path / "out" / "class.mp4")
    assert (frames[0][1].width, frames[0][1].height) == (1280, 720)  # 2x2 cells of 640x360
    carla, eve = (640, 0, 640, 360), (320, 360, 640, 360)
    left_bar = (0, 0, 64, 300)  # in Alice's cell: 480x360 in 640x360 leaves 80 px bars

    def luma(t, region):
        return mean_luma(frame_at(frames, t), region)

    assert luma(1.0, left_bar) > 40 and luma(3.0, left_bar) > 40 and luma(5.0, left_bar) < 20
    # A still tile, not black (equal up to coding noise), whatever Alice's cell does.
    assert 30 < luma(1.0, carla) < 120 and abs(luma(1.0, carla) - luma(5.0, carla)) < 1
    assert abs(luma(2.0, eve) - luma(2.5, eve)) > 3  # moving video
    assert luma(3.3, eve) > 30 and abs(luma(3.3, eve) - luma(3.8, eve)) < 1  # camera off: tile
    assert luma(4.2, eve) < 20  # left, not yet back
    assert luma(5.2, eve) > 40
    samples, start = decode_audio_mono(path / "out" / "class.mp4")
    beeps = [round(start + b, 2) for b in beep_times(samples)]
    assert [round(b) for b in beeps] == [1, 2, 4, 5]  # 3 s fell in the gap
    assert all(abs(b - round(b)) < 0.02 for b in beeps)
