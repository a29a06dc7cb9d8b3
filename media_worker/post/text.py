"""Names in any script for the class video's tiles and labels: Noto fonts through Pillow
(FreeType, with Raqm shaping and bidi for Arabic and the like), a font chosen per character.

The fonts are Debian's ``fonts-noto-core`` and ``fonts-noto-cjk`` (``scripts/setup.sh``
installs them on a worker; on Heroku the apt buildpack, ``Aptfile``, unpacks them under
``~/.apt``): Noto Sans first, then Noto Sans CJK, then every other Noto Sans
script font, then DejaVu Sans. A character takes the font of the run it is in when that font
has it (so a space or a combining accent stays with its word), else the first font of the
chain whose ``cmap`` has it (``cmap.Coverage``). A character no font has is drawn with Noto
Sans (its empty box) and logged. Without any of these files ``available()`` is False and the
tiles fall back to the 5x7 bitmap font (``font.py``, accents folded, other scripts as ``?``),
with a warning.
"""
from __future__ import annotations

import functools
import logging
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, features

from media_worker.post.cmap import CmapError, Coverage

log = logging.getLogger("podium.worker.post")

# The system's fonts, else where Heroku's apt buildpack unpacks the same packages.
FONT_ROOT = next((r for r in (Path("/usr/share/fonts"), Path.home() / ".apt/usr/share/fonts")
                  if (r / "truetype/noto").is_dir()), Path("/usr/share/fonts"))
NOTO = FONT_ROOT / "truetype/noto"
NOTO_CJK = FONT_ROOT / "opentype/noto/NotoSansCJK-Regular.ttc"
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
LAYOUT = ImageFont.Layout.RAQM if features.check("raqm") else ImageFont.Layout.BASIC


@dataclass(frozen=True)
class Face:
    path: Path
    index: int = 0


def _chain() -> list[Face]:
    first = [Face(NOTO / "NotoSans-Regular.ttf"), Face(NOTO_CJK)]
    scripts = sorted(p for p in NOTO.glob("NotoSans*-Regular.ttf")
                     if p.name != "NotoSans-Regular.ttf" and "Mono" not in p.name) if NOTO.is_dir() else []
    return [f for f in first + [Face(p) for p in scripts] + [Face(DEJAVU)] if f.path.is_file()]


@functools.cache
def chain() -> tuple[Face, ...]:
    faces = tuple(_chain())
    if not faces:
        log.warning("no Noto or DejaVu font under /usr/share/fonts (scripts/setup.sh installs "
                    "fonts-noto-core and fonts-noto-cjk): names drawn in ASCII only")
    return faces


def available() -> bool:
    return bool(chain())


@functools.cache
def _coverage(face: Face) -> Coverage | None:
    try:
        return Coverage(face.path, face.index)
    except (OSError, CmapError) as exc:
        log.warning("font %s left out: %s", face.path, exc)
        return None


def has(face: Face, ch: str) -> bool:
    cov = _coverage(face)
    return cov is not None and cov.has(ord(ch))


def _sticks(ch: str) -> bool:
    """Marks and joiners belong to the character before them, whatever font has them."""
    return unicodedata.category(ch) in ("Mn", "Me", "Cf") or 0xFE00 <= ord(ch) <= 0xFE0F


@functools.cache
def face_for(ch: str) -> Face | None:
    """The first face of the chain that has ``ch``, or None."""
    return next((f for f in chain() if has(f, ch)), None)


def runs(text: str) -> list[tuple[str, Face]]:
    """``text`` cut into runs that one face draws (see the module docstring)."""
    out: list[list] = []
    for ch in text:
        if out and (has(out[-1][1], ch) or _sticks(ch)):
            out[-1][0] += ch
            continue
        face = face_for(ch)
        if face is None:
            log.info("no font has U+%04X; drawn as a box", ord(ch))
            face = chain()[0]
        if out and out[-1][1] == face:
            out[-1][0] += ch
        else:
            out.append([ch, face])
    return [(t, f) for t, f in out]


@functools.cache
def _font(face: Face, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(face.path), size, index=face.index, layout_engine=LAYOUT)


def covered(text: str) -> bool:
    """Every character of ``text`` has a glyph in some face of the chain."""
    return all(_sticks(ch) or face_for(ch) is not None for ch in text)


def width(text: str, size: int) -> int:
    return round(sum(_font(f, size).getlength(t) for t, f in runs(text)))


def fit(text: str, max_w: int, size: int) -> str:
    """``text`` shortened with '…' until it is at most ``max_w`` pixels wide at ``size``."""
    if width(text, size) <= max_w:
        return text
    while text and width(text + "…", size) > max_w:
        text = text[:-1]
    return text.rstrip() + "…" if text else ""


def draw(img: Image.Image, text: str, x: int, y: int, size: int, fill) -> None:
    """Draw ``text`` with its top at ``y`` (the line's ascent below it is the baseline)."""
    pen = ImageDraw.Draw(img)
    baseline = y + ascent(size)
    for run, face in runs(text):
        font = _font(face, size)
        pen.text((x, baseline), run, font=font, fill=fill, anchor="ls")
        x += round(font.getlength(run))


def ascent(size: int) -> int:
    return _font(chain()[0], size).getmetrics()[0]


def line_height(size: int) -> int:
    ascent_, descent = _font(chain()[0], size).getmetrics()
    return ascent_ + descent
