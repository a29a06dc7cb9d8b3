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

from server.calls.sessions import Calls, LiveSession, Participant
from server.calls.sfu_moderation import SfuModeration
from server.calls.sfu_peer import SfuPeer
from server.calls.sfu_resume import SfuResume, destroy
from server.calls.policy import may_send
from server.calls.sfu_wire import (audio_mids, parse_configure, parse_ice, parse_sdp, parse_source,
                                   screen_display, streams_wire, video_mids)
from server.kernel.errors import BadRequest, Conflict, Forbidden
from server.kernel.frames import event_frame
from server.sfu import videoroom as vr
from server.sfu.protocol import JanusClosed, JanusError
from server.sfu.rooms import RoomSpec
from server.sfu.service import JanusNode, Sfu

log = logging.getLogger("podium.calls.sfu")
SUBSCRIBE_ATTEMPTS = 3  # listings of the room's publishers per sfu.subscribe
class SfuSignaling(SfuModeration):
    def __init__(self, calls: Calls, sfu: Sfu, resume: SfuResume | None = None):
        """``resume``: participants' Janus sessions outlive their sockets (sfu_resume.py)."""
        self.calls, self.sfu, self.resume = calls, sfu, resume
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
        self._store(live.id, me, peer)
        return live, me, peer

    def _store(self, session_id: int, me: Participant, peer: SfuPeer) -> None:
        """The peer's Janus side changed: stored, so a resume can take it back (not the
        recorder's: it starts again)."""
        if self.resume is not None and not me.recorder:
            self.resume.save_soon((session_id, me.peer_id), me.user_id, peer)

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
        peer.audio_mids, peer.video_mids = audio_mids(sdp), video_mids(sdp)
        self._store(live.id, me, peer)
        if me.muted_by_instructor:  # a held participant publishing again stays muted
            await self.moderate_audio(live.id, me.peer_id, True)
        if not may_send(live, me, "video"):  # students' cameras are off in this call
            await self.moderate_video(live.id, me.peer_id, True)
        return {"sdp": reply.jsep["sdp"], "feed": str(peer.feed)}

    async def subscribe(self, conn, msg: dict) -> dict:
        """``sfu.subscribe {session}`` → ``{sdp, streams}``: an offer from Janus carrying every
        other publisher of the session not yet subscribed (``sdp`` null when there is none),
        answered with ``sfu.answer``. A publisher that leaves between Janus's list and the
        request (Janus: no such feed) is left out: the list is read again."""
        live, me, peer = await self._peer(conn, msg)
        for attempt in range(1, SUBSCRIBE_ATTEMPTS + 1):
            try:
                listed = await peer.node.rooms.participants_of_room(peer.room)
                feeds = [int(p["id"]) for p in listed if p.get("publisher")
                         and p.get("display") not in (me.peer_id, screen_display(me.peer_id))]
                new = [f for f in feeds if f not in peer.feeds]
                if not new:
                    return {"sdp": None, "streams": []}
                reply = await self._add_feeds(conn, live.id, me, peer, new)
                break
            except JanusError as e:
                if e.code == vr.NO_SUCH_FEED and attempt < SUBSCRIBE_ATTEMPTS:
                    log.info("session %s: a publisher left while %s subscribed; listing again", live.id, me.peer_id)
                    continue
                raise Conflict(f"the media router refused the subscription: {e}") from None
            except JanusClosed as e:
                raise Conflict(f"the media router refused the subscription: {e}") from None
        peer.feeds.update(new)
        peer.mids.update(str(s["mid"]) for s in reply.data.get("streams") or [] if s.get("mid") is not None)
        jsep = reply.jsep or {}
        return {"sdp": jsep.get("sdp"), "streams": streams_wire(reply.data.get("streams") or [])}

    async def _add_feeds(self, conn, session_id: int, me: Participant, peer: SfuPeer, feeds: list[int]):
        """Janus's reply to adding ``feeds`` to ``peer``'s one subscription — joining it first
        when there is none yet (a handle whose join failed is dropped, not kept half made)."""
        if peer.subscriber is not None:
            return await peer.subscriber.message(vr.subscribe(feeds))
        handle = await peer.janus.attach(vr.PLUGIN)
        handle.on_event.append(self._relay_offers(conn, session_id, peer))
        try:
            reply = await handle.message(vr.join_subscriber(peer.room, feeds))
        except (JanusError, JanusClosed):
            self.calls.spawn(self._detach(handle, session_id))
            raise
        peer.subscriber = handle
        self._store(session_id, me, peer)
        return reply

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
        if peer.stale_subscriber is not None:  # resumed: the subscription of before goes now
            stale, peer.stale_subscriber = peer.stale_subscriber, None
            self.calls.spawn(self._detach(stale, msg.get("session")))
        return {}

    async def _detach(self, handle, session) -> None:
        try:
            await handle.detach()
        except (JanusError, JanusClosed) as e:
            log.info("session %s: detaching a subscription handle no longer used: %s", session, e)

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
        if not may_send(live, me, "screen"):
            raise Forbidden("the instructor turned screen sharing off for students in this call")
        try:
            if peer.screen is None:
                peer.screen = await peer.janus.attach(vr.PLUGIN)
                peer.screen.on_event.append(self._announce_when_up(live.id, me.peer_id))
                joined = await peer.screen.message(vr.join_publisher(peer.room, display=screen_display(me.peer_id)))
                peer.screen_feed = int(joined.data["id"])
                self._store(live.id, me, peer)
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
        live, me, peer = await self._peer(conn, msg)
        await self._leave_screen(live.id, me.peer_id, peer)
        self._store(live.id, me, peer)
        return {}

    async def left(self, session_id: int, peer_id: str, resumable: bool = False) -> None:
        """A participant left the call: its Janus session goes (its feed leaves the room) —
        unless only its socket closed (``resumable``): then it is parked for a resume."""
        key = (session_id, peer_id)
        peer = self.peers.pop(key, None)
        self.talking.pop(key, None)
        if peer is None:
            return
        if self.resume is not None and resumable and not peer.top_layers:
            await self.resume.park(key, peer)
            return
        if self.resume is not None:
            await self.resume.forget(key, peer)
        await destroy(session_id, peer)

    async def resumed(self, conn, live: LiveSession, me: Participant) -> dict:
        """``call.join`` with a resume token took ``me``'s peer id back: its Janus session
        too, if it is still there (sfu_resume.py). The ack's ``sfu_resumed`` says what goes on
        publishing ({publish, screen}); null: nothing (publish again). The subscription is
        always made again (``sfu.subscribe``)."""
        if self.resume is None:
            return {}
        key = (live.id, me.peer_id)
        peer = await self.resume.take(key, me.user_id)
        if peer is None:
            return {"sfu_resumed": None}
        try:
            await peer.node.rooms.open(str(live.id))  # this process moderates the room from now
        except (JanusError, JanusClosed) as e:
            log.warning("session %s: reopening the Janus room on resume: %s", live.id, e)
        if peer.publisher is not None:
            peer.publisher.on_event += [self._announce_when_up(live.id, me.peer_id), self._relay_talking(live.id)]
        if peer.screen is not None:
            peer.screen.on_event.append(self._announce_when_up(live.id, me.peer_id))
        self.peers[key] = peer
        if me.muted_by_instructor:
            await self.moderate_audio(live.id, me.peer_id, True)
        return {"sfu_resumed": {"publish": peer.publisher is not None, "screen": peer.screen is not None}}

    async def ended(self, session_id: int) -> None:
        """The call ended: every participant's Janus session and the room go."""
        parked = await self.resume.forget_session(session_id) if self.resume is not None else []
        for peer in parked + [self.peers.pop(k) for k in [k for k in self.peers if k[0] == session_id]]:
            await destroy(session_id, peer)
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


def register(ops, signaling: SfuSignaling) -> None:
    """The ``sfu.*`` ops, on the signaling budget."""
    for name, op in (("sfu.publish", signaling.publish), ("sfu.subscribe", signaling.subscribe),
                     ("sfu.record", signaling.record),
                     ("sfu.answer", signaling.answer), ("sfu.ice", signaling.ice),
                     ("sfu.configure", signaling.configure), ("sfu.unpublish", signaling.unpublish)):
        ops.register(name, op, signal=True)
