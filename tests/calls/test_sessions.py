"""Live sessions over /ws and REST (server/calls/sessions.py; PROTOCOL §2.2, §3 sessions;
docs/PROTOCOL-ADDITIONS.md "Live calls"): start, join, leave (explicitly or by closing a socket),
ending (explicitly or when the last instructor is gone for ``call_end_grace_s``), the sessions
listing, and the races between a join and an end or a dying socket."""
from __future__ import annotations

import asyncio
import contextlib
import socket
import time

import pytest

from tests.calls.helpers import (SDP, call_room, calls_settle, error_code, joined,  # noqa: F401  (autouse fixture)
                                 open_intervals, parse_ts, room_with)
from tests.wsclient import ProtocolError


# -- start ------------------------------------------------------------------------------------
async def test_start_broadcasts_and_returns_the_live_session(server):
    """call.start answers {session} with the §2.2 shape, broadcasts call.started to the room's
    subscribers, and a second call.start returns the same live session without a broadcast."""
    rid, [(ana, a_tok), (ben, b_tok)] = await room_with(server, "ana", "ben")
    a = await server.client(a_tok)
    b = await server.client(b_tok)
    await b.request("room.join", room=rid)
    session = (await a.request("call.start", room=rid))["session"]
    assert set(session) >= {"id", "room", "started_by", "started_at", "ended_at", "recording"}
    assert session["room"] == rid and session["started_by"] == ana["id"]
    assert session["ended_at"] is None and session["recording"] is None
    parse_ts(session["started_at"])
    ev = await b.next_event("call.started")
    assert ev["session"] == session
    again = (await a.request("call.start", room=rid))["session"]
    assert again["id"] == session["id"]
    assert await b.no_event("call.started")
    status, body = await server.http("GET", f"/api/rooms/{rid}/sessions", b_tok)
    assert status == 200 and [s["id"] for s in body["sessions"]] == [session["id"]]


async def test_start_permissions_by_room_kind(server):
    """Only room instructors start a call in a course room (students and non-members get
    forbidden); any member may in a group room; both members may in a direct room."""
    rid, [(_, a_tok), (_, b_tok)] = await room_with(server, "ana", "ben")
    _, out_tok = await server.user("outsider")
    b = await server.client(b_tok)
    out = await server.client(out_tok)
    assert await error_code(b, "call.start", room=rid) == "forbidden"
    assert await error_code(out, "call.start", room=rid) == "forbidden"
    assert await error_code(b, "call.start", room="999999") in ("not_found", "forbidden")
    assert await error_code(b, "call.start") == "bad_request"
    grid, [_, (_, gus_tok)] = await room_with(server, "gina", "gus", kind="group")
    gus = await server.client(gus_tok)
    assert (await gus.request("call.start", room=grid))["session"]["room"] == grid
    did, [(_, d1), (_, d2)] = await room_with(server, "dora", "dan", kind="direct")
    dan = await server.client(d2)
    assert (await dan.request("call.start", room=did))["session"]["room"] == did


async def test_sessions_listing_newest_first_members_only(server):
    """GET /api/rooms/{id}/sessions lists the room's sessions newest first to members; others
    get 403."""
    rid, [(_, a_tok), (_, b_tok)] = await room_with(server, "ana", "ben")
    _, out_tok = await server.user("outsider")
    a = await server.client(a_tok)
    first = (await a.request("call.start", room=rid))["session"]["id"]
    await a.request("call.end", session=first)
    second = (await a.request("call.start", room=rid))["session"]["id"]
    status, body = await server.http("GET", f"/api/rooms/{rid}/sessions", b_tok)
    assert status == 200 and [s["id"] for s in body["sessions"]] == [second, first]
    assert body["sessions"][0]["ended_at"] is None and body["sessions"][1]["ended_at"] is not None
    status, _ = await server.http("GET", f"/api/rooms/{rid}/sessions", out_tok)
    assert status == 403


