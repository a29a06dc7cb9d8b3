"""Polls' WebSocket ops (docs/PROTOCOL-ADDITIONS.md "Polls"), registered with the dispatcher
when ``deps`` builds the app."""
from __future__ import annotations

from server.kernel.actor import parse_id
from server.polls.service import Polls
from server.realtime.dispatch import Dispatcher


def _poll(msg: dict) -> int:
    return parse_id(msg.get("message_id"), "message_id")


def register(ops: Dispatcher, polls: Polls) -> None:
    async def create(conn, msg):
        message, _ = await polls.create(conn.actor, parse_id(msg.get("room"), "room"), msg)
        return {"message": message}

    async def vote(conn, msg):
        return {"poll": await polls.vote(conn.actor, _poll(msg), msg.get("choices"))}

    async def get(conn, msg):
        return {"poll": await polls.view(conn.actor, _poll(msg))}

    async def close(conn, msg):
        return {"message": await polls.close(conn.actor, _poll(msg))}

    async def reopen(conn, msg):
        return {"message": await polls.reopen(conn.actor, _poll(msg))}

    async def share(conn, msg):
        return {"message": await polls.share(conn.actor, _poll(msg), msg.get("results_public"))}

    for name, op in (("poll.create", create), ("poll.vote", vote), ("poll.get", get), ("poll.close", close),
                     ("poll.reopen", reopen), ("poll.share", share)):
        ops.register(name, op)
