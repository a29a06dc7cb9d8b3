"""aiortc peers that publish to and subscribe from a Janus VideoRoom through a ``Handle`` of
``server/sfu/client.py`` (the client test's peers; the signaling tests relay the same SDP
through Podium). Each peer owns its ``RTCPeerConnection`` and closes it in ``close()``.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from server.sfu import videoroom as vr
from server.sfu.client import Handle
from tests.rtcpeer import PatternVideoTrack, ToneAudioTrack


def no_stun() -> RTCConfiguration:
    """No STUN/TURN: aiortc's default would add a public STUN server."""
    return RTCConfiguration(iceServers=[])


class Publisher:
    """Publishes a test pattern (VP8) and a tone (Opus) into a room as one feed."""

    def __init__(self, handle: Handle):
        self.handle = handle
        self.pc = RTCPeerConnection(no_stun())
        self.feed_id: int | None = None
        self.webrtcup = asyncio.Event()
        handle.on_event.append(self._on_event)

    def _on_event(self, msg: dict) -> None:
        if msg.get("janus") == "webrtcup":
            self.webrtcup.set()

    async def publish(self, room: int, display: str, timeout: float = 15) -> int:
        joined = await self.handle.message(vr.join_publisher(room, display=display))
        self.feed_id = int(joined.data["id"])
        self.pc.addTrack(PatternVideoTrack(320, 240, 15))
        self.pc.addTrack(ToneAudioTrack())
        await self.pc.setLocalDescription(await self.pc.createOffer())
        reply = await self.handle.message(vr.publish(), jsep={"type": "offer", "sdp": self.pc.localDescription.sdp})
        assert reply.data.get("configured") == "ok", reply.data
        await self.pc.setRemoteDescription(RTCSessionDescription(reply.jsep["sdp"], reply.jsep["type"]))
        await asyncio.wait_for(self.webrtcup.wait(), timeout)
        return self.feed_id

    async def close(self) -> None:
        await self.pc.close()


class Subscriber:
    """One multistream subscription; counts decoded video frames and audio frames per kind."""

    def __init__(self, handle: Handle):
        self.handle = handle
        self.pc = RTCPeerConnection(no_stun())
        self.frames: Counter = Counter()
        self.sizes: set[tuple[int, int]] = set()
        self.events: list[dict] = []
        self._readers: list[asyncio.Task] = []
        handle.on_event.append(self.events.append)
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._readers.append(asyncio.ensure_future(self._read(track)))

    async def _read(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                self.frames[track.kind] += 1
                if track.kind == "video":
                    self.sizes.add((frame.width, frame.height))

    async def subscribe(self, room: int, feeds: list[int]) -> None:
        reply = await self.handle.message(vr.join_subscriber(room, feeds))
        assert reply.data.get("videoroom") == "attached", reply.data
        await self.pc.setRemoteDescription(RTCSessionDescription(reply.jsep["sdp"], reply.jsep["type"]))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        started = await self.handle.message(vr.start(), jsep={"type": "answer", "sdp": self.pc.localDescription.sdp})
        assert started.data.get("started") == "ok", started.data

    async def close(self) -> None:
        await self.pc.close()
        for t in self._readers:
            t.cancel()