# -- join / leave -----------------------------------------------------------------------------
async def test_join_ack_and_participant_joined(server):
    """call.join answers {session, peer_id (= the socket's connection_id), participants (the
    others), ice_servers, ice_ttl_s}; the others get call.participant_joined; joining twice
    from one socket returns the same ack and announces nothing."""
    session, [(ana, a_tok), (ben, b_tok)] = await call_room(server, "ana", "ben")
    a, ack_a = await joined(server, a_tok, session)
    assert ack_a["session"]["id"] == session and ack_a["peer_id"] == a.hello["connection_id"]
    assert ack_a["participants"] == [] and ack_a["ice_servers"] == [] and isinstance(ack_a["ice_ttl_s"], int)
    b, ack_b = await joined(server, b_tok, session)
    (pa,) = ack_b["participants"]
    assert pa["peer_id"] == ack_a["peer_id"] and pa["recorder"] is False and pa["hand"] is False
    assert pa["user"] == {"id": ana["id"], "display_name": "Ana", "role": "instructor"}
    assert pa["media"] == {"audio": False, "video": False, "screen": False}
    parse_ts(pa["joined_at"])
    ev = await a.next_event("call.participant_joined")
    assert ev["session"] == session and ev["participant"]["peer_id"] == ack_b["peer_id"]
    assert ev["participant"]["user"] == {"id": ben["id"], "display_name": "Ben", "role": "student"}
    assert await b.no_event("call.participant_joined")  # not announced to itself
    again = await b.request("call.join", session=session)
    assert again["peer_id"] == ack_b["peer_id"] and [p["peer_id"] for p in again["participants"]] == [pa["peer_id"]]
    assert await a.no_event("call.participant_joined")


async def test_join_refusals(server):
    """call.join refuses a non-member (forbidden), an unknown session (not_found), a malformed
    session id (bad_request) and an ended session (conflict)."""
    session, [(_, a_tok), (_, b_tok)] = await call_room(server, "ana", "ben")
    _, out_tok = await server.user("outsider")
    out = await server.client(out_tok)
    assert await error_code(out, "call.join", session=session) == "forbidden"
    assert await error_code(out, "call.join", session="987654") == "not_found"
    assert await error_code(out, "call.join", session={"x": 1}) == "bad_request"
    a, _ = await joined(server, a_tok, session)
    await a.request("call.end", session=session)
    b = await server.client(b_tok)
    assert await error_code(b, "call.join", session=session) == "conflict"


async def test_leave_and_socket_close_leave_the_session(server):
    """call.leave answers {} and the others get call.participant_left {session, peer_id}; a
    socket that closes leaves its session the same way and its interval is closed."""
    session, [(_, a_tok), (_, b_tok), (_, c_tok)] = await call_room(server, "ana", "ben", "cat")
    a, _ = await joined(server, a_tok, session)
    b, ack_b = await joined(server, b_tok, session)
    c, ack_c = await joined(server, c_tok, session)
    assert await b.request("call.leave", session=session) == {}
    ev = await a.next_event("call.participant_left")
    assert ev == {"type": "call.participant_left", "session": session, "peer_id": ack_b["peer_id"]}
    assert (await c.next_event("call.participant_left"))["peer_id"] == ack_b["peer_id"]
    c.close()
    ev = await a.next_event("call.participant_left", peer_id=ack_c["peer_id"])
    assert ev["session"] == session
    _, late = await joined(server, b_tok, session)
    assert [p["peer_id"] for p in late["participants"]] == [a.hello["connection_id"]]
    deadline = time.monotonic() + 10
    while await open_intervals(server) != 2 and time.monotonic() < deadline:  # a and the late b
        await asyncio.sleep(0.05)
    assert await open_intervals(server) == 2


async def test_member_removed_from_room_leaves_its_live_call(server):
    """A user removed from the room is dropped from the room's live call at once: the others
    get call.participant_left and the user's signals are refused."""
    session, [(ana, a_tok), (ben, b_tok)] = await call_room(server, "ana", "ben")
    a, ack_a = await joined(server, a_tok, session)
    b, ack_b = await joined(server, b_tok, session)
    rid = ack_a["session"]["room"]
    status, _ = await server.http("DELETE", f"/api/rooms/{rid}/members/{ben['id']}", a_tok)
    assert status == 200
    await b.next_event("room.removed", timeout=10)
    assert (await a.next_event("call.participant_left", timeout=10))["peer_id"] == ack_b["peer_id"]
    assert await error_code(b, "rtc.offer", session=session, to=ack_a["peer_id"], sdp=SDP,
                            negotiation_id="n") == "forbidden"


