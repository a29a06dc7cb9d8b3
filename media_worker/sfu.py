"""The recorder's side of an SFU call (docs/RECORDING.md, "Recording an SFU call"): one
receive-only ``RTCPeerConnection`` subscribed to every publisher of the session through
Podium's signaling, its streams routed to the participants they come from.

In an SFU call nobody answers the recorder's per-participant offers: media goes through Janus.
:class:`SfuSubscription` asks ``sfu.record {session}`` (the session's recorder only), which
adds every publisher not yet subscribed to the recorder's one subscription at Janus and
returns Janus's offer with ``streams: [{mid, type, peer_id, feed}]``; it answers with
``sfu.answer`` (Janus's own candidates are in its SDP, ours in the answer). Podium asks Janus
for each video's top simulcast layer. Each received m-line (``mid``) is tapped like a mesh
connection's receiver (``live/passthrough.py``), and its encoded frames are passed to a
:class:`RoutedTrack` of the participant the mid currently carries, which a
:class:`~media_worker.live.TrackWriter` records as ``<peer_id>-<kind>-<n>`` through
:meth:`RecordingSession.on_track` — so the files, the manifest and everything downstream are
the mesh's. When Janus gives a mid to another publisher (a renegotiation reusing a freed
m-line) the old participant's track ends and a new one starts. Keyframe requests are the
writers' own PLIs, which Janus relays to the publisher.

The caller (``job.py``) calls :meth:`restart` when it joins the call (and again after
``sfu.restart`` or a reconnect: the old subscription died with Janus or with our old socket),
:meth:`add` on every ``sfu.feeds_changed``, :meth:`offered` on every ``sfu.offer`` (Janus
renegotiating by itself), :meth:`forget` when a participant leaves, and :meth:`close` at the
end. Negotiations are serialised: one at a time. The connection uses ``max-bundle`` and
:func:`~media_worker.live.passthrough.follow_remote_ssrcs` (two aiortc details, see
docs/RECORDING.md).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiortc import RTCBundlePolicy, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from media_worker.live import RecordingSession, TrackWriter, install_passthrough
from media_worker.live.passthrough import follow_remote_ssrcs
from media_worker.peers import rtc_configuration

log = logging.getLogger("podium.worker.sfu")

Request = Callable[..., Awaitable[dict]]
ANNOUNCE_WAIT_S = 5.0
ANNOUNCE_RETRY_S = 0.25


class RoutedTrack(MediaStreamTrack):
    """One participant's share of a subscription m-line: the frames the m-line carries while
    it belongs to that participant. ``stop()`` (the writer closing) ends ``recv()``."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self._queue: asyncio.Queue = asyncio.Queue()

    def feed(self, frame: Any) -> None:
        if self.readyState == "live":
            self._queue.put_nowait(frame)

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._queue.get()
        if frame is None:
            raise MediaStreamError
        return frame

    def stop(self) -> None:
        if self.readyState == "live":
            super().stop()
            self._queue.put_nowait(None)


@dataclass
class Route:
    """What one mid carries now: ``peer_id``'s ``kind`` track, recorded by ``writer``."""

    peer_id: str
    kind: str
    track: RoutedTrack | None = None
    writer: TrackWriter | None = None

    def end(self) -> None:
        if self.writer is not None:
            self.writer.close()  # also stops the routed track
        elif self.track is not None:
            self.track.stop()


