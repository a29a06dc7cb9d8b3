"""Grid geometry for the composite: canvas size, one cell per participant, letterboxing.

All sizes and offsets are even, so every rectangle maps exactly onto 4:2:0 chroma samples.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

MAX_CANVAS = (1920, 1080)
DEFAULT_CELL = (640, 360)  # when nobody sent video


def even(x: float) -> int:
    """The largest even integer <= x, at least 2."""
    return max(2, int(x) // 2 * 2)


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class Grid:
    width: int
    height: int
    cells: tuple[Rect, ...]


def grid_for(n: int, largest: tuple[int, int] | None, cap: tuple[int, int] = MAX_CANVAS) -> Grid:
    """``n`` cells (at least one) in ``ceil(sqrt(n))`` columns, each the size of the largest
    frame seen, the whole scaled down to fit ``cap``; a short last row is centred."""
    n = max(1, n)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    cw, ch = largest or DEFAULT_CELL
    scale = min(1.0, cap[0] / (cols * cw), cap[1] / (rows * ch))
    cell_w, cell_h = even(cw * scale), even(ch * scale)
    cells = []
    for i in range(n):
        row, col = divmod(i, cols)
        in_row = min(cols, n - row * cols)
        x0 = even((cols - in_row) * cell_w / 2) if in_row < cols else 0
        cells.append(Rect(x0 + col * cell_w, row * cell_h, cell_w, cell_h))
    return Grid(cols * cell_w, rows * cell_h, tuple(cells))


def fit(src_w: int, src_h: int, cell: Rect) -> Rect:
    """The largest rectangle of ``src_w:src_h`` aspect inside ``cell``, centred."""
    scale = min(cell.w / src_w, cell.h / src_h)
    w = min(cell.w, even(round(src_w * scale)))
    h = min(cell.h, even(round(src_h * scale)))
    return Rect(cell.x + (cell.w - w) // 4 * 2, cell.y + (cell.h - h) // 4 * 2, w, h)
