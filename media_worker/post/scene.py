"""What the class video shows at an instant: the grid, or the presenter layout while a screen
is shared, with the active speaker's cell framed.

``Scene.draw(canvas, t)`` depends only on the timeline, the media up to ``t`` and the speaker
levels around ``t`` (``speakers.py``), so pieces rendered separately join seamlessly. Per
participant, a cell shows the newest frame of their most recently started camera track at or
before ``t`` (``VideoTrackReader``), scaled to fit and letterboxed, with a name label; a name
tile when they are in the call without a picture (audio only, camera off, video stalled for
``STALE_S``, or their one video track is the screen on stage); an empty cell when they are not
in the call. While a screen is shared (``timeline.Share``; the latest started one when two
overlap) it fills the stage and the cells move to the strip (``layout.presenter_in``).
"""
from __future__ import annotations

from av.video.reformatter import VideoReformatter

from media_worker.post.canvas import Canvas
from media_worker.post.layout import Grid, Presenter, Rect, canvas_for, even, fit
from media_worker.post.speakers import SpeakerActivity
from media_worker.post.tiles import BLACK, Picture, name_label, name_tile, rgb_to_yuv
from media_worker.post.timeline import Participant, Share, Timeline, share_at
from media_worker.post.video import VideoTrackReader

STALE_S = 2.0  # a picture older than this is a frozen camera: show the name tile
EOF_HOLD_S = 0.5  # after a track's last frame, keep it this long (one frame's worth and more)
SPEAKER_COLOR = rgb_to_yuv(255, 193, 7)  # amber frame around the active speaker's cell


def border_width(rect: Rect) -> int:
    return even(max(4, rect.h / 40))


