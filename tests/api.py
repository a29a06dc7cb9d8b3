"""Helpers for tests of the HTTP API: the one error shape, sending and reading messages over
REST, and the ``trio`` fixture (an instructor, a student member and an outsider, with their room)."""
from __future__ import annotations

import itertools

import pytest

_cmids = itertools.count(1)


def assert_error(status: int, body, expected_status: int, code: str) -> None:
    """Errors are exactly ``{"error": {"code", "reason"}}`` with the matching status."""
    assert status == expected_status, (status, body)
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "reason"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["reason"], str) and body["error"]["reason"]


async def send(server, token: str, room_id: str, content: str = "hi", kind: str = "text",
               cmid: str | None = None, expect: int = 201, **extra) -> dict:
    """POST a message to the room; the stored message (or the error body when ``expect`` is one)."""
    body = {"client_msg_id": cmid or f"c{next(_cmids)}", "kind": kind, "content": content, **extra}
    status, resp = await server.http("POST", f"/api/rooms/{room_id}/messages", token, body)
    assert status == expect, (status, resp)
    return resp["message"] if status < 300 else resp


async def history(server, token: str, room_id: str, query: str = "") -> dict:
    """GET the room's history with ``query``; the whole 200 body."""
    status, body = await server.http("GET", f"/api/rooms/{room_id}/messages{query}", token)
    assert status == 200, body
    return body


@pytest.fixture
def trio(server, io_loop):
    """ana (room instructor), ben (student member) and carl (not a member) and their course room."""
    async def make() -> dict:
        ana, ana_tok = await server.user("ana", "instructor")
        ben, ben_tok = await server.user("ben")
        carl, carl_tok = await server.user("carl")
        room = await server.room(ana_tok, "course", "Physics 101", members=[ben["id"]])
        return {"ana": (ana, ana_tok), "ben": (ben, ben_tok), "carl": (carl, carl_tok), "room": room}
    return io_loop.run_sync(make)
