"""Still pictures: name tiles and name labels.

Names are drawn in any script with the Noto fonts (``text.py``, Pillow); on a machine without
them, with the 5x7 bitmap font (``font.py``: ASCII, accents folded). A ``Picture`` is a tightly
packed yuv420p image (BT.601 limited range, what WebRTC decoders give), with even width and
height so it blits onto the canvas on chroma boundaries.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

from PIL import Image

from media_worker.post import font, text

WHITE = (235, 128, 128)
BLACK = (16, 128, 128)


def rgb_to_yuv(r: int, g: int, b: int) -> tuple[int, int, int]:
    """BT.601 limited-range YCbCr of an 8-bit RGB colour."""
    y = 16 + (65.738 * r + 129.057 * g + 25.064 * b) / 256
    u = 128 + (-37.945 * r - 74.494 * g + 112.439 * b) / 256
    v = 128 + (112.439 * r - 94.154 * g - 18.285 * b) / 256
    return round(y), round(u), round(v)


# Muted tile backgrounds; a participant keeps one colour for the whole recording.
PALETTE_RGB = ((52, 73, 94), (39, 96, 83), (102, 56, 86), (94, 74, 40),
               (44, 62, 110), (90, 48, 48), (60, 84, 48), (72, 58, 104))
PALETTE = tuple(rgb_to_yuv(*c) for c in PALETTE_RGB)


@dataclass
class Picture:
    width: int
    height: int
    y: bytes
    u: bytes
    v: bytes


class _Canvas:
    """A mutable yuv420p buffer to draw into, then frozen as a Picture."""

    def __init__(self, w: int, h: int, color: tuple[int, int, int]):
        self.w, self.h = w, h
        self.y = bytearray([color[0]]) * (w * h)
        self.u = bytearray([color[1]]) * ((w // 2) * (h // 2))
        self.v = bytearray([color[2]]) * ((w // 2) * (h // 2))

    def text(self, text: str, x: int, y: int, scale: int, color: tuple[int, int, int]) -> None:
        cw = self.w // 2
        for i, ch in enumerate(text):
            gx = x + i * (font.WIDTH + 1) * scale
            for row, bits in enumerate(font.glyph(ch)):
                py = y + row * scale
                for col, on in enumerate(bits):
                    if not on:
                        continue
                    px = gx + col * scale
                    for dy in range(scale):
                        if 0 <= py + dy < self.h:
                            lo, hi = max(0, px), min(self.w, px + scale)
                            if lo < hi:
                                start = (py + dy) * self.w
                                self.y[start + lo:start + hi] = bytes([color[0]]) * (hi - lo)
                                c0 = ((py + dy) // 2) * cw
                                n = (hi + 1) // 2 - lo // 2
                                self.u[c0 + lo // 2:c0 + lo // 2 + n] = bytes([color[1]]) * n
                                self.v[c0 + lo // 2:c0 + lo // 2 + n] = bytes([color[2]]) * n

    def picture(self) -> Picture:
        return Picture(self.w, self.h, bytes(self.y), bytes(self.u), bytes(self.v))


def text_width(text: str, scale: int) -> int:
    return max(0, len(text) * (font.WIDTH + 1) - 1) * scale


def _fit_text(text: str, max_w: int, scale: int) -> str:
    """``text`` shortened with '...' until it is at most ``max_w`` pixels wide."""
    if text_width(text, scale) <= max_w:
        return text
    while text and text_width(text + "...", scale) > max_w:
        text = text[:-1]
    return text.rstrip() + "..." if text else ""


def color_for(key: str) -> tuple[int, int, int]:
    return PALETTE[_palette_index(key)]


def _palette_index(key: str) -> int:
    return zlib.crc32(key.encode()) % len(PALETTE)


def _lut(lo: int, span: int) -> list[int]:
    return [round(lo + v * span / 255) for v in range(256)]


_Y_LUT, _C_LUT = _lut(16, 219), _lut(16, 224)  # full-range JPEG YCbCr -> limited range


def to_picture(img: Image.Image) -> Picture:
    """An RGB image of even size as a limited-range BT.601 yuv420p Picture."""
    y, cb, cr = img.convert("YCbCr").split()
    half = (img.width // 2, img.height // 2)
    return Picture(img.width, img.height, y.point(_Y_LUT).tobytes(),
                   cb.resize(half, Image.Resampling.BOX).point(_C_LUT).tobytes(),
                   cr.resize(half, Image.Resampling.BOX).point(_C_LUT).tobytes())


WHITE_RGB, BLACK_RGB = (255, 255, 255), (0, 0, 0)


def name_tile(name: str, width: int, height: int, key: str = "") -> Picture:
    """A ``width``x``height`` tile: the participant's colour with their name centred, as large
    as fits (text at most 1/6 of the height, 85 % of the width)."""
    if text.available():
        label = " ".join(name.split()) or "?"
        size = max(8, height // 7)
        w = text.width(label, size)
        if w > width * 0.85:
            size = max(8, int(size * width * 0.85 / w))
        label = text.fit(label, int(width * 0.9), size)
        img = Image.new("RGB", (width, height), PALETTE_RGB[_palette_index(key or name)])
        text.draw(img, label, (width - text.width(label, size)) // 2,
                  (height - text.line_height(size)) // 2, size, WHITE_RGB)
        return to_picture(img)
    text_ = font.fold(name).strip() or "?"
    scale = max(1, min(int(width * 0.85) // max(1, text_width(text_, 1)),
                       height // (font.HEIGHT * 6)))
    text_ = _fit_text(text_, int(width * 0.9), scale)
    canvas = _Canvas(width, height, color_for(key or name))
    x = (width - text_width(text_, scale)) // 2
    y = (height - font.HEIGHT * scale) // 2
    canvas.text(text_, x, y, scale, WHITE)
    return canvas.picture()


def name_label(name: str, cell_w: int, cell_h: int) -> Picture:
    """A small white-on-black caption with the name, at most ``cell_w`` wide, for the
    bottom-left corner of a video picture (about 1/16 of the cell height)."""
    if text.available():
        size = max(11, round(cell_h / 20))
        pad = max(2, size // 5)
        label = text.fit(" ".join(name.split()) or "?", max(0, cell_w - 2 * pad - 4), size)
        w = max(2, min(cell_w, (text.width(label, size) + 2 * pad + 1) // 2 * 2))
        h = max(2, min(cell_h, (text.line_height(size) + 2 * pad + 1) // 2 * 2))
        img = Image.new("RGB", (w, h), BLACK_RGB)
        text.draw(img, label, pad, pad, size, WHITE_RGB)
        return to_picture(img)
    scale = max(1, round(cell_h / 180))
    pad = 2 * scale
    text_ = _fit_text(font.fold(name).strip() or "?", max(0, cell_w - 2 * pad - 4), scale)
    w = min(cell_w, (text_width(text_, scale) + 2 * pad + 1) // 2 * 2)
    h = (font.HEIGHT * scale + 2 * pad + 1) // 2 * 2
    canvas = _Canvas(max(2, w), min(cell_h, h), BLACK)
    canvas.text(text_, pad, pad, scale, WHITE)
    return canvas.picture()
