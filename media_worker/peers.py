"""The receive-only peer connections of one recording: one ``RTCPeerConnection`` per call
participant, offered ``recvonly`` by the worker (docs/RECORDING.md).

aiortc's rule: whoever creates a peer connection owns closing it. :class:`ReceivePeers`
creates every connection of a job and is the only thing that closes them: when asked (the
participant left), when one fails or closes by itself, and all at once at shutdown. Signaling
(who is offered, how offers travel) stays with the job; this module only speaks SDP and ICE.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiortc import RTCConfiguration, RTCIceCandidate, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

from media_worker.live import add_recvonly_transceivers

log = logging.getLogger("podium.worker.peers")


def rtc_configuration(ice_servers: list[dict[str, Any]]) -> RTCConfiguration:
    """aiortc's configuration from the ``ice_servers`` of a ``call.join`` ack
    (``[{urls, username?, credential?}]``); entries without ``urls`` are left out."""
    servers = [RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
               for s in ice_servers if isinstance(s, dict) and s.get("urls")]
    return RTCConfiguration(iceServers=servers)


def parse_candidate(candidate: Any) -> RTCIceCandidate | None:
    """A trickled ``{candidate: "candidate:…", sdpMid, sdpMLineIndex}`` as aiortc's candidate;
    ``None`` for an empty one (end of candidates). Raises ``ValueError`` for a malformed one."""
    if not isinstance(candidate, dict) or not candidate.get("candidate"):
        return None
    try:
        parsed = candidate_from_sdp(str(candidate["candidate"]).split(":", 1)[-1])
    except (AssertionError, IndexError, ValueError) as e:  # aiortc checks the field count with assert
        raise ValueError(f"malformed ICE candidate {candidate['candidate']!r}: {e}") from None
    parsed.sdpMid, parsed.sdpMLineIndex = candidate.get("sdpMid"), candidate.get("sdpMLineIndex")
    return parsed


class ReceivePeers:
    """The registry of one job's connections, by the participant's ``peer_id``.

    ``on_ended(peer_id)`` is called once for a connection that failed or closed by itself,
    after it was closed and removed; a connection closed through :meth:`close` or
    :meth:`close_all` does not call it (the caller knows). ``label`` names the job in logs.
    """

    def __init__(self, label: str, on_ended: Callable[[str], None]):
        self.label = label
        self._on_ended = on_ended
        self._pcs: dict[str, RTCPeerConnection] = {}
        self._early_ice: dict[str, list[RTCIceCandidate]] = {}
        self._config = RTCConfiguration()

    def set_ice_servers(self, ice_servers: list[dict[str, Any]]) -> None:
        """STUN/TURN for connections opened from now on (each ``call.join`` ack brings fresh
        TURN credentials)."""
        self._config = rtc_configuration(ice_servers)

    def __contains__(self, peer_id: object) -> bool:
        return peer_id in self._pcs

    def __len__(self) -> int:
        return len(self._pcs)

    def ids(self) -> list[str]:
        return list(self._pcs)

    def state(self, peer_id: str) -> str | None:
        """The connection's ``connectionState``, or ``None`` when there is none."""
        pc = self._pcs.get(peer_id)
        return pc.connectionState if pc is not None else None

    async def open(self, peer_id: str, attach: Callable[[RTCPeerConnection], None]) -> str:
        """Create the connection to ``peer_id`` with recvonly audio + video, let ``attach(pc)``
        tap it (before any description is set), and return the SDP offer to send. Raises
        ``ValueError`` when ``peer_id`` already has one; on any failure the connection is closed."""
        if peer_id in self._pcs:
            raise ValueError(f"{self.label}: {peer_id} already has a connection")
        pc = RTCPeerConnection(self._config)
        self._pcs[peer_id] = pc

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed") and self._pcs.get(peer_id) is pc:
                log.info("%s: connection to %s %s", self.label, peer_id, pc.connectionState)
                await self._discard(peer_id)
                self._on_ended(peer_id)

        try:
            add_recvonly_transceivers(pc)
            attach(pc)
            await pc.setLocalDescription(await pc.createOffer())
        except BaseException:
            await self._discard(peer_id)
            raise
        return pc.localDescription.sdp

    async def answer(self, peer_id: str, sdp: str) -> bool:
        """Apply ``peer_id``'s answer to our offer, then any candidates that came ahead of it.
        False (nothing done) when there is no connection awaiting an answer."""
        pc = self._pcs.get(peer_id)
        if pc is None or pc.signalingState != "have-local-offer":
            return False
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        for candidate in self._early_ice.pop(peer_id, []):
            await pc.addIceCandidate(candidate)
        return True

    async def add_candidate(self, peer_id: str, candidate: Any) -> bool:
        """Add a trickled candidate (kept until the answer when it comes first). False when
        there is no connection or the candidate is empty; ``ValueError`` when malformed."""
        pc = self._pcs.get(peer_id)
        parsed = parse_candidate(candidate)
        if pc is None or parsed is None:
            return False
        if pc.remoteDescription is None:
            self._early_ice.setdefault(peer_id, []).append(parsed)
        else:
            await pc.addIceCandidate(parsed)
        return True

    async def close(self, peer_id: str) -> bool:
        """Close and forget ``peer_id``'s connection; False when there was none."""
        if peer_id not in self._pcs:
            return False
        await self._discard(peer_id)
        return True

    async def close_all(self) -> None:
        """Close every connection (the job is over). Idempotent."""
        for peer_id in list(self._pcs):
            await self._discard(peer_id)

    async def _discard(self, peer_id: str) -> None:
        pc = self._pcs.pop(peer_id, None)  # removed first: its own "closed" event is then ignored
        self._early_ice.pop(peer_id, None)
        if pc is not None:
            await pc.close()
