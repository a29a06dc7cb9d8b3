"""A long synthetic recording directory (docs/RECORDING.md layout) made fast: one short clip
per participant is encoded once and its packets are copied over and over with continuing
timestamps, written by the live path's own ``MatroskaTrackFile`` (same clusters, same
millisecond timestamps as a real recording).

    python bench/recording/synth.py DIR [--minutes 10] [--participants 4] [--size 1280x720]

Participants alternate VP8 and H.264 (the two codecs browsers send), 30 fps, each with an
Opus track; they join 0.4 s apart and stay to the end; a chat line every 15 s and a mark
every 2.5 min. Each participant's clip is 10 s long and starts with a keyframe, so every
stream has a keyframe every 10 s. Encoding 4 × 10 min of 720p for real would take longer
than processing it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

import clips  # noqa: E402
from media_worker.live import disk  # noqa: E402
from media_worker.live.matroska import MatroskaTrackFile  # noqa: E402
from tests.mediapattern import RecordingDir  # noqa: E402

CLIP_S = 10.0
VIDEO_BITRATE = {720: 2_500_000, 480: 1_200_000}  # libvpx CBR targets, as run.py


def write_track(rd: RecordingDir, peer_id: str, clip: clips.Clip, start: float, end: float) -> dict:
    """``clip`` looped from ``start`` to ``end`` into ``tracks/<peer_id>-<kind>-0.mkv`` with its
    manifest events; returns {frames, bytes}."""
    kind = "audio" if clip.codec == "opus" else "video"
    name = f"{peer_id}-{kind}-0"
    rel = f"tracks/{name}.mkv"
    step = round((clips.VIDEO_CLOCK if kind == "video" else clips.AUDIO_RATE) / clip.fps)
    count = int((end - start) * clip.fps)
    out = MatroskaTrackFile(rd.path / rel, clip.codec, width=clip.width, height=clip.height)
    rd.event(start, "track_started", track=name, peer_id=peer_id, kind=kind, codec=clip.codec, file=rel)
    if kind == "video":
        rd.event(start, "video_size", track=name, width=clip.width, height=clip.height, pts=0)
    size = 0
    frames = clip.frames
    for i in range(count):
        data, key = frames[i % len(frames)]
        out.write(data, i * step, key)
        size += len(data)
        while disk.queued_bytes() > disk.MAX_BACKLOG // 4:  # written faster than the disk takes it
            time.sleep(0.01)
    out.close().result(60)  # the file is complete on disk
    rd.event(end, "track_ended", track=name, frames=count, duration_s=round(count / clip.fps, 3))
    return {"frames": count, "bytes": size}


def synthesize(directory: Path, minutes: float = 10, participants: int = 4, width: int = 1280,
               height: int = 720, fps: int = 30, cache: Path | None = None) -> dict:
    """Write the recording directory; returns what was written (durations, bytes, seconds)."""
    t0 = time.monotonic()
    cache = cache or directory.parent
    duration = minutes * 60
    rd = RecordingDir(directory)
    bitrate = VIDEO_BITRATE.get(height, 1_500_000)
    video = {c: clips.cached(cache / f"synth-{c}-{width}x{height}-{fps}.pickle",
                             lambda c=c: clips.encode_video(c, width, height, fps, CLIP_S, bitrate))
             for c in ("vp8", "h264")}
    audio = clips.cached(cache / "synth-opus.pickle", lambda: clips.encode_opus(CLIP_S))
    encoded_s = time.monotonic() - t0
    info: dict = {"participants": participants, "duration_s": duration, "size": f"{width}x{height}",
                  "fps": fps, "tracks": {}}
    names = ["Prof Ada", "Ben", "Chloé", "Dev", "Eve", "Fay", "Gus", "Hal"]
    for p in range(participants):
        peer = f"peer{p}"
        join = 0.2 + 0.4 * p
        rd.join(join, peer, str(100 + p), names[p % len(names)], "instructor" if p == 0 else "student")
        rd.event(join, "media", peer_id=peer, media={"audio": True, "video": True, "screen": False})
        codec = "vp8" if p % 2 == 0 else "h264"
        info["tracks"][f"{peer}-video-0"] = write_track(rd, peer, video[codec], join + 0.1, duration) | {"codec": codec}
        info["tracks"][f"{peer}-audio-0"] = write_track(rd, peer, audio, join + 0.05, duration) | {"codec": "opus"}
    seq = 0
    for k in range(1, int(duration // 15)):
        seq += 1
        p = k % participants
        rd.chat(k * 15.0, seq, str(100 + p), names[p % len(names)], f"Question {seq}: what about slide {k}?")
    for k in range(1, int(duration // 150) + 1):
        if k * 150 < duration:
            rd.mark(k * 150.0, f"Part {k + 1}")
    rd.stop(duration)
    rd.write()
    info["video_bitrates"] = {c: round(v.bitrate) for c, v in video.items()}
    info["bytes"] = sum(p.stat().st_size for p in (directory / "tracks").iterdir())
    info["encode_clips_s"] = round(encoded_s, 1)
    info["synth_s"] = round(time.monotonic() - t0, 1)
    return info


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir")
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--participants", type=int, default=4)
    p.add_argument("--size", default="1280x720")
    p.add_argument("--fps", type=int, default=30)
    args = p.parse_args()
    w, h = (int(x) for x in args.size.split("x"))
    print(json.dumps(synthesize(Path(args.dir), args.minutes, args.participants, w, h, args.fps)))


if __name__ == "__main__":
    main()
