"""``class.mp4``: the participants (grid, or presenter layout while a screen is shared) with
mixed audio, chat subtitles and chapters.

One output frame every 1/fps seconds of the recording clock, drawn by ``scene.Scene`` (what a
frame shows). Audio is mixed in ``AUDIO_CHUNK_S`` steps just ahead of the video so the muxer
interleaves without buffering; the mix also measures the speaker levels the scene reads
(``speakers.LOOKAHEAD_S`` ahead at most, which ``AUDIO_CHUNK_S`` covers).
"""
from __future__ import annotations

import fractions
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av

from media_worker.post.audio import RATE, AudioTrackReader, Mixer
from media_worker.post.canvas import Canvas
from media_worker.post.chapters import Chapter, to_av
from media_worker.post.layout import Grid
from media_worker.post.part_output import part_output
from media_worker.post.scene import Scene
from media_worker.post.speakers import LOOKAHEAD_S, SpeakerActivity
from media_worker.post.subtitles import Cue, add_chat_stream, mov_text_packet
from media_worker.post.timeline import Timeline

log = logging.getLogger("podium.worker.post")

AUDIO_CHUNK_S = 0.5
assert AUDIO_CHUNK_S >= LOOKAHEAD_S  # the speaker levels a frame needs are measured before it


@dataclass
class EncodeSettings:
    fps: int = 30
    preset: str = "veryfast"
    crf: int = 23
    audio_bit_rate: int = 128_000
    max_canvas: tuple[int, int] = (1920, 1080)


@dataclass
class CompositeResult:
    path: Path
    width: int
    height: int
    fps: int
    frames: int
    duration_s: float
    speakers: SpeakerActivity | None = None  # the levels measured while mixing


def plan_grid(timeline: Timeline, settings: EncodeSettings) -> Grid:
    """The grid on the canvas (its size is the video's, the presenter layout's too)."""
    return Scene(timeline, settings.max_canvas).grid


PRESENTER = 3  # where plan_key holds the presenter layout's geometry (None: no share in the span)


def plan_key(timeline: Timeline, settings: EncodeSettings, until_s: float | None = None) -> list:
    """What every frame of the composite up to ``until_s`` (all of it: None) depends on beyond
    the media up to its own instant: the canvas and cell geometry, who has a cell (in order)
    and the encoder settings. Two renderings of one span are the same when their keys for its
    end are (live segments, ``segment_join.py``). The presenter layout counts only once a share
    has started: the grid frames before the first share do not depend on it."""
    key = [*Scene(timeline, settings.max_canvas).layout_key(),
           [p.user.id for p in timeline.participants], [p.user.display_name for p in timeline.participants],
           settings.fps, settings.preset, settings.crf, settings.audio_bit_rate]
    if until_s is not None and not any(share.start_s < until_s for share in timeline.shares):
        key[PRESENTER] = None
    return key


PLAN_FIELDS = ("canvas width", "canvas height", "grid cells", "presenter layout", "who has a cell",
               "names", "fps", "preset", "crf", "audio bit rate")


def plan_changes(old: list, new: list) -> str:
    """What differs between two plan keys, for the logs ("names: ['Ana'] -> ['Ana', 'Ben']")."""
    return "; ".join(f"{name}: {a} -> {b}" for name, a, b in zip(PLAN_FIELDS, old, new) if a != b)


def plan_extends(old: list, new: list) -> bool:
    """Does a span rendered with key ``old`` render the same with ``new`` (the key of a later
    span): equal keys, or ``new`` only adds the presenter layout of a share that came later."""
    return old == new or (old[PRESENTER] is None and old[:PRESENTER] == new[:PRESENTER]
                          and old[PRESENTER + 1:] == new[PRESENTER + 1:])


def compose(timeline: Timeline, settings: EncodeSettings) -> tuple[Grid, Canvas, Scene]:
    """The grid (whose size is the canvas's), the canvas and the scene drawn on it (its video
    readers: ``scene.video_readers``)."""
    scene = Scene(timeline, settings.max_canvas)
    return scene.grid, Canvas(scene.width, scene.height), scene


def mixer_for(timeline: Timeline, scene: Scene,
              readers: list[AudioTrackReader] | None = None) -> Mixer:
    """The mix of every participant's audio tracks (``readers``: theirs in that order, made
    here when None), feeding ``scene.speakers`` the samples it reads."""
    keys = [p.user.id for p in timeline.participants for _ in p.audio_tracks]
    if readers is None:
        readers = [AudioTrackReader(i) for p in timeline.participants for i in p.audio_tracks]
    return Mixer(readers, on_read=lambda i, start, data: scene.speakers.feed(keys[i], start, data))


