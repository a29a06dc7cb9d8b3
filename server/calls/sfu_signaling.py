"""Signaling for calls through Janus (docs/PROTOCOL-ADDITIONS.md "SFU calls"): each
participant publishes on one connection and subscribes to the others on one multistream
connection; Podium relays the SDP and ICE between the browser and Janus.

Every op first checks that the sender is a current participant of the session it names
(``Calls.participant``: ``forbidden`` otherwise). The Janus room is the session's own (derived
from its id, ``sfu/rooms.py``); a browser never names a room, and subscribes only to feeds
Janus lists in that room, so nobody publishes into, or subscribes to, a session it is not in.
A participant's Janus session (its publisher and subscriber handles) is destroyed when it
leaves the call (``left`` hook) — which removes its feed from the room — and the room when the
call ends (``ended`` hook). Janus's own ICE candidates are in its SDP; the browser's trickle
goes through ``sfu.ice``. When a Janus restarts, its rooms are recreated (``sfu/rooms.py``) and
every participant of those sessions connected to this process receives ``sfu.restart
{session}``: it publishes and subscribes again, on new connections.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from server.calls.sessions import Calls
from server.calls.wire import MAX_SDP_BYTES
from server.kernel.errors import BadRequest, Conflict, Forbidden
from server.kernel.frames import event_frame
from server.sfu import videoroom as vr
from server.sfu.client import Handle, JanusSession
from server.sfu.protocol import JanusClosed, JanusError
from server.sfu.rooms import RoomSpec
from server.sfu.service import JanusNode, Sfu

log = logging.getLogger("podium.calls.sfu")
TARGETS = ("publish", "subscribe")


def parse_sdp(msg: dict) -> str:
    sdp = msg.get("sdp")
    if isinstance(sdp, dict):  # an RTCSessionDescriptionInit is accepted too
        sdp = sdp.get("sdp")
    if not isinstance(sdp, str) or not sdp or len(sdp) > MAX_SDP_BYTES:
        raise BadRequest("sdp must be a non-empty SDP string")
    return sdp


def parse_ice(msg: dict) -> tuple[str, dict | None]:
    """``target`` (publish | subscribe) and an RTCIceCandidateInit, or null: end of candidates."""
    target = msg.get("target")
    if target not in TARGETS:
        raise BadRequest("target must be publish or subscribe")
    cand = msg.get("candidate")
    if cand is None:
        return target, None
    if (not isinstance(cand, dict) or not isinstance(cand.get("candidate"), str)
            or len(cand["candidate"]) > 1024):
        raise BadRequest("candidate must be an RTCIceCandidateInit object or null")
    out = {"candidate": cand["candidate"]}
    if isinstance(cand.get("sdpMid"), str):
        out["sdpMid"] = cand["sdpMid"]
    if isinstance(cand.get("sdpMLineIndex"), int) and not isinstance(cand.get("sdpMLineIndex"), bool):
        out["sdpMLineIndex"] = cand["sdpMLineIndex"]
    return target, out


def streams_wire(streams: list[dict]) -> list[dict]:
    """Janus's subscription streams → ``{mid, type, peer_id, feed}`` (``peer_id``: the
    publisher's, which Podium gave Janus as the feed's display name)."""
    return [{"mid": s.get("mid"), "type": s.get("type"), "peer_id": s.get("feed_display"),
             "feed": str(s["feed_id"]) if s.get("feed_id") is not None else None}
            for s in streams if s.get("type") in ("audio", "video")]


@dataclass
class SfuPeer:
    """One participant's side in Janus: its Janus session, publisher and subscriber handles."""

    node: JanusNode
    janus: JanusSession
    room: int
    publisher: Handle | None = None
    feed: int | None = None
    subscriber: Handle | None = None
    feeds: set[int] = field(default_factory=set)


