"""Chat's WebSocket ops (PROTOCOL §2.1): room.join/leave/sync/changes, message.*, typing,
read, presence.*; registered with the dispatcher when ``deps`` builds the app."""
from __future__ import annotations

import asyncio
from typing import Callable

from server.chat.messages import Messages
from server.chat.presence import Presence
from server.chat.wire import parse_send
from server.kernel.actor import parse_id
from server.realtime.dispatch import PIPELINED, Dispatcher


def _room(msg: dict) -> int:
    return parse_id(msg.get("room"), "room")


def _message_id(msg: dict) -> int:
    return parse_id(msg.get("message_id"), "message_id")


def _sent(outcome: tuple[dict, bool]) -> dict:
    return {"message": outcome[0]}


def register(ops: Dispatcher, messages: Messages, presence: Presence, max_content_bytes: int,
             gate: Callable | None = None) -> None:
    """``gate(req)``: None, or an awaitable that refuses a send (the room's moderation,
    rooms/moderation.py) before it is queued."""
    def queued(req) -> asyncio.Future:
        check = gate(req) if gate is not None else None
        if check is None:
            return messages.writer.enqueue(req)

        async def after_check():
            await check
            return await messages.writer.enqueue(req)
        return asyncio.ensure_future(after_check())

    async def join(conn, msg):
        return await presence.join(conn, conn.actor, _room(msg))

    async def leave(conn, msg):
        presence.leave(conn, conn.actor, _room(msg))

    async def sync(conn, msg):
        return await messages.sync(conn.actor, _room(msg), msg.get("since"), msg.get("limit"))

    async def changes(conn, msg):
        return await messages.changes(conn.actor, _room(msg), msg.get("since"), msg.get("upto"), msg.get("limit"))

    async def send(conn, msg):
        req = parse_send(conn.actor, _room(msg), msg, max_content_bytes)
        presence.message_sent(req.room_id, conn.actor.id)
        await conn.pipeline(queued(req), msg.get("id"), _sent)
        return PIPELINED

    async def edit(conn, msg):
        return {"message": await messages.edit(conn.actor, _message_id(msg), msg.get("content"))}

    async def delete(conn, msg):
        return {"message": await messages.delete(conn.actor, _message_id(msg))}

    async def react(conn, msg):
        return await messages.react(conn.actor, _message_id(msg), msg.get("emoji"), msg.get("on", True))

    async def typing(conn, msg):
        await presence.typing(conn.actor, _room(msg), msg.get("active", True))

    async def read(conn, msg):
        return await messages.read(conn.actor, _room(msg), msg.get("seq"))

    async def presence_list(conn, msg):
        return await presence.presence_list(conn.actor, _room(msg))

    async def presence_status(conn, msg):
        return await presence.presence_status(conn.actor, msg.get("status"))

    for name, op in (("room.join", join), ("room.leave", leave), ("room.sync", sync), ("room.changes", changes),
                     ("message.send", send), ("message.edit", edit), ("message.delete", delete),
                     ("message.react", react), ("typing", typing), ("read", read),
                     ("presence.list", presence_list), ("presence.status", presence_status)):
        ops.register(name, op)
