"""``thumbnail.jpg``: one composite frame as a JPEG at most ``MAX_WIDTH`` pixels wide."""
from __future__ import annotations

import fractions
from pathlib import Path

import av

from media_worker.post.layout import even

MAX_WIDTH = 640


def write_jpeg(frame: av.VideoFrame, path: Path, max_width: int = MAX_WIDTH, quality: int = 4) -> tuple[int, int]:
    """Scale ``frame`` down to ``max_width`` (keeping its aspect) and write it as JPEG;
    returns the written size. ``quality`` is the MJPEG qscale (2 best .. 31 worst)."""
    scale = min(1.0, max_width / frame.width)
    w, h = even(frame.width * scale), even(frame.height * scale)
    small = frame.reformat(width=w, height=h, format="yuvj420p")
    ctx = av.CodecContext.create("mjpeg", "w")
    ctx.width, ctx.height = w, h
    ctx.pix_fmt = "yuvj420p"
    ctx.time_base = fractions.Fraction(1, 25)
    ctx.qmin = ctx.qmax = quality
    data = b"".join(bytes(p) for p in ctx.encode(small) + ctx.encode(None))
    tmp = path.with_suffix(".jpg.part")
    tmp.write_bytes(data)
    tmp.replace(path)
    return w, h
