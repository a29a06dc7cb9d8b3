"""Name tiles and labels (media_worker/post/tiles.py, text.py, cmap.py): names in any script
are drawn with glyphs from the Noto fonts, never folded to ASCII or drawn as '?' or empty boxes."""
from __future__ import annotations

from collections import Counter

import pytest
from PIL import Image, ImageDraw, ImageFont

from media_worker.post import text
from media_worker.post.cmap import Coverage
from media_worker.post.tiles import name_label, name_tile

NAMES = ["Zoë", "José Ñúñez", "Дмитрий", "Σωκράτης", "محمد علي", "王小明", "さくら", "김민준"]
NOT_A_CHARACTER = "\u0378"  # unassigned: every font draws its .notdef box


def test_name_tile_draws_the_name():
    """A name tile is the participant colour with white text on it."""
    tile = name_tile("Zoë", 320, 180, key="u1")
    background, count = Counter(tile.y).most_common(1)[0]
    assert count > 0.8 * len(tile.y) and background < 100
    assert max(tile.y) == 235  # the white of the text (BT.601 limited range)


@pytest.mark.parametrize("name", NAMES)
def test_every_character_of_a_name_has_a_glyph_in_the_fonts(name):
    """Each character's face has it in its cmap (accents, Cyrillic, Greek, Arabic, CJK)."""
    assert text.available()
    assert text.covered(name)
    for run, face in text.runs(name):
        cov = Coverage(face.path, face.index)
        assert all(cov.has(ord(ch)) for ch in run if not ch.isspace()), (run, face)


@pytest.mark.parametrize("name", NAMES)
def test_a_label_draws_the_name_not_question_marks_or_boxes(name):
    """The label differs from the same number of '?', and from as many empty boxes (the
    .notdef glyph a font draws for a character it lacks); accents are drawn, not dropped."""
    label = name_label(name, 600, 480)
    for stand_in in ("?" * len(name), NOT_A_CHARACTER * len(name)):
        other = name_label(stand_in, 600, 480)
        assert (label.width, label.y) != (other.width, other.y), stand_in
    assert name_label("Zoë", 600, 480).y != name_label("Zoe", 600, 480).y


def test_cmap_coverage_agrees_with_what_freetype_draws():
    """Coverage.has(c) is True exactly when FreeType draws something other than .notdef."""
    face = text.chain()[0]
    font = ImageFont.truetype(str(face.path), 24, index=face.index)
    cov = Coverage(face.path, face.index)

    def drawn(ch: str) -> bytes:
        img = Image.new("L", (64, 64))
        ImageDraw.Draw(img).text((16, 16), ch, font=font, fill=255)
        return img.tobytes()

    notdef = drawn(NOT_A_CHARACTER)
    for ch in "Aë€ДΩ王م\u0301ñ→♥":
        assert cov.has(ord(ch)) == (drawn(ch) != notdef), ch
