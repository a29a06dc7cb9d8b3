"""Breakout rooms (server/calls/breakouts.py, issue 16.2): an instructor splits a call's
students into groups with rooms and calls of their own, broadcasts to them, and ends them
(button or timer): everyone is told to come back; a student cannot join another group's call;
time in a breakout counts as attendance of the class."""
from __future__ import annotations

import asyncio
import os
import secrets

import pytest

from tests.calls.helpers import calls_settle, error_code, room_with  # noqa: F401  (autouse fixture)
from tests.realtime.test_scaleout import cluster
from tests.procserver import procs  # noqa: F401  (fixture)
from tests.wsclient import WsClient


@pytest.fixture
def config_overrides() -> dict:
    # A call without an instructor ends after this grace: breakout groups' calls must not.
    return {"call_end_grace_s": 1.5}


async def class_call(server, n_students: int):
    names = ["ana"] + [f"s{i}" for i in range(n_students)]
    rid, users = await room_with(server, *names)
    a = await server.client(users[0][1])
    session = (await a.request("call.start", room=rid))["session"]["id"]
    await a.request("call.join", session=session)
    students = []
    for user, tok in users[1:]:
        c = await server.client(tok)
        await c.request("call.join", session=session)
        students.append((user, tok, c))
    return rid, session, users[0], a, students


async def test_split_move_broadcast_end_and_attendance(server):
    rid, session, (ana, a_tok), a, students = await class_call(server, 4)
    status, body = await server.http("POST", f"/api/sessions/{session}/breakouts", a_tok, {"count": 2})
    assert status == 201, body
    breakout = body["breakout"]
    groups = breakout["groups"]
    assert len(groups) == 2 and all(len(g["members"]) == 2 for g in groups)
    assert sorted(m for g in groups for m in g["members"]) == sorted(u["id"] for u, _, _ in students)
    started = await a.next_event("call.breakout_started")
    assert started["group"] is None and started["breakout"]["id"] == breakout["id"]
    mine = {}
    for user, tok, c in students:
        ev = await c.next_event("call.breakout_started")
        assert ev["session"] == session and user["id"] in ev["group"]["members"]
        mine[user["id"]] = ev["group"]
    # Each student joins their group's call, and cannot join the other one's.
    user, tok, c = students[0]
    own = mine[user["id"]]
    other = next(g for g in groups if g["id"] != own["id"])
    assert (await c.request("call.join", session=own["session"]))["peer_id"]
    assert await error_code(c, "call.join", session=other["session"]) == "forbidden"
    status, _ = await server.http("GET", f"/api/rooms/{other['room']}/messages", tok)
    assert status == 403
    # A student sees only their own group.
    status, seen = await server.http("GET", f"/api/sessions/{session}/breakouts", tok)
    assert [g["id"] for g in seen["breakout"]["groups"]] == [own["id"]]
    # The group calls outlive the end-without-instructor grace.
    await asyncio.sleep(2.5)
    assert (await server.http("GET", f"/api/rooms/{own['room']}/sessions", a_tok))[1]["sessions"][0]["ended_at"] is None
    status, sent = await server.http("POST", f"/api/breakouts/{breakout['id']}/broadcast", a_tok, {"text": "Five minutes left"})
    assert status == 200 and sent == {"sent": 2}
    for g in groups:
        status, history = await server.http("GET", f"/api/rooms/{g['room']}/messages", a_tok)
        assert any(m["kind"] == "announcement" and m["content"] == "Five minutes left" for m in history["messages"])
    status, _ = await server.http("POST", f"/api/breakouts/{breakout['id']}/end", students[1][1])
    assert status == 403
    status, ended = await server.http("POST", f"/api/breakouts/{breakout['id']}/end", a_tok)
    assert status == 200 and ended["breakout"]["ended_at"]
    # The student in its group's call sees that call end, then everyone is called back.
    assert (await students[0][2].next_event("call.ended"))["session"]["id"] == own["session"]
    for user, tok, c in students:
        back = await c.next_event("call.breakout_ended")
        assert back["session"] == session and back["main"]["id"] == session
    status, again = await server.http("POST", f"/api/breakouts/{breakout['id']}/end", a_tok)
    assert status == 200  # ending twice is harmless
    assert (await server.http("GET", f"/api/sessions/{session}/breakouts", a_tok))[1] == {"breakout": None}
    # Attendance of the class counts the breakout: the first student has a stay in both calls.
    status, att = await server.http("GET", f"/api/sessions/{session}/attendance", a_tok)
    first = next(x for x in att["attendees"] if x["user"]["id"] == students[0][0]["id"])
    assert len(first["intervals"]) == 2


