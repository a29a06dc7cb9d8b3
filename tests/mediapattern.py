"""A synchronised audio/video test pattern, its detectors, and synthetic recording directories.

The pattern is a function of absolute time ``t`` (seconds on whatever clock the test chooses,
usually the recording clock), so two sources started at different moments still flash and
beep at the same instants:

* video: a moving diagonal ramp (mid-dark grey, mean luma ~80) except for one frame period at
  each ``k + phase`` seconds, where the whole frame is white (luma 235);
* audio: silence except a ``BEEP_S`` 1 kHz beep starting at each ``k + phase`` seconds.

Detectors find flash and beep onsets in decoded media, so a test can measure audio-to-video
offset. numpy is not a dependency: audio samples are ``array.array('h')`` (mono s16).

``RecordingDir`` writes a recording directory the way docs/RECORDING.md specifies (the live
path's output): encoded VP8/H.264/Opus packets remuxed into ``tracks/<track>.mkv`` with pts
relative to the first frame in the 1/90000 and 1/48000 clocks, plus ``events.jsonl``.
"""
from __future__ import annotations

import array
import fractions
import json
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import av

VIDEO_CLOCK = 90000
AUDIO_RATE = 48000
FLASH_LUMA = 235
BEEP_S = 0.05
BEEP_HZ = 1000
BEEP_AMPLITUDE = 0.5
_EPS = 1e-5  # above float error at epoch magnitude (ulp 2.4e-7), below half an audio sample


# -- the pattern --------------------------------------------------------------------------------
def flash_at(t: float, fps: float, phase: float = 0.0) -> bool:
    """Whether the frame shown from ``t`` for ``1/fps`` covers an event ``k + phase``."""
    nxt = math.ceil(t - phase - _EPS) + phase
    return nxt < t + 1 / fps - _EPS


_RAMP = bytes(16 + (k % 128) for k in range(4096))


def video_frame_at(t: float, w: int, h: int, fps: float = 15, phase: float = 0.0) -> av.VideoFrame:
    """The pattern's frame at ``t`` (yuv420p, ``w``x``h``, pts unset)."""
    frame = av.VideoFrame(w, h, "yuv420p")
    y = frame.planes[0]
    if flash_at(t, fps, phase):
        y.update(bytes([FLASH_LUMA]) * y.buffer_size)
    else:
        shift = int(t * 60) % 128
        ls = y.line_size
        y.update(b"".join(_RAMP[(r + shift) % 128:(r + shift) % 128 + ls] for r in range(h)))
    for plane in frame.planes[1:]:
        plane.update(bytes([128]) * plane.buffer_size)
    return frame


def _beep_value(t: float, phase: float) -> float:
    k = math.floor(t - phase + _EPS)
    since = t - (k + phase)
    if 0 <= since < BEEP_S:
        return BEEP_AMPLITUDE * math.sin(2 * math.pi * BEEP_HZ * since)
    return 0.0


def audio_samples_at(t0: float, n: int, rate: int = AUDIO_RATE, phase: float = 0.0) -> array.array:
    """``n`` mono s16 samples of the pattern starting at ``t0``."""
    return array.array("h", (int(32767 * _beep_value(t0 + i / rate, phase)) for i in range(n)))


def audio_frame_at(t0: float, n: int, rate: int = AUDIO_RATE, phase: float = 0.0,
                   layout: str = "mono") -> av.AudioFrame:
    """The pattern as an ``av.AudioFrame`` (s16, ``layout`` mono or stereo, pts unset)."""
    mono = audio_samples_at(t0, n, rate, phase)
    if layout == "stereo":
        data = array.array("h", (s for s in mono for _ in (0, 1)))
    else:
        data = mono
    frame = av.AudioFrame(format="s16", layout=layout, samples=n)
    frame.planes[0].update(data.tobytes())
    frame.sample_rate = rate
    return frame


TALK_HZ = 440


