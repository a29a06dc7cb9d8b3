"""Post-processing (media_worker.post) on synthetic recording directories.

Every recording here is written with real encoders (VP8, H.264, Opus) through
tests/mediapattern.py, following docs/RECORDING.md, and its outputs are decoded with PyAV.
Audio and video carry a synchronised pattern (a white flash and a 1 kHz beep at the same
instants of the recording clock), so alignment is measured, not assumed.
"""
from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import av
import psutil
import pytest

from media_worker.post import ManifestError, PostprocessError, postprocess, run
from media_worker.post.chapters import chapters_from_marks
from media_worker.post.layout import Rect, fit, grid_for
from media_worker.post.manifest import Mark, load_manifest
from media_worker.post.subtitles import vtt_escape
from media_worker.post.tiles import name_tile
from tests.mediapattern import (
    RecordingDir,
    beep_times,
    decode_audio_mono,
    flash_times,
    mean_luma,
    truncate_file,
)

SYNC_LIMIT_S = 0.08
CHATS = [
    (1.0, 1, "u1", "Alice Teacher", "Welcome & hello <everyone>"),
    (3.5, 2, "u2", "Bob <B>", "a --> b"),
    (6.0, 3, "u1", "Alice Teacher", "line one\n\nline two"),
]


def decode_video(path: Path) -> list[tuple[float, av.VideoFrame]]:
    with av.open(str(path)) as c:
        return [(float(f.time), f) for f in c.decode(video=0)]


def frame_at(frames, t: float) -> av.VideoFrame:
    return min(frames, key=lambda tf: abs(tf[0] - t))[1]


def by_kind(assets: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for a in assets:
        out.setdefault(a["kind"], []).append(a)
    return out


def parse_vtt(text: str) -> list[dict]:
    """A strict-enough WebVTT reader: header, cue blocks, timings, ``<v>`` spans."""
    assert text.startswith("WEBVTT\n")

    def secs(stamp: str) -> float:
        h, m, s = stamp.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)

    cues = []
    for block in text.split("\n\n")[1:]:
        lines = block.strip("\n").split("\n")
        if not lines or not lines[0]:
            continue
        if "-->" not in lines[0]:
            lines = lines[1:]
        m = re.fullmatch(r"(\d\d:\d\d:\d\d\.\d\d\d) --> (\d\d:\d\d:\d\d\.\d\d\d)", lines[0])
        assert m, lines[0]
        payload = "\n".join(lines[1:])
        assert "-->" not in payload and payload.strip()
        spans = re.findall(r"<v ([^>]*)>(.*?)</v>", payload, re.DOTALL)
        assert re.sub(r"<v [^>]*>.*?</v>", "", payload, flags=re.DOTALL).strip() == ""

        def unescape(s: str) -> str:
            assert "<" not in s and ">" not in s
            return s.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")

        cues.append({"start": secs(m[1]), "end": secs(m[2]),
                     "voices": [(unescape(n), unescape(t)) for n, t in spans]})
    return cues


# -- one class, two participants, run through the real child process -------------------------
@pytest.fixture(scope="module")
def class_recording(tmp_path_factory):
    """Alice (VP8 + Opus) from 0.2 s, Bob (H.264 + Opus) joining at 2.37 s with his pattern
    0.4 s out of phase with hers; chat, two marks, stopped at 8 s. Post-processed by
    ``postprocess`` (the async helper the worker uses)."""
    rec = RecordingDir(tmp_path_factory.mktemp("class") / "rec-17")
    rec.join(0.1, "pA", "u1", "Alice Teacher", "instructor")
    rec.video_track("pA", 0, "vp8", 0.2, 8.0)
    rec.audio_track("pA", 0, 0.2, 8.0)
    rec.join(2.3, "pB", "u2", "Bob <B>")
    rec.video_track("pB", 0, "h264", 2.37, 8.0, phase=0.4)
    rec.audio_track("pB", 0, 2.37, 8.0, phase=0.4)
    for chat in CHATS:
        rec.chat(*chat)
    rec.mark(2.0, "Intro")
    rec.mark(5.0, "Exercise")
    rec.stop(8.0)
    path = rec.write()
    progress: list[int] = []
    assets = asyncio.run(postprocess(path, progress.append))
    return path, assets, progress


def test_child_reports_progress_and_assets(class_recording):
    """The child prints rising percentages up to 100 and one asset dict per output file."""
    path, assets, progress = class_recording
    assert progress and progress == sorted(progress) and progress[-1] == 100
    kinds = by_kind(assets)
    assert set(kinds) == {"composite", "participant", "chat", "thumbnail", "manifest"}
    assert sorted(a["file"] for a in kinds["participant"]) == [
        "participant-u1-0.mkv", "participant-u2-0.mkv"]
    for a in assets:
        assert set(a) == {"kind", "file", "content_type", "size", "duration_s"}
        assert a["size"] == (path / "out" / a["file"]).stat().st_size > 0
    assert kinds["composite"][0] | {"size": 0} == {
        "kind": "composite", "file": "class.mp4", "content_type": "video/mp4", "size": 0,
        "duration_s": 8.0}
    assert kinds["chat"][0]["content_type"] == "text/vtt"
    assert kinds["thumbnail"][0]["content_type"] == "image/jpeg"
    assert not list((path / "out").glob("*.part"))


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