async def test_chosen_groups_timer_and_bad_requests(server):
    rid, session, (ana, a_tok), a, students = await class_call(server, 2)
    (u0, t0, c0), (u1, t1, c1) = students
    _, outsider_tok = await server.user("outsider")
    status, outsider = await server.http("GET", "/api/me", outsider_tok)
    url = f"/api/sessions/{session}/breakouts"
    for bad in ({}, {"count": 1}, {"count": 2, "groups": [[u0["id"]]]}, {"groups": [[u0["id"]], [u0["id"]]]},
                {"groups": [["x"]]}, {"groups": [[]]}, {"count": 2, "duration_s": 3}, {"count": True},
                {"groups": [[outsider["user"]["id"]]]}, {"groups": [[ana["id"]]]}):
        status, _ = await server.http("POST", url, a_tok, bad)
        assert status == 400, bad
    status, _ = await server.http("POST", url, t0, {"count": 2})
    assert status == 403
    status, body = await server.http("POST", url, a_tok, {"groups": [[u0["id"]], [u1["id"]]], "duration_s": 5})
    assert status == 201 and body["breakout"]["ends_at"]
    assert [g["members"] for g in body["breakout"]["groups"]] == [[u0["id"]], [u1["id"]]]
    status, _ = await server.http("POST", url, a_tok, {"count": 2})
    assert status == 409  # one breakout at a time
    for c in (c0, c1):
        await c.next_event("call.breakout_started")
    for c in (c0, c1):  # the timer brings everyone back
        assert (await c.next_event("call.breakout_ended", timeout=10))["session"] == session


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="several processes need Redis")
async def test_breakouts_across_processes(procs):  # noqa: F811
    """The instructor on one process splits a call whose students are on two others: each
    is moved, can join its group's call where it is, and is called back when it ends."""
    servers = cluster(procs, os.environ["TEST_REDIS_URL"], 3)
    (_, a_tok), (ben, b_tok), (cleo, c_tok) = [await servers[0].register(f"u{secrets.token_hex(3)}{i}") for i in range(3)]
    room = (await servers[0].room(a_tok, [ben["id"], cleo["id"]]))["id"]
    a = await WsClient.connect(servers[0].ws_url, a_tok)
    b = await WsClient.connect(servers[1].ws_url, b_tok)
    c = await WsClient.connect(servers[2].ws_url, c_tok)
    session = (await a.request("call.start", room=room))["session"]["id"]
    for x in (a, b, c):
        await x.request("call.join", session=session)
    status, body = await servers[0].http("POST", f"/api/sessions/{session}/breakouts", a_tok, {"count": 2})
    assert status == 201, body
    for x, user in ((b, ben), (c, cleo)):
        ev = await x.next_event("call.breakout_started")
        assert user["id"] in ev["group"]["members"]
        assert (await x.request("call.join", session=ev["group"]["session"]))["peer_id"]
    status, _ = await servers[0].http("POST", f"/api/breakouts/{body['breakout']['id']}/end", a_tok)
    assert status == 200
    for x in (b, c):
        assert (await x.next_event("call.breakout_ended"))["session"] == session
    for x in (a, b, c):
        x.close()
