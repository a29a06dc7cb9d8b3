"""Which characters a font file has glyphs for: its ``cmap`` table (TrueType/OpenType, and one
face of a ``.ttc`` collection), read without a font library.

``Coverage(path, index).has(codepoint)`` is exact for the Unicode subtables fonts ship
(format 12, full Unicode; format 4, the BMP), which is what the name labels need to pick a
font per character. Raises ``CmapError`` for a file that is not a font or has no Unicode cmap.
"""
from __future__ import annotations

import bisect
import struct
from pathlib import Path


class CmapError(Exception):
    """Not a font file, or no Unicode cmap subtable."""


def _table(data: bytes, index: int, tag: bytes) -> int:
    """Offset of table ``tag`` of face ``index``."""
    base = 0
    if data[:4] == b"ttcf":
        count = struct.unpack_from(">I", data, 8)[0]
        if not 0 <= index < count:
            raise CmapError(f"no face {index} in a collection of {count}")
        base = struct.unpack_from(">I", data, 12 + 4 * index)[0]
    num = struct.unpack_from(">H", data, base + 4)[0]
    for i in range(num):
        rec_tag, _, offset, _ = struct.unpack_from(">4sIII", data, base + 12 + 16 * i)
        if rec_tag == tag:
            return offset
    raise CmapError(f"no {tag.decode()} table")


class Coverage:
    def __init__(self, path: str | Path, index: int = 0):
        try:
            data = Path(path).read_bytes()
            self._ranges = self._parse(data, _table(data, index, b"cmap"))
        except (struct.error, IndexError) as exc:
            raise CmapError(f"{path}: unreadable font ({exc})") from None
        self._starts = [r[0] for r in self._ranges]

    @staticmethod
    def _parse(data: bytes, cmap: int) -> list[tuple[int, int]]:
        """Sorted, merged ``(first, last)`` codepoint ranges that map to a real glyph."""
        count = struct.unpack_from(">H", data, cmap + 2)[0]
        best = None  # prefer a full-Unicode format 12 subtable to a BMP format 4 one
        for i in range(count):
            platform, encoding, offset = struct.unpack_from(">HHI", data, cmap + 4 + 8 * i)
            fmt = struct.unpack_from(">H", data, cmap + offset)[0]
            unicode = platform == 0 or (platform == 3 and encoding in (1, 10))
            if unicode and fmt == 12:
                best = (12, cmap + offset)
                break
            if unicode and fmt == 4 and best is None:
                best = (4, cmap + offset)
        if best is None:
            raise CmapError("no Unicode cmap subtable")
        fmt, at = best
        ranges = _format12(data, at) if fmt == 12 else _format4(data, at)
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted(ranges):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
            else:
                merged.append((lo, hi))
        return merged

    def has(self, codepoint: int) -> bool:
        i = bisect.bisect_right(self._starts, codepoint) - 1
        return i >= 0 and codepoint <= self._ranges[i][1]


def _format12(data: bytes, at: int) -> list[tuple[int, int]]:
    groups = struct.unpack_from(">I", data, at + 12)[0]
    out = []
    for g in range(groups):
        lo, hi, glyph = struct.unpack_from(">III", data, at + 16 + 12 * g)
        if glyph == 0:  # a group starting at .notdef: the rest of it has glyphs 1, 2, …
            lo += 1
        if lo <= hi:
            out.append((lo, hi))
    return out


def _format4(data: bytes, at: int) -> list[tuple[int, int]]:
    segs = struct.unpack_from(">H", data, at + 6)[0] // 2
    ends = struct.unpack_from(f">{segs}H", data, at + 14)
    starts = struct.unpack_from(f">{segs}H", data, at + 16 + 2 * segs)
    deltas = struct.unpack_from(f">{segs}h", data, at + 16 + 4 * segs)
    range_at = at + 16 + 6 * segs
    offsets = struct.unpack_from(f">{segs}H", data, range_at)
    out = []
    for s, (lo, hi, delta, ro) in enumerate(zip(starts, ends, deltas, offsets)):
        if lo == 0xFFFF:
            continue
        if ro == 0:  # glyph = c + delta: only the one c that lands on 0 is missing
            missing = -delta & 0xFFFF
            out.extend(r for r in ((lo, min(hi, missing - 1)), (max(lo, missing + 1), hi))
                       if r[0] <= r[1]) if lo <= missing <= hi else out.append((lo, hi))
            continue
        for c in range(lo, hi + 1):  # glyph ids read from glyphIdArray; 0 is "missing"
            glyph = struct.unpack_from(">H", data, range_at + 2 * s + ro + 2 * (c - lo))[0]
            if glyph and (glyph + delta) & 0xFFFF:
                out.append((c, c))
    return out
