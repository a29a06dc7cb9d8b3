"""Name tiles (media_worker/post/tiles.py)."""
from __future__ import annotations

from media_worker.post.tiles import name_tile


def test_name_tile_draws_the_name():
    """A name tile is the participant colour with lighter text on it."""
    tile = name_tile("Zoë", 320, 180, key="u1")
    assert max(tile.y) == 235 and len(set(tile.y)) == 2
