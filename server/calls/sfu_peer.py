"""One participant's side in Janus (SFU calls): its Janus session, publisher, screen and
subscriber handles — and that state as stored JSON (``sfu_peers``), from which another web
process (or this one after a restart) takes the Janus session back (``sfu_resume.py``)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from server.sfu import videoroom as vr
from server.sfu.client import Handle, JanusSession


@dataclass
class SfuPeer:
    node: object  # the JanusNode (sfu/service.py)
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
    video_mids: list[str] = field(default_factory=list)  # and its video m-lines (calls/policy.py)
    holder: str = ""  # who last stored it (db/sfu_peers.py)
    # after a resume: the subscription of before, detached once the new one is answered
    stale_subscriber: Handle | None = None

    def state(self) -> str:
        """What a resume needs, as stored JSON."""
        def hid(h: Handle | None) -> int | None:
            return h.id if h is not None else None
        return json.dumps({"room": self.room, "publisher": hid(self.publisher), "feed": self.feed,
                           "audio_mids": self.audio_mids, "video_mids": self.video_mids,
                           "screen": hid(self.screen),
                           "screen_feed": self.screen_feed, "subscriber": hid(self.subscriber)})

    @staticmethod
    def handles_in(state: str) -> dict[int, str]:
        """The handle ids of a stored state (to claim its session with)."""
        data = json.loads(state)
        return {int(data[k]): vr.PLUGIN for k in ("publisher", "screen", "subscriber") if data.get(k)}

    @classmethod
    def restored(cls, node, janus: JanusSession, state: str) -> "SfuPeer":
        """The peer of a stored state, on ``janus`` (claimed, or still this process's); its
        subscription becomes ``stale_subscriber``: the participant subscribes again."""
        data = json.loads(state)

        def handle(key: str) -> Handle | None:
            hid = data.get(key)
            if not hid:
                return None
            found = janus.handles.get(int(hid))
            if found is None:
                found = janus.handles[int(hid)] = Handle(janus, int(hid), vr.PLUGIN)
            return found
        return cls(node, janus, int(data["room"]), publisher=handle("publisher"), feed=data.get("feed"),
                   audio_mids=list(data.get("audio_mids") or []),
                   video_mids=list(data.get("video_mids") or []), screen=handle("screen"),
                   screen_feed=data.get("screen_feed"), stale_subscriber=handle("subscriber"))
