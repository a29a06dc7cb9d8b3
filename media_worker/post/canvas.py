"""The composite picture: a yuv420p frame buffer that cells are copied into.

Rows are copied with slice assignment (memcpy per row), so a cell of height h costs 1.5·h
Python-level copies; scaling is done by swscale (``VideoFrame.reformat``) before the copy.
"""
from __future__ import annotations

import av

from media_worker.post.layout import Rect
from media_worker.post.tiles import BLACK, Picture


class Canvas:
    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        template = av.VideoFrame(width, height, "yuv420p")
        # Same line sizes as every frame we hand out, so a plane copies in one assignment.
        self.strides = [p.line_size for p in template.planes]
        self.planes = [bytearray(p.buffer_size) for p in template.planes]
        self.fill(Rect(0, 0, width, height), BLACK)

    def fill(self, rect: Rect, color: tuple[int, int, int]) -> None:
        for i, value in enumerate(color):
            div = 1 if i == 0 else 2
            x, w = rect.x // div, rect.w // div
            row = bytes([value]) * w
            stride, plane = self.strides[i], self.planes[i]
            for r in range(rect.y // div, (rect.y + rect.h) // div):
                plane[r * stride + x:r * stride + x + w] = row

    def _copy(self, i: int, src, sstride: int, x: int, y: int, w: int, h: int) -> None:
        dst, dstride = self.planes[i], self.strides[i]
        for r in range(h):
            d = (y + r) * dstride + x
            dst[d:d + w] = src[r * sstride:r * sstride + w]

    def blit_frame(self, frame: av.VideoFrame, rect: Rect) -> None:
        """Copy a yuv420p ``frame`` of exactly ``rect``'s size to ``rect``."""
        for i, plane in enumerate(frame.planes):
            div = 1 if i == 0 else 2
            self._copy(i, memoryview(plane), plane.line_size, rect.x // div, rect.y // div,
                       rect.w // div, rect.h // div)

    def blit_picture(self, pic: Picture, x: int, y: int) -> None:
        self._copy(0, pic.y, pic.width, x, y, pic.width, pic.height)
        self._copy(1, pic.u, pic.width // 2, x // 2, y // 2, pic.width // 2, pic.height // 2)
        self._copy(2, pic.v, pic.width // 2, x // 2, y // 2, pic.width // 2, pic.height // 2)

    def to_frame(self) -> av.VideoFrame:
        """A new frame holding the canvas (the encoder may keep it; the canvas stays ours)."""
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        for i, plane in enumerate(frame.planes):
            if plane.line_size == self.strides[i]:
                plane.update(self.planes[i])
            else:  # never seen: the allocator changed its alignment between two frames
                rows = self.height if i == 0 else self.height // 2
                width = self.width if i == 0 else self.width // 2
                view = memoryview(plane)
                for r in range(rows):
                    view[r * plane.line_size:r * plane.line_size + width] = \
                        self.planes[i][r * self.strides[i]:r * self.strides[i] + width]
        return frame
