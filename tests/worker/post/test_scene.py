"""What the class video shows (media_worker/post/scene.py): the presenter layout while a screen
is shared (the latest share on stage), the grid before and after, and the active speaker's
frame; speakers.json from the same audio. One recording, post-processed once."""
from __future__ import annotations

import json

import pytest

from media_worker.post import run
from media_worker.post.scene import SPEAKER_COLOR
from media_worker.post.tiles import rgb_to_yuv
from tests.mediapattern import RecordingDir
from tests.worker.post.helpers import decode_video, frame_at, mean_yuv, near

GREEN = rgb_to_yuv(30, 200, 60)  # Bob's screen
MAGENTA = rgb_to_yuv(200, 40, 180)  # Carla's screen
CANVAS = (800, 480)  # 2x2 cells of 320x240 (640x480), widened so the 640x360 screen fits the stage
STAGE = (0, 60, 640, 360)  # the screen, letterboxed in the 640x480 stage
STRIP = [(640, 60 + 120 * i, 160, 120) for i in range(3)]  # Alice, Bob, Carla
GRID = [(80, 0, 320, 240), (400, 0, 320, 240), (240, 240, 320, 240)]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """Alice, Bob and Carla with cameras; Bob shares his screen (an SFU screen feed) 2-5 s,
    Carla hers 3-4 s; Alice talks 1-3 s, Carla 5.5-7 s, Bob only beeps (a click a second)."""
    rec = RecordingDir(tmp_path_factory.mktemp("scene") / "rec-21")
    for i, (peer, uid, name) in enumerate((("pA", "u1", "Alice"), ("pB", "u2", "Bob"), ("pC", "u3", "Carla"))):
        rec.join(0.05 * i, peer, uid, name)
        rec.video_track(peer, 0, "vp8", 0.1 + 0.01 * i, 8.0, source="camera")
    rec.audio_track("pA", 0, 0.1, 8.0, talk=[(1.0, 3.0)])
    rec.audio_track("pB", 0, 0.1, 8.0)
    rec.audio_track("pC", 0, 0.1, 8.0, talk=[(5.5, 7.0)])
    rec.video_track("pB", 1, "vp8", 2.0, 5.0, sizes=[(0.0, 640, 360)], source="screen", solid=GREEN)
    rec.video_track("pC", 1, "vp8", 3.0, 4.0, sizes=[(0.0, 640, 360)], source="screen", solid=MAGENTA)
    rec.stop(8.0)
    path = rec.write()
    assets = run(path)
    return path, assets, decode_video(path / "out" / "class.mp4")


def test_a_shared_screen_takes_the_stage_and_the_cameras_a_strip(shared):
    """While Bob shares, his screen fills the stage and the three cameras sit in the strip;
    Carla's share on top of his takes the stage until it stops, then Bob's is back."""
    _, _, frames = shared
    assert (frames[0][1].width, frames[0][1].height) == CANVAS
    for t, colour in ((2.5, GREEN), (3.5, MAGENTA), (4.5, GREEN)):
        frame = frame_at(frames, t)
        assert near(mean_yuv(frame, STAGE), colour), (t, mean_yuv(frame, STAGE))
        for cell in STRIP:  # camera pictures (grey ramp), not the screen
            y, u, v = mean_yuv(frame, cell)
            assert 40 < y < 200 and not near((y, u, v), GREEN) and not near((y, u, v), MAGENTA), (t, cell)


def test_the_grid_shows_before_and_after_the_shares(shared):
    """Before 2 s and after 5 s the three cameras are the grid and no screen colour shows."""
    _, _, frames = shared
    for t in (1.5, 5.5, 7.5):
        frame = frame_at(frames, t)
        for cell in GRID:
            y, u, v = mean_yuv(frame, (cell[0] + 20, cell[1] + 20, cell[2] - 40, cell[3] - 40))
            assert 40 < y < 200 and abs(u - 128) < 8 and abs(v - 128) < 8, (t, cell, (y, u, v))
        assert not near(mean_yuv(frame, (0, 0, 640, 480)), GREEN, 30)