def test_participant_files_decode_on_the_recording_clock(class_recording):
    """Each participant file holds their video and audio, copied frame for frame and placed
    at their track offsets."""
    path, _, _ = class_recording
    for user, codec, offset in (("u1", "vp8", 0.2), ("u2", "h264", 2.37)):
        with av.open(str(path / "out" / f"participant-{user}-0.mkv")) as c:
            v, a = c.streams.video[0], c.streams.audio[0]
            assert (v.codec_context.name, a.codec_context.name) == (codec, "opus")
            times = [float(f.time) for f in c.decode(v)]
        with av.open(str(path / "tracks" / f"p{'A' if user == 'u1' else 'B'}-video-0.mkv")) as src:
            src_frames = sum(1 for _ in src.decode(video=0))
        assert len(times) == src_frames
        assert abs(times[0] - offset) < 0.002
        with av.open(str(path / "out" / f"participant-{user}-0.mkv")) as c:
            assert sum(f.samples for f in c.decode(audio=0)) / 48000 > (8.0 - offset) * 0.95


def test_chat_vtt_parses(class_recording):
    """chat.vtt is WebVTT with one voice span per message, text escaped and recoverable."""
    path, _, _ = class_recording
    cues = parse_vtt((path / "out" / "chat.vtt").read_text())
    assert [c["voices"] for c in cues] == [
        [("Alice Teacher", "Welcome & hello <everyone>")],
        [("Bob <B>", "a --> b")],
        [("Alice Teacher", "line one\nline two")]]
    assert [(c["start"], c["end"]) for c in cues] == [(1.0, 3.5), (3.5, 6.0), (6.0, 8.0)]


def test_thumbnail_decodes(class_recording):
    """thumbnail.jpg is a JPEG of the composite, at most 640 px wide."""
    path, _, _ = class_recording
    with av.open(str(path / "out" / "thumbnail.jpg")) as c:
        frame = next(c.decode(video=0))
    assert frame.width <= 640 and frame.width / frame.height == pytest.approx(640 / 240, rel=0.02)


def test_manifest_json_lists_tracks_and_outputs(class_recording):
    """manifest.json has the events, each track's offset, and the other outputs."""
    path, assets, _ = class_recording
    doc = json.loads((path / "out" / "manifest.json").read_text())
    offsets = {t["track"]: t["offset_s"] for t in doc["tracks"]}
    assert offsets["pB-video-0"] == pytest.approx(2.37, abs=1e-3)
    assert doc["duration_s"] == 8.0 and doc["stopped"] is True
    assert [o["file"] for o in doc["outputs"]] == [a["file"] for a in assets[:-1]]
    assert len(doc["events"]) == len((path / "events.jsonl").read_text().splitlines())


def assert_in_sync(mp4: Path, cells: list[tuple[tuple[int, int, int, int], float, float]]) -> None:
    """Each (region, track start, pattern phase): the region flashes on the pattern's
    schedule after the track starts, and each flash has a beep within 80 ms."""
    frames = decode_video(mp4)
    samples, start = decode_audio_mono(mp4)
    beeps = [start + b for b in beep_times(samples)]
    for region, begins, phase in cells:
        flashes = flash_times(frames, region)
        assert flashes
        for t in flashes:
            assert t > begins and abs(t - phase - round(t - phase)) < SYNC_LIMIT_S, (t, phase)
            assert min(abs(t - b) for b in beeps) < SYNC_LIMIT_S, (t, beeps)


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


