"""Opus packets (RFC 6716 §3.1) and the Matroska ``OpusHead`` (RFC 7845 §5.1)."""
from __future__ import annotations

import struct

# Frame size in 48 kHz samples for each TOC configuration number (RFC 6716 table 2).
_FRAME_SAMPLES = (
    [480, 960, 1920, 2880] * 3  # SILK NB, MB, WB: 10, 20, 40, 60 ms
    + [480, 960] * 2  # hybrid SWB, FB: 10, 20 ms
    + [120, 240, 480, 960] * 4  # CELT NB, WB, SWB, FB: 2.5, 5, 10, 20 ms
)


def packet_samples(packet: bytes) -> int:
    """Duration of one Opus packet in 48 kHz samples; 0 if the packet is malformed."""
    if not packet:
        return 0
    toc = packet[0]
    per_frame = _FRAME_SAMPLES[toc >> 3]
    code = toc & 3
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
    elif len(packet) < 2:
        return 0
    else:
        frames = packet[1] & 0x3F
    return per_frame * frames


def opus_head(channels: int = 2, input_rate: int = 48000) -> bytes:
    """An ``OpusHead`` with pre-skip 0: what WebRTC sends has no encoder delay to trim, so the
    first decoded sample belongs to ``pts = 0``."""
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, 0, input_rate, 0, 0)
