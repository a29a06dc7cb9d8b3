"""The receive-only peer connections of a job (media_worker/peers.py): ICE settings and
candidates parsed without I/O, and the registry with real aiortc senders on loopback."""
from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from media_worker.peers import ReceivePeers, parse_candidate, rtc_configuration
from tests.rtcpeer import PatternVideoTrack
from tests.worker.live.helpers import sender_pc, wait_for

pytestmark = pytest.mark.timeout(60)


def test_ice_servers_from_the_join_ack():
    """Join-ack ICE servers keep their TURN credentials; entries without urls are left out."""
    config = rtc_configuration([
        {"urls": ["turn:turn.example:3478?transport=udp"], "username": "1700000000:w", "credential": "c2VjcmV0"},
        {"urls": "stun:stun.example:3478"}, {"username": "no-urls"}, "junk"])
    assert [(s.urls, s.username, s.credential) for s in config.iceServers] == [
        (["turn:turn.example:3478?transport=udp"], "1700000000:w", "c2VjcmV0"),
        ("stun:stun.example:3478", None, None)]


def test_trickled_candidate_is_parsed_with_its_media_line():
    """A browser's candidate line gives address, port, type and keeps sdpMid / sdpMLineIndex."""
    c = parse_candidate({"candidate": "candidate:842163049 1 udp 1677729535 203.0.113.7 61665 typ srflx "
                                      "raddr 10.0.0.2 rport 61665", "sdpMid": "1", "sdpMLineIndex": 1})
    assert (c.ip, c.port, c.type, c.protocol, c.sdpMid, c.sdpMLineIndex) == (
        "203.0.113.7", 61665, "srflx", "udp", "1", 1)


def test_empty_candidate_is_none_and_garbage_raises():
    """An empty candidate (end of candidates) is None; a malformed one raises ValueError."""
    assert parse_candidate({"candidate": "", "sdpMid": "0"}) is None
    assert parse_candidate(None) is None
    with pytest.raises(ValueError, match="malformed ICE candidate"):
        parse_candidate({"candidate": "candidate:garbage"})


async def answer_from_sender(peers: ReceivePeers, peer_id: str, offer: str) -> RTCPeerConnection:
    """Answer ``offer`` from a real sender and wait until ``peer_id`` connects; return the sender."""
    sender = sender_pc(PatternVideoTrack(160, 120, 15))
    await sender.setRemoteDescription(RTCSessionDescription(offer, "offer"))
    await sender.setLocalDescription(await sender.createAnswer())
    assert await peers.answer(peer_id, sender.localDescription.sdp)
    await wait_for(lambda: peers.state(peer_id) == "connected", 10, f"{peer_id} to connect")
    return sender


async def connect(peers: ReceivePeers, peer_id: str) -> RTCPeerConnection:
    """Open ``peer_id`` in ``peers`` and connect a real sender to it; return the sender."""
    return await answer_from_sender(peers, peer_id, await peers.open(peer_id, lambda pc: None))


async def test_open_taps_before_any_description_and_offers_receive_only():
    """attach() runs before any description; the offer is recvonly audio + video and connects."""
    peers = ReceivePeers("rec test", on_ended=lambda _: None)
    attached: list[RTCPeerConnection] = []

    def attach(pc: RTCPeerConnection) -> None:
        attached.append(pc)
        assert pc.localDescription is None and pc.remoteDescription is None

    offer = await peers.open("p1", attach)
    sender = None
    try:
        assert len(attached) == 1
        sections = offer.split("\nm=")[1:]
        assert [s.split(" ", 1)[0] for s in sections] == ["audio", "video"]
        assert all("a=recvonly" in s for s in sections)
        sender = await answer_from_sender(peers, "p1", offer)
        assert peers.ids() == ["p1"] and attached[0].connectionState == "connected"
    finally:
        await peers.close_all()
        if sender is not None:
            await sender.close()


async def test_connection_closed_by_the_other_side_is_closed_removed_and_reported_once():
    """A connection the browser closes is closed, removed and reported once; others stay up."""
    ended: list[str] = []
    peers = ReceivePeers("rec test", on_ended=ended.append)
    a, b = await connect(peers, "pA"), await connect(peers, "pB")
    try:
        await a.close()
        await wait_for(lambda: "pA" not in peers, 10, "pA to be dropped")
        await asyncio.sleep(0.2)  # a second state change must not report it again
        assert ended == ["pA"] and peers.ids() == ["pB"] and peers.state("pB") == "connected"
    finally:
        await peers.close_all()
        await b.close()


async def test_close_and_close_all_do_not_report_and_are_idempotent():
    """Closing on request does not call on_ended, and closing what is gone is a no-op."""
    ended: list[str] = []
    peers = ReceivePeers("rec test", on_ended=ended.append)
    senders = [await connect(peers, p) for p in ("pA", "pB")]
    try:
        assert await peers.close("pA") and not await peers.close("pA")
        await peers.close_all()
        await peers.close_all()
        await wait_for(lambda: all(s.connectionState in ("closed", "failed") for s in senders), 10,
                       "the senders to see the close")
        assert len(peers) == 0 and ended == []
    finally:
        for s in senders:
            await s.close()


async def test_open_twice_raises_and_a_failed_open_leaves_nothing():
    """A second connection to a peer is refused; a failed open leaves no connection behind."""
    peers = ReceivePeers("rec test", on_ended=lambda _: None)
    try:
        await peers.open("p1", lambda pc: None)
        with pytest.raises(ValueError, match="already"):
            await peers.open("p1", lambda pc: None)

        def broken(pc: RTCPeerConnection) -> None:
            raise RuntimeError("tap failed")

        with pytest.raises(RuntimeError):
            await peers.open("p2", broken)
        assert peers.ids() == ["p1"]
    finally:
        await peers.close_all()


async def test_signals_for_unknown_peers_are_ignored():
    """An answer or candidate for a peer without a connection (it left meanwhile) does nothing."""
    peers = ReceivePeers("rec test", on_ended=lambda _: None)
    assert not await peers.answer("gone", "v=0\r\n")
    assert not await peers.add_candidate("gone", {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host"})
