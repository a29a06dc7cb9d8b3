"""Shared by the post-processing tests (tests/worker/post/): decoding and reading the outputs.

Every recording in these tests is written with real encoders (VP8, H.264, Opus) through
tests/mediapattern.py, following docs/RECORDING.md, and its outputs are decoded with PyAV.
Audio and video carry a synchronised pattern (a white flash and a 1 kHz beep at the same
instants of the recording clock), so alignment is measured, not assumed.
"""
from __future__ import annotations

import re
from pathlib import Path

import av

from tests.mediapattern import beep_times, decode_audio_mono, flash_times

SYNC_LIMIT_S = 0.08
CHATS = [
    (1.0, 1, "u1", "Alice Teacher", "Welcome & hello <everyone>"),
    (3.5, 2, "u2", "Bob <B>", "a --> b"),
    (6.0, 3, "u1", "Alice Teacher", "line one\n\nline two"),
]


def decode_video(path: Path) -> list[tuple[float, av.VideoFrame]]:
    """Every frame of the first video stream with its time in seconds."""
    with av.open(str(path)) as c:
        return [(float(f.time), f) for f in c.decode(video=0)]


def frame_at(frames, t: float) -> av.VideoFrame:
    """The decoded frame nearest to ``t``."""
    return min(frames, key=lambda tf: abs(tf[0] - t))[1]


def by_kind(assets: list[dict]) -> dict[str, list[dict]]:
    """Assets grouped by ``kind``, in list order."""
    out: dict[str, list[dict]] = {}
    for a in assets:
        out.setdefault(a["kind"], []).append(a)
    return out


def parse_vtt(text: str) -> list[dict]:
    """A strict-enough WebVTT reader: header, cue blocks, timings, ``<v>`` spans."""
    assert text.startswith("WEBVTT\n")

    def secs(stamp: str) -> float:
        h, m, s = stamp.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)

    cues = []
    for block in text.split("\n\n")[1:]:
        lines = block.strip("\n").split("\n")
        if not lines or not lines[0]:
            continue
        if "-->" not in lines[0]:
            lines = lines[1:]
        m = re.fullmatch(r"(\d\d:\d\d:\d\d\.\d\d\d) --> (\d\d:\d\d:\d\d\.\d\d\d)", lines[0])
        assert m, lines[0]
        payload = "\n".join(lines[1:])
        assert "-->" not in payload and payload.strip()
        spans = re.findall(r"<v ([^>]*)>(.*?)</v>", payload, re.DOTALL)
        assert re.sub(r"<v [^>]*>.*?</v>", "", payload, flags=re.DOTALL).strip() == ""

        def unescape(s: str) -> str:
            assert "<" not in s and ">" not in s
            return s.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")

        cues.append({"start": secs(m[1]), "end": secs(m[2]),
                     "voices": [(unescape(n), unescape(t)) for n, t in spans]})
    return cues


def assert_in_sync(mp4: Path, cells: list[tuple[tuple[int, int, int, int], float, float]]) -> None:
    """Each (region, track start, pattern phase): the region flashes on the pattern's
    schedule after the track starts, and each flash has a beep within 80 ms."""
    frames = decode_video(mp4)
    samples, start = decode_audio_mono(mp4)
    beeps = [start + b for b in beep_times(samples)]
    for region, begins, phase in cells:
        flashes = flash_times(frames, region)
        assert flashes
        for t in flashes:
            assert t > begins and abs(t - phase - round(t - phase)) < SYNC_LIMIT_S, (t, phase)
            assert min(abs(t - b) for b in beeps) < SYNC_LIMIT_S, (t, beeps)


def mean_yuv(frame: av.VideoFrame, region: tuple[int, int, int, int], step: int = 2) -> tuple[float, float, float]:
    """Mean (Y, U, V) over ``region`` (x, y, w, h) of a yuv420p frame (chroma at half size)."""
    x, y, w, h = region
    out = []
    for i, plane in enumerate(frame.planes[:3]):
        d = 1 if i == 0 else 2
        data, ls = bytes(plane), plane.line_size
        values = [v for r in range(y // d, (y + h) // d, step)
                  for v in data[r * ls + x // d:r * ls + (x + w) // d:step]]
        out.append(sum(values) / max(1, len(values)))
    return out[0], out[1], out[2]


def near(color: tuple[float, float, float], want: tuple[int, int, int], tol: float = 12) -> bool:
    """Every component of ``color`` within ``tol`` of ``want``."""
    return all(abs(a - b) <= tol for a, b in zip(color, want))
