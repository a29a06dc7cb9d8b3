"""A live class for the web-process lag measurement: N aiortc participants (tests/rtcpeer.py's
``RtcPeer``, signaling and trickled ICE through the real server) in a full mesh, each sending a
pre-encoded 640x480 30 fps VP8 stream and an Opus stream on every connection (``clips``:
packetized, not encoded, so the sending side costs little), and receiving without decoding
(the passthrough tap; frames are counted and dropped). The instructor presses Record and Stop;
the media worker joins as the recorder like for any class.

    python bench/recording/call.py WS_URL SEED.json VIDEO.pickle AUDIO.pickle [--peers 4]

JSON lines with run.py: ``{"joined"}`` once the mesh is connected; ``{"cmd": "record"}`` →
``{"recording": {id, t_start, t_connected}}`` when every participant is connected to the
recorder; ``{"cmd": "stop"}`` → ``{"stopped": {...}}`` at once, then ``{"ready": {...}}`` at
``recording.ready`` (or ``{"error"}`` at ``recording.failed``); ``{"cmd": "quit"}``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from aiortc.mediastreams import MediaStreamError  # noqa: E402

import clips  # noqa: E402
from media_worker.live import install_passthrough  # noqa: E402
from procs import Control  # noqa: E402
from tests.rtcpeer import Link, RtcPeer  # noqa: E402


class BenchPeer(RtcPeer):
    """An ``RtcPeer`` that receives like the recorder does (tapped, never decoded), so N
    participants' decoders do not load the 2-core machine the server runs on."""

    def _new_link(self, remote: str, negotiation_id: str | None, offerer: bool) -> Link:
        link = super()._new_link(remote, negotiation_id, offerer)
        pc = link.pc

        @pc.on("track")
        def tap(track) -> None:  # same synchronous emit as RtcPeer's handler: before receive()
            for t in pc.getTransceivers():
                if t.receiver.track is track:
                    install_passthrough(t.receiver)
        return link

    async def _receive(self, link: Link, track) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if frame.kind == "video":
                link.video_frames += 1
            else:
                link.audio_frames += 1
            link.progress.set()


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("ws_url")
    p.add_argument("seed")
    p.add_argument("video")
    p.add_argument("audio")
    p.add_argument("--peers", type=int, default=4)
    args = p.parse_args()
    room = json.loads(Path(args.seed).read_text())["rooms"][0]
    video, audio = clips.load(args.video), clips.load(args.audio)
    ctl = Control()
    await ctl.start()
    tracks = lambda: (clips.ReplayTrack(video), clips.ReplayTrack(audio))  # noqa: E731
    peers: list[BenchPeer] = []
    try:
        for k in range(args.peers):
            peers.append(await BenchPeer.connect(args.ws_url, room["tokens"][k], label=f"p{k}", tracks=tracks))
        teacher = peers[0]
        session = (await teacher.ws.request("call.start", room=room["id"]))["session"]["id"]
        for peer in peers:  # one by one, each offering to those present (who calls whom)
            await peer.join(session)
            await peer.wait_connected(timeout=30)
        await asyncio.sleep(0.5)
        await asyncio.gather(*(peer.wait_connected(timeout=30) for peer in peers))
        ids = {peer.peer_id for peer in peers}
        ctl.emit({"joined": {"session": session, "peers": len(peers),
                             "links": sum(len(peer.links) for peer in peers)}})
        while True:
            msg = await ctl.next()
            if msg is None or msg.get("cmd") == "quit":
                break
            if msg["cmd"] == "record":
                t_start = time.monotonic()
                rid = (await teacher.ws.request("recording.start", session=session))["recording"]["id"]
                await teacher.next_event("recording.started", timeout=60)

                def recorder_links() -> int:
                    return sum(1 for peer in peers for r, link in peer.links.items()
                               if r not in ids and link.connected.is_set())

                deadline = time.monotonic() + 60
                while recorder_links() < len(peers):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"only {recorder_links()} of {len(peers)} peers connected to the recorder")
                    await asyncio.sleep(0.05)
                ctl.emit({"recording": {"id": rid, "t_start": t_start, "t_connected": time.monotonic()}})
            elif msg["cmd"] == "stop":
                t_stop = time.monotonic()
                ack = await teacher.ws.request("recording.stop", session=session)
                ctl.emit({"stopped": {"t_stop": t_stop, "duration_s": ack["recording"].get("duration_s")}})
                ev = await teacher.next_event(timeout=600, where=lambda e: e.get("type") in (
                    "recording.ready", "recording.failed"))
                if ev["type"] == "recording.failed":
                    ctl.emit({"error": f"recording failed: {ev.get('reason')}"})
                else:
                    ctl.emit({"ready": {"t_ready": time.monotonic(), "t_stop": t_stop,
                                        "assets": len(ev["recording"].get("assets") or [])}})
            elif msg["cmd"] == "stats":
                ctl.emit({"stats": {"video_frames": sum(link.video_frames for peer in peers
                                                        for link in peer.links.values()),
                                    "links": sum(len(peer.links) for peer in peers)}})
    except Exception as exc:  # the driver needs the reason on one line
        ctl.emit({"error": f"{type(exc).__name__}: {exc}"})
        raise
    finally:
        for peer in peers:
            await peer.close()


if __name__ == "__main__":
    asyncio.run(main())
