"""What an instructor's controls do at Janus (calls/controls.py, calls/policy.py): a
participant's audio or video moderated on its camera publisher's m-lines, a screen share
stopped, every feed of removed participants kicked; and Janus's talking events relayed as
``sfu.talking``. Mixed into ``SfuSignaling`` (sfu_signaling.py), whose ``peers`` it reads."""
from __future__ import annotations

import logging

from server.calls.sfu_peer import SfuPeer
from server.calls.sfu_wire import screen_display
from server.sfu.protocol import JanusClosed, JanusError
from server.sfu.rooms import room_spec
from server.sfu.service import Sfu

log = logging.getLogger("podium.calls.sfu")


class SfuModeration:
    calls: object
    sfu: Sfu
    peers: dict[tuple[int, str], SfuPeer]
    talking: dict[tuple[int, str], bool]

    @staticmethod
    async def _leave_screen(session_id: int, peer_id: str, peer: SfuPeer) -> None:
        """``peer``'s screen publisher (if any) leaves the room; a refusal is logged.

        Detached without a ``leave`` first: Janus (1.1.2, janus_videoroom.c) tears a publisher
        down in ``hangup_media``, which sends every subscriber of its streams an ``updated``
        offer without them only while the publisher still has its room; a ``leave`` clears
        that room at once, so the detach's hangup after it marked the subscriptions
        ``skipped_autoupdate`` and offered nothing (the others kept the screen's m-line, and
        the recorder went on recording it until the end). The detach hangs up first, then
        leaves."""
        handle, peer.screen, peer.screen_feed = peer.screen, None, None
        if handle is None:
            return
        try:
            await handle.detach()
        except (JanusError, JanusClosed) as e:
            log.warning("session %s: stopping %s's screen share at Janus failed: %s", session_id, peer_id, e)

    async def moderate_video(self, session_id: int, peer_id: str, mute: bool) -> None:
        """Students' cameras turned off (calls/policy.py): Janus stops (or resumes) relaying
        the video of ``peer_id``'s camera publisher, if it publishes here."""
        await self._moderate(session_id, peer_id, "video", mute)

    async def stop_screen(self, session_id: int, peer_id: str) -> None:
        """Students' screen sharing turned off: ``peer_id``'s screen publisher here leaves."""
        peer = self.peers.get((session_id, peer_id))
        if peer is not None:
            await self._leave_screen(session_id, peer_id, peer)

    async def moderate_audio(self, session_id: int, peer_id: str, mute: bool) -> None:
        """An instructor's mute (calls/controls.py): Janus stops (or resumes) relaying the
        audio of ``peer_id``'s camera publisher, if it publishes here (one who does not publish
        yet is moderated when it does). A refusal is logged: the others still get theirs."""
        await self._moderate(session_id, peer_id, "audio", mute)

    async def _moderate(self, session_id: int, peer_id: str, kind: str, mute: bool) -> None:
        """VideoRoom ``moderate`` on each ``kind`` ("audio" or "video") m-line of ``peer_id``'s
        camera publisher here (read from its offer); nothing when it does not publish here."""
        peer = self.peers.get((session_id, peer_id))
        if peer is None or peer.feed is None or peer.janus.lost:
            return
        spec = peer.node.rooms.open_rooms.get(str(session_id))
        if spec is None:
            return
        try:
            for mid in peer.audio_mids if kind == "audio" else peer.video_mids:
                await peer.node.rooms.moderate(spec, peer.feed, mid, mute)
        except (JanusError, JanusClosed) as e:
            log.warning("session %s: moderating %s's %s at Janus failed: %s", session_id, peer_id, kind, e)

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