async def test_protocol_errors_do_not_close_the_socket(server):
    """Malformed call frames get bad_request and the socket keeps working."""
    session, [(_, a_tok), _] = await call_room(server, "ana", "ben")
    a, ack = await joined(server, a_tok, session)
    assert await error_code(a, "call.join") == "bad_request"
    assert await error_code(a, "rtc.offer", session=session, to=None, sdp=SDP) == "bad_request"
    assert await error_code(a, "call.mute", session=session) == "bad_request"
    assert await error_code(a, "call.mute", session=session, peer_id="nobody") == "not_found"
    with pytest.raises(ProtocolError):
        await a.request("call.leave", session="not-a-number")
    assert (await a.request("call.hand", session=session, raised=True))["participant"]["hand"] is True
    assert not a.closed.is_set()


# -- ending -----------------------------------------------------------------------------------
async def test_call_end_ends_for_everyone_and_closes_intervals(server):
    """call.end by an instructor answers {}, sends call.ended {session with ended_at} to every
    participant and room subscriber, closes every open interval, and afterwards signals are
    forbidden and joins conflict."""
    session, [(_, a_tok), (_, b_tok), (_, c_tok)] = await call_room(server, "ana", "ben", "cat")
    a, ack_a = await joined(server, a_tok, session)
    b, ack_b = await joined(server, b_tok, session)
    watcher = await server.client(c_tok)
    await watcher.request("room.join", room=ack_a["session"]["room"])
    assert await open_intervals(server) == 2
    assert await a.request("call.end", session=session) == {}
    for cl in (a, b, watcher):
        ev = await cl.next_event("call.ended")
        assert ev["session"]["id"] == session and ev["session"]["ended_at"] is not None
    assert await open_intervals(server) == 0
    assert await error_code(b, "rtc.offer", session=session, to=ack_a["peer_id"], sdp=SDP, negotiation_id="n") == "forbidden"
    assert await error_code(b, "call.join", session=session) == "conflict"
    assert await error_code(a, "call.end", session=session) in ("conflict", "not_found")
    status, body = await server.http("GET", f"/api/rooms/{ack_a['session']['room']}/sessions", b_tok)
    assert status == 200 and body["sessions"][0]["ended_at"] is not None
    # A new call can start in the room afterwards.
    assert (await a.request("call.start", room=ack_a["session"]["room"]))["session"]["id"] != session


@pytest.mark.parametrize("config_overrides", [{"call_end_grace_s": 2.0}])
async def test_last_instructor_leaving_ends_after_grace(server):
    """When the last instructor leaves, the session ends call_end_grace_s later (not at once)
    with call.ended to the remaining students and every interval closed."""
    session, [(_, a_tok), (_, b_tok)] = await call_room(server, "ana", "ben")
    a, _ = await joined(server, a_tok, session)
    b, _ = await joined(server, b_tok, session)
    t0 = time.monotonic()
    await a.request("call.leave", session=session)
    assert await b.no_event("call.ended", 1.0)
    ev = await b.next_event("call.ended")
    elapsed = time.monotonic() - t0
    assert ev["session"]["id"] == session and ev["session"]["ended_at"]
    assert 1.9 <= elapsed < 10, elapsed
    assert await open_intervals(server) == 0


@pytest.mark.parametrize("config_overrides", [{"call_end_grace_s": 3.0}])
async def test_instructor_reconnect_within_grace_keeps_the_session(server):
    """An instructor whose socket drops and who rejoins within the grace keeps the session
    alive; the reconnect opens a new attendance interval and the old one is kept, closed.
    (The second socket connects before the drop, so that a slow handshake under CI load
    cannot use up the grace.)"""
    session, [(ana, a_tok), (_, b_tok)] = await call_room(server, "ana", "ben")
    a, _ = await joined(server, a_tok, session)
    b, _ = await joined(server, b_tok, session)
    a2 = await server.client(a_tok)
    a.close()
    await b.next_event("call.participant_left")
    await asyncio.sleep(0.2)
    await a2.request("call.join", session=session)
    assert await b.no_event("call.ended", 3.5)  # past the grace counted from the drop
    status, body = await server.http("GET", f"/api/sessions/{session}/attendance", a_tok)
    (ana_row,) = [x for x in body["attendees"] if x["user"]["id"] == ana["id"]]
    first, second = ana_row["intervals"]
    assert first["left_at"] is not None and second["left_at"] is None
    assert parse_ts(first["left_at"]) <= parse_ts(second["joined_at"])


