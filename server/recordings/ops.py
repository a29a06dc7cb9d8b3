"""Recordings' WebSocket ops (PROTOCOL §2.2–§2.3): the instructor's recording.start/stop/mark
and the media worker's worker.register/status."""
from __future__ import annotations

from server.kernel.actor import parse_id
from server.realtime.dispatch import Dispatcher
from server.recordings.lifecycle import Recordings


def _session(msg: dict) -> int:
    return parse_id(msg.get("session"), "session")


def register(ops: Dispatcher, recordings: Recordings) -> None:
    async def start(conn, msg):
        return await recordings.start(conn.actor, _session(msg))

    async def stop(conn, msg):
        return await recordings.stop(conn.actor, _session(msg))

    async def mark(conn, msg):
        return await recordings.mark(conn.actor, _session(msg), msg.get("label"))

    async def worker_register(conn, msg):
        return await recordings.register(conn, conn.actor, msg)

    async def worker_status(conn, msg):
        return await recordings.status(conn, msg)

    for name, op in (("recording.start", start), ("recording.stop", stop), ("recording.mark", mark),
                     ("worker.register", worker_register), ("worker.status", worker_status)):
        ops.register(name, op)
