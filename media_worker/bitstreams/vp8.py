"""VP8 frame headers (RFC 6386 §9.1): keyframe flag and keyframe dimensions, without decoding."""
from __future__ import annotations

_START_CODE = b"\x9d\x01\x2a"


def is_keyframe(frame: bytes) -> bool:
    """True if ``frame`` (one complete VP8 frame as depayloaded by aiortc) is a keyframe: the
    frame tag's P bit is 0 and the keyframe start code follows it. The start code check keeps a
    truncated frame (one that lost its first packets) from passing as a keyframe."""
    return len(frame) >= 10 and not frame[0] & 1 and frame[3:6] == _START_CODE


def keyframe_size(frame: bytes) -> tuple[int, int] | None:
    """``(width, height)`` of a VP8 keyframe, ``None`` for anything else. The two upper bits of
    each 16-bit field are the scaling mode, not part of the size."""
    if not is_keyframe(frame):
        return None
    width = (frame[6] | frame[7] << 8) & 0x3FFF
    height = (frame[8] | frame[9] << 8) & 0x3FFF
    return (width, height) if width and height else None
