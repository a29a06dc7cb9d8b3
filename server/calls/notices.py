"""Call notices from other processes (with REDIS_URL): a session broadcast, a frame for one of
this process's participants, a user removed from a call, users muted by an instructor in an
SFU call, a session that ended."""
from __future__ import annotations

from server.calls.controls import Controls
from server.calls.lobby import Lobby
from server.calls.policy import CallPolicy
from server.calls.sessions import Calls
from server.realtime.notices import (NoticeRouter, PeerFrame, SessionBan, SessionControl, SessionEnded,
                                     SessionFrame, SessionMute)


def register(router: NoticeRouter, calls: Calls, controls: Controls, policy: CallPolicy, lobby: Lobby) -> None:
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

    def control(n: SessionControl, frame: bytes) -> None:
        live = calls.live.get(n.session)
        if live is None:
            return
        if n.what == "hands":
            calls.spawn(policy.apply_hands(live, n.peer, frame))
        elif n.what == "policy":
            calls.spawn(policy.apply_policy(live, n.video, n.screen, frame))
        elif n.what == "lobby":
            lobby.tell_instructors(live, frame)
        elif n.what in ("admit", "deny"):
            calls.spawn(lobby.apply(live, n.what, n.users, frame))
        elif n.what == "answered" and calls.ringing is not None and n.users:
            calls.spawn(calls.ringing.stopped(n.session, n.users[0], n.peer or "answered"))

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
    router.on(SessionControl, control)