class SfuSignaling:
    def __init__(self, calls: Calls, sfu: Sfu):
        self.calls, self.sfu = calls, sfu
        self.peers: dict[tuple[int, str], SfuPeer] = {}
        for node in sfu.nodes:
            node.rooms.on_rooms_recreated.append(self.rooms_recreated)

    def media_path(self, session_id: int) -> str:
        """``sfu`` when a Janus is connected for this session, else ``mesh``."""
        return "sfu" if self.sfu.node_for_session(session_id) is not None else "mesh"

    async def _peer(self, conn, msg: dict) -> tuple[object, object, SfuPeer]:
        live, me = self.calls.participant(conn, msg)  # forbidden unless a current participant
        key = (live.id, me.peer_id)
        peer = self.peers.get(key)
        if peer is not None and not peer.janus.lost:
            return live, me, peer
        node = self.sfu.node_for_session(live.id)
        if node is None:
            raise Conflict("no media router is available: this call uses the mesh")
        try:
            spec = await node.rooms.open(str(live.id))
            janus = await node.connection.create_session()
        except (JanusError, JanusClosed) as e:
            log.warning("session %s: media router %s: %s", live.id, node.url, e)
            raise Conflict("the media router is unavailable") from None
        peer = SfuPeer(node, janus, spec.room)
        self.peers[key] = peer
        return live, me, peer

    async def publish(self, conn, msg: dict) -> dict:
        """``sfu.publish {session, sdp}`` (an offer) → ``{sdp, feed}`` (Janus's answer)."""
        sdp = parse_sdp(msg)
        live, me, peer = await self._peer(conn, msg)
        try:
            if peer.publisher is None:
                peer.publisher = await peer.janus.attach(vr.PLUGIN)
                peer.publisher.on_event.append(self._announce_when_up(live.id, me.peer_id))
                joined = await peer.publisher.message(vr.join_publisher(peer.room, display=me.peer_id))
                peer.feed = int(joined.data["id"])
                reply = await peer.publisher.message(vr.publish(), jsep={"type": "offer", "sdp": sdp})
            else:  # a new offer from the same publisher: renegotiation
                reply = await peer.publisher.message(vr.configure(), jsep={"type": "offer", "sdp": sdp})
        except (JanusError, JanusClosed) as e:
            raise Conflict(f"the media router refused the offer: {e}") from None
        if not reply.jsep or reply.jsep.get("type") != "answer":
            raise Conflict("the media router sent no answer")
        return {"sdp": reply.jsep["sdp"], "feed": str(peer.feed)}

    async def subscribe(self, conn, msg: dict) -> dict:
        """``sfu.subscribe {session}`` → ``{sdp, streams}``: an offer from Janus carrying every
        other publisher of the session not yet subscribed (``sdp`` null when there is none),
        answered with ``sfu.answer``."""
        _, me, peer = await self._peer(conn, msg)
        try:
            listed = await peer.node.rooms.participants_of_room(peer.room)
            feeds = [int(p["id"]) for p in listed if p.get("publisher") and p.get("display") != me.peer_id]
            new = [f for f in feeds if f not in peer.feeds]
            if not new:
                return {"sdp": None, "streams": []}
            if peer.subscriber is None:
                peer.subscriber = await peer.janus.attach(vr.PLUGIN)
                reply = await peer.subscriber.message(vr.join_subscriber(peer.room, new))
            else:
                reply = await peer.subscriber.message(vr.subscribe(new))
        except (JanusError, JanusClosed) as e:
            raise Conflict(f"the media router refused the subscription: {e}") from None
        peer.feeds.update(new)
        jsep = reply.jsep or {}
        return {"sdp": jsep.get("sdp"), "streams": streams_wire(reply.data.get("streams") or [])}

    async def record(self, conn, msg: dict) -> dict:
        """``sfu.record {session}`` → ``{sdp, streams}``, for the session's recorder only
        (``forbidden`` for anyone else, participants included): like ``sfu.subscribe``, every
        publisher not yet subscribed on the recorder's one subscription (answered with
        ``sfu.answer``, trickle with ``sfu.ice`` target ``subscribe``), and Janus is asked for
        every video stream's top simulcast layer (``substream`` 2, ``temporal`` 2), so the
        recording gets the best picture whatever the browsers watch."""
        _, me = self.calls.participant(conn, msg)
        if not me.recorder:
            raise Forbidden("only the session's recorder subscribes as its recorder")
        ack = await self.subscribe(conn, msg)
        video = [s["mid"] for s in ack["streams"] if s["type"] == "video" and s["mid"] is not None]
        if ack["sdp"] and video:
            _, _, peer = await self._peer(conn, msg)
            try:
                await peer.subscriber.message(vr.configure(
                    streams=[{"mid": mid, "substream": 2, "temporal": 2} for mid in video]))
            except (JanusError, JanusClosed) as e:  # the recording still gets whatever layer flows
                log.warning("session %s: asking Janus for the top layers failed: %s", msg.get("session"), e)
        return ack

    async def answer(self, conn, msg: dict) -> dict:
        """``sfu.answer {session, sdp}``: the browser's answer to the subscription offer."""
        sdp = parse_sdp(msg)
        _, _, peer = await self._peer(conn, msg)
        if peer.subscriber is None:
            raise Conflict("subscribe first")
        try:
            await peer.subscriber.message(vr.start(), jsep={"type": "answer", "sdp": sdp})
        except (JanusError, JanusClosed) as e:
            raise Conflict(f"the media router refused the answer: {e}") from None
        return {}

    async def ice(self, conn, msg: dict) -> dict:
        """``sfu.ice {session, target, candidate}``: one trickled candidate (null: the end)."""
        target, cand = parse_ice(msg)
        _, _, peer = await self._peer(conn, msg)
        handle = peer.publisher if target == "publish" else peer.subscriber
        if handle is None:
            raise Conflict(f"no {target} connection yet")
        try:
            await handle.trickle(cand)
        except (JanusError, JanusClosed) as e:
            raise Conflict(f"the media router refused the candidate: {e}") from None
        return {}

    async def left(self, session_id: int, peer_id: str) -> None:
        """A participant left the call: its Janus session goes (its feed leaves the room)."""
        peer = self.peers.pop((session_id, peer_id), None)
        if peer is not None:
            await self._destroy(session_id, peer)

    async def ended(self, session_id: int) -> None:
        """The call ended: every participant's Janus session and the room go."""
        for key in [k for k in self.peers if k[0] == session_id]:
            await self._destroy(session_id, self.peers.pop(key))
        node = self.sfu.node_for_session(session_id)
        if node is not None and str(session_id) in node.rooms.open_rooms:
            try:
                await node.rooms.close(str(session_id))
            except (JanusError, JanusClosed) as e:
                log.warning("session %s: destroying the Janus room failed: %s", session_id, e)

    def _announce_when_up(self, session_id: int, peer_id: str):
        """A publisher's connection is up (Janus ``webrtcup``): everyone else in the session,
        in every process, hears ``sfu.feeds_changed`` and asks ``sfu.subscribe`` for it."""
        def on_event(msg: dict) -> None:
            live = self.calls.live.get(session_id)
            if msg.get("janus") == "webrtcup" and live is not None:
                live.send({"type": "sfu.feeds_changed", "session": str(session_id), "peer_id": peer_id},
                          exclude=peer_id)
        return on_event

    async def rooms_recreated(self, specs: list[RoomSpec]) -> None:
        """Janus restarted: its connections are gone; participants here must start again."""
        for spec in specs:
            session_id = int(spec.call_session_id)
            for key in [k for k in self.peers if k[0] == session_id]:
                del self.peers[key]  # their Janus sessions died with Janus
            live = self.calls.live.get(session_id)
            if live is not None:
                log.warning("session %s: Janus restarted; participants publish and subscribe again", session_id)
                live.send_local(event_frame({"type": "sfu.restart", "session": str(session_id)}))

    async def _destroy(self, session_id: int, peer: SfuPeer) -> None:
        try:
            await peer.janus.destroy()
        except (JanusError, JanusClosed) as e:  # Janus drops it itself after its timeout
            log.warning("session %s: destroying a Janus session failed: %s", session_id, e)


def register(ops, signaling: SfuSignaling) -> None:
    """The ``sfu.*`` ops, on the signaling budget."""
    for name, op in (("sfu.publish", signaling.publish), ("sfu.subscribe", signaling.subscribe),
                     ("sfu.record", signaling.record),
                     ("sfu.answer", signaling.answer), ("sfu.ice", signaling.ice)):
        ops.register(name, op, signal=True)
