"""Ringing (server/calls/ringing.py, issue 19.1): a call in a direct room rings the other
person on every device; accept or decline from one device stops it on all and tells the
caller; no answer in time leaves a missed call; someone in another call is busy; instructors
ring the members of a group room not in the call; across processes in the last test."""
from __future__ import annotations

import asyncio
import os
import secrets

import pytest

from tests.calls.helpers import calls_settle, error_code, room_with  # noqa: F401  (autouse fixture)
from tests.realtime.test_scaleout import cluster
from tests.procserver import procs  # noqa: F401  (fixture)
from tests.wsclient import WsClient

TIMEOUT_S = 1.5


@pytest.fixture
def config_overrides() -> dict:
    return {"ring_timeout_s": TIMEOUT_S}


async def direct(server):
    did, [(ana, a_tok), (ben, b_tok)] = await room_with(server, "ana", "ben", kind="direct")
    a = await server.client(a_tok)
    b1, b2 = await server.client(b_tok), await server.client(b_tok)
    return did, (ana, a_tok, a), (ben, b_tok, b1, b2)


async def test_a_direct_call_rings_every_device_and_one_answer_stops_them_all(server):
    did, (ana, a_tok, a), (ben, b_tok, b1, b2) = await direct(server)
    session = (await a.request("call.start", room=did))["session"]["id"]
    await a.request("call.join", session=session)
    for b in (b1, b2):
        ring = await b.next_event("call.ringing")
        assert ring["session"] == session and ring["room"] == did
        assert ring["caller"]["id"] == ana["id"] and ring["caller"]["display_name"] == "Ana"
        assert ring["expires_at"] and ring["ring_s"] == TIMEOUT_S
    # A device signed in while the call rings rings too, for the time left.
    late = await server.client(b_tok)
    ring = await late.next_event("call.ringing")
    assert ring["session"] == session and 0 < ring["ring_s"] <= TIMEOUT_S
    assert await error_code(b1, "call.answer", session=session, accept="yes") == "bad_request"
    assert await b1.request("call.answer", session=session, accept=True) == {}
    for b in (b1, b2, late):
        assert (await b.next_event("call.ring_stopped"))["reason"] == "answered"
    assert await (await server.client(b_tok)).no_event("call.ringing", within=0.3)  # answered: over
    answered = await a.next_event("call.ring_answered")
    assert answered["user"] == ben["id"]
    await b1.request("call.join", session=session)
    assert await a.no_event("call.no_answer", within=TIMEOUT_S + 0.5)
    status, history = await server.http("GET", f"/api/rooms/{did}/messages", b_tok)
    assert not any("Missed call" in m["content"] for m in history["messages"])


async def test_decline_and_no_answer(server):
    did, (ana, a_tok, a), (ben, b_tok, b1, b2) = await direct(server)
    session = (await a.request("call.start", room=did))["session"]["id"]
    await a.request("call.join", session=session)
    await b1.next_event("call.ringing")
    await b2.request("call.answer", session=session, accept=False)
    assert (await a.next_event("call.declined"))["user"] == ben["id"]
    for b in (b1, b2):
        assert (await b.next_event("call.ring_stopped"))["reason"] == "declined"
    status, rooms = await server.http("GET", "/api/rooms", a_tok)
    await a.request("read", room=did, seq=next(r for r in rooms["rooms"] if r["id"] == did)["last_seq"])
    watcher = await server.client(b_tok)  # in the room: hears read positions move
    await watcher.request("room.join", room=did)
    await a.request("call.ring", session=session)  # again: this time nobody answers
    await b1.next_event("call.ringing")
    no_answer = await a.next_event("call.no_answer", timeout=TIMEOUT_S + 3)
    assert no_answer["user"] == ben["id"] and no_answer["display_name"] == "Ben"
    assert (await b2.next_event("call.ring_stopped", timeout=10))["reason"] == "missed"
    status, history = await server.http("GET", f"/api/rooms/{did}/messages", b_tok)
    note = next(m for m in history["messages"] if m["content"] == "Missed call from Ana")
    status, rooms = await server.http("GET", "/api/rooms", b_tok)
    mine = next(r for r in rooms["rooms"] if r["id"] == did)
    assert mine["last_seq"] > mine["my_read_seq"]  # an unread badge
    # The caller had read everything: her own missed call is not unread for her.
    assert await watcher.next_event("read") == {"type": "read", "room": did, "user_id": ana["id"], "seq": note["seq"]}
    status, rooms = await server.http("GET", "/api/rooms", a_tok)
    hers = next(r for r in rooms["rooms"] if r["id"] == did)
    assert hers["my_read_seq"] == hers["last_seq"] == note["seq"]
    # With a message she has not read before it, her read position stays where it was.
    await b1.request("message.send", room=did, content="call me?", client_msg_id="m-unread")
    await a.request("call.ring", session=session)
    await b1.next_event("call.ringing")
    await a.next_event("call.no_answer", timeout=TIMEOUT_S + 3)
    status, rooms = await server.http("GET", "/api/rooms", a_tok)
    hers = next(r for r in rooms["rooms"] if r["id"] == did)
    assert hers["my_read_seq"] == note["seq"] and hers["last_seq"] == note["seq"] + 2


