"""The sending side of the per-track benchmarks: N aiortc peer connections, each sending one
pre-encoded video stream (``clips.ReplayTrack``: aiortc packetizes, no encoder runs), the way N
browsers would each send their camera to the recorder.

    python bench/recording/sender.py CLIP.pickle [--cpu 1]

Driven by bench/recording/run.py over JSON lines: ``{"offers": [sdp, ...]}`` (the recorder's
recvonly offers) → ``{"answers": [...]}``; ``{"cmd": "snap"}`` → ``{"snap": {sent, late_ms, t}}``;
``{"cmd": "quit"}`` closes every connection and exits. Loopback only (tests/rtcpeer.py).
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription  # noqa: E402

import clips  # noqa: E402
from procs import Control, LoopLag, pin  # noqa: E402
from tests.rtcpeer import loopback_configuration  # noqa: E402  (also: ICE on 127.0.0.1 only)


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("clip")
    p.add_argument("--cpu", type=int)
    args = p.parse_args()
    pin(args.cpu)
    clip = clips.load(args.clip)
    ctl = Control()
    await ctl.start()
    lag = LoopLag()
    lag.start()
    pcs: list[RTCPeerConnection] = []
    tracks: list[clips.ReplayTrack] = []
    try:
        while True:
            msg = await ctl.next()
            if msg is None or msg.get("cmd") == "quit":
                break
            if "offers" in msg:
                answers = []
                for sdp in msg["offers"]:
                    pc = RTCPeerConnection(loopback_configuration())
                    track = clips.ReplayTrack(clip)
                    pc.addTrack(track)
                    mime = f"video/{clip.codec}"
                    prefs = [c for c in RTCRtpSender.getCapabilities("video").codecs
                             if c.mimeType.lower() in (mime, "video/rtx")]
                    next(t for t in pc.getTransceivers() if t.kind == "video").setCodecPreferences(prefs)
                    await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
                    await pc.setLocalDescription(await pc.createAnswer())
                    answers.append(pc.localDescription.sdp)
                    pcs.append(pc)
                    tracks.append(track)
                ctl.emit({"answers": answers})
            elif msg.get("cmd") == "snap":
                ctl.emit({"snap": {"t": time.monotonic(), "sent": sum(t.sent for t in tracks),
                                   "per_track": [t.sent for t in tracks],
                                   "late_ms": round(max((t.late_s for t in tracks), default=0) * 1000, 1),
                                   "loop_lag_ms": lag.take()}})
    finally:
        lag.stop()
        for pc in pcs:
            await pc.close()


if __name__ == "__main__":
    asyncio.run(main())
