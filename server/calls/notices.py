"""Call notices from other processes (with REDIS_URL): a session broadcast, a frame for one of
this process's participants, a user removed from a call, users muted by an instructor in an
SFU call, a session that ended."""
from __future__ import annotations

from server.calls.controls import Controls
from server.calls.sessions import Calls
from server.realtime.notices import NoticeRouter, PeerFrame, SessionBan, SessionEnded, SessionFrame, SessionMute


def register(router: NoticeRouter, calls: Calls, controls: Controls) -> None:
    def peer_frame(n: PeerFrame, frame: bytes) -> None:
        conn = calls.registry.connections.get(n.connection)
        if conn is not None:
            conn.send_frame(frame)

    def session_frame(n: SessionFrame, frame: bytes) -> None:
        live = calls.live.get(n.session)
        if live is None:
            return
        if n.outside_room:
            calls.send_outside_room(live, frame)
        else:
            live.send_local(frame, n.exclude)

    def ban(n: SessionBan, frame: bytes) -> None:
        live = calls.live.get(n.session)
        if live is not None:
            calls.spawn(controls.remove_local(live, n.user, frame))

    def mute(n: SessionMute, frame: bytes) -> None:
        live = calls.live.get(n.session)
        if live is not None:
            calls.spawn(controls.apply_mute(live, set(n.users), n.allow, n.mute, frame))

    def ended(n: SessionEnded, frame: bytes) -> None:
        live = calls.live.pop(n.session, None)
        if live is None:
            return
        if live.end_timer:
            live.end_timer.cancel()
        calls.ended_locally(live, frame)

    router.on(PeerFrame, peer_frame)
    router.on(SessionFrame, session_frame)
    router.on(SessionBan, ban)
    router.on(SessionEnded, ended)
    router.on(SessionMute, mute)
