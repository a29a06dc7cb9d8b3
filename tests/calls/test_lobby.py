"""A call's waiting room (server/calls/lobby.py, issue 16.3): with the lobby on, students wait
until an instructor admits them (one or all) or denies them; instructors see the queue; a
waiting socket is not a participant; turning the lobby off lets everyone in; across processes
in the last test."""
from __future__ import annotations

import os
import secrets

import pytest

from tests.calls.helpers import calls_settle, error_code, room_with  # noqa: F401  (autouse fixture)
from tests.calls.test_policy import tokens
from tests.realtime.test_scaleout import cluster
from tests.procserver import procs  # noqa: F401  (fixture)
from tests.wsclient import WsClient


async def lobby_call(server, *names: str):
    """A course room whose first name is its instructor, with a call started with a waiting
    room and the instructor in it; (session, instructor socket, {name: token})."""
    rid, users = await room_with(server, *names)
    a = await server.client(users[0][1])
    session = (await a.request("call.start", room=rid, lobby=True))["session"]
    assert session["lobby"] is True
    await a.request("call.join", session=session["id"])
    return session["id"], a, {u["username"]: tok for u, tok in users}, {u["username"]: u for u, _ in users}


async def test_students_wait_until_admitted_and_stay_admitted(server):
    session, a, tok, user = await lobby_call(server, "ana", "ben")
    b = await server.client(tok["ben"])
    ack = await b.request("call.join", session=session)
    assert ack == {"session": ack["session"], "waiting": True} and ack["session"]["lobby"] is True
    assert (await a.next_event("call.lobby_changed"))["waiting"] == 1
    assert await error_code(b, "call.hand", session=session, raised=True) == "forbidden"  # not a participant
    assert await error_code(b, "call.lobby", session=session) == "forbidden"
    assert await error_code(b, "call.admit", session=session, user_id=user["ben"]["id"]) == "forbidden"
    queue = await a.request("call.lobby", session=session)
    assert [w["user"] for w in queue["waiting"]] == [{"id": user["ben"]["id"], "display_name": "Ben"}]
    assert await error_code(a, "call.admit", session=session) == "bad_request"
    assert await error_code(a, "call.admit", session=session, user_id="999") == "not_found"
    assert await a.request("call.admit", session=session, user_id=user["ben"]["id"]) == {"admitted": [user["ben"]["id"]]}
    admitted = await b.next_event("call.admitted")
    assert admitted["by"] == user["ana"]["id"]
    joined = await b.request("call.join", session=session)
    assert joined.get("waiting") is None and joined["peer_id"]
    assert (await a.request("call.lobby", session=session))["waiting"] == []
    # Admitted for the rest of the session: leaving and joining again does not queue.
    await b.request("call.leave", session=session)
    assert (await b.request("call.join", session=session)).get("waiting") is None


async def test_deny_admit_all_and_leaving_the_queue(server):
    session, a, tok, user = await lobby_call(server, "ana", "ben", "cleo", "dan")
    b, c, d = [await server.client(tok[n]) for n in ("ben", "cleo", "dan")]
    for x in (b, c, d):
        assert (await x.request("call.join", session=session))["waiting"] is True
    await a.request("call.deny", session=session, user_id=user["cleo"]["id"])
    assert (await c.next_event("call.denied"))["by"] == user["ana"]["id"]
    assert await error_code(a, "call.deny", session=session, user_id=user["cleo"]["id"]) == "not_found"
    await d.request("call.leave", session=session)  # dan gives up waiting
    assert [w["user"]["id"] for w in (await a.request("call.lobby", session=session))["waiting"]] == [user["ben"]["id"]]
    assert (await c.request("call.join", session=session))["waiting"] is True  # cleo knocks again
    ack = await a.request("call.admit", session=session, all=True)
    assert sorted(ack["admitted"]) == sorted([user["ben"]["id"], user["cleo"]["id"]])
    for x in (b, c):
        await x.next_event("call.admitted")
        assert (await x.request("call.join", session=session)).get("waiting") is None
    # A waiting socket that closes leaves the queue.
    assert (await d.request("call.join", session=session))["waiting"] is True
    d.close()
    for _ in range(5):
        if (await a.request("call.lobby", session=session))["waiting"] == []:
            break
        await a.next_event("call.lobby_changed", timeout=10)
    assert (await a.request("call.lobby", session=session))["waiting"] == []


async def test_the_lobby_turned_on_and_off_during_a_call(server):
    rid, users = await room_with(server, "ana", "ben", "cleo")
    (_, a_tok), (ben, b_tok), (cleo, c_tok) = users
    a = await server.client(a_tok)
    session = (await a.request("call.start", room=rid))["session"]["id"]
    await a.request("call.join", session=session)
    b = await server.client(b_tok)
    await b.request("call.join", session=session)  # in before the lobby
    assert (await a.request("call.permissions", session=session, lobby=True))["session"]["lobby"] is True
    assert await error_code(a, "call.permissions", session=session, lobby="on") == "bad_request"
    await b.request("call.leave", session=session)
    assert (await b.request("call.join", session=session)).get("waiting") is None  # was in the call
    c = await server.client(c_tok)
    assert (await c.request("call.join", session=session))["waiting"] is True
    await a.request("call.permissions", session=session, lobby=False)
    await c.next_event("call.admitted")
    assert (await c.request("call.join", session=session)).get("waiting") is None
    # Instructors never wait.
    [a2_tok] = await tokens(server, "ana")
    await a.request("call.permissions", session=session, lobby=True)
    a2 = await server.client(a2_tok)
    assert (await a2.request("call.join", session=session)).get("waiting") is None


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="several processes need Redis")
async def test_the_queue_spans_processes(procs):  # noqa: F811
    servers = cluster(procs, os.environ["TEST_REDIS_URL"], 2)
    (_, a_tok), (ben, b_tok) = [await servers[0].register(f"u{secrets.token_hex(3)}{i}") for i in range(2)]
    room = (await servers[0].room(a_tok, [ben["id"]]))["id"]
    a = await WsClient.connect(servers[0].ws_url, a_tok)
    b = await WsClient.connect(servers[1].ws_url, b_tok)
    session = (await a.request("call.start", room=room, lobby=True))["session"]["id"]
    await a.request("call.join", session=session)
    assert (await b.request("call.join", session=session))["waiting"] is True
    assert (await a.next_event("call.lobby_changed"))["waiting"] == 1
    assert [w["user"]["id"] for w in (await a.request("call.lobby", session=session))["waiting"]] == [ben["id"]]
    await a.request("call.admit", session=session, user_id=ben["id"])
    await b.next_event("call.admitted")
    assert (await b.request("call.join", session=session)).get("waiting") is None
    for c in (a, b):
        c.close()
