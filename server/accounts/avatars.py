"""Avatar images: an uploaded picture checked and turned into small square WebP images with
Pillow. No I/O and no event loop here (callers run ``render_avatar`` in an executor); storing
and serving them is ``accounts/avatar_store.py``.

What is refused, before anything is decoded or stored: more than MAX_AVATAR_BYTES (413), bytes
that are not a PNG, JPEG, GIF or WebP image (415), and images over MAX_AVATAR_SIDE pixels a
side or MAX_AVATAR_PIXELS in all (413) — read from the header, so a decompression bomb (a tiny
file that decodes to gigabytes) is refused without being decoded.
"""
from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from server.kernel.errors import PodiumError, TooLarge

AVATAR_SIZES = (64, 256)  # square sides in pixels: lists and messages, the profile
MAX_AVATAR_BYTES = 5 * 1024 * 1024
MAX_AVATAR_SIDE = 8000
MAX_AVATAR_PIXELS = 25_000_000
FORMATS = ("PNG", "JPEG", "GIF", "WEBP")
CONTENT_TYPE = "image/webp"


class NotAnImage(PodiumError):
    code = "unsupported_media_type"


def render_avatar(data: bytes) -> dict[int, bytes]:
    """``{side: WebP bytes}`` for every side in AVATAR_SIZES: the picture upright (EXIF
    orientation applied), cropped to its centre square and resized, metadata dropped.
    Raises TooLarge or NotAnImage as the module says."""
    if len(data) > MAX_AVATAR_BYTES:
        raise TooLarge(f"an avatar is at most {MAX_AVATAR_BYTES // (1024 * 1024)} MB")
    with warnings.catch_warnings():
        # Pillow warns (and past twice its own limit raises) for huge images: both refuse here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=FORMATS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise TooLarge(f"the image is too large: at most {MAX_AVATAR_PIXELS:,} pixels") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            raise NotAnImage("the avatar must be a PNG, JPEG, GIF or WebP image") from None
        with img:
            width, height = img.size
            if width > MAX_AVATAR_SIDE or height > MAX_AVATAR_SIDE or width * height > MAX_AVATAR_PIXELS:
                raise TooLarge(f"the image is {width}x{height} pixels: at most {MAX_AVATAR_SIDE} a side "
                               f"and {MAX_AVATAR_PIXELS:,} in all")
            if img.format == "JPEG":
                img.draft("RGB", (max(AVATAR_SIZES) * 2, max(AVATAR_SIZES) * 2))  # decode at a reduced scale
            try:
                img.load()
                upright = ImageOps.exif_transpose(img)
            except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning):
                raise NotAnImage("the image is damaged or truncated") from None
    upright = upright.convert("RGBA" if "A" in upright.getbands() or "transparency" in upright.info else "RGB")
    out: dict[int, bytes] = {}
    for side in AVATAR_SIZES:
        square = ImageOps.fit(upright, (side, side), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        square.save(buf, "WEBP", quality=85, method=4)
        out[side] = buf.getvalue()
    return out
