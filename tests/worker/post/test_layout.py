"""Grid geometry for the composite (media_worker/post/layout.py); no I/O."""
from __future__ import annotations

from media_worker.post.layout import Rect, fit, grid_for


def test_grid_layout_caps_canvas_and_centres_last_row():
    """Cells take the largest size seen, the canvas fits 1920x1080, all even, last row centred."""
    g = grid_for(3, (1280, 720))
    assert (g.width, g.height) == (1920, 1080)
    assert g.cells[2] == Rect(480, 540, 960, 540)
    g = grid_for(5, (641, 481))
    assert all(v % 2 == 0 for c in g.cells for v in (c.x, c.y, c.w, c.h))
    assert g.width <= 1920 and g.height <= 1080
    assert fit(480, 360, Rect(0, 0, 640, 360)) == Rect(80, 0, 480, 360)