def _top_edge(cell):
    x, y, w, _ = cell
    return (x + w // 4, y, w // 2, 4)


def test_the_active_speaker_is_framed_and_the_silent_are_not(shared):
    """Alice talking (1-3 s) gets the amber frame, in the grid and in the strip; Bob's clicks
    never do; Carla gets it while she talks (5.5-7 s), and Alice no longer."""
    _, _, frames = shared
    framed = {}
    for t, cells in ((1.8, GRID), (2.7, STRIP), (6.5, GRID), (0.5, GRID), (7.8, GRID)):
        frame = frame_at(frames, t)
        framed[t] = [near(mean_yuv(frame, _top_edge(c), step=1), SPEAKER_COLOR, 20) for c in cells]
    assert framed == {1.8: [True, False, False], 2.7: [True, False, False],
                      6.5: [False, False, True], 0.5: [False, False, False],
                      7.8: [False, False, False]}


def test_speakers_json_says_who_spoke_when(shared):
    """speakers.json (asset kind speakers) holds Alice's and Carla's talk spans to within
    0.15 s, and nothing for Bob, whose only sounds are clicks."""
    path, assets, _ = shared
    speakers = [a for a in assets if a["kind"] == "speakers"]
    assert [(a["file"], a["content_type"]) for a in speakers] == [("speakers.json", "application/json")]
    doc = json.loads((path / "out" / "speakers.json").read_text())
    assert [(s["user_id"], s["display_name"]) for s in doc["speakers"]] == [("u1", "Alice"), ("u3", "Carla")]
    assert set(doc) == {"speakers"} and all(set(s) == {"user_id", "display_name", "segments"}
                                            for s in doc["speakers"])
    for s, (start, end) in zip(doc["speakers"], ((1.0, 3.0), (5.5, 7.0))):
        assert len(s["segments"]) == 1, s
        got = s["segments"][0]
        assert abs(got[0] - start) <= 0.15 and abs(got[1] - end) <= 0.15, (s["user_id"], got)


def test_a_mesh_screen_on_the_camera_track_takes_the_stage(tmp_path):
    """In a mesh call the screen replaces the camera on Dana's one video track while her media
    says screen (2-4 s): it goes on the stage, her strip cell shows her name tile, and her
    camera is back in the grid afterwards."""
    blue = rgb_to_yuv(40, 90, 220)
    rec = RecordingDir(tmp_path / "rec-mesh")
    rec.join(0.0, "pD", "u4", "Dana")
    rec.join(0.0, "pE", "u5", "Eli")
    rec.video_track("pD", 0, "vp8", 0.1, 6.0, solid=blue, solid_span=(2.0, 4.0),
                    sizes=[(0.0, 320, 240), (2.0, 640, 360), (4.0, 320, 240)])
    rec.video_track("pE", 0, "vp8", 0.1, 6.0)
    rec.media(2.0, "pD", screen=True)
    rec.media(4.0, "pD", screen=False)
    rec.stop(6.0)
    path = rec.write()
    run(path)
    frames = decode_video(path / "out" / "class.mp4")
    assert (frames[0][1].width, frames[0][1].height) == (800, 360)  # the 640x360 screen + strip
    during = frame_at(frames, 3.3)  # between two flashes of the pattern
    assert near(mean_yuv(during, (0, 0, 640, 360)), blue)
    dana, eli = (640, 60, 160, 120), (640, 180, 160, 120)
    assert abs(mean_yuv(during, dana)[0] - mean_yuv(frame_at(frames, 3.6), dana)[0]) < 1  # a still tile
    assert not near(mean_yuv(during, dana), blue, 30) and 40 < mean_yuv(during, eli)[0] < 200
    for t in (1.0, 5.0):
        assert not near(mean_yuv(frame_at(frames, t), (0, 0, 800, 360)), blue, 30)


def test_speaker_decisions_need_only_a_bounded_window_of_levels():
    """The active speaker at t depends only on the levels from LOOKBEHIND_S before t to
    LOOKAHEAD_S after it, so a piece rendered from those levels alone agrees with a whole pass
    (live segments; ``blocks``/``merge`` carry levels between pieces). Hysteresis: b, louder
    than a but not twice, does not take over until a stops."""
    import array
    import math

    from media_worker.post.speakers import BLOCK, LOOKAHEAD_S, LOOKBEHIND_S, RATE, SpeakerActivity

    def tone(seconds: float, amplitude: float) -> bytes:
        n = round(seconds * RATE)
        return array.array("f", (amplitude * math.sin(i / 10) for i in range(n) for _ in (0, 1))).tobytes()

    whole = SpeakerActivity(["a", "b"])
    for key, start, seconds, amp in (("a", 0.0, 3.0, 0.3), ("b", 2.0, 3.0, 0.35), ("a", 4.6, 1.0, 0.1)):
        whole.feed(key, round(start * RATE), tone(seconds, amp))
    for t in (0.5, 2.1, 2.5, 3.2, 4.0, 4.7, 5.3):
        piece = SpeakerActivity(["a", "b"])
        lo, hi = round((t - LOOKBEHIND_S) * RATE) // BLOCK * BLOCK, round((t + LOOKAHEAD_S + 0.1) * RATE)
        piece.merge(whole.blocks(lo, hi))
        assert piece.active_at(t) == whole.active_at(t), t
    assert [whole.active_at(t) for t in (0.5, 2.5, 3.2, 5.3, 6.0)] == ["a", "a", "b", "a", None]
