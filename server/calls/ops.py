"""Calls' WebSocket ops (PROTOCOL §2.2): call.start/join/leave/end, the rtc.* signals,
call.media/hand and the instructor's call.mute/remove."""
from __future__ import annotations

from server.calls.controls import Controls
from server.calls.sessions import Calls
from server.calls.signaling import Signaling
from server.calls.wire import SIGNALS
from server.kernel.actor import parse_id
from server.realtime.dispatch import Dispatcher


def _room(msg: dict) -> int:
    return parse_id(msg.get("room"), "room")


def _session(msg: dict) -> int:
    return parse_id(msg.get("session"), "session")


def register(ops: Dispatcher, calls: Calls, signaling: Signaling, controls: Controls) -> None:
    async def start(conn, msg):
        return await calls.start(conn.actor, _room(msg))

    async def join(conn, msg):
        return await calls.join(conn, conn.actor, _session(msg), msg.get("media"))

    async def leave(conn, msg):
        await calls.leave(conn, _session(msg))

    async def end(conn, msg):
        await calls.end(conn.actor, _session(msg))

    async def relay(conn, msg):
        await signaling.relay(conn, msg["type"], msg)

    async def media(conn, msg):
        return await controls.media(conn, msg)

    async def hand(conn, msg):
        return await controls.hand(conn, msg)

    async def mute(conn, msg):
        await controls.mute(conn.actor, msg)

    async def unmute_self(conn, msg):
        return await controls.unmute_self(conn, msg)

    async def remove(conn, msg):
        await controls.remove(conn.actor, msg)

    for name, op in (("call.start", start), ("call.join", join), ("call.leave", leave), ("call.end", end),
                     ("call.media", media), ("call.hand", hand), ("call.mute", mute), ("call.remove", remove),
                     ("call.unmute_self", unmute_self)):
        ops.register(name, op)
    for kind in SIGNALS:
        ops.register(kind, relay, signal=True)