@pytest.mark.parametrize("config_overrides", [{"call_end_grace_s": 2.0}])
async def test_students_alone_do_not_end_a_session_an_instructor_is_in(server):
    """Students leaving never schedule the end: with the instructor present the session stays
    live past the grace."""
    session, [(_, a_tok), (_, b_tok), (_, c_tok)] = await call_room(server, "ana", "ben", "cat")
    a, _ = await joined(server, a_tok, session)
    b, _ = await joined(server, b_tok, session)
    b.close()
    await a.next_event("call.participant_left")
    assert await a.no_event("call.ended", 2.5)
    _, ack = await joined(server, c_tok, session)
    assert ack["session"]["ended_at"] is None


# -- races and transport ----------------------------------------------------------------------
class Gate:
    """Holds the server's next database write (before its transaction begins) until released,
    to stage a race between a call.join and something else."""

    def __init__(self, server, monkeypatch):
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        db = server.deps.calls.db
        real = db.write
        armed = [True]

        @contextlib.asynccontextmanager
        async def write():
            if armed[0]:
                armed[0] = False
                self.entered.set()
                await asyncio.wait_for(self.release.wait(), 10)
            async with real() as s:
                yield s

        monkeypatch.setattr(db, "write", write)


async def test_join_racing_call_end_leaves_no_open_interval(server, monkeypatch):
    """A call.join whose attendance write finishes after call.end answers conflict and leaves
    no interval open (ending closes every interval, including one written late)."""
    session, [(_, a_tok), (_, b_tok)] = await call_room(server, "ana", "ben")
    a, _ = await joined(server, a_tok, session)
    gate = Gate(server, monkeypatch)
    b = await server.client(b_tok)
    join = asyncio.ensure_future(b.request_raw("call.join", session=session))
    await asyncio.wait_for(gate.entered.wait(), 5)
    await a.request("call.end", session=session)
    gate.release.set()
    frame = await join
    assert frame["type"] == "error" and frame["code"] == "conflict", frame
    assert await open_intervals(server) == 0


async def test_socket_dying_during_join_leaves_no_ghost(server, monkeypatch):
    """A socket whose connection dies (heartbeat timeout, 4008, reset) while its call.join is
    being stored never stays a participant: nobody sees it listed, and its interval is closed."""
    session, [(_, a_tok), (ben, b_tok), (_, c_tok)] = await call_room(server, "ana", "ben", "cat")
    a, _ = await joined(server, a_tok, session)
    gate = Gate(server, monkeypatch)
    b = await server.client(b_tok)
    b_peer = b.hello["connection_id"]
    (handler,) = tuple(server.deps.registry.user_sockets(int(ben["id"])))
    b.send({"type": "call.join", "id": "j", "session": session})
    await asyncio.wait_for(gate.entered.wait(), 5)
    handler.ws_connection.stream.close()  # the connection dies under the pending join
    await asyncio.sleep(0.1)
    gate.release.set()
    deadline = time.monotonic() + 5
    while handler in server.deps.sockets and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert handler not in server.deps.sockets
    await asyncio.sleep(0.2)
    _, ack = await joined(server, c_tok, session)
    assert [p["peer_id"] for p in ack["participants"]] == [a.hello["connection_id"]]
    assert b_peer not in server.deps.calls.live[int(session)].participants
    assert await open_intervals(server) == 2  # a and c


async def test_call_sockets_disable_nagle(server):
    """A participant's socket has TCP_NODELAY set, so bursts of small signaling frames are not
    held back for the client's delayed ACK (~40 ms)."""
    session, [(ana, a_tok), _] = await call_room(server, "ana", "ben")
    await joined(server, a_tok, session)
    (handler,) = tuple(server.deps.registry.user_sockets(int(ana["id"])))
    sock = handler.ws_connection.stream.socket
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
