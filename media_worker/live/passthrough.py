"""Encoded frames out of an aiortc receiver, without decoding: ``track.recv()`` on a tapped
receiver's track returns :class:`EncodedFrame` objects instead of decoded ``av`` frames.

This relies on private aiortc internals, pinned to aiortc 1.16 (``PINNED_AIORTC``; checked by
``aiortc_internals_problems()``, which tests/worker/live/test_passthrough.py runs):

* ``RTCRtpReceiver._handle_rtp_packet`` (on the event loop) hands each assembled frame to
  ``self.__decoder_queue.put((codec, jitter_frame))``, a ``queue.Queue`` created in ``__init__``
  and passed to the decoder thread when ``receive()`` starts it; ``__stop_decoder`` puts
  ``None`` there to end the thread, which then ends the track by putting ``None`` on
  ``RemoteStreamTrack._queue``.
* When its jitter buffer discards packets it cannot complete (overflow, a large reorder) the
  receiver calls ``await self._send_rtcp_pli(media_ssrc)``.

``install_passthrough(receiver)`` swaps that one receiver's decoder queue for a stand-in whose
``put`` turns the frame into an :class:`EncodedFrame` and queues it on the track at once (on
the event loop, so no thread hop and no decoder), and wraps the receiver's ``_send_rtcp_pli``
to learn about losses. Nothing process-wide is patched: other connections in the same process
keep decoding. The receiver's decoder thread still starts, idles on the stand-in's inner queue
and ends normally when the receiver stops.

New SSRCs on an m-line that already receives (:func:`follow_remote_ssrcs`): aiortc routes a
connection's incoming RTP to its receivers by SSRC (``RtpRouter.ssrc_table`` of the DTLS
transport) and, for an SSRC it does not know, by a payload type only one receiver uses. A
receiver's SSRCs are registered once, from the description in force when it starts
(``receive()`` sets ``__started``). Janus reuses a subscription's freed m-line (a publisher left)
for the next publisher it adds, with new SSRCs in its next offer; with two or more video (or
audio) m-lines the payload type is shared, so aiortc would drop every packet of the newcomer.
After each ``setRemoteDescription`` the new SSRCs (and the RTX ones of ``a=ssrc-group:FID``,
in ``__rtx_ssrc``) are routed to the m-line's receiver, and its per-source state — jitter
buffer, NACK generator, RTP timestamp mapper, as ``__init__`` creates them — starts afresh,
since the new source's sequence numbers and timestamps have nothing to do with the old one's.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import queue
import time
from dataclasses import dataclass
from typing import Any

import aiortc
from aiortc import RTCPeerConnection
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtcdtlstransport import RTCDtlsTransport, RtpRouter
from aiortc.rtcrtpreceiver import (NackGenerator, RemoteStreamTrack, RTCRtpReceiver, TimestampMapper,
                                   decoder_worker)
from aiortc.sdp import SessionDescription

from media_worker.bitstreams import h264, vp8

log = logging.getLogger("podium.worker.live")

PINNED_AIORTC = "1.16.0"
_QUEUE_ATTR = "_RTCRtpReceiver__decoder_queue"
_THREAD_ATTR = "_RTCRtpReceiver__decoder_thread"
_STARTED_ATTR = "_RTCRtpReceiver__started"
_RTX_ATTR = "_RTCRtpReceiver__rtx_ssrc"

_KEYFRAME_TESTS = {"vp8": vp8.is_keyframe, "h264": h264.is_keyframe}


class PassthroughUnsupported(RuntimeError):
    """The receiver cannot be tapped: aiortc's internals differ from the pinned version, or the
    receiver already started (the tap must be installed before ``receive()``, i.e. from the
    connection's ``track`` event at the latest)."""


@dataclass(slots=True)
class EncodedFrame:
    """One received frame exactly as the sender encoded it.

    ``data`` is a VP8 frame, an H.264 Annex-B access unit or an Opus packet. ``timestamp`` is
    the RTP timestamp as aiortc's receiver maps it (relative to that receiver's first frame,
    unwrapped, so it can exceed 32 bits; only differences between frames are meaningful).
    ``keyframe`` is always true for audio. ``received_at`` (``time.time()``) and
    ``received_mono`` (``time.monotonic()``) are taken when the receiver assembled the frame.
    ``loss_before`` is true when the receiver discarded packets since the previous frame, so
    references may be missing.
    """

    kind: str
    codec: str
    data: bytes
    timestamp: int
    keyframe: bool
    received_at: float
    received_mono: float
    loss_before: bool = False


class _FrameQueue:
    """Stands in for one receiver's decoder queue (see the module docstring)."""

    def __init__(self, tap: ReceiverTap):
        self._tap = tap
        self._thread_q: queue.Queue = queue.Queue()  # only ever holds the end-of-stream None

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            self._thread_q.put(None)
        else:
            self._tap._deliver(*item)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        return self._thread_q.get(block, timeout)


class ReceiverTap:
    """The passthrough installed on one ``RTCRtpReceiver`` (create with
    :func:`install_passthrough`). Counts what went through and sends keyframe requests."""

    def __init__(self, receiver: RTCRtpReceiver):
        problems = _structural_problems(receiver)
        if problems:
            raise PassthroughUnsupported("; ".join(problems))
        if getattr(receiver, _THREAD_ATTR) is not None:
            raise PassthroughUnsupported("receiver already started: tap it before receive()")
        self.receiver = receiver
        self.frames = 0
        self.losses = 0  # jitter-buffer discards the receiver reported
        self.keyframe_requests = 0
        self._loss = False
        self._ssrc: int | None = None
        self._pending: set[asyncio.Future] = set()
        self._send_pli = receiver._send_rtcp_pli  # the original bound method
        setattr(receiver, _QUEUE_ATTR, _FrameQueue(self))
        receiver._send_rtcp_pli = self._on_receiver_pli  # shadows the method on this instance
        receiver._podium_tap = self

    def _deliver(self, codec: Any, jitter_frame: Any) -> None:
        """Called by the receiver on the event loop with one assembled frame."""
        track: RemoteStreamTrack | None = self.receiver._track
        if track is None or track.readyState != "live":
            return  # nobody will read it: do not let frames pile up
        name = codec.mimeType.partition("/")[2].lower()
        data = jitter_frame.data
        test = _KEYFRAME_TESTS.get(name)
        frame = EncodedFrame(track.kind, name, data, jitter_frame.timestamp,
                             test(data) if test is not None else track.kind == "audio",
                             time.time(), time.monotonic(), self._loss)
        self._loss = False
        self.frames += 1
        track._queue.put_nowait(frame)

    async def _on_receiver_pli(self, media_ssrc: int) -> None:
        # The receiver only asks for a keyframe itself when its jitter buffer dropped packets
        # (nothing decodes here, so no decode errors): the next frame follows a loss.
        self._loss = True
        self._ssrc = media_ssrc
        self.losses += 1
        await self._send_pli(media_ssrc)

    def source_changed(self) -> None:
        """The m-line now carries another source (``rtp_routes.py``): keyframe requests must
        address its SSRC, found again from the next packets."""
        self._ssrc = None

    def request_keyframe(self) -> bool:
        """Send one PLI to the sender of this receiver's media (in the background). False when
        no media arrived yet, so there is no SSRC to address."""
        ssrc = self._ssrc
        if ssrc is None:
            sources = self.receiver.getSynchronizationSources()
            if not sources:
                return False
            ssrc = self._ssrc = max(sources, key=lambda s: s.timestamp).source
        self.keyframe_requests += 1
        task = asyncio.ensure_future(self._send_pli(ssrc))
        self._pending.add(task)
        task.add_done_callback(self._sent)
        return True

    def _sent(self, task: asyncio.Future) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("keyframe request (PLI) failed: %r", task.exception())


def install_passthrough(receiver: RTCRtpReceiver) -> ReceiverTap:
    """Make ``receiver``'s track yield :class:`EncodedFrame` objects; idempotent. Must run
    before the receiver starts (from the ``track`` event at the latest); raises
    :class:`PassthroughUnsupported` otherwise or when aiortc's internals changed."""
    tap = getattr(receiver, "_podium_tap", None)
    return tap if tap is not None else ReceiverTap(receiver)


# The receiver's per-source state, as RTCRtpReceiver.__init__ creates it.
_FRESH = {
    "audio": {"jitter_buffer": lambda: JitterBuffer(capacity=16, prefetch=4), "nack_generator": lambda: None},
    "video": {"jitter_buffer": lambda: JitterBuffer(capacity=512, is_video=True), "nack_generator": NackGenerator},
}


def follow_remote_ssrcs(pc: RTCPeerConnection) -> list[str]:
    """Route the SSRCs of ``pc``'s remote description to the receivers of their m-lines;
    returns the mids of the started receivers that got a new source (their state was reset)."""
    if pc.remoteDescription is None:
        return []
    changed = []
    by_mid = {t.mid: t for t in pc.getTransceivers() if t.mid is not None}
    for media in SessionDescription.parse(pc.remoteDescription.sdp).media:
        transceiver = by_mid.get(media.rtp.muxId)
        if transceiver is None or media.kind not in _FRESH:
            continue
        receiver = transceiver.receiver
        if not getattr(receiver, _STARTED_ATTR, False):
            continue  # receive() registers what the description says
        router = receiver.transport._rtp_router
        rtx = getattr(receiver, _RTX_ATTR)
        for group in media.ssrc_group:  # retransmissions: routed, never a new source
            if group.semantic == "FID" and len(group.items) == 2:
                rtx[int(group.items[1])] = int(group.items[0])
                router.ssrc_table[int(group.items[1])] = receiver
        new = [s for s in dict.fromkeys(d.ssrc for d in media.ssrc)
               if s not in rtx and router.ssrc_table.get(s) is not receiver]
        if not new:
            continue
        for ssrc in new:
            router.ssrc_table[ssrc] = receiver
        for name, make in _FRESH[media.kind].items():
            setattr(receiver, "_RTCRtpReceiver__" + name, make())
        setattr(receiver, "_RTCRtpReceiver__timestamp_mapper", TimestampMapper())
        tap = getattr(receiver, "_podium_tap", None)
        if tap is not None:
            tap.source_changed()
        changed.append(transceiver.mid)
        log.info("m-line %s: a new source (SSRC %s) now routed to its receiver", transceiver.mid,
                 ", ".join(map(str, sorted(new))))
    return changed


def _structural_problems(receiver: RTCRtpReceiver) -> list[str]:
    problems = []
    if not isinstance(getattr(receiver, _QUEUE_ATTR, None), (queue.Queue, _FrameQueue)):
        problems.append(f"RTCRtpReceiver has no {_QUEUE_ATTR} queue")
    if not hasattr(receiver, _THREAD_ATTR):
        problems.append(f"RTCRtpReceiver has no {_THREAD_ATTR}")
    if not inspect.iscoroutinefunction(getattr(type(receiver), "_send_rtcp_pli", None)):
        problems.append("RTCRtpReceiver._send_rtcp_pli is missing or not a coroutine function")
    return problems


def aiortc_internals_problems() -> list[str]:
    """Every assumption above that the installed aiortc breaks (empty when all hold). Reads
    aiortc's source, so call it from tests, not per connection."""
    problems = []
    if aiortc.__version__ != PINNED_AIORTC:
        problems.append(f"aiortc {aiortc.__version__} is installed, {PINNED_AIORTC} is pinned")

    def source(obj: Any) -> str:
        try:
            return inspect.getsource(obj)
        except (OSError, TypeError) as exc:
            problems.append(f"cannot read the source of {obj!r}: {exc}")
            return ""

    expected = [
        (RTCRtpReceiver.__init__, "self.__decoder_queue: queue.Queue = queue.Queue()"),
        (RTCRtpReceiver._handle_rtp_packet, "self.__decoder_queue.put((codec, encoded_frame))"),
        (RTCRtpReceiver._handle_rtp_packet, "await self._send_rtcp_pli(packet.ssrc)"),
        (RTCRtpReceiver._handle_rtp_packet, "self.__timestamp_mapper.map("),
        (RTCRtpReceiver.receive, "self.__decoder_queue,"),
        (RTCRtpReceiver.receive, "self._track._queue,"),
        (RTCRtpReceiver._RTCRtpReceiver__stop_decoder, "self.__decoder_queue.put(None)"),
        (decoder_worker, "task = input_q.get()"),
        (RemoteStreamTrack.__init__, "self._queue: asyncio.Queue = asyncio.Queue()"),
        # follow_remote_ssrcs:
        (RTCRtpReceiver.__init__, "self.__jitter_buffer = JitterBuffer(capacity=16, prefetch=4)"),
        (RTCRtpReceiver.__init__, "self.__nack_generator = None"),
        (RTCRtpReceiver.__init__, "self.__jitter_buffer = JitterBuffer(capacity=512, is_video=True)"),
        (RTCRtpReceiver.__init__, "self.__nack_generator = NackGenerator()"),
        (RTCRtpReceiver.__init__, "self.__rtx_ssrc: dict[int, int] = {}"),
        (RTCRtpReceiver.__init__, "self.__timestamp_mapper = TimestampMapper()"),
        (RTCRtpReceiver.receive, "self.__started = True"),
        (RTCDtlsTransport.__init__, "self._rtp_router = RtpRouter()"),
        (RtpRouter.route_rtp, "ssrc_receiver = self.ssrc_table.get(packet.ssrc)"),
    ]
    for obj, text in expected:
        if text not in source(obj):
            problems.append(f"{obj.__qualname__} no longer contains {text!r}")
    params = list(inspect.signature(RTCRtpReceiver._send_rtcp_pli).parameters)
    if params != ["self", "media_ssrc"]:
        problems.append(f"RTCRtpReceiver._send_rtcp_pli takes {params}, expected [self, media_ssrc]")
    if not inspect.iscoroutinefunction(RTCRtpReceiver._send_rtcp_pli):
        problems.append("RTCRtpReceiver._send_rtcp_pli is no longer a coroutine function")
    return problems