class SfuSubscription:
    """The recorder's one subscription in an SFU call (see the module docstring).

    ``request(type, **fields)`` sends a request on the worker's socket and returns its ack
    data (raising on an error); ``resolve(peer_id)`` maps a stream's publisher to the
    participant whose tracks it records (None: not a participant, not recorded)."""

    def __init__(self, label: str, session_id: str, rec: RecordingSession, request: Request,
                 resolve: Callable[[str], str | None]):
        self.label, self.session_id, self.rec = label, session_id, rec
        self._request, self._resolve = request, resolve
        self.pc: RTCPeerConnection | None = None
        self.routes: dict[str, Route] = {}  # mid → what it carries now
        self._streams: dict[str, tuple[str, str]] = {}  # mid → (kind, publisher peer_id)
        self._receivers: dict[str, Any] = {}  # mid → its tapped receiver (once its track came)
        self._pumps: set[asyncio.Task] = set()
        self._ice_servers: list[dict] = []
        self._lock = asyncio.Lock()
        self._closed = False
        self.negotiations = 0

    def set_ice_servers(self, ice_servers: list[dict]) -> None:
        self._ice_servers = list(ice_servers or [])

    # -- negotiation -------------------------------------------------------------------------
    async def refresh(self) -> bool:
        """Subscribe to every publisher not yet subscribed; False when there was none (or the
        request failed: logged, the next ``sfu.feeds_changed`` tries again)."""
        async with self._lock:
            return await self._refresh()

    async def add(self, peer_id: str, timeout: float = ANNOUNCE_WAIT_S) -> bool:
        """``sfu.feeds_changed {peer_id}``: a publish connection of ``peer_id`` (camera or
        screen) is up; subscribe until the subscription has more of their streams than before.
        Janus may announce a publisher (``webrtcup``) a moment before it lists it, so an empty
        answer is asked again every ``ANNOUNCE_RETRY_S``, for ``timeout`` at most."""
        before = self.streams_of(peer_id)
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._closed and not self.rec.stopped:
            async with self._lock:
                if await self._refresh() or self.streams_of(peer_id) > before:
                    return True
            if asyncio.get_running_loop().time() > deadline:
                log.warning("%s: %s was announced but Janus listed no new stream of theirs within %.0f s",
                            self.label, peer_id, timeout)
                return False
            await asyncio.sleep(ANNOUNCE_RETRY_S)
        return False

    def streams_of(self, peer_id: str) -> int:
        """How many streams of the subscription belong to ``peer_id`` (a participant)."""
        return sum(1 for _, p in self._streams.values() if p and self._resolve(p) == peer_id)

    async def _refresh(self, restart: bool = False) -> bool:
        if self._closed or self.rec.stopped:
            return False
        try:
            ack = await self._request("sfu.record", session=self.session_id,
                                      **({"restart": True} if restart else {}))
        except Exception as e:
            log.warning("%s: sfu.record failed: %s", self.label, e)
            return False
        if not ack.get("sdp"):  # nobody new, or Janus will offer once its pending offer is answered
            log.debug("%s: no new offer", self.label)
            return False
        if self.pc is None:
            self._open()
        return await self._answer(ack["sdp"], ack.get("streams") or [])

    async def offered(self, sdp: str, streams: list[dict]) -> bool:
        """``sfu.offer``: Janus renegotiated the subscription by itself (a publisher left, or
        an update it had queued); answer it."""
        async with self._lock:
            if self.pc is None or self._closed or not sdp:
                return False
            return await self._answer(sdp, streams)

    async def _answer(self, sdp: str, streams: list[dict]) -> bool:
        self._map(streams)
        pc = self.pc
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        follow_remote_ssrcs(pc)  # a reused m-line's new source (aiortc would drop its packets)
        await pc.setLocalDescription(await pc.createAnswer())
        try:
            await self._request("sfu.answer", session=self.session_id, sdp=pc.localDescription.sdp)
            if self.negotiations == 0:
                await self._request("sfu.ice", session=self.session_id, target="subscribe", candidate=None)
        except Exception as e:
            log.warning("%s: answering Janus's offer failed: %s", self.label, e)
            return False
        self.negotiations += 1
        log.info("%s: subscribed through Janus (%d streams: %s)", self.label, len(self._streams),
                 ", ".join(f"{mid}={kind}:{peer}" for mid, (kind, peer) in sorted(self._streams.items())))
        return True

    async def restart(self) -> bool:
        """Drop the subscription (its tracks end) and subscribe anew on a new connection."""
        async with self._lock:
            await self._drop_connection()
            return await self._refresh(restart=True)

    async def close(self) -> None:
        """End every track and close the connection. Idempotent."""
        async with self._lock:
            self._closed = True
            await self._drop_connection()

    def forget(self, peer_id: str) -> None:
        """``peer_id`` left the call: its tracks end (their m-lines may carry someone else
        after Janus's next offer)."""
        for mid, route in list(self.routes.items()):
            if route.peer_id == peer_id:
                route.end()
                del self.routes[mid]

    # -- the connection ----------------------------------------------------------------------
    def _open(self) -> None:
        # One transport for every m-line from the start (Janus bundles them all). With aiortc's
        # default (balanced) policy, the second m-line of a kind in one offer shares the first
        # one's own transport, which bundling then discards: its packets never arrive, or go to
        # the first m-line of that kind as a payload-type match.
        config = rtc_configuration(self._ice_servers)
        config.bundlePolicy = RTCBundlePolicy.MAX_BUNDLE
        pc = self.pc = RTCPeerConnection(config)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:  # synchronous: before the receiver starts
            transceiver = next((t for t in pc.getTransceivers() if t.receiver.track is track), None)
            if transceiver is None or transceiver.mid is None:
                log.error("%s: a %s track without an m-line", self.label, track.kind)
                return
            install_passthrough(transceiver.receiver)
            self._receivers[transceiver.mid] = transceiver.receiver
            task = asyncio.ensure_future(self._pump(transceiver.mid, track))
            self._pumps.add(task)
            task.add_done_callback(self._pumps.discard)
            self._route(transceiver.mid)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState == "failed" and pc is self.pc:
                log.warning("%s: the connection to Janus failed; subscribing again", self.label)
                asyncio.ensure_future(self.restart())

    async def _drop_connection(self) -> None:
        for route in self.routes.values():
            route.end()
        self.routes.clear()
        self._streams.clear()
        self._receivers.clear()
        pc, self.pc = self.pc, None
        self.negotiations = 0
        if pc is not None:
            await pc.close()
        for task in list(self._pumps):
            task.cancel()

    # -- routing -----------------------------------------------------------------------------
    def _map(self, streams: list[dict]) -> None:
        """Janus's streams of the new offer (every stream of the subscription): each mid's
        publisher. A mid that now carries someone else (or nothing) ends its current track."""
        self._streams = {str(s["mid"]): (s.get("type"), s.get("peer_id")) for s in streams
                         if s.get("mid") is not None and s.get("type") in ("audio", "video")}
        for mid in list(self.routes):
            kind, publisher = self._streams.get(mid, (None, None))
            route = self.routes[mid]
            if publisher is None or self._resolve(publisher) != route.peer_id or kind != route.kind:
                route.end()
                del self.routes[mid]
        for mid in self._streams:
            if mid in self._receivers:
                self._route(mid)

    def _route(self, mid: str) -> None:
        """Start recording what ``mid`` carries, if it carries a participant and is not yet."""
        if mid in self.routes or self.rec.stopped:
            return
        kind, publisher = self._streams.get(mid, (None, None))
        peer_id = self._resolve(publisher) if publisher else None
        receiver = self._receivers.get(mid)
        if peer_id is None or receiver is None or kind != receiver.track.kind:
            if publisher and peer_id is None:
                log.warning("%s: stream %s of %s is not a participant's; not recorded", self.label, mid, publisher)
            return
        track = RoutedTrack(kind)
        # A shared screen is its own publisher feed, ``<peer_id>:screen`` (web/js/call/sfu.js).
        source = ("screen" if publisher.endswith(":screen") else "camera") if kind == "video" else None
        writer = self.rec.on_track(peer_id, track, receiver, source=source)
        if writer is None:  # the recording has stopped
            track.stop()
            return
        self.routes[mid] = Route(peer_id, kind, track, writer)

    async def _pump(self, mid: str, track: MediaStreamTrack) -> None:
        """The m-line's frames to whoever it carries now (dropped while it carries nobody)."""
        with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
            while True:
                frame = await track.recv()
                route = self.routes.get(mid)
                if route is not None and route.track is not None:
                    route.track.feed(frame)