# -- damaged and unusual inputs -----------------------------------------------------------------
def test_crash_shaped_recording_still_produces_valid_outputs(tmp_path):
    """A truncated track file, a truncated last event line and no track_ended or
    recording_stopped lines: outputs are complete up to the last frame."""
    rec = RecordingDir(tmp_path / "rec-crash")
    rec.join(0.0, "pA", "u1", "Alice")
    rec.video_track("pA", 0, "vp8", 0.2, 6.0, ended=False)
    rec.audio_track("pA", 0, 0.2, 6.0, ended=False)
    rec.join(0.5, "pB", "u2", "Bob")
    rec.video_track("pB", 0, "h264", 1.0, 6.0, ended=False)
    rec.chat(5.0, 1, "u2", "Bob", "still here")
    rec.chat(5.9, 2, "u2", "Bob", "this line is cut by the crash")
    path = rec.write(truncate_last_line=True)
    truncate_file(path / "tracks/pB-video-0.mkv", 0.6)

    assets = run(path, None)
    assert load_manifest(path).skipped_lines == 1
    kinds = by_kind(assets)
    composite = path / "out" / kinds["composite"][0]["file"]
    frames = decode_video(composite)
    assert abs(len(frames) / 30 - 6.0) <= 0.05 * 6.0
    samples, _ = decode_audio_mono(composite)
    assert abs(len(samples) / 48000 - 6.0) <= 0.05 * 6.0
    for a in kinds["participant"]:
        with av.open(str(path / "out" / a["file"])) as c:
            decoded = {s.index: 0 for s in c.streams}
            for pkt in c.demux():
                decoded[pkt.stream.index] += len(pkt.decode())
        assert all(decoded.values()), (a["file"], decoded)
    cues = parse_vtt((path / "out" / "chat.vtt").read_text())
    assert [c["voices"] for c in cues] == [[("Bob", "still here")]]
    with av.open(str(path / "out" / "thumbnail.jpg")) as c:
        next(c.decode(video=0))


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


def test_cancelling_postprocess_kills_the_child(tmp_path):
    """Cancelling the helper (the worker stopping) ends the child and its unfinished files."""
    rec = RecordingDir(tmp_path / "rec-cancel")
    rec.join(0.0, "pA", "u1", "Alice")
    rec.video_track("pA", 0, "vp8", 0.0, 4.0)
    rec.stop(30.0)  # a long composite: 30 s of mostly name tile
    path = rec.write()

    async def main() -> None:
        started = asyncio.Event()
        task = asyncio.create_task(postprocess(path, lambda p: started.set(), args=["--nice", "0"]))
        await asyncio.wait_for(started.wait(), 30)
        # Only our post-processing child: the session may have other children (the S3 server).
        children = [c for c in psutil.Process().children() if "media_worker.post" in " ".join(c.cmdline())]
        assert children
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for child in children:
            assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE

    asyncio.run(main())
    assert not (path / "out" / "class.mp4").exists()
    assert not list((path / "out").glob("*.part"))


def test_postprocess_raises_for_a_directory_without_events(tmp_path):
    """No events.jsonl: the child exits non-zero and the helper raises with its reason."""
    with pytest.raises(PostprocessError, match="events.jsonl") as err:
        asyncio.run(postprocess(tmp_path))
    assert err.value.returncode == 1
    with pytest.raises(ManifestError):
        run(tmp_path)


# -- pure functions -----------------------------------------------------------------------------
def test_manifest_skips_truncated_and_malformed_lines(tmp_path):
    """Complete lines are kept whatever surrounds them; broken ones are counted."""
    (tmp_path / "events.jsonl").write_text(
        '{"t": 10.0, "type": "recording_started", "recording": "1"}\n'
        'garbage\n'
        '{"t": 11.5, "type": "mark", "label": "A"}\n'
        '{"t": 12.0, "type": "chat", "seq": 1, "user": {"id": "u", "disp')
    m = load_manifest(tmp_path)
    assert m.skipped_lines == 2 and m.stopped_s is None
    assert [(mk.t_s, mk.label) for mk in m.marks] == [(1.5, "A")]


def test_vtt_escape_removes_markup_and_arrows():
    """Cue text cannot open a tag, start an entity, or contain a timing arrow."""
    assert vtt_escape("a<b>&c --> d") == "a&lt;b&gt;&amp;c --&gt; d"


def test_grid_layout_caps_canvas_and_centres_last_row():
    """Cells take the largest size seen, the canvas fits 1920x1080, all even, last row centred."""
    g = grid_for(3, (1280, 720))
    assert (g.width, g.height) == (1920, 1080)
    assert g.cells[2] == Rect(480, 540, 960, 540)
    g = grid_for(5, (641, 481))
    assert all(v % 2 == 0 for c in g.cells for v in (c.x, c.y, c.w, c.h))
    assert g.width <= 1920 and g.height <= 1080
    assert fit(480, 360, Rect(0, 0, 640, 360)) == Rect(80, 0, 480, 360)


def test_chapters_start_at_zero_and_merge_simultaneous_marks():
    """A chapter always starts at 0; marks within 0.5 s are one chapter; late marks dropped."""
    marks = [Mark(3.0, "B", ""), Mark(3.2, "C", ""), Mark(0.2, "A", ""), Mark(9.0, "Z", "")]
    chapters = chapters_from_marks(marks, 8.0)
    assert [(c.start_s, c.end_s, c.title) for c in chapters] == [
        (0.0, 3.0, "A"), (3.0, 8.0, "B / C")]


def test_name_tile_draws_the_name():
    """A name tile is the participant colour with lighter text on it."""
    tile = name_tile("Zoë", 320, 180, key="u1")
    assert max(tile.y) == 235 and len(set(tile.y)) == 2
