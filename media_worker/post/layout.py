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
    cols, rows = _shape(n)
    cw, ch = largest or DEFAULT_CELL
    scale = min(1.0, cap[0] / (cols * cw), cap[1] / (rows * ch))
    cell_w, cell_h = even(cw * scale), even(ch * scale)
    return grid_in(n, cols * cell_w, rows * cell_h, (cell_w, cell_h))


def _shape(n: int) -> tuple[int, int]:
    cols = math.ceil(math.sqrt(n))
    return cols, math.ceil(n / cols)


def grid_in(n: int, width: int, height: int, cell: tuple[int, int]) -> Grid:
    """The grid of ``grid_for`` laid into a ``width``x``height`` canvas: the largest cells of
    ``cell``'s aspect that fit, the grid centred (on a canvas made bigger for a shared screen)."""
    n = max(1, n)
    cols, rows = _shape(n)
    scale = min(width / (cols * cell[0]), height / (rows * cell[1]))
    cell_w = min(width // cols, even(cell[0] * scale))
    cell_h = min(height // rows, even(cell[1] * scale))
    left, top = even((width - cols * cell_w) / 2) if width > cols * cell_w + 1 else 0, \
        even((height - rows * cell_h) / 2) if height > rows * cell_h + 1 else 0
    cells = []
    for i in range(n):
        row, col = divmod(i, cols)
        in_row = min(cols, n - row * cols)
        x0 = even((cols - in_row) * cell_w / 2) if in_row < cols else 0
        cells.append(Rect(left + x0 + col * cell_w, top + row * cell_h, cell_w, cell_h))
    return Grid(width, height, tuple(cells))


STRIP_FRACTION = 0.2  # of the canvas width: the cameras' strip beside a shared screen
STRIP_ROWS = 5  # cameras per strip column before another column is added


@dataclass(frozen=True)
class Presenter:
    """The presenter layout: a shared screen on ``stage``, one camera cell per participant
    (in grid order) in a strip on the right."""

    width: int
    height: int
    stage: Rect
    cells: tuple[Rect, ...]


def presenter_in(n: int, width: int, height: int, cell: tuple[int, int]) -> Presenter:
    """``n`` camera cells of ``cell``'s aspect stacked in ``ceil(n / STRIP_ROWS)`` columns on the
    right ``STRIP_FRACTION`` of a ``width``x``height`` canvas, centred vertically; the stage is
    the rest, on the left. Every rectangle is even."""
    n = max(1, n)
    cols = math.ceil(n / STRIP_ROWS)
    rows = math.ceil(n / cols)
    col_w = even(width * STRIP_FRACTION / cols)
    cell_h = even(min(height / rows, col_w * cell[1] / cell[0]))
    x0 = width - cols * col_w
    y0 = even((height - rows * cell_h) / 2) if height > rows * cell_h + 1 else 0
    cells = tuple(Rect(x0 + (i // rows) * col_w, y0 + (i % rows) * cell_h, col_w, cell_h)
                  for i in range(n))
    return Presenter(width, height, Rect(0, 0, x0, height), cells)


def canvas_for(n: int, camera: tuple[int, int] | None, screen: tuple[int, int] | None,
               cap: tuple[int, int] = MAX_CANVAS) -> tuple[Grid, Presenter | None]:
    """The canvas of a recording and its two layouts on it: the grid sized from ``camera``
    (``grid_for``) and, when a screen was shared, the presenter layout, the canvas grown
    (never past ``cap``, keeping its aspect) so the stage holds ``screen`` unscaled."""
    grid = grid_for(n, camera, cap)
    if screen is None:
        return grid, None
    width = max(grid.width, screen[0] / (1 - STRIP_FRACTION))
    height = max(grid.height, screen[1])
    scale = min(1.0, cap[0] / width, cap[1] / height)
    width, height = even(width * scale), even(height * scale)
    cell = (grid.cells[0].w, grid.cells[0].h)
    return grid_in(n, width, height, cell), presenter_in(n, width, height, cell)


def fit(src_w: int, src_h: int, cell: Rect) -> Rect:
    """The largest rectangle of ``src_w:src_h`` aspect inside ``cell``, centred."""
    scale = min(cell.w / src_w, cell.h / src_h)
    w = min(cell.w, even(round(src_w * scale)))
    h = min(cell.h, even(round(src_h * scale)))
    return Rect(cell.x + (cell.w - w) // 4 * 2, cell.y + (cell.h - h) // 4 * 2, w, h)
