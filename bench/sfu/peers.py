"""aiortc peers of the SFU benchmark (``run.py`` starts them inside its network namespace).

    python bench/sfu/peers.py teacher CONFIG.json     # publishes, then stays until stdin closes
    python bench/sfu/peers.py students CONFIG.json    # receive-only students, driven over stdin
    python bench/sfu/peers.py mesh CONFIG.json        # a mesh call of len(tokens) (the comparison)
    python bench/sfu/peers.py encode x                # one VP8 encode of the same source, CPU

CONFIG: ``{"ws_url", "session"?, "room"?, "tokens": [...], "peer_addr"}``.

Teacher: ``call.start`` in ``room`` (unless ``session`` is given), ``call.join``, ``sfu.publish``
of one VP8 640x480 30 fps camera (frames of low-amplitude random luma, so the encoder really
spends its ~1 Mbps: aiortc's VP8 rate is capped at ``--max-kbps`` through its REMB clamp) and an Opus tone.
Prints ``READY {"session": ..., "feed": ...}`` once Janus's answer is applied and the connection
is up; on stdin EOF prints ``{"video_senders", "bytes_sent", ...}`` and ends the call.

Students: connect one /ws per token (not timed), print ``READY``; then on stdin lines:
``join`` — every student at once sends ``call.join`` (the clock starts), ``sfu.subscribe``
(retried until Janus lists the teacher), answers with ``sfu.answer``; a student's first frame
is the first RTP packet of a VP8 key frame's first partition (what a decoder could start
from). ``JOINED`` is printed when all have one (or after ``--join-timeout`` s).
``mark`` — counters are snapshotted (the steady window starts), ``MARKED``.
``stop`` — one JSON line with per-student join-to-first-frame and bytes/packets since the mark.
Nothing is decoded: aiortc's decoder is swapped for one that returns no frames (RTCP, NACK and
key-frame requests still work as usual, the jitter buffer still assembles frames).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import aioice.ice  # noqa: E402
import aiortc.rtcrtpreceiver as rtpreceiver  # noqa: E402
import av  # noqa: E402
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.codecs import vpx  # noqa: E402
from aiortc.mediastreams import MediaStreamError  # noqa: E402

from tests.rtcpeer import ToneAudioTrack  # noqa: E402
from tests.wsclient import WsClient  # noqa: E402

VIDEO_CLOCK = 90000


def no_stun() -> RTCConfiguration:
    return RTCConfiguration(iceServers=[])


class NoiseVideoTrack(MediaStreamTrack):
    """640x480 yuv420p at ``fps``: low-amplitude random luma (30 precomputed planes, cycled), grey chroma."""

    kind = "video"

    def __init__(self, width: int = 640, height: int = 480, fps: int = 30):
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        # 16 grey levels of noise: libvpx spends ~1 Mbps on it at this size (full-range noise
        # overshoots any target, ~15 Mbps even at the coarsest quantizer; a flat pattern ~100 kbps).
        self._planes = [bytes(120 + (b & 15) for b in os.urandom(width * height)) for _ in range(30)]
        self._chroma = bytes([128]) * ((width // 2) * (height // 2))
        self._n = 0
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + self._n / self.fps - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        y = frame.planes[0]
        data = self._planes[self._n % len(self._planes)]
        if y.line_size == self.width:
            y.update(data)
        else:
            y.update(b"".join(data[r * self.width:(r + 1) * self.width].ljust(y.line_size, b"\0")
                              for r in range(self.height)))
        for plane in frame.planes[1:]:
            plane.update(self._chroma if plane.line_size == self.width // 2 else bytes([128]) * plane.buffer_size)
        frame.pts = self._n * VIDEO_CLOCK // self.fps
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._n += 1
        return frame


# -- teacher ---------------------------------------------------------------------------------------
async def teacher(cfg: dict, max_kbps: int) -> None:
    vpx.DEFAULT_BITRATE = vpx.MAX_BITRATE = max_kbps * 1000  # aiortc clamps REMB into [MIN, MAX]
    ws = await WsClient.connect(cfg["ws_url"], cfg["tokens"][0])
    session = cfg.get("session") or (await ws.request("call.start", room=cfg["room"]))["session"]["id"]
    ack = await ws.request("call.join", session=session)
    if ack.get("media_path") != "sfu":
        raise SystemExit(f"call.join media_path is {ack.get('media_path')!r}, not sfu")
    pc = RTCPeerConnection(no_stun())
    up = asyncio.Event()
    pc.on("connectionstatechange", lambda: up.set() if pc.connectionState == "connected" else None)
    pc.addTrack(NoiseVideoTrack())
    pc.addTrack(ToneAudioTrack())
    await pc.setLocalDescription(await pc.createOffer())
    pub = await ws.request("sfu.publish", session=session, sdp=pc.localDescription.sdp, timeout=30)
    await pc.setRemoteDescription(RTCSessionDescription(pub["sdp"], "answer"))
    await ws.request("sfu.ice", session=session, target="publish", candidate=None)
    await asyncio.wait_for(up.wait(), 30)
    print("READY " + json.dumps({"session": session, "feed": pub["feed"]}), flush=True)
    t0 = time.monotonic()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until EOF
    stats = await pc.getStats()
    out = [s for s in stats.values() if s.type == "outbound-rtp"]
    res = {"video_senders": sum(1 for s in out if s.kind == "video" and s.bytesSent > 0),
           "audio_senders": sum(1 for s in out if s.kind == "audio" and s.bytesSent > 0),
           "peer_connections": 1, "video_bytes_sent": sum(s.bytesSent for s in out if s.kind == "video"),
           "seconds": round(time.monotonic() - t0, 1)}
    await pc.close()
    if not cfg.get("session"):
        try:
            await ws.request("call.end", session=session)
        except Exception as e:  # noqa: BLE001 - the result line matters more than the end
            res["end_error"] = str(e)
    ws.close()
    print(json.dumps(res), flush=True)


# -- students --------------------------------------------------------------------------------------
class NullDecoder:
    def decode(self, encoded_frame):  # noqa: D401 - aiortc's Decoder interface
        return []


def vp8_key_start(payload: bytes) -> bool:
    """True for the first packet of a VP8 key frame (RFC 7741 payload descriptor + header)."""
    if not payload:
        return False
    b0, i = payload[0], 1
    if not (b0 & 0x10) or (b0 & 0x07):  # S=1 and partition 0
        return False
    if b0 & 0x80:  # X
        if len(payload) < 2:
            return False
        x = payload[1]
        i = 2
        if x & 0x80:  # I: picture id, 7 or 15 bits
            i += 2 if len(payload) > i and payload[i] & 0x80 else 1
        if x & 0x40:  # L
            i += 1
        if x & 0x30:  # T or K
            i += 1
    return len(payload) > i and not (payload[i] & 0x01)


class Student:
    def __init__(self, ws: WsClient):
        self.ws = ws
        self.pc = RTCPeerConnection(no_stun())
        self.joined_at: float | None = None
        self.first_rtp: float | None = None
        self.first_key: float | None = None
        self.bytes = {"video": 0, "audio": 0}
        self.packets = {"video": 0, "audio": 0}
        self.mark: tuple[float, dict, dict] | None = None
        self.error: str | None = None
        self.media_path: str | None = None

    async def join(self, session: str, registry: dict, done: asyncio.Event, timeout: float) -> None:
        try:
            self.joined_at = time.monotonic()
            ack = await self.ws.request("call.join", session=session, timeout=timeout)
            self.media_path = ack.get("media_path")
            deadline = time.monotonic() + timeout
            while True:
                sub = await self.ws.request("sfu.subscribe", session=session, timeout=timeout)
                if sub["sdp"]:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError("no publisher listed")
                await asyncio.sleep(0.1)
            await self.pc.setRemoteDescription(RTCSessionDescription(sub["sdp"], "offer"))
            for tr in self.pc.getTransceivers():
                registry[id(tr.receiver)] = (self, tr.kind)
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            await self.ws.request("sfu.answer", session=session, sdp=self.pc.localDescription.sdp, timeout=timeout)
        except Exception as e:  # noqa: BLE001 - reported per student
            self.error = f"{type(e).__name__}: {e}"
            done.set()

    def on_packet(self, kind: str, payload: bytes, size: int) -> None:
        now = time.monotonic()
        self.bytes[kind] += size
        self.packets[kind] += 1
        if kind == "video":
            if self.first_rtp is None:
                self.first_rtp = now
            if self.first_key is None and vp8_key_start(payload):
                self.first_key = now

    def result(self, now: float) -> dict:
        r = {"error": self.error, "media_path": self.media_path,
             "first_rtp_s": None if self.first_rtp is None else round(self.first_rtp - self.joined_at, 4),
             "first_frame_s": None if self.first_key is None else round(self.first_key - self.joined_at, 4)}
        if self.mark:
            t, b, p = self.mark
            secs = now - t
            r.update({"window_s": round(secs, 2),
                      "video_kbps": round((self.bytes["video"] - b["video"]) * 8 / secs / 1000, 1),
                      "audio_kbps": round((self.bytes["audio"] - b["audio"]) * 8 / secs / 1000, 1),
                      "video_pps": round((self.packets["video"] - p["video"]) / secs, 1),
                      "audio_pps": round((self.packets["audio"] - p["audio"]) / secs, 1)})
        return r


async def students(cfg: dict, join_timeout: float) -> None:
    registry: dict[int, tuple[Student, str]] = {}
    original = rtpreceiver.RTCRtpReceiver._handle_rtp_packet

    async def counting(self, packet, arrival_time_ms):
        entry = registry.get(id(self))
        if entry is not None and self._enabled:
            entry[0].on_packet(entry[1], packet.payload, len(packet.payload) + packet.padding_size)
        return await original(self, packet, arrival_time_ms)

    rtpreceiver.RTCRtpReceiver._handle_rtp_packet = counting
    rtpreceiver.get_decoder = lambda codec: NullDecoder()

    socks = await asyncio.gather(*(WsClient.connect(cfg["ws_url"], tok) for tok in cfg["tokens"]))
    studs = [Student(ws) for ws in socks]
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    tasks: list[asyncio.Task] = []
    try:
        while True:
            line = (await reader.readline()).decode().strip()
            if line == "join":
                failed = asyncio.Event()
                tasks = [asyncio.ensure_future(s.join(cfg["session"], registry, failed, join_timeout)) for s in studs]
                deadline = time.monotonic() + join_timeout
                while time.monotonic() < deadline and not all(s.first_key or s.error for s in studs):
                    await asyncio.sleep(0.02)
                print("JOINED", flush=True)
            elif line == "mark":
                now = time.monotonic()
                for s in studs:
                    s.mark = (now, dict(s.bytes), dict(s.packets))
                print("MARKED", flush=True)
            elif line in ("stop", ""):
                now = time.monotonic()
                print(json.dumps({"students": [s.result(now) for s in studs]}), flush=True)
                break
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*(s.pc.close() for s in studs), return_exceptions=True)
        for ws in socks:
            ws.close()


# -- mesh (the comparison) -------------------------------------------------------------------------
async def mesh(cfg: dict, max_kbps: int, window: float, settle: float) -> None:
    """``len(tokens)`` participants of one mesh call (tests/rtcpeer.py's RtcPeer: one connection,
    so one VP8 encoder, per other participant, as a browser does), the same camera source as the
    SFU teacher on every link, nothing decoded. Prints one JSON line: time to all connected,
    then per participant over ``window`` s: uplink video streams carrying bytes, their kbps."""
    from tests.rtcpeer import RtcPeer

    vpx.DEFAULT_BITRATE = vpx.MAX_BITRATE = max_kbps * 1000
    rtpreceiver.get_decoder = lambda codec: NullDecoder()
    # RtcPeer reads every received track; with no decoder its queue stays empty.
    t_ws = await WsClient.connect(cfg["ws_url"], cfg["tokens"][0])
    session = (await t_ws.request("call.start", room=cfg["room"]))["session"]["id"]
    peers = [await RtcPeer.connect(cfg["ws_url"], tok, label=f"m{k}",
                                   tracks=lambda: (NoiseVideoTrack(), ToneAudioTrack()))
             for k, tok in enumerate(cfg["tokens"])]
    res: dict = {"participants": len(peers)}
    try:
        t0 = time.monotonic()
        acks = await asyncio.gather(*(p.join(session) for p in peers))
        res["media_path"] = sorted({a.get("media_path", "mesh") for a in acks})
        for p in peers:
            await p.wait_connected([q.peer_id for q in peers if q is not p], timeout=90)
        res["all_connected_s"] = round(time.monotonic() - t0, 2)
        await asyncio.sleep(settle)

        async def sent() -> list[dict]:
            out = []
            for p in peers:
                per = {"links": len(p.links), "video_bytes": 0, "video_streams": 0, "frames": 0}
                for link in p.links.values():
                    for st in (await link.pc.getStats()).values():
                        if st.type == "outbound-rtp" and st.kind == "video":
                            per["video_bytes"] += st.bytesSent
                            per["video_streams"] += 1 if st.bytesSent > 0 else 0
                out.append(per)
            return out
        a, ta = await sent(), time.monotonic()
        print("MARK", flush=True)
        await asyncio.sleep(window)
        b, tb = await sent(), time.monotonic()
        print("MARK", flush=True)
        res["window_s"] = round(tb - ta, 1)
        res["per_participant"] = [{"peer_connections": y["links"], "uplink_video_streams": y["video_streams"],
                                   "uplink_video_kbps": round((y["video_bytes"] - x["video_bytes"]) * 8 / (tb - ta) / 1000, 1)}
                                  for x, y in zip(a, b)]
        print(json.dumps(res), flush=True)  # before the teardown: 56 connections take long to close
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*(p.close() for p in peers), return_exceptions=True), 20)
        with contextlib.suppress(Exception):
            await t_ws.request("call.end", session=session)
        t_ws.close()


async def encode_probe(max_kbps: int, seconds: float) -> None:
    """One VP8 encoder fed the teacher's source in real time (30 fps) for ``seconds``: the CPU
    one more mesh link costs its sender (process CPU; the source's frame copies included)."""
    vpx.DEFAULT_BITRATE = vpx.MAX_BITRATE = max_kbps * 1000
    track, enc = NoiseVideoTrack(), vpx.Vp8Encoder()
    await track.recv()
    c0, t0, size, n = time.process_time(), time.monotonic(), 0, 0
    while time.monotonic() - t0 < seconds:
        frame = await track.recv()
        packets, _ = enc.encode(frame, force_keyframe=False)
        size += sum(len(x) for x in packets)
        n += 1
    secs = time.monotonic() - t0
    print(json.dumps({"encode_core_pct": round(100 * (time.process_time() - c0) / secs, 2),
                      "fps": round(n / secs, 1), "kbps": round(size * 8 / secs / 1000, 1)}), flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=("teacher", "students", "mesh", "encode"))
    p.add_argument("config")
    p.add_argument("--max-kbps", type=int, default=1000)
    p.add_argument("--join-timeout", type=float, default=30)
    p.add_argument("--window", type=float, default=15)
    p.add_argument("--settle", type=float, default=3)
    args = p.parse_args()
    if args.role == "encode":
        asyncio.run(encode_probe(args.max_kbps, args.window))
        return
    cfg = json.loads(Path(args.config).read_text())
    if cfg.get("peer_addr"):  # gather on the namespace's peer address only
        aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: [cfg["peer_addr"]]
    if args.role == "teacher":
        asyncio.run(teacher(cfg, args.max_kbps))
    elif args.role == "mesh":
        asyncio.run(mesh(cfg, args.max_kbps, args.window, args.settle))
    else:
        asyncio.run(students(cfg, args.join_timeout))


if __name__ == "__main__":
    main()