async def test_busy_joining_stops_ringing_and_the_caller_leaving_cancels(server):
    did, (ana, a_tok, a), (ben, b_tok, b1, b2) = await direct(server)
    # Ben is in another call: Ana's call does not ring him, she hears "busy".
    gid, [(gus, g_tok), _] = await room_with(server, "gus", "gina", kind="group")
    status, _ = await server.http("POST", f"/api/rooms/{gid}/members", g_tok, {"user_id": ben["id"]})
    g = await server.client(g_tok)
    other = (await g.request("call.start", room=gid))["session"]["id"]
    await b1.request("call.join", session=other)
    session = (await a.request("call.start", room=did))["session"]["id"]
    busy = await a.next_event("call.busy")
    assert busy["user"] == ben["id"] and busy["display_name"] == "Ben"
    assert await b2.no_event("call.ringing", within=0.5)
    await b1.request("call.leave", session=other)
    # Ringing again; Ben joins from a device without answering: the ringing stops.
    await a.request("call.join", session=session)
    assert (await a.request("call.ring", session=session))["ringing"] == [ben["id"]]
    await b2.next_event("call.ringing")
    await b1.request("call.join", session=session)
    assert (await b2.next_event("call.ring_stopped"))["reason"] == "answered"
    await b1.request("call.leave", session=session)
    # Ana rings and leaves before an answer: the ringing is cancelled.
    await a.request("call.ring", session=session)
    await b2.next_event("call.ringing")
    await a.request("call.leave", session=session)
    assert (await b2.next_event("call.ring_stopped"))["reason"] == "cancelled"


async def test_instructors_ring_the_members_not_in_the_call(server):
    """A course call rings nobody by itself; its instructor rings the members not in it; those
    who miss it are named in one message, not one message each."""
    rid, [(ana, a_tok), (ben, b_tok), (cleo, c_tok), (dan, d_tok)] = await room_with(server, "ana", "ben", "cleo", "dan")
    a, b, c, d = [await server.client(t) for t in (a_tok, b_tok, c_tok, d_tok)]
    session = (await a.request("call.start", room=rid))["session"]["id"]
    assert await b.no_event("call.ringing", within=0.3)  # a course call does not ring by itself
    await a.request("call.join", session=session)
    await b.request("call.join", session=session)
    assert await error_code(b, "call.ring", session=session) == "forbidden"
    for bad in ({"user_ids": "x"}, {"user_ids": []}, {"user_ids": ["999999"]}):
        assert await error_code(a, "call.ring", session=session, **bad) == "bad_request", bad
    assert (await a.request("call.ring", session=session)) == {"ringing": sorted([cleo["id"], dan["id"]], key=int), "busy": []}
    assert (await c.next_event("call.ringing"))["caller"]["id"] == ana["id"]
    await d.next_event("call.ringing")
    assert await b.no_event("call.ringing", within=0.3)
    for _ in range(2):
        await a.next_event("call.no_answer", timeout=TIMEOUT_S + 3)
    status, history = await server.http("GET", f"/api/rooms/{rid}/messages", b_tok)
    assert [m["content"] for m in history["messages"] if "Missed" in m["content"]] == ["Missed call from Ana: Cleo, Dan"]
    # Rung again, one declines and one answers: no message.
    await a.request("call.ring", session=session)
    await c.next_event("call.ringing")
    await d.next_event("call.ringing")
    await c.request("call.answer", session=session, accept=False)
    await d.request("call.join", session=session)
    await a.next_event("call.declined")
    await a.next_event("call.ring_answered")
    assert await a.no_event("call.no_answer", within=TIMEOUT_S + 0.5)
    status, history = await server.http("GET", f"/api/rooms/{rid}/messages", b_tok)
    assert len([m for m in history["messages"] if "Missed" in m["content"]]) == 1


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="several processes need Redis")
async def test_ringing_across_processes(procs):  # noqa: F811
    """Ben is signed in on both processes: both devices ring (and one opened meanwhile), an
    answer on one stops both and reaches Ana's process (which stops its timer); joining from
    the other process without answering does too — no "no answer", no missed call."""
    servers = cluster(procs, os.environ["TEST_REDIS_URL"], 2, RING_TIMEOUT_S="1.5")
    (ana, a_tok), (ben, b_tok) = [await servers[0].register(f"u{secrets.token_hex(3)}{i}") for i in range(2)]
    status, body = await servers[0].http("POST", "/api/rooms", a_tok, {"kind": "direct", "members": [ben["id"]]})
    assert status in (200, 201), body
    did = body["room"]["id"]
    a = await WsClient.connect(servers[0].ws_url, a_tok)
    b0 = await WsClient.connect(servers[0].ws_url, b_tok)
    b1 = await WsClient.connect(servers[1].ws_url, b_tok)
    session = (await a.request("call.start", room=did))["session"]["id"]
    await a.request("call.join", session=session)
    for b in (b0, b1):
        assert (await b.next_event("call.ringing"))["caller"]["id"] == ana["id"]
    # A socket opened meanwhile on the process that does not keep the ring rings too (Redis).
    late = await WsClient.connect(servers[1].ws_url, b_tok)
    assert (await late.next_event("call.ringing"))["session"] == session
    late.close()
    await b1.request("call.answer", session=session, accept=True)
    assert (await a.next_event("call.ring_answered"))["user"] == ben["id"]
    for b in (b0, b1):
        assert (await b.next_event("call.ring_stopped"))["reason"] == "answered"
    # The ringing process stopped its timer: no "no answer" after the timeout.
    assert await a.no_event("call.no_answer", within=2.5)
    # Ringing again; Ben joins from the other process without answering.
    assert (await a.request("call.ring", session=session))["ringing"] == [ben["id"]]
    await b0.next_event("call.ringing")
    await b1.next_event("call.ringing")
    await b1.request("call.join", session=session)
    assert (await a.next_event("call.ring_answered"))["user"] == ben["id"]
    assert (await b0.next_event("call.ring_stopped"))["reason"] == "answered"
    assert await a.no_event("call.no_answer", within=2.5)
    status, history = await servers[0].http("GET", f"/api/rooms/{did}/messages", b_tok)
    assert not any("Missed call" in m["content"] for m in history["messages"])
    for x in (a, b0, b1):
        x.close()
