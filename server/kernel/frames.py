"""Encode a server event once into a ready-to-write WebSocket text frame (RFC 6455 §5.2).

Server-to-client frames are unmasked and we do not negotiate compression, so the bytes are
the same for every recipient: a broadcast serialises and frames once and each recipient costs
one stream write (ARCHITECTURE principle 6).
"""
from __future__ import annotations

import json
import struct

_FIN_TEXT = 0x81
# One encoder for every event (``json.dumps`` with arguments builds one per call).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def encode(event: dict) -> bytes:
    """JSON-encode ``event`` compactly as UTF-8."""
    return _ENCODER.encode(event).encode()


def text_frame(payload: bytes) -> bytes:
    """Wrap ``payload`` in one final, unmasked text frame."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", _FIN_TEXT, n)
    elif n <= 0xFFFF:
        header = struct.pack("!BBH", _FIN_TEXT, 126, n)
    else:
        header = struct.pack("!BBQ", _FIN_TEXT, 127, n)
    return header + payload


def event_frame(event: dict) -> bytes:
    return text_frame(encode(event))


def split_frames(frame: bytes, seqs: list) -> list[tuple[int, bytes]]:
    """``(seq, frame)`` of each ``message.new`` frame in a buffer of several, given their
    ``(seq, byte length)`` in order."""
    items, pos = [], 0
    for seq, length in seqs:
        items.append((seq, frame[pos:pos + length]))
        pos += length
    return items
