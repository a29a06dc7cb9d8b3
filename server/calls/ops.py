"""Calls' WebSocket ops (PROTOCOL §2.2): call.start/join/leave/end, the rtc.* signals,
call.media/hand and the instructor's call.mute/remove."""
from __future__ import annotations

from server.calls.controls import Controls
from server.calls.lobby import Lobby, parse_lobby
from server.calls.policy import CallPolicy
from server.calls.sessions import Calls
from server.calls.signaling import Signaling
from server.calls.wire import SIGNALS
from server.kernel.actor import parse_id
from server.realtime.dispatch import Dispatcher


def _room(msg: dict) -> int:
    return parse_id(msg.get("room"), "room")


def _session(msg: dict) -> int:
    return parse_id(msg.get("session"), "session")


def register(ops: Dispatcher, calls: Calls, signaling: Signaling, controls: Controls, policy: CallPolicy,
             lobby: Lobby) -> None:
    async def start(conn, msg):
        return await calls.start(conn.actor, _room(msg), parse_lobby(msg) is True)

    async def join(conn, msg):
        return await calls.join(conn, conn.actor, _session(msg), msg.get("media"), msg.get("resume"))

    async def leave(conn, msg):
        if not await lobby.cancel(conn, _session(msg)):  # a waiting socket leaves the queue
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

    async def lower_hands(conn, msg):
        return await policy.lower_hands(conn.actor, msg)

    async def permissions(conn, msg):
        return await policy.permissions(conn.actor, msg)

    ops.register("call.lower_hands", lower_hands)
    ops.register("call.permissions", permissions)

    async def lobby_queue(conn, msg):
        return await lobby.queue(conn.actor, msg)

    async def admit(conn, msg):
        return await lobby.admit(conn.actor, msg)

    async def deny(conn, msg):
        return await lobby.deny(conn.actor, msg)

    async def ring(conn, msg):
        return await calls.ringing.ring(conn.actor, msg)

    async def answer(conn, msg):
        return await calls.ringing.answer(conn, msg)

    ops.register("call.ring", ring)
    ops.register("call.answer", answer)
    ops.register("call.lobby", lobby_queue)
    ops.register("call.admit", admit)
    ops.register("call.deny", deny)
    for kind in SIGNALS:
        ops.register(kind, relay, signal=True)
