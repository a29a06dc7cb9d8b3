"""A real WebRTC call participant for tests and benchmarks, built on aiortc.

``RtcPeer`` is one socket (one ``peer_id``) in a live session (PROTOCOL §2.2). It:

* connects a ``WsClient`` and sends ``call.join``;
* follows "who calls whom": on joining it offers to every participant already present (never
  to a recorder); everyone else answers the offers they receive;
* keeps one ``RTCPeerConnection`` per remote peer and relays ICE through ``/ws``. aiortc gathers
  every candidate before it writes the SDP, so by default (``trickle=True``) the candidates are
  taken *out* of the SDP and sent as ``rtc.ice`` frames followed by ``candidate: null``
  (end-of-candidates): the call then connects only if the server relays ICE;
* sends real encoded media on each connection: a moving test pattern (``av.VideoFrame``,
  320x240, 15 fps by default) and a 440 Hz sine tone (``av.AudioFrame``, 48 kHz, 20 ms);
* counts what it decodes from each remote peer (``Link.video_frames``, ``video_sizes``,
  ``audio_frames``, ``audio_peak``, ``distinct_video``).

Ownership (STYLE.md, aiortc): this module creates every ``RTCPeerConnection`` it uses, keeps
them in ``RtcPeer.links`` and closes them in ``RtcPeer.close()``; a connection that reaches
``failed`` or whose remote peer leaves is closed at once. ``PeerGroup`` closes every peer it
made, so a test's ``finally``/fixture teardown needs one call.

Loopback only: aioice offers every interface except 127.0.0.1 as a host candidate. Importing
this module makes aioice gather on 127.0.0.1 only (and never IPv6), and every
``RTCPeerConnection`` here gets ``iceServers=[]`` (aiortc would otherwise add a public STUN
server), so a test call never leaves the machine and needs no network.

Glare (both sides offering at once) cannot happen under "who calls whom", but renegotiation and
misbehaving tests can cause it; the peer with the larger ``peer_id`` is polite: it drops its own
connection and answers, the other ignores the incoming offer (aiortc has no rollback).
"""
from __future__ import annotations

import array
import asyncio
import fractions
import itertools
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import aioice.ice
import av
from aiortc import (MediaStreamTrack, RTCConfiguration, RTCPeerConnection,
                    RTCSessionDescription)
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import candidate_from_sdp

from tests.wsclient import WsClient

log = logging.getLogger("tests.rtcpeer")


# -- loopback-only ICE --------------------------------------------------------------------------
def _loopback_addresses(use_ipv4: bool = True, use_ipv6: bool = True) -> list[str]:
    """Host candidates on 127.0.0.1 only: test calls must never use another interface."""
    return ["127.0.0.1"] if use_ipv4 else []


aioice.ice.get_host_addresses = _loopback_addresses  # gather_candidates looks it up at call time


def loopback_configuration() -> RTCConfiguration:
    """No STUN/TURN: aiortc's default would add a public STUN server."""
    return RTCConfiguration(iceServers=[])


# -- media sources ------------------------------------------------------------------------------
VIDEO_CLOCK = 90000
AUDIO_RATE = 48000
AUDIO_SAMPLES = 960  # 20 ms


