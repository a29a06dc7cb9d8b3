"""``class.mp4``: the grid of participants with mixed audio, chat subtitles and chapters.

One output frame every 1/fps seconds of the recording clock; per participant, the cell shows
the newest frame of their most recently started video track at or before that instant (see
``VideoTrackReader``), scaled to fit and letterboxed, with a name label. A participant shows a
name tile when they are in the call without a picture (audio only, camera off, or their video
has stalled for ``STALE_S``), and an empty cell when they are not in the call. Audio is mixed
in ``AUDIO_CHUNK_S`` steps just ahead of the video so the muxer interleaves without buffering.
"""
from __future__ import annotations

import fractions
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import av.error
from av.video.reformatter import VideoReformatter

from media_worker.post.audio import RATE, AudioTrackReader, Mixer
from media_worker.post.canvas import Canvas
from media_worker.post.chapters import Chapter, to_av
from media_worker.post.layout import Grid, Rect, fit, grid_for
from media_worker.post.subtitles import Cue, add_chat_stream, mov_text_packet
from media_worker.post.tiles import BLACK, Picture, name_label, name_tile
from media_worker.post.timeline import Participant, Timeline
from media_worker.post.video import VideoTrackReader

log = logging.getLogger("podium.worker.post")

STALE_S = 2.0  # a picture older than this is a frozen camera: show the name tile
EOF_HOLD_S = 0.5  # after a track's last frame, keep it this long (one frame's worth and more)
AUDIO_CHUNK_S = 0.5


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


class _Cell:
    def __init__(self, part: Participant, rect: Rect):
        self.part = part
        self.rect = rect
        self.readers = [VideoTrackReader(info) for info in part.video_tracks]
        self.key: tuple | None = None
        self.drawn: Rect | None = None  # where the last video picture went
        self._tile: Picture | None = None
        self._labels: dict[int, Picture] = {}  # by picture width
        # One reformatter per cell keeps its swscale context between frames of the same size;
        # VideoFrame.reformat builds and frees a context (and its thread pool) on every call,
        # which cost ~37 % of the main thread (bench/recording).
        self._scaler = VideoReformatter()

    @property
    def tile(self) -> Picture:
        if self._tile is None:
            self._tile = name_tile(self.part.user.display_name, self.rect.w, self.rect.h,
                                   key=self.part.user.id)
        return self._tile

    def label(self, width: int) -> Picture:
        if width not in self._labels:
            self._labels[width] = name_label(self.part.user.display_name, width, self.rect.h)
        return self._labels[width]

    def showing(self, t: float) -> VideoTrackReader | None:
        """The reader whose picture this cell shows at ``t``, if any."""
        best = None
        for reader in self.readers:
            current = reader.advance(t)
            if current is None:
                continue
            age = t - current[0]
            ended = reader.info.track.ended_s
            if age > STALE_S or (reader.exhausted and age > EOF_HOLD_S):
                continue
            if ended is not None and t >= ended:
                continue
            if not self.part.camera_on_at(reader.info.track.peer_id, t):
                continue
            if best is None or reader.info.start_s >= best.info.start_s:
                best = reader
        return best

    def draw(self, canvas: Canvas, t: float) -> None:
        reader = self.showing(t)
        if reader is not None:
            key = ("video", id(reader), reader.serial)
        elif self.part.present_at(t):
            key = ("tile",)
        else:
            key = ("empty",)
        if key == self.key:
            return
        if key[0] == "video":
            frame = reader.current[1]
            target = fit(frame.width, frame.height, self.rect)
            if self.key is None or self.key[0] != "video" or self.drawn != target:
                canvas.fill(self.rect, BLACK)
            canvas.blit_frame(self._scaler.reformat(frame, width=target.w, height=target.h, format="yuv420p"),
                              target)
            self.drawn = target
            margin = max(2, self.rect.h // 60) // 2 * 2
            label = self.label(target.w - 2 * margin)
            fits = label.height + 2 * margin <= target.h and label.width + 2 * margin <= target.w
            if fits:  # on the picture's bottom-left corner
                canvas.blit_picture(label, target.x + margin,
                                    target.y + target.h - label.height - margin)
        elif key[0] == "tile":
            canvas.blit_picture(self.tile, self.rect.x, self.rect.y)
        else:
            canvas.fill(self.rect, BLACK)
        self.key = key


def plan_grid(timeline: Timeline, settings: EncodeSettings) -> Grid:
    return grid_for(len(timeline.participants), timeline.largest_size, settings.max_canvas)


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
    grid = plan_grid(timeline, settings)
    canvas = Canvas(grid.width, grid.height)
    cells = [_Cell(p, r) for p, r in zip(timeline.participants, grid.cells)]
    n_frames = max(1, round(timeline.duration_s * fps))
    total_samples = round(n_frames / fps * RATE)
    thumb_frame = min(n_frames - 1, int((thumbnail_at or 0.0) * fps))
    mixer = Mixer([AudioTrackReader(i) for p in timeline.participants for i in p.audio_tracks])
    log.info("composite %s: %dx%d, %d cells, %d frames at %d fps, %d audio tracks",
             path.name, grid.width, grid.height, len(cells), n_frames, fps, len(mixer.readers))

    tmp = path.with_name(path.name + ".part")
    output = av.open(str(tmp), "w", format="mp4", container_options={"movflags": "+faststart"})
    try:
        video = output.add_stream("libx264", rate=fps,
                                  options={"preset": settings.preset, "crf": str(settings.crf)})
        video.width, video.height, video.pix_fmt = grid.width, grid.height, "yuv420p"
        video.codec_context.time_base = fractions.Fraction(1, fps)
        video.codec_context.gop_size = 2 * fps  # a keyframe every 2 s keeps seeking quick
        # Frame threads, x264's own count (PyAV's default SLICE type would make libx264 use
        # sliced threads, which keep two cores far less busy).
        video.codec_context.thread_type = "FRAME"
        video.codec_context.thread_count = 0
        audio = output.add_stream("aac", rate=RATE)
        audio.codec_context.layout = "stereo"
        audio.codec_context.bit_rate = settings.audio_bit_rate
        chat = add_chat_stream(output) if cues else None
        if chapters:
            output.set_chapters(to_av(chapters))
        ids = timeline.manifest.ids
        if ids.get("recording"):
            output.metadata["comment"] = f"Podium recording {ids['recording']}"
        if chat is not None:
            for cue in cues:
                output.mux(mov_text_packet(cue, chat))

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
            for cell in cells:
                cell.draw(canvas, t)
            frame = canvas.to_frame()
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
        output.close()
    except BaseException:
        try:
            output.close()
        except av.error.FFmpegError:
            pass  # the original error is the one worth raising
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    return CompositeResult(path, grid.width, grid.height, fps, n_frames, n_frames / fps)


def thumbnail_time(duration_s: float) -> float:
    return max(0.0, math.floor(duration_s * 0.1 * 1000) / 1000)
