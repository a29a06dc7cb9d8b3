"""The signaling relay (PROTOCOL §2.2): rtc.offer/answer/ice only between two current
participants of one session, wherever each is connected; never dropped as droppable traffic
(a reader too slow even for signals is closed with 4008 and reconnects)."""
from __future__ import annotations

from server.calls.sessions import Calls
from server.calls.wire import parse_target, signal_event
from server.kernel.errors import Forbidden
from server.kernel.frames import event_frame
from server.realtime.notices import PeerFrame


class Signaling:
    def __init__(self, calls: Calls):
        self.calls = calls

    async def relay(self, conn, kind: str, msg: dict) -> None:
        live, me = self.calls.participant(conn, msg)
        to = parse_target(msg)
        target = live.participants.get(to)
        remote = False
        directory = self.calls.directory
        if target is None and directory is not None and to != me.peer_id:
            remote = to in await directory.entries(live.id)  # held by another process
        if (target is None and not remote) or to == me.peer_id:
            raise Forbidden("the target is not a participant of this session")
        event = signal_event(kind, live.id, me.peer_id, msg)
        if remote:
            live.publish(PeerFrame(to), event_frame(event))
        else:
            target.conn.send_frame(event_frame(event))  # never droppable: signaling must arrive
        self.calls.relays += 1