def draw_frame(canvas: Canvas, scene: Scene, t: float) -> av.VideoFrame:
    """The composed picture at ``t`` seconds of the recording clock (calls move forward; the
    audio must be mixed ``LOOKAHEAD_S`` past ``t`` for the speaker frame)."""
    scene.draw(canvas, t)
    return canvas.to_frame()


def add_video_stream(output, grid: Grid, settings: EncodeSettings):
    video = output.add_stream("libx264", rate=settings.fps,
                              options={"preset": settings.preset, "crf": str(settings.crf)})
    video.width, video.height, video.pix_fmt = grid.width, grid.height, "yuv420p"
    video.codec_context.time_base = fractions.Fraction(1, settings.fps)
    video.codec_context.gop_size = 2 * settings.fps  # a keyframe every 2 s keeps seeking quick
    # Frame threads, x264's own count (PyAV's default SLICE type would make libx264 use
    # sliced threads, which keep two cores far less busy).
    video.codec_context.thread_type = "FRAME"
    video.codec_context.thread_count = 0
    return video


def add_audio_stream(output, settings: EncodeSettings):
    audio = output.add_stream("aac", rate=RATE)
    audio.codec_context.layout = "stereo"
    audio.codec_context.bit_rate = settings.audio_bit_rate
    return audio


def add_metadata(output, timeline: Timeline, cues: list[Cue], chapters: list[Chapter]):
    """Chat stream (muxed at once), chapters and the comment; returns the chat stream or None."""
    chat = add_chat_stream(output) if cues else None
    if chapters:
        output.set_chapters(to_av(chapters))
    ids = timeline.manifest.ids
    if ids.get("recording"):
        output.metadata["comment"] = f"Podium recording {ids['recording']}"
    if chat is not None:
        for cue in cues:
            output.mux(mov_text_packet(cue, chat))
    return chat


def write_composite(timeline: Timeline, path: Path, *, cues: list[Cue], chapters: list[Chapter],
                    settings: EncodeSettings | None = None,
                    on_progress: Callable[[int], None] | None = None,
                    thumbnail_at: float | None = None,
                    on_thumbnail: Callable[[av.VideoFrame], None] | None = None) -> CompositeResult:
    """Render and encode the composite to ``path`` (written as ``path.part``, then renamed).
    ``on_progress`` gets the integer percentage of frames encoded each time it grows;
    ``on_thumbnail`` gets the composed frame at ``thumbnail_at`` seconds."""
    settings = settings or EncodeSettings()
    fps = settings.fps
    grid, canvas, scene = compose(timeline, settings)
    n_frames = frame_count(timeline.duration_s, fps)
    total_samples = round(n_frames / fps * RATE)
    thumb_frame = min(n_frames - 1, int((thumbnail_at or 0.0) * fps))
    mixer = mixer_for(timeline, scene)
    log.info("composite %s: %dx%d, %d cells, %d frames at %d fps, %d audio tracks",
             path.name, grid.width, grid.height, len(scene.cells), n_frames, fps, len(mixer.readers))

    with part_output(path, "mp4", container_options={"movflags": "+faststart"}) as output:
        video = add_video_stream(output, grid, settings)
        audio = add_audio_stream(output, settings)
        add_metadata(output, timeline, cues, chapters)

        audio_done = 0
        chunk = round(AUDIO_CHUNK_S * RATE)
        percent = -1
        for k in range(n_frames):
            t = k / fps
            while audio_done < total_samples and audio_done <= (t + AUDIO_CHUNK_S) * RATE:
                n = min(chunk, total_samples - audio_done)
                for af in mixer.mix(audio_done, n):
                    output.mux(audio.encode(af))
                audio_done += n
            frame = draw_frame(canvas, scene, t)
            frame.pts = k
            frame.time_base = video.codec_context.time_base
            if k == thumb_frame and on_thumbnail is not None:
                on_thumbnail(frame)
            output.mux(video.encode(frame))
            now = (k + 1) * 100 // n_frames
            if now != percent and on_progress is not None:
                percent = now
                on_progress(now)
        for af in mixer.flush():
            output.mux(audio.encode(af))
        output.mux(audio.encode(None))
        output.mux(video.encode(None))
    return CompositeResult(path, grid.width, grid.height, fps, n_frames, n_frames / fps,
                           speakers=scene.speakers)


def frame_count(duration_s: float, fps: int) -> int:
    return max(1, round(duration_s * fps))


def thumbnail_time(duration_s: float) -> float:
    return max(0.0, math.floor(duration_s * 0.1 * 1000) / 1000)
