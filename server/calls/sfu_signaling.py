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
from server.calls.sfu_wire import (audio_mids, parse_configure, parse_ice, parse_sdp, parse_source,
                                   screen_display, streams_wire)
from server.kernel.errors import BadRequest, Conflict, Forbidden
from server.kernel.frames import event_frame
from server.sfu import videoroom as vr
from server.sfu.client import Handle, JanusSession
from server.sfu.protocol import JanusClosed, JanusError
from server.sfu.rooms import RoomSpec, room_spec
from server.sfu.service import JanusNode, Sfu

log = logging.getLogger("podium.calls.sfu")
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
    top_layers: bool = False  # the recorder's: every video at its top simulcast layer
    screen: Handle | None = None  # a second publisher: the participant's shared screen
    screen_feed: int | None = None
    mids: set[str] = field(default_factory=set)  # the subscription's m-lines (sfu.configure)
    audio_mids: list[str] = field(default_factory=list)  # the publisher's audio m-lines (moderate)


class SfuSignaling:
    def __init__(self, calls: Calls, sfu: Sfu):
        self.calls, self.sfu = calls, sfu
        self.peers: dict[tuple[int, str], SfuPeer] = {}
        self.talking: dict[tuple[int, str], bool] = {}  # (session, peer_id) → last sfu.talking sent
        for node in sfu.nodes:
            node.rooms.on_rooms_recreated.append(self.rooms_recreated)
        sfu.on_failover.append(self.failed_over)

    def media_path(self, session_id: int) -> str:
        """``sfu`` when a Janus is connected for this session, else ``mesh``."""
        return "sfu" if self.sfu.node_for_session(session_id) is not None else "mesh"

    async def _peer(self, conn, msg: dict) -> tuple[object, object, SfuPeer]:
        live, me = self.calls.participant(conn, msg)  # forbidden unless a current participant
        key = (live.id, me.peer_id)
        peer = self.peers.get(key)
        if peer is not None and not peer.janus.lost:
            return live, me, peer
        node = await self.sfu.place(live.id)  # least-loaded live Janus, sticky (sfu/placement.py)
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
        if parse_source(msg) == "screen":
            return await self.publish_screen(conn, msg, sdp)
        live, me, peer = await self._peer(conn, msg)
        try:
            if peer.publisher is None:
                peer.publisher = await peer.janus.attach(vr.PLUGIN)
                peer.publisher.on_event.append(self._announce_when_up(live.id, me.peer_id))
                peer.publisher.on_event.append(self._relay_talking(live.id))
                joined = await peer.publisher.message(vr.join_publisher(peer.room, display=me.peer_id))
                peer.feed = int(joined.data["id"])
                reply = await peer.publisher.message(vr.publish(), jsep={"type": "offer", "sdp": sdp})
            else:  # a new offer from the same publisher: renegotiation
                reply = await peer.publisher.message(vr.configure(), jsep={"type": "offer", "sdp": sdp})
        except (JanusError, JanusClosed) as e:
            raise Conflict(f"the media router refused the offer: {e}") from None
        if not reply.jsep or reply.jsep.get("type") != "answer":
            raise Conflict("the media router sent no answer")
        peer.audio_mids = audio_mids(sdp)
        if me.muted_by_instructor:  # a held participant publishing again stays muted
            await self.moderate_audio(live.id, me.peer_id, True)
        return {"sdp": reply.jsep["sdp"], "feed": str(peer.feed)}

    async def subscribe(self, conn, msg: dict) -> dict:
        """``sfu.subscribe {session}`` → ``{sdp, streams}``: an offer from Janus carrying every
        other publisher of the session not yet subscribed (``sdp`` null when there is none),
        answered with ``sfu.answer``."""
        live, me, peer = await self._peer(conn, msg)
        try:
            listed = await peer.node.rooms.participants_of_room(peer.room)
            feeds = [int(p["id"]) for p in listed if p.get("publisher")
                     and p.get("display") not in (me.peer_id, screen_display(me.peer_id))]
            new = [f for f in feeds if f not in peer.feeds]
            if not new:
                return {"sdp": None, "streams": []}
            if peer.subscriber is None:
                peer.subscriber = await peer.janus.attach(vr.PLUGIN)
                peer.subscriber.on_event.append(self._relay_offers(conn, live.id, peer))
                reply = await peer.subscriber.message(vr.join_subscriber(peer.room, new))
            else:
                reply = await peer.subscriber.message(vr.subscribe(new))
        except (JanusError, JanusClosed) as e:
            raise Conflict(f"the media router refused the subscription: {e}") from None
        peer.feeds.update(new)
        peer.mids.update(str(s["mid"]) for s in reply.data.get("streams") or [] if s.get("mid") is not None)
        jsep = reply.jsep or {}
        return {"sdp": jsep.get("sdp"), "streams": streams_wire(reply.data.get("streams") or [])}

    async def record(self, conn, msg: dict) -> dict:
        """``sfu.record {session}`` → ``{sdp, streams}``, for the session's recorder only
        (``forbidden`` for anyone else, participants included): like ``sfu.subscribe``, every
        publisher not yet subscribed on the recorder's one subscription (answered with
        ``sfu.answer``, trickle with ``sfu.ice`` target ``subscribe``), and Janus is asked for
        every video stream's top simulcast layer (``substream`` 2, ``temporal`` 2), so the
        recording gets the best picture whatever the browsers watch. ``restart: true`` drops
        its subscription first and starts a new one with every publisher."""
        _, me = self.calls.participant(conn, msg)
        if not me.recorder:
            raise Forbidden("only the session's recorder subscribes as its recorder")
        _, _, peer = await self._peer(conn, msg)
        peer.top_layers = True
        if msg.get("restart") is True and peer.subscriber is not None:
            # The recorder lost its connection (ICE failed): a new subscription, from scratch.
            old, peer.subscriber = peer.subscriber, None
            peer.feeds.clear()
            peer.mids.clear()
            try:
                await old.detach()
            except (JanusError, JanusClosed) as e:
                log.warning("session %s: detaching the recorder's old subscription failed: %s", msg.get("session"), e)
        ack = await self.subscribe(conn, msg)
        if ack["sdp"]:
            await self._ask_top_layers(peer, ack["streams"], msg.get("session"))
        return ack

    async def _ask_top_layers(self, peer: SfuPeer, streams: list[dict], session) -> None:
        video = [s["mid"] for s in streams if s["type"] == "video" and s["mid"] is not None]
        if not video or peer.subscriber is None:
            return
        try:
            await peer.subscriber.message(vr.configure(
                streams=[{"mid": mid, "substream": 2, "temporal": 2} for mid in video]))
        except (JanusError, JanusClosed) as e:  # the recording still gets whatever layer flows
            log.warning("session %s: asking Janus for the top layers failed: %s", session, e)

    def _relay_offers(self, conn, session_id: int, peer: SfuPeer):
        """Janus renegotiates a subscription by itself — a publisher left (its m-lines go
        inactive), or a ``subscribe`` that arrived while an offer was unanswered (Janus answers
        it ``updating`` and offers once that one is answered): the subscriber gets the offer as
        ``sfu.offer {session, sdp, streams}`` and answers it with ``sfu.answer``."""
        def on_event(msg: dict) -> None:
            jsep = msg.get("jsep") or {}
            if msg.get("janus") != "event" or jsep.get("type") != "offer" or not conn.is_open():
                return
            data = (msg.get("plugindata") or {}).get("data") or {}
            streams = streams_wire(data.get("streams") or [])
            peer.mids.update(str(s["mid"]) for s in streams if s["mid"] is not None)
            conn.send_frame(event_frame({"type": "sfu.offer", "session": str(session_id),
                                         "sdp": jsep.get("sdp"), "streams": streams}))
            if peer.top_layers:
                self.calls.spawn(self._ask_top_layers(peer, streams, session_id))
        return on_event

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
        handle = {"publish": peer.publisher, "subscribe": peer.subscriber, "screen": peer.screen}[target]
        if handle is None:
            raise Conflict(f"no {target} connection yet")
        try:
            await handle.trickle(cand)
        except (JanusError, JanusClosed) as e:
            raise Conflict(f"the media router refused the candidate: {e}") from None
        return {}

    async def configure(self, conn, msg: dict) -> dict:
        """``sfu.configure {session, mid, substream?, send?}`` → ``{}``: on this participant's
        own subscription, the simulcast layer Janus relays for the video on ``mid`` (0 smallest
        … 2 largest), and whether it relays that stream at all (``send: false``: nothing until
        ``send: true``). ``conflict`` before ``sfu.subscribe`` or for a mid the subscription
        does not have."""
        stream = parse_configure(msg)
        _, _, peer = await self._peer(conn, msg)
        if peer.subscriber is None:
            raise Conflict("subscribe first")
        if stream["mid"] not in peer.mids:
            raise Conflict("no such stream in this subscription")
        try:
            await peer.subscriber.message(vr.configure(streams=[stream]))
        except (JanusError, JanusClosed) as e:
            raise Conflict(f"the media router refused the change: {e}") from None
        return {}

    async def publish_screen(self, conn, msg: dict, sdp: str) -> dict:
        """``sfu.publish {session, sdp, source: "screen"}``: the shared screen as a second
        publisher of this participant (Janus display ``<peer_id>:screen``), so the others
        subscribe to it beside the camera. A later one renegotiates it."""
        live, me, peer = await self._peer(conn, msg)
        try:
            if peer.screen is None:
                peer.screen = await peer.janus.attach(vr.PLUGIN)
                peer.screen.on_event.append(self._announce_when_up(live.id, me.peer_id))
                joined = await peer.screen.message(vr.join_publisher(peer.room, display=screen_display(me.peer_id)))
                peer.screen_feed = int(joined.data["id"])
                reply = await peer.screen.message(vr.publish(), jsep={"type": "offer", "sdp": sdp})
            else:
                reply = await peer.screen.message(vr.configure(), jsep={"type": "offer", "sdp": sdp})
        except (JanusError, JanusClosed) as e:
            raise Conflict(f"the media router refused the offer: {e}") from None
        if not reply.jsep or reply.jsep.get("type") != "answer":
            raise Conflict("the media router sent no answer")
        return {"sdp": reply.jsep["sdp"], "feed": str(peer.screen_feed)}

    async def unpublish(self, conn, msg: dict) -> dict:
        """``sfu.unpublish {session, source: "screen"}`` → ``{}``: the screen share stops (its
        publisher leaves the room; the others' subscriptions drop it: Janus offers anew)."""
        if parse_source(msg) != "screen":
            raise BadRequest("only the screen is unpublished; leave the call to stop the camera")
        _, _, peer = await self._peer(conn, msg)
        handle, peer.screen, peer.screen_feed = peer.screen, None, None
        if handle is not None:
            try:
                await handle.message(vr.leave())
                await handle.detach()
            except (JanusError, JanusClosed) as e:
                log.warning("stopping a screen share at Janus failed: %s", e)
        return {}

    async def moderate_audio(self, session_id: int, peer_id: str, mute: bool) -> None:
        """An instructor's mute (calls/controls.py): Janus stops (or resumes) relaying the
        audio of ``peer_id``'s camera publisher, if it publishes here (one who does not publish
        yet is moderated when it does). A refusal is logged: the others still get theirs."""
        peer = self.peers.get((session_id, peer_id))
        if peer is None or peer.feed is None or peer.janus.lost:
            return
        spec = peer.node.rooms.open_rooms.get(str(session_id))
        if spec is None:
            return
        try:
            for mid in peer.audio_mids:
                await peer.node.rooms.moderate(spec, peer.feed, mid, mute)
        except (JanusError, JanusClosed) as e:
            log.warning("session %s: moderating %s at Janus failed: %s", session_id, peer_id, e)

    async def kick(self, session_id: int, peer_ids: set[str]) -> None:
        """``call.remove``: Janus kicks every feed of ``peer_ids`` (camera and screen) still in
        the session's room, whichever process published it — a process that died, or one the
        removal notice has not reached yet (the room is the session's own: any process can
        moderate it)."""
        node = self.sfu.node_for_session(session_id)
        if node is None:
            return
        spec = node.rooms.open_rooms.get(str(session_id)) or room_spec(node.rooms.key, str(session_id))
        names = peer_ids | {screen_display(p) for p in peer_ids}
        try:
            for p in await node.rooms.participants(spec):
                if p.get("display") in names and p.get("publisher"):
                    await node.rooms.kick(spec, int(p["id"]))
        except (JanusError, JanusClosed) as e:  # no room (nobody published), or Janus gone
            log.info("session %s: kicking %s at Janus: %s", session_id, sorted(peer_ids), e)

    def _relay_talking(self, session_id: int):
        """Janus's ``talking`` / ``stopped-talking`` (the room has ``audiolevel_event``) →
        ``sfu.talking {session, peer_id, talking}`` to the session (every process), once per
        change, for the feeds of this process's participants."""
        def on_event(msg: dict) -> None:
            data = (msg.get("plugindata") or {}).get("data") or {}
            kind = data.get("videoroom")
            if msg.get("janus") != "event" or kind not in ("talking", "stopped-talking"):
                return
            peer_id = next((k[1] for k, p in self.peers.items() if k[0] == session_id
                            and p.feed is not None and p.feed == data.get("id")), None)
            live = self.calls.live.get(session_id)
            talking = kind == "talking"
            if peer_id is None or live is None or self.talking.get((session_id, peer_id)) == talking:
                return
            self.talking[(session_id, peer_id)] = talking
            live.send({"type": "sfu.talking", "session": str(session_id), "peer_id": peer_id, "talking": talking})
        return on_event

    async def left(self, session_id: int, peer_id: str) -> None:
        """A participant left the call: its Janus session goes (its feed leaves the room)."""
        peer = self.peers.pop((session_id, peer_id), None)
        self.talking.pop((session_id, peer_id), None)
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
        await self.sfu.forget(session_id)  # its Janus placement (several Janus: sfu/placement.py)

    def _announce_when_up(self, session_id: int, peer_id: str):
        """A publisher's connection is up (Janus ``webrtcup``): everyone else in the session,
        in every process, hears ``sfu.feeds_changed`` and asks ``sfu.subscribe`` for it."""
        def on_event(msg: dict) -> None:
            live = self.calls.live.get(session_id)
            if msg.get("janus") == "webrtcup" and live is not None:
                live.send({"type": "sfu.feeds_changed", "session": str(session_id), "peer_id": peer_id},
                          exclude=peer_id)
        return on_event

    async def failed_over(self, node: JanusNode, sessions: list[int]) -> None:
        """A Janus stayed down past the grace (``sfu/service.py``): its sessions were placed on
        another one. Participants here whose Janus session was on it are dropped, and every
        participant of those sessions connected here receives ``sfu.restart``: they publish
        and subscribe again, which lands them on the new Janus. The call goes on."""
        stale = [k for k, p in self.peers.items() if p.node is node]
        for key in stale:
            peer = self.peers.pop(key)
            self.talking.pop(key, None)
            # not reclaimed (nor kept alive) if that Janus comes back: it drops it by itself
            node.connection.sessions.pop(peer.janus.id, None)
        for session_id in sorted(set(sessions) | {k[0] for k in stale}):
            live = self.calls.live.get(session_id)
            if live is not None:
                log.warning("session %s: Janus %s is down; participants publish and subscribe again on %s",
                            session_id, node.url, self.sfu.placement.known.get(session_id) or "none live")
                live.send_local(event_frame({"type": "sfu.restart", "session": str(session_id)}))

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
                     ("sfu.answer", signaling.answer), ("sfu.ice", signaling.ice),
                     ("sfu.configure", signaling.configure), ("sfu.unpublish", signaling.unpublish)):
        ops.register(name, op, signal=True)
