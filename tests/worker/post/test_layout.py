"""Grid geometry for the composite (media_worker/post/layout.py); no I/O."""
from __future__ import annotations

from media_worker.post.layout import Rect, canvas_for, fit, grid_for, presenter_in


def test_grid_layout_caps_canvas_and_centres_last_row():
    """Cells take the largest size seen, the canvas fits 1920x1080, all even, last row centred."""
    g = grid_for(3, (1280, 720))
    assert (g.width, g.height) == (1920, 1080)
    assert g.cells[2] == Rect(480, 540, 960, 540)
    g = grid_for(5, (641, 481))
    assert all(v % 2 == 0 for c in g.cells for v in (c.x, c.y, c.w, c.h))
    assert g.width <= 1920 and g.height <= 1080
    assert fit(480, 360, Rect(0, 0, 640, 360)) == Rect(80, 0, 480, 360)


def test_one_participant_fills_the_canvas_at_their_size():
    """A single participant's cell is their largest frame, and the canvas is that cell."""
    g = grid_for(1, (640, 480))
    assert (g.width, g.height, g.cells) == (640, 480, (Rect(0, 0, 640, 480),))


def test_nobody_with_video_gets_one_default_cell():
    """No participant (or no video seen) still gives one 640x360 cell to draw tiles on."""
    assert grid_for(0, None) == grid_for(1, None)
    g = grid_for(0, None)
    assert (g.width, g.height, g.cells) == (640, 360, (Rect(0, 0, 640, 360),))


def test_columns_are_the_ceiling_of_the_square_root():
    """A grid of n cells has ceil(sqrt(n)) columns and as many rows as needed."""
    shape = {n: (grid_for(n, (160, 90)).width // 160, grid_for(n, (160, 90)).height // 90)
             for n in (2, 3, 4, 5, 9, 10)}
    assert shape == {2: (2, 1), 3: (2, 2), 4: (2, 2), 5: (3, 2), 9: (3, 3), 10: (4, 3)}


def test_cells_fill_rows_left_to_right_without_overlap():
    """Cells of a full grid tile the canvas row by row, each one cell size apart."""
    g = grid_for(4, (320, 240))
    assert g.cells == (Rect(0, 0, 320, 240), Rect(320, 0, 320, 240),
                       Rect(0, 240, 320, 240), Rect(320, 240, 320, 240))


def test_large_grid_scales_down_keeping_the_cell_aspect():
    """Four 1280x720 cells (2560x1440) scale by 0.75 to fit 1920x1080 exactly."""
    g = grid_for(4, (1280, 720))
    assert (g.width, g.height) == (1920, 1080) and g.cells[3] == Rect(960, 540, 960, 540)


def test_odd_frame_sizes_give_even_cells():
    """A 641x481 picture gets a 640x480 cell (4:2:0 needs even sizes)."""
    assert grid_for(1, (641, 481)).cells == (Rect(0, 0, 640, 480),)


def test_fit_scales_up_and_letterboxes_a_smaller_picture():
    """A 160x120 picture in a 640x360 cell is scaled to 480x360 and centred with side bars."""
    assert fit(160, 120, Rect(0, 0, 640, 360)) == Rect(80, 0, 480, 360)


def test_fit_pillarboxes_a_wide_picture_inside_its_cell():
    """A 16:9 picture in a 4:3 cell at (640, 480) is as wide as the cell, centred vertically."""
    assert fit(1920, 1080, Rect(640, 480, 640, 480)) == Rect(640, 540, 640, 360)


def test_fit_keeps_offsets_even_when_the_exact_centre_is_odd():
    """A square picture in a 642x480 cell sits at x=80, not at the odd centre 81."""
    assert fit(100, 100, Rect(0, 0, 642, 480)) == Rect(80, 0, 480, 480)


def test_presenter_strip_holds_the_cameras_beside_the_stage():
    """Three cameras stack in the right fifth, centred vertically, the stage takes the rest."""
    p = presenter_in(3, 800, 480, (320, 240))
    assert p.stage == Rect(0, 0, 640, 480)
    assert p.cells == (Rect(640, 60, 160, 120), Rect(640, 180, 160, 120), Rect(640, 300, 160, 120))


def test_presenter_strip_adds_columns_for_a_big_class():
    """Twelve cameras: three columns of four in the strip, all inside the canvas, all even."""
    p = presenter_in(12, 1920, 1080, (640, 480))
    assert len({c.x for c in p.cells}) == 3 and p.stage.w == min(c.x for c in p.cells)
    assert all(c.x + c.w <= 1920 and c.y + c.h <= 1080 for c in p.cells)
    assert all(v % 2 == 0 for c in p.cells for v in (c.x, c.y, c.w, c.h))


def test_a_shared_screen_widens_the_canvas_up_to_the_cap():
    """Cameras of 320x240 make a 640x480 grid; a 640x360 screen needs a 640-wide stage, so the
    canvas is 800x480 with the grid centred; a 1920x1080 screen is capped at 1920 wide."""
    grid, presenter = canvas_for(3, (320, 240), (640, 360))
    assert (grid.width, grid.height) == (800, 480) and grid.cells[0] == Rect(80, 0, 320, 240)
    assert presenter.stage == Rect(0, 0, 640, 480)
    grid, presenter = canvas_for(3, (320, 240), (1920, 1080))
    assert (grid.width, grid.height) == (1920, 864) and presenter.stage.w == 1536
    assert canvas_for(3, (320, 240), None) == (grid_for(3, (320, 240)), None)