def tone_frame_at(t0: float, n: int, rate: int = AUDIO_RATE) -> av.AudioFrame:
    """``n`` stereo s16 samples of a steady ``TALK_HZ`` tone at ``BEEP_AMPLITUDE`` from ``t0``
    (a participant talking, for the speaker detection)."""
    mono = [int(32767 * BEEP_AMPLITUDE * math.sin(2 * math.pi * TALK_HZ * (t0 + i / rate)))
            for i in range(n)]
    frame = av.AudioFrame(format="s16", layout="stereo", samples=n)
    frame.planes[0].update(array.array("h", (s for s in mono for _ in (0, 1))).tobytes())
    frame.sample_rate = rate
    return frame


def solid_frame(w: int, h: int, yuv: tuple[int, int, int]) -> av.VideoFrame:
    """A ``w``x``h`` yuv420p frame of one colour (a shared screen's content)."""
    frame = av.VideoFrame(w, h, "yuv420p")
    for plane, value in zip(frame.planes, yuv):
        plane.update(bytes([value]) * plane.buffer_size)
    return frame


# -- detectors ----------------------------------------------------------------------------------
def mean_luma(frame: av.VideoFrame, region: tuple[int, int, int, int] | None = None,
              step: int = 4) -> float:
    """Mean of the Y plane over ``region`` (x, y, w, h), sampling every ``step`` pixels."""
    if frame.format.name not in ("yuv420p", "yuvj420p"):
        frame = frame.reformat(format="yuv420p")
    x, y, w, h = region or (0, 0, frame.width, frame.height)
    plane = frame.planes[0]
    data, ls = bytes(plane), plane.line_size
    total = count = 0
    for r in range(y, y + h, step):
        row = data[r * ls + x:r * ls + x + w:step]
        total += sum(row)
        count += len(row)
    return total / max(1, count)


def flash_times(frames: Iterable[tuple[float, av.VideoFrame]],
                region: tuple[int, int, int, int] | None = None,
                threshold: float = 170) -> list[float]:
    """Times of the first bright frame of each run of bright frames (a flash onset)."""
    onsets, bright = [], False
    for t, frame in frames:
        now = mean_luma(frame, region) > threshold
        if now and not bright:
            onsets.append(t)
        bright = now
    return onsets


