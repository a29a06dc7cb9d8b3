"""The composite picture: a yuv420p frame buffer that cells are copied into.

Each plane is a numpy array of ``rows x stride`` bytes, the line size of the frames we hand out,
so a cell is one strided slice copy per plane and the whole canvas goes out in one
``plane.update``; scaling is done by swscale (``VideoReformatter``) before the copy.
"""
from __future__ import annotations

import av
import numpy as np

from media_worker.post.layout import Rect
from media_worker.post.tiles import BLACK, Picture


def plane_array(plane) -> np.ndarray:
    """A frame plane's bytes as a ``rows x line_size`` array (a view, no copy)."""
    data = np.frombuffer(plane, np.uint8)
    return data[:data.size // plane.line_size * plane.line_size].reshape(-1, plane.line_size)


class Canvas:
    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        template = av.VideoFrame(width, height, "yuv420p")
        self.planes = [np.zeros((p.buffer_size // p.line_size, p.line_size), np.uint8)
                       for p in template.planes]
        self.fill(Rect(0, 0, width, height), BLACK)

    def fill(self, rect: Rect, color: tuple[int, int, int]) -> None:
        for i, value in enumerate(color):
            div = 1 if i == 0 else 2
            x, y = rect.x // div, rect.y // div
            self.planes[i][y:(rect.y + rect.h) // div, x:x + rect.w // div] = value

    def _copy(self, i: int, src: np.ndarray, x: int, y: int, w: int, h: int) -> None:
        self.planes[i][y:y + h, x:x + w] = src[:h, :w]

    def blit_frame(self, frame: av.VideoFrame, rect: Rect) -> None:
        """Copy a yuv420p ``frame`` of exactly ``rect``'s size to ``rect``."""
        for i, plane in enumerate(frame.planes):
            div = 1 if i == 0 else 2
            self._copy(i, plane_array(plane), rect.x // div, rect.y // div,
                       rect.w // div, rect.h // div)

    def blit_picture(self, pic: Picture, x: int, y: int) -> None:
        w2, h2 = pic.width // 2, pic.height // 2
        self._copy(0, np.frombuffer(pic.y, np.uint8).reshape(pic.height, pic.width), x, y,
                   pic.width, pic.height)
        self._copy(1, np.frombuffer(pic.u, np.uint8).reshape(h2, w2), x // 2, y // 2, w2, h2)
        self._copy(2, np.frombuffer(pic.v, np.uint8).reshape(h2, w2), x // 2, y // 2, w2, h2)

    def to_frame(self) -> av.VideoFrame:
        """A new frame holding the canvas (the encoder may keep it; the canvas stays ours)."""
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        for i, plane in enumerate(frame.planes):
            if plane.line_size == self.planes[i].shape[1]:
                plane.update(self.planes[i])
            else:  # never seen: the allocator changed its alignment between two frames
                rows = self.height if i == 0 else self.height // 2
                width = self.width if i == 0 else self.width // 2
                plane_array(plane)[:rows, :width] = self.planes[i][:rows, :width]
        return frame
