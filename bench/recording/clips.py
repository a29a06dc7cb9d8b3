"""Pre-encoded media for the recording benchmark: a short clip of the moving test pattern,
encoded once with PyAV, then replayed in real time by aiortc tracks that return ``av.Packet``
(aiortc's sender then only packetizes: no encoder runs on the sending side).

Why pre-encoded: encoding 720p30 VP8 in real time costs the sender about a core per stream
on this machine, so real encoding could not feed even one MediaRecorder run and the recorder
under test at the same time, let alone 40 streams. The bytes on the wire are the same as a
live encoder's (libvpx with aiortc's real-time CBR settings; Opus 20 ms packets).

A clip starts with its only keyframe and is looped with continuing timestamps, so a stream
has a keyframe every ``seconds`` (a keyframe request from the receiver is not honoured: the
clip cannot make one on demand).
"""
from __future__ import annotations

import asyncio
import fractions
import pickle
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.mediapattern import audio_frame_at, video_frame_at  # noqa: E402

VIDEO_CLOCK = 90000
AUDIO_RATE = 48000
OPUS_SAMPLES = 960  # 20 ms
VIDEO_TB = fractions.Fraction(1, VIDEO_CLOCK)
AUDIO_TB = fractions.Fraction(1, AUDIO_RATE)


@dataclass(frozen=True)
class Clip:
    """Encoded frames of one stream, in decoding order, the first a keyframe."""

    codec: str  # vp8 | h264 | opus
    width: int
    height: int
    fps: float  # frames (packets) per second
    frames: tuple[tuple[bytes, bool], ...]  # (data, keyframe)

    @property
    def bitrate(self) -> float:
        """Bits per second when played at ``fps``."""
        return sum(len(d) for d, _ in self.frames) * 8 * self.fps / len(self.frames)


def encode_video(codec: str, width: int, height: int, fps: int, seconds: float, bitrate: int,
                 gop_s: float = 0.0) -> Clip:
    """``seconds`` of the moving pattern (tests/mediapattern.py, with its white flash once a
    second). VP8 with aiortc's real-time CBR options (aiortc/codecs/vpx.py); H.264 with
    libx264 baseline/zerolatency (Annex B access units, parameter sets in band, as WebRTC
    delivers them). One keyframe at the start, plus one every ``gop_s`` when given."""
    ctx = av.CodecContext.create({"vp8": "libvpx", "h264": "libx264"}[codec], "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base, ctx.framerate = fractions.Fraction(1, fps), fps
    ctx.bit_rate = bitrate
    count = round(seconds * fps)
    ctx.gop_size = round(gop_s * fps) if gop_s else count + 1
    if codec == "vp8":
        ctx.options = {"deadline": "realtime", "cpu-used": "-6", "lag-in-frames": "0",
                       "bufsize": str(bitrate), "minrate": str(bitrate), "maxrate": str(bitrate),
                       "static-thresh": "1", "undershoot-pct": "100", "overshoot-pct": "15"}
    else:
        ctx.options = {"preset": "veryfast", "tune": "zerolatency", "profile": "baseline",
                       "maxrate": str(bitrate), "bufsize": str(bitrate)}
    out: list[tuple[bytes, bool]] = []
    for i in range(count + 1):
        frame = None
        if i < count:
            frame = video_frame_at(i / fps, width, height, fps)
            frame.pts = i
        out.extend((bytes(p), bool(p.is_keyframe)) for p in ctx.encode(frame))
    return Clip(codec, width, height, fps, tuple(out[:count]))


def encode_opus(seconds: float) -> Clip:
    """``seconds`` of the pattern's beep track as 20 ms Opus packets (stereo, 48 kHz)."""
    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate, enc.layout, enc.format, enc.time_base = AUDIO_RATE, "stereo", "s16", AUDIO_TB
    count = round(seconds * AUDIO_RATE / OPUS_SAMPLES)
    out: list[tuple[bytes, bool]] = []
    for i in range(count + 1):
        frame = None
        if i < count:
            frame = audio_frame_at(i * OPUS_SAMPLES / AUDIO_RATE, OPUS_SAMPLES, layout="stereo")
            frame.pts, frame.time_base = i * OPUS_SAMPLES, AUDIO_TB
        out.extend((bytes(p), True) for p in enc.encode(frame))
    return Clip("opus", 0, 0, AUDIO_RATE / OPUS_SAMPLES, tuple(out[:count]))


def cached(path: Path, make) -> Clip:
    """The clip pickled at ``path``, made by ``make()`` the first time."""
    if path.exists():
        return pickle.loads(path.read_bytes())
    clip = make()
    path.write_bytes(pickle.dumps(clip))
    return clip


def load(path: str | Path) -> Clip:
    return pickle.loads(Path(path).read_bytes())


# -- replay as aiortc tracks ------------------------------------------------------------------
class ReplayTrack(MediaStreamTrack):
    """Plays ``clip`` in a loop, paced in real time, as ``av.Packet`` objects (aiortc's
    sender packetizes them without encoding). ``sent`` counts packets handed to the sender;
    ``late_s`` is the largest delay behind the schedule seen (the sender's loop falling
    behind)."""

    def __init__(self, clip: Clip):
        super().__init__()
        self.kind = "audio" if clip.codec == "opus" else "video"
        self.clip = clip
        self.sent = 0
        self.late_s = 0.0
        self._step = round((VIDEO_CLOCK if self.kind == "video" else AUDIO_RATE) / clip.fps)
        self._tb = VIDEO_TB if self.kind == "video" else AUDIO_TB
        self._start: float | None = None

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        else:
            due = self._start + self.sent / self.clip.fps
            if due > now:
                await asyncio.sleep(due - now)
            else:
                self.late_s = max(self.late_s, now - due)
        data, key = self.clip.frames[self.sent % len(self.clip.frames)]
        packet = av.Packet(data)
        packet.pts = self.sent * self._step
        packet.time_base = self._tb
        packet.is_keyframe = key
        self.sent += 1
        return packet
