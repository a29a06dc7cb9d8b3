"""Helpers of the calls tests (also used by tests of recordings and metrics): rooms with a live
session, sockets that joined it, error codes, open attendance intervals, and ``calls_settle``,
the fixture every module that starts calls imports so no attendance write outlives its test."""
from __future__ import annotations

import asyncio
import time
from datetime import datetime

import pytest
from sqlalchemy import func, select

from server.db.models import AttendanceInterval
from tests.wsclient import WsClient

SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


CAND = {"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host", "sdpMid": "0",
        "sdpMLineIndex": 0}


async def room_with(server, *names: str, kind: str = "course") -> tuple[str, list[tuple[dict, str]]]:
    """A room whose creator (first name, global instructor) is its instructor and the others
    students; (room id, [(user, token)])."""
    users = [await server.user(n, "instructor" if i == 0 else "student") for i, n in enumerate(names)]
    room = await server.room(users[0][1], kind=kind, name="Call room" if kind != "direct" else "",
                             members=[u["id"] for u, _ in users[1:]])
    return room["id"], users


async def call_room(server, *names: str) -> tuple[str, list[tuple[dict, str]]]:
    """A course room (first name is its instructor) with a live session; (session id, users)."""
    rid, users = await room_with(server, *names)
    starter = await server.client(users[0][1])
    session = (await starter.request("call.start", room=rid))["session"]
    starter.close()
    return session["id"], users


async def joined(server, token: str, session: str) -> tuple[WsClient, dict]:
    """A new socket that has joined ``session``; (client, call.join ack)."""
    c = await server.client(token)
    return c, await c.request("call.join", session=session)


async def error_code(c: WsClient, type_: str, **fields) -> str | None:
    """The error code the server answers ``type_`` with (None when it acks)."""
    frame = await c.request_raw(type_, **fields)
    return frame.get("code") if frame["type"] == "error" else None


async def open_intervals(server) -> int:
    """How many attendance intervals are still open (no left_at), read from the database."""
    async with server.deps.db.read() as s:
        return (await s.execute(select(func.count()).select_from(AttendanceInterval)
                                .where(AttendanceInterval.left_at.is_(None)))).scalar_one()


@pytest.fixture(autouse=True)
def calls_settle(server, io_loop):
    """After each test: close every test socket and wait (bounded) until the server has
    recorded every departure, so no attendance write outlives the test's event loop."""
    yield
    for c in server.clients:
        c.close()

    async def settled() -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            busy = any(live.participants for live in server.deps.calls.live.values())
            if not busy and await open_intervals(server) == 0:
                return
            await asyncio.sleep(0.05)

    io_loop.run_sync(settled, timeout=10)


def parse_ts(value: str) -> datetime:
    """A wire timestamp (``...T..:..:..ffffffZ``) as a naive UTC datetime."""
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")


def union_seconds(intervals: list[dict], end: datetime) -> float:
    """Seconds covered by the union of the intervals (an open one runs to ``end``)."""
    spans = sorted((parse_ts(i["joined_at"]), parse_ts(i["left_at"]) if i["left_at"] else end) for i in intervals)
    total, cur = 0.0, None
    for s, e in spans:
        if cur is None or s > cur[1]:
            if cur:
                total += (cur[1] - cur[0]).total_seconds()
            cur = [s, e]
        else:
            cur[1] = max(cur[1], e)
    return total + ((cur[1] - cur[0]).total_seconds() if cur else 0.0)
