"""Shared by the live-path tests (tests/worker/live/): real aiortc peers on loopback, encoded
frames from PyAV's encoders, and readers for what the recorder wrote."""
from __future__ import annotations

import asyncio
import fractions
import functools
import itertools
import json
import time
from pathlib import Path

import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender

import tests.rtcpeer  # noqa: F401  (gathers ICE candidates on 127.0.0.1 only)
from media_worker.live import EncodedFrame, add_recvonly_transceivers
from tests.rtcpeer import VIDEO_CLOCK, PatternVideoTrack, ToneAudioTrack, loopback_configuration

FPS = 30


# -- real peers -------------------------------------------------------------------------------
class SwitchingVideoTrack(MediaStreamTrack):
    """The moving test pattern at ``sizes[0]``, switching to ``sizes[1]`` after
    ``switch_after`` frames, with continuous timestamps (aiortc's encoder then restarts with a
    keyframe at the new size, as a browser does when it ramps resolution)."""

    kind = "video"

    def __init__(self, sizes: list[tuple[int, int]], switch_after: int, fps: int = FPS):
        super().__init__()
        self._tracks = [PatternVideoTrack(w, h, fps) for w, h in sizes]
        self._switch_after, self._fps, self._n = switch_after, fps, 0

    async def recv(self) -> av.VideoFrame:
        inner = self._tracks[min(self._n // self._switch_after, len(self._tracks) - 1)]
        frame = await inner.recv()
        frame.pts = self._n * VIDEO_CLOCK // self._fps
        self._n += 1
        return frame


def sender_pc(video: MediaStreamTrack | None, *, audio: bool = True, codec: str = "vp8") -> RTCPeerConnection:
    """A browser-like sender: sends ``video`` (in ``codec``) and a tone, receives nothing."""
    pc = RTCPeerConnection(loopback_configuration())
    if audio:
        pc.addTrack(ToneAudioTrack())
    if video is not None:
        pc.addTrack(video)
        wanted = (f"video/{codec}", "video/rtx")
        codecs = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType.lower() in wanted]
        next(t for t in pc.getTransceivers() if t.kind == "video").setCodecPreferences(codecs)
    return pc


def recorder_pc() -> RTCPeerConnection:
    pc = RTCPeerConnection(loopback_configuration())
    add_recvonly_transceivers(pc)
    return pc


async def negotiate(recorder: RTCPeerConnection, sender: RTCPeerConnection) -> None:
    """The recorder offers (recvonly), the sender answers; aiortc puts every candidate in the SDP."""
    await recorder.setLocalDescription(await recorder.createOffer())
    await sender.setRemoteDescription(recorder.localDescription)
    await sender.setLocalDescription(await sender.createAnswer())
    await recorder.setRemoteDescription(sender.localDescription)


async def close_all(*pcs: RTCPeerConnection) -> None:
    for pc in pcs:
        await pc.close()


async def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


# -- reading results --------------------------------------------------------------------------
def read_events(directory: Path) -> list[dict]:
    """Every line of events.jsonl, each a JSON object with a float ``t`` and a ``type``."""
    lines = (directory / "events.jsonl").read_text(encoding="utf-8").splitlines()
    events = [json.loads(line) for line in lines]
    for e in events:
        assert isinstance(e["t"], float) and isinstance(e["type"], str), e
    return events


def decode(path: Path, *, tolerate_truncation: bool = False) -> dict:
    """Decode the single stream of ``path``: per frame (seconds, key, width, height) for video or
    (seconds, samples) for audio, the packet count, codec name and extradata."""
    frames, packets = [], 0
    with av.open(str(path)) as c:
        stream = c.streams[0]
        assert len(c.streams) == 1
        info = {"codec": stream.codec_context.name, "extradata": stream.codec_context.extradata,
                "time_base": stream.time_base}
        try:
            for packet in c.demux(stream):
                if packet.size:
                    packets += 1
                for f in packet.decode():
                    if stream.type == "video":
                        frames.append((float(f.pts * f.time_base), f.key_frame, f.width, f.height))
                    else:
                        frames.append((float(f.pts * f.time_base), f.samples))
        except av.FFmpegError:
            if not tolerate_truncation:
                raise
    info.update(frames=frames, packets=packets)
    return info


def assert_monotonic(times: list[float]) -> None:
    assert all(b > a for a, b in itertools.pairwise(times)), times


# -- encoded frames without a peer ------------------------------------------------------------
@functools.cache
def encoded_video(codec: str, width: int, height: int, count: int,
                  gop: int = 0) -> tuple[tuple[bytes, bool], ...]:
    """``count`` frames of a moving ramp encoded with libvpx/libx264, as (data, keyframe)."""
    ctx = av.CodecContext.create({"vp8": "libvpx", "h264": "libx264"}[codec], "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base, ctx.framerate = fractions.Fraction(1, FPS), FPS
    ctx.bit_rate = 1_500_000
    ctx.gop_size = gop or 3000
    if codec == "h264":
        ctx.options = {"tune": "zerolatency"}
    else:  # aiortc's real-time CBR settings (aiortc/codecs/vpx.py)
        ctx.options = {"deadline": "realtime", "cpu-used": "-6", "lag-in-frames": "0",
                       "bufsize": "1500000", "minrate": "1500000", "maxrate": "1500000",
                       "static-thresh": "1", "undershoot-pct": "100", "overshoot-pct": "15"}
    out = []
    for i in range(count + 1):
        frame = None
        if i < count:
            frame = av.VideoFrame(width, height, "yuv420p")
            for plane in frame.planes:
                ramp = bytes((j + 4 * i) & 0xFF for j in range(251))
                plane.update((ramp * (plane.buffer_size // 251 + 1))[:plane.buffer_size])
            frame.pts = i
        out.extend((bytes(p), p.is_keyframe) for p in ctx.encode(frame))
    return tuple(out[:count])


def frames(packets, *, codec: str, kind: str = "video", start_ts: int = 0, step: int = 3000,
           t0: float = 1000.0, dt: float = 1 / FPS) -> list[EncodedFrame]:
    """EncodedFrames as a tapped receiver makes them: RTP timestamps ``start_ts + i*step``
    (wrapped to 32 bits), arrival every ``dt`` seconds."""
    return [EncodedFrame(kind, codec, data, (start_ts + i * step) & 0xFFFFFFFF, key,
                         t0 + i * dt, t0 + i * dt)
            for i, (data, key) in enumerate(packets)]