def beep_times(samples: Sequence[int], rate: int = AUDIO_RATE, threshold: int = 3000,
               min_gap_s: float = 0.3) -> list[float]:
    """Onsets of beeps in mono s16 ``samples``: the first sample above ``threshold`` after at
    least ``min_gap_s`` below it."""
    block = max(1, rate // 1000)
    onsets: list[float] = []
    last_loud = -math.inf
    for b in range(0, len(samples), block):
        chunk = samples[b:b + block]
        if not chunk or max(max(chunk), -min(chunk)) <= threshold:
            continue
        first = next(i for i, s in enumerate(chunk) if abs(s) > threshold) + b
        if (first - last_loud) / rate >= min_gap_s:
            onsets.append(first / rate)
        last_loud = b + len(chunk) - 1
    return onsets


def decode_audio_mono(path: str | Path, rate: int = AUDIO_RATE) -> tuple[array.array, float]:
    """All audio of ``path``'s first audio stream as mono s16 at ``rate``, and the time of the
    first decoded sample."""
    out = array.array("h")
    start = None
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    with av.open(str(path)) as c:
        for frame in c.decode(audio=0):
            if start is None:
                start = float(frame.time or 0.0)
            for r in resampler.resample(frame):
                out.frombytes(bytes(r.planes[0])[:r.samples * 2])
        for r in resampler.resample(None):
            out.frombytes(bytes(r.planes[0])[:r.samples * 2])
    return out, start or 0.0


# -- synthetic recording directories (docs/RECORDING.md) ----------------------------------------
class RecordingDir:
    """Write ``events.jsonl`` and ``tracks/*.mkv`` like the live path. Times are seconds on the
    recording clock; the wall clock is ``t0 + s``."""

    def __init__(self, path: Path, t0: float = 1_700_000_000.0, recording: str = "17",
                 writer: Callable[..., Any] | None = None):
        """``writer(path, codec, width=, height=)`` makes a track file with ``write(data, pts,
        keyframe)`` and ``close()`` (the live path's ``MatroskaTrackFile`` fits); the default is
        ``PyAVTrackFile``."""
        self.path = Path(path)
        self.writer = writer or PyAVTrackFile
        (self.path / "tracks").mkdir(parents=True, exist_ok=True)
        self.t0 = t0
        self.events: list[dict] = []
        self.event(0.0, "recording_started", recording=recording, session="5", room="3")

    def event(self, s: float, type: str, **fields) -> dict:
        ev = {"t": self.t0 + s, "type": type, **fields}
        self.events.append(ev)
        return ev

    def join(self, s: float, peer_id: str, user_id: str, name: str, role: str = "student") -> None:
        self.event(s, "participant_joined", peer_id=peer_id,
                   user={"id": user_id, "display_name": name, "role": role})

    def leave(self, s: float, peer_id: str) -> None:
        self.event(s, "participant_left", peer_id=peer_id)

    def chat(self, s: float, seq: int, user_id: str, name: str, text: str) -> None:
        self.event(s, "chat", seq=seq, user={"id": user_id, "display_name": name}, text=text)

    def mark(self, s: float, label: str) -> None:
        self.event(s, "mark", label=label, by={"id": "1", "display_name": "Teacher"})

    def media(self, s: float, peer_id: str, audio: bool = True, video: bool = True,
              screen: bool = False) -> None:
        self.event(s, "media", peer_id=peer_id, media={"audio": audio, "video": video, "screen": screen})

    def stop(self, s: float, reason: str = "stop") -> None:
        self.event(s, "recording_stopped", reason=reason)

    def video_track(self, peer_id: str, n: int, codec: str, start: float, end: float,
                    sizes: Sequence[tuple[float, int, int]] = ((0.0, 320, 240),),
                    fps: int = 15, phase: float = 0.0, ended: bool = True,
                    source: str | None = None, solid: tuple[int, int, int] | None = None,
                    solid_span: tuple[float, float] | None = None) -> str:
        """Encode the pattern from ``start`` to ``end`` (frames on the absolute ``1/fps``
        grid, plus one at ``start``) with ``codec`` (``vp8``/``h264``, H.264 as Annex B access
        units with in-band parameter sets, as WebRTC delivers them); ``sizes`` lists (from
        time, width, height) for resolution changes, each starting at a keyframe. ``solid``
        (Y, U, V) makes every frame that one colour instead (a shared screen), or only the
        frames inside ``solid_span`` (a mesh call's screen on the camera's track); ``source`` goes
        into ``track_started`` (``"camera"``/``"screen"``, as for an SFU feed)."""
        name = f"{peer_id}-video-{n}"
        rel = f"tracks/{name}.mkv"
        times = [start] + [k / fps for k in range(math.floor(start * fps) + 1, math.ceil(end * fps))
                           if start < k / fps < end]
        tb = fractions.Fraction(1, VIDEO_CLOCK)
        out = self.writer(self.path / rel, codec, width=sizes[0][1], height=sizes[0][2])
        self.event(start, "track_started", track=name, peer_id=peer_id, kind="video",
                   codec=codec, file=rel, **({"source": source} if source else {}))
        enc, size, count = None, None, 0

        def mux(packets):
            for pkt in packets:
                out.write(bytes(pkt), pkt.pts, pkt.is_keyframe)

        for t in times:
            want = [s for s in sizes if s[0] <= t + _EPS][-1][1:]
            pts = round((t - start) * VIDEO_CLOCK)
            if want != size:
                if enc is not None:
                    mux(enc.encode(None))
                enc = _video_encoder(codec, *want, fps)
                size = want
                self.event(t, "video_size", track=name, width=want[0], height=want[1], pts=pts)
            in_span = solid_span is None or solid_span[0] - _EPS <= t < solid_span[1] - _EPS
            frame = (solid_frame(*size, solid) if solid and in_span else
                     video_frame_at(t, *size, fps=fps, phase=phase))
            frame.pts, frame.time_base = pts, tb
            mux(enc.encode(frame))
            count += 1
        if enc is not None:
            mux(enc.encode(None))
        out.close()
        if ended:
            self.event(end, "track_ended", track=name, frames=count, duration_s=end - start)
        return name

    def audio_track(self, peer_id: str, n: int, start: float, end: float, phase: float = 0.0,
                    ended: bool = True, drop: tuple[float, float] | None = None,
                    talk: Sequence[tuple[float, float]] = ()) -> str:
        """Opus, 20 ms packets, stereo, from ``start`` to ``end``; packet ``j`` has pts
        ``960 j`` (its RTP timestamp relative to the first, as the live path writes it).
        Packets starting inside ``drop`` (from, to) are left out, as lost packets or DTX are.
        Inside each ``talk`` span (from, to) a steady tone replaces the beeps (someone talking)."""
        name = f"{peer_id}-audio-{n}"
        rel = f"tracks/{name}.mkv"
        tb = fractions.Fraction(1, AUDIO_RATE)
        enc = av.CodecContext.create("libopus", "w")
        enc.sample_rate, enc.layout, enc.format, enc.time_base = AUDIO_RATE, "stereo", "s16", tb
        out = self.writer(self.path / rel, "opus")
        self.event(start, "track_started", track=name, peer_id=peer_id, kind="audio",
                   codec="opus", file=rel)
        frames = int((end - start) / 0.02)
        j = 0
        for i in range(frames + 1):
            frame = None
            if i < frames:
                at = start + i * 0.02
                talking = any(a <= at + _EPS and at + 0.02 <= b + _EPS for a, b in talk)
                frame = (tone_frame_at(at, 960) if talking else
                         audio_frame_at(at, 960, phase=phase, layout="stereo"))
                frame.pts, frame.time_base = i * 960, tb
            for pkt in enc.encode(frame):
                pts = j * 960
                j += 1
                if drop and drop[0] <= start + pts / AUDIO_RATE < drop[1]:
                    continue
                out.write(bytes(pkt), pts, True)
        out.close()
        if ended:
            self.event(end, "track_ended", track=name, frames=j, duration_s=end - start)
        return name

    def write(self, truncate_last_line: bool = False) -> Path:
        """Write ``events.jsonl`` in time order; ``truncate_last_line`` cuts the last line in
        half, as a crash mid-write would."""
        lines = [json.dumps(e) for e in sorted(self.events, key=lambda e: e["t"])]
        text = "\n".join(lines) + "\n"
        if truncate_last_line:
            text = "\n".join(lines[:-1]) + "\n" + lines[-1][:len(lines[-1]) // 2]
        (self.path / "events.jsonl").write_text(text)
        return self.path


class PyAVTrackFile:
    """One stream of encoded frames in a Matroska file, muxed without any codec opened (H.264
    parameter sets are taken from the first packet by PyAV)."""

    def __init__(self, path: Path, codec: str, *, width: int = 0, height: int = 0):
        self.time_base = fractions.Fraction(1, AUDIO_RATE if codec == "opus" else VIDEO_CLOCK)
        self._out = av.open(str(path), "w", format="matroska")
        if codec == "opus":
            self._stream = self._out.add_mux_stream("opus", rate=AUDIO_RATE)
        else:
            self._stream = self._out.add_mux_stream(codec, width=width, height=height)
        self._stream.time_base = self.time_base

    def write(self, data: bytes, pts: int, keyframe: bool) -> None:
        pkt = av.Packet(data)
        pkt.stream, pkt.time_base = self._stream, self.time_base
        pkt.pts = pkt.dts = pts
        pkt.is_keyframe = keyframe
        self._out.mux_one(pkt)

    def close(self) -> None:
        self._out.close()


def _video_encoder(codec: str, w: int, h: int, fps: int) -> av.CodecContext:
    enc = av.CodecContext.create("libvpx" if codec == "vp8" else "libx264", "w")
    enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
    enc.time_base = fractions.Fraction(1, VIDEO_CLOCK)
    enc.framerate = fps
    if codec == "vp8":
        enc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
        enc.bit_rate = 500_000
    else:
        enc.options = {"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline"}
    enc.gop_size = 10 * fps
    return enc


def truncate_file(path: Path, keep: float) -> None:
    """Keep the first ``keep`` fraction of ``path``'s bytes (a crash cuts the final cluster)."""
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[:int(len(data) * keep)])