class PatternVideoTrack(MediaStreamTrack):
    """A moving diagonal luminance ramp, ``width``x``height`` yuv420p at ``fps``."""

    kind = "video"

    def __init__(self, width: int = 320, height: int = 240, fps: int = 15):
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self._ramp = bytes(k & 0xFF for k in range(width + height + 512))
        self._chroma = bytes([128]) * ((width // 2) * (height // 2))
        self._n = 0
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:  # pace to the frame rate
            wait = self._start + self._n / self.fps - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        y = frame.planes[0]
        shift = (self._n * 4) % 256
        ramp, w = self._ramp, y.line_size
        y.update(b"".join(ramp[(r + shift) % 256:(r + shift) % 256 + w] for r in range(self.height)))
        for plane in frame.planes[1:]:
            plane.update(self._chroma if plane.line_size == self.width // 2
                         else bytes([128]) * plane.buffer_size)
        frame.pts = self._n * VIDEO_CLOCK // self.fps
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._n += 1
        return frame


_TONE: list[bytes] = []


def _tone_second() -> bytes:
    """One second of a 440 Hz sine at 48 kHz (an integral number of cycles, so it loops)."""
    if not _TONE:
        samples = array.array("h", (int(12000 * math.sin(2 * math.pi * 440 * i / AUDIO_RATE))
                                    for i in range(AUDIO_RATE)))
        _TONE.append(samples.tobytes())
    return _TONE[0]


class ToneAudioTrack(MediaStreamTrack):
    """A 440 Hz tone: s16 mono, 48 kHz, 20 ms frames, paced in real time."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._tone = _tone_second()
        self._n = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + self._n * AUDIO_SAMPLES / AUDIO_RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        frame = av.AudioFrame(format="s16", layout="mono", samples=AUDIO_SAMPLES)
        off = (self._n * AUDIO_SAMPLES * 2) % len(self._tone)
        frame.planes[0].update(self._tone[off:off + AUDIO_SAMPLES * 2])
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._n * AUDIO_SAMPLES
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self._n += 1
        return frame


# -- SDP helpers --------------------------------------------------------------------------------
def split_candidates(sdp: str) -> tuple[str, list[dict]]:
    """Remove ``a=candidate`` / ``a=end-of-candidates`` lines from ``sdp``; return the stripped
    SDP and the candidates as RTCIceCandidateInit objects (what a browser trickles)."""
    out: list[str] = []
    cands: list[dict] = []
    mline, mid = -1, None
    for line in sdp.splitlines():
        if line.startswith("m="):
            mline, mid = mline + 1, None
        elif line.startswith("a=mid:"):
            mid = line[len("a=mid:"):]
        if line.startswith("a=candidate:"):
            cands.append({"candidate": line[2:], "sdpMid": mid, "sdpMLineIndex": mline})
            continue
        if line == "a=end-of-candidates":
            continue
        out.append(line)
    # Fill in mids that appear after their candidates within the same m-section.
    mids: dict[int, str | None] = {}
    mline = -1
    for line in out:
        if line.startswith("m="):
            mline += 1
        elif line.startswith("a=mid:"):
            mids[mline] = line[len("a=mid:"):]
    for c in cands:
        c["sdpMid"] = c["sdpMid"] or mids.get(c["sdpMLineIndex"])
    return "\r\n".join(out) + "\r\n", cands


def parse_candidate(init: dict):
    """An aiortc RTCIceCandidate from an RTCIceCandidateInit object."""
    text = init["candidate"]
    if text.startswith("candidate:"):
        text = text[len("candidate:"):]
    cand = candidate_from_sdp(text)
    cand.sdpMid = init.get("sdpMid")
    cand.sdpMLineIndex = init.get("sdpMLineIndex")
    return cand


# -- one connection to one remote peer ----------------------------------------------------------
@dataclass
class Link:
    """Our side of the connection to one remote peer, and what we received from it."""

    remote: str
    pc: RTCPeerConnection
    negotiation_id: str | None = None
    offerer: bool = False
    created_at: float = field(default_factory=time.monotonic)
    connected_at: float | None = None
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    failed: bool = False
    closed: bool = False
    remote_set: bool = False
    pending_ice: list[dict | None] = field(default_factory=list)
    video_frames: int = 0
    audio_frames: int = 0
    video_sizes: set[tuple[int, int]] = field(default_factory=set)
    distinct_video: set[int] = field(default_factory=set)
    audio_peak: int = 0
    ice_received: int = 0
    end_of_candidates: bool = False
    tasks: list[asyncio.Task] = field(default_factory=list)
    local_tracks: list[MediaStreamTrack] = field(default_factory=list)
    progress: asyncio.Event = field(default_factory=asyncio.Event)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for t in self.local_tracks:
            t.stop()
        for t in self.tasks:
            t.cancel()
        await self.pc.close()
        for t in self.tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):  # receivers end with the connection
                pass
        self.progress.set()


_negotiations = itertools.count(1)


class RtcPeer:
    """One call participant (one socket). Create with ``RtcPeer.connect`` then ``join``; always
    ``close()`` (or let a ``PeerGroup`` do it)."""

    def __init__(self, ws: WsClient, *, label: str = "", media: bool = True, trickle: bool = True,
                 fps: int = 15, width: int = 320, height: int = 240, tracks: Any = None):
        self.ws = ws
        self.tracks = tracks  # callable → [video, audio] tracks for each link; default pattern + tone
        self.label = label
        self.media = media
        self.trickle = trickle
        self.fps, self.width, self.height = fps, width, height
        self.session: str | None = None
        self.peer_id: str = ws.hello["connection_id"] if ws.hello else ""
        self.join_ack: dict | None = None
        self.joined_at: float | None = None
        self.links: dict[str, Link] = {}
        self.events: asyncio.Queue[dict] = asyncio.Queue()  # every non-signal event, in order
        self.signals: list[dict] = []  # every rtc.* frame received, in order
        self.signal_errors: list[dict] = []  # error frames answering our own rtc.* sends
        self.removed = False
        self.ended = False
        self._inbox: dict[str, asyncio.Queue] = {}
        self._workers: dict[str, asyncio.Task] = {}
        self._pump = asyncio.ensure_future(self._read_events())
        self._teardowns: list[asyncio.Task] = []  # close_links started by call.removed/ended
        self._closed = False

    @classmethod
    async def connect(cls, ws_url: str, token: str, **kw: Any) -> "RtcPeer":
        ws = await WsClient.connect(ws_url, token)
        return cls(ws, **kw)

    # -- joining ----------------------------------------------------------------------------
    async def join(self, session: str, timeout: float = 10) -> dict:
        """``call.join`` then offer to everyone already present (not to a recorder)."""
        self.session = session
        self.joined_at = time.monotonic()
        media = {"audio": self.media, "video": self.media, "screen": False}
        ack = await self.ws.request("call.join", timeout=timeout, session=session, media=media)
        self.join_ack = ack
        self.peer_id = ack["peer_id"]
        for p in ack["participants"]:
            if p["peer_id"] != self.peer_id and not p.get("recorder"):
                self._inbox_for(p["peer_id"]).put_nowait({"type": "_offer_to"})
        return ack

    async def leave(self) -> None:
        await self.ws.request("call.leave", session=self.session)
        await self.close_links()

    # -- waiting ----------------------------------------------------------------------------
    async def wait_connected(self, remotes: list[str] | None = None, timeout: float = 20) -> None:
        """Until the connection to each of ``remotes`` (default: every link) is ``connected``."""
        async def one(pid: str) -> None:
            while pid not in self.links:
                await asyncio.sleep(0.02)
            link = self.links[pid]
            await link.connected.wait()
        ids = remotes if remotes is not None else list(self.links)
        await asyncio.wait_for(asyncio.gather(*(one(p) for p in ids)), timeout)

    async def wait_media(self, remote: str, video: int = 10, audio: int = 10, timeout: float = 20) -> Link:
        """Until at least ``video`` video frames and ``audio`` audio frames from ``remote`` were
        decoded; returns the link."""
        async def reached() -> Link:
            while True:
                link = self.links.get(remote)
                if link is not None:
                    if link.video_frames >= video and link.audio_frames >= audio:
                        return link
                    link.progress.clear()
                    await link.progress.wait()
                else:
                    await asyncio.sleep(0.02)
        return await asyncio.wait_for(reached(), timeout)

    async def next_event(self, type_: str | None = None, timeout: float = 5, where: Any = None,
                         **match: Any) -> dict:
        """The next non-signal event of ``type_`` whose fields equal ``match`` and for which
        ``where(event)`` is true (events passed over are discarded), like WsClient's."""
        async def find() -> dict:
            while True:
                ev = await self.events.get()
                if ((type_ is None or ev.get("type") == type_) and all(ev.get(k) == v for k, v in match.items())
                        and (where is None or where(ev))):
                    return ev
        return await asyncio.wait_for(find(), timeout)

    # -- signaling out ----------------------------------------------------------------------
    async def signal(self, type_: str, to: str, **fields: Any) -> dict:
        """Send an ``rtc.*`` frame with an id; the ack or error frame (errors are also kept in
        ``signal_errors``)."""
        frame = await self.ws.request_raw(type_, session=self.session, to=to, **fields)
        if frame["type"] == "error":
            self.signal_errors.append(frame)
        return frame

    async def _send_description(self, link: Link, kind: str) -> None:
        desc = link.pc.localDescription
        sdp, cands = split_candidates(desc.sdp) if self.trickle else (desc.sdp, [])
        frame = await self.signal(f"rtc.{kind}", link.remote, sdp=sdp, negotiation_id=link.negotiation_id)
        if frame["type"] == "error":
            log.info("%s: rtc.%s to %s refused: %s", self.label, kind, link.remote, frame.get("code"))
            return
        if self.trickle:
            for c in cands:
                await self.signal("rtc.ice", link.remote, candidate=c, negotiation_id=link.negotiation_id)
            await self.signal("rtc.ice", link.remote, candidate=None, negotiation_id=link.negotiation_id)

    # -- signaling in -----------------------------------------------------------------------
    async def _read_events(self) -> None:
        """Route frames from the socket: signals to a per-remote worker (so each pair's signals
        are handled in order, and different pairs concurrently), everything else to ``events``."""
        while True:
            ev = await self.ws.events.get()
            kind = ev.get("type", "")
            if kind.startswith("rtc."):
                self.signals.append(ev)
                if ev.get("session") == self.session and ev.get("from"):
                    self._inbox_for(ev["from"]).put_nowait(ev)
                continue
            if kind == "call.participant_left" and ev.get("session") == self.session:
                self._inbox_for(ev["peer_id"]).put_nowait({"type": "_close"})
            elif kind == "call.removed" and ev.get("session") == self.session:
                self.removed = True
                self._teardowns.append(asyncio.ensure_future(self.close_links()))
            elif kind == "call.ended" and (ev.get("session") or {}).get("id") == self.session:
                self.ended = True
                self._teardowns.append(asyncio.ensure_future(self.close_links()))
            self.events.put_nowait(ev)

    def _inbox_for(self, remote: str) -> asyncio.Queue:
        q = self._inbox.get(remote)
        if q is None:
            q = self._inbox[remote] = asyncio.Queue()
            self._workers[remote] = asyncio.ensure_future(self._work(remote, q))
        return q

    async def _work(self, remote: str, q: asyncio.Queue) -> None:
        while True:
            ev = await q.get()
            try:
                await self._handle(remote, ev)
            except asyncio.CancelledError:
                raise
            except Exception:  # a test peer must keep serving the other signals; logged
                log.exception("%s: handling %s from %s failed", self.label, ev.get("type"), remote)

    async def _handle(self, remote: str, ev: dict) -> None:
        kind = ev["type"]
        if self._closed:
            return
        if kind == "_offer_to":
            await self._offer(remote)
        elif kind == "_close":
            link = self.links.pop(remote, None)
            if link is not None:
                await link.close()
        elif kind == "rtc.offer":
            await self._on_offer(remote, ev)
        elif kind == "rtc.answer":
            link = self.links.get(remote)
            if (link is None or link.negotiation_id != ev.get("negotiation_id")
                    or link.pc.signalingState != "have-local-offer"):
                return  # stale or unexpected: ignore
            await link.pc.setRemoteDescription(RTCSessionDescription(ev["sdp"], "answer"))
            link.remote_set = True
            await self._flush_ice(link)
        elif kind == "rtc.ice":
            link = self.links.get(remote)
            if link is None or link.negotiation_id != ev.get("negotiation_id"):
                return
            link.ice_received += 1
            link.pending_ice.append(ev.get("candidate"))
            if link.remote_set:
                await self._flush_ice(link)

    async def _flush_ice(self, link: Link) -> None:
        pending, link.pending_ice = link.pending_ice, []
        for cand in pending:
            if cand is None:
                link.end_of_candidates = True
                await link.pc.addIceCandidate(None)
            elif cand.get("candidate"):
                await link.pc.addIceCandidate(parse_candidate(cand))

    def _new_link(self, remote: str, negotiation_id: str | None, offerer: bool) -> Link:
        pc = RTCPeerConnection(loopback_configuration())
        link = Link(remote=remote, pc=pc, negotiation_id=negotiation_id, offerer=offerer)
        self.links[remote] = link

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            state = pc.connectionState
            if state == "connected" and link.connected_at is None:
                link.connected_at = time.monotonic()
                link.connected.set()
            elif state == "failed":
                link.failed = True
                log.warning("%s: connection to %s failed", self.label, remote)
                if self.links.get(remote) is link:
                    self.links.pop(remote, None)
                await link.close()

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            link.tasks.append(asyncio.ensure_future(self._receive(link, track)))

        if self.media:
            tracks = (self.tracks() if self.tracks is not None
                      else (PatternVideoTrack(self.width, self.height, self.fps), ToneAudioTrack()))
            for track in tracks:
                link.local_tracks.append(track)
                pc.addTrack(track)
        else:  # still negotiate both kinds so the SDP looks like a browser's
            pc.addTransceiver("audio", direction="recvonly")
            pc.addTransceiver("video", direction="recvonly")
        return link

    async def _offer(self, remote: str) -> None:
        old = self.links.pop(remote, None)
        if old is not None:
            await old.close()
        link = self._new_link(remote, f"{self.peer_id}-{next(_negotiations)}", offerer=True)
        await link.pc.setLocalDescription(await link.pc.createOffer())
        await self._send_description(link, "offer")

    async def _on_offer(self, remote: str, ev: dict) -> None:
        link = self.links.get(remote)
        if link is not None and link.pc.signalingState == "have-local-offer":
            if self.peer_id < remote:
                return  # impolite: our offer wins; the other side answers it
            self.links.pop(remote, None)
            await link.close()
            link = None
        if link is None or link.closed:
            link = self._new_link(remote, ev.get("negotiation_id"), offerer=False)
        link.negotiation_id = ev.get("negotiation_id")
        await link.pc.setRemoteDescription(RTCSessionDescription(ev["sdp"], "offer"))
        link.remote_set = True
        await link.pc.setLocalDescription(await link.pc.createAnswer())
        await self._send_description(link, "answer")
        await self._flush_ice(link)

    async def _receive(self, link: Link, track: MediaStreamTrack) -> None:
        """Decode ``track`` until it ends, counting frames on ``link``."""
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if track.kind == "video":
                link.video_frames += 1
                link.video_sizes.add((frame.width, frame.height))
                if len(link.distinct_video) < 256:
                    y = frame.planes[0]
                    link.distinct_video.add(hash(bytes(y)[: y.line_size]))
            else:
                link.audio_frames += 1
                if link.audio_frames % 5 == 1:
                    samples = array.array("h", bytes(frame.planes[0]))
                    if samples:
                        link.audio_peak = max(link.audio_peak, max(abs(min(samples)), max(samples)))
            link.progress.set()

    # -- teardown ---------------------------------------------------------------------------
    async def close_links(self) -> None:
        """Close every peer connection (the socket stays open)."""
        links, self.links = list(self.links.values()), {}
        for link in links:
            await link.close()

    async def close(self) -> None:
        """Close every peer connection, stop the workers, close the socket. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._pump.cancel()
        for w in self._workers.values():
            w.cancel()
        for w in [self._pump, *self._workers.values()]:
            try:
                await w
            except (asyncio.CancelledError, Exception):  # workers end here by design
                pass
        for t in self._teardowns:
            await t
        await self.close_links()
        self.ws.close()


class PeerGroup:
    """Makes RtcPeers for one test and closes them all (``async with PeerGroup(url) as g``)."""

    def __init__(self, ws_url: str, **defaults: Any):
        self.ws_url = ws_url
        self.defaults = defaults
        self.peers: list[RtcPeer] = []

    async def peer(self, token: str, **kw: Any) -> RtcPeer:
        p = await RtcPeer.connect(self.ws_url, token, **{**self.defaults, **kw})
        self.peers.append(p)
        return p

    async def close(self) -> None:
        for p in self.peers:
            await p.close()

    async def __aenter__(self) -> "PeerGroup":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