def draw_border(canvas: Canvas, rect: Rect, color: tuple[int, int, int]) -> None:
    b = min(border_width(rect), rect.w // 2 // 2 * 2, rect.h // 2 // 2 * 2)
    canvas.fill(Rect(rect.x, rect.y, rect.w, b), color)
    canvas.fill(Rect(rect.x, rect.y + rect.h - b, rect.w, b), color)
    canvas.fill(Rect(rect.x, rect.y, b, rect.h), color)
    canvas.fill(Rect(rect.x + rect.w - b, rect.y, b, rect.h), color)


class _Pictures:
    """A participant's name tile and label per size, made once."""

    def __init__(self, part: Participant):
        self.part = part
        self._tiles: dict[tuple[int, int], Picture] = {}
        self._labels: dict[tuple[int, int], Picture] = {}

    def tile(self, rect: Rect) -> Picture:
        if (rect.w, rect.h) not in self._tiles:
            self._tiles[(rect.w, rect.h)] = name_tile(self.part.user.display_name, rect.w, rect.h,
                                                      key=self.part.user.id)
        return self._tiles[(rect.w, rect.h)]

    def label(self, width: int, height: int) -> Picture:
        if (width, height) not in self._labels:
            self._labels[(width, height)] = name_label(self.part.user.display_name, width, height)
        return self._labels[(width, height)]


def _blit_video(canvas: Canvas, scaler: VideoReformatter, frame, target: Rect,
                label: Picture | None, area: Rect) -> None:
    canvas.blit_frame(scaler.reformat(frame, width=target.w, height=target.h, format="yuv420p"),
                      target)
    if label is None:
        return
    margin = max(2, area.h // 60) // 2 * 2
    if label.height + 2 * margin <= target.h and label.width + 2 * margin <= target.w:
        canvas.blit_picture(label, target.x + margin, target.y + target.h - label.height - margin)


class Cell:
    def __init__(self, part: Participant, readers: list[VideoTrackReader]):
        self.part = part
        self.readers = readers
        self.pictures = _Pictures(part)
        self.rect: Rect | None = None
        self.key: tuple | None = None
        self.drawn: Rect | None = None  # where the last video picture went
        # One reformatter per cell keeps its swscale context between frames of the same size;
        # VideoFrame.reformat builds and frees a context (and its thread pool) on every call,
        # which cost ~37 % of the main thread (bench/recording).
        self._scaler = VideoReformatter()

    def place(self, rect: Rect) -> None:
        """Move the cell (a layout change): the next ``draw`` draws it whole."""
        if rect != self.rect:
            self.rect, self.key, self.drawn = rect, None, None

    def showing(self, t: float, on_stage: VideoTrackReader | None = None) -> VideoTrackReader | None:
        """The reader whose picture this cell shows at ``t``, if any."""
        best = None
        for reader in self.readers:
            current = reader.advance(t)
            if current is None or reader is on_stage:
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

    def draw(self, canvas: Canvas, t: float, speaking: bool = False,
             on_stage: VideoTrackReader | None = None) -> None:
        rect = self.rect
        reader = self.showing(t, on_stage)
        if reader is not None:
            key = ("video", id(reader), reader.serial, speaking)
        elif self.part.present_at(t):
            key = ("tile", speaking)
        else:
            key = ("empty", False)
        if key == self.key:
            return
        if key[0] == "video":
            frame = reader.current[1]
            target = fit(frame.width, frame.height, rect)
            if self.key is None or self.key[0] != "video" or self.drawn != target or self.key[-1] != speaking:
                canvas.fill(rect, BLACK)
            _blit_video(canvas, self._scaler, frame, target,
                        self.pictures.label(target.w - 2 * (max(2, rect.h // 60) // 2 * 2), rect.h), rect)
            self.drawn = target
        elif key[0] == "tile":
            canvas.blit_picture(self.pictures.tile(rect), rect.x, rect.y)
        else:
            canvas.fill(rect, BLACK)
        if key[-1]:
            draw_border(canvas, rect, SPEAKER_COLOR)
        self.key = key


class Stage:
    """The shared screen, fitted into the presenter layout's stage with its sharer's name."""

    def __init__(self):
        self.key: tuple | None = None
        self.drawn: Rect | None = None
        self._scaler = VideoReformatter()

    def reset(self) -> None:
        self.key, self.drawn = None, None

    def draw(self, canvas: Canvas, rect: Rect, share: Share, reader: VideoTrackReader,
             pictures: _Pictures, t: float) -> None:
        # A screen sends frames only when it changes: its last picture stays, however old.
        current = reader.advance(t)
        key = (id(share), reader.serial if current is not None else None)
        if key == self.key:
            return
        if current is None:
            canvas.fill(rect, BLACK)
            self.drawn = None
        else:
            frame = current[1]
            target = fit(frame.width, frame.height, rect)
            if self.drawn != target or self.key is None or self.key[0] != key[0]:
                canvas.fill(rect, BLACK)
            margin = max(2, rect.h // 90) // 2 * 2
            _blit_video(canvas, self._scaler, frame, target,
                        pictures.label(target.w - 2 * margin, rect.h // 2), rect)
            self.drawn = target
        self.key = key


class Scene:
    """The class video's picture: ``draw(canvas, t)`` for forward-moving ``t``.

    ``speakers`` is fed by the audio mix (``composite.mixer_for``); ``video_readers`` are every
    video track's reader, one per track, shared by the cell and the stage."""

    def __init__(self, timeline: Timeline, cap: tuple[int, int]):
        self.timeline = timeline
        parts = timeline.participants
        self.grid: Grid
        self.presenter: Presenter | None
        self.grid, self.presenter = canvas_for(len(parts), timeline.camera_size,
                                               timeline.screen_size, cap)
        self.width, self.height = self.grid.width, self.grid.height
        self.readers = {id(info): VideoTrackReader(info) for p in parts for info in p.video_tracks}
        self.cells = [Cell(p, [self.readers[id(i)] for i in p.camera_tracks]) for p in parts]
        self.stage = Stage()
        self.speakers = SpeakerActivity(p.user.id for p in parts)
        self._pictures = {id(c.part): c.pictures for c in self.cells}
        self._mode: str | None = None

    @property
    def video_readers(self) -> list[VideoTrackReader]:
        return list(self.readers.values())

    def layout_key(self) -> list:
        """The geometry every frame depends on (for ``composite.plan_key``)."""
        def rects(rs):
            return [[r.x, r.y, r.w, r.h] for r in rs]
        p = self.presenter
        return [self.width, self.height, rects(self.grid.cells),
                rects([p.stage, *p.cells]) if p else None]

    def draw(self, canvas: Canvas, t: float) -> None:
        share = share_at(self.timeline.shares, t)
        mode = "presenter" if share is not None and self.presenter is not None else "grid"
        if mode != self._mode:
            canvas.fill(Rect(0, 0, self.width, self.height), BLACK)
            rects = self.presenter.cells if mode == "presenter" else self.grid.cells
            for cell, rect in zip(self.cells, rects):
                cell.place(rect)
            self.stage.reset()
            self._mode = mode
        on_stage = None
        if mode == "presenter":
            on_stage = self.readers[id(share.track)]
            self.stage.draw(canvas, self.presenter.stage, share, on_stage,
                            self._pictures[id(share.participant)], t)
        speaker = self.speakers.active_at(t)
        for cell in self.cells:
            cell.draw(canvas, t, speaking=speaker is not None and cell.part.user.id == speaker,
                      on_stage=on_stage)
