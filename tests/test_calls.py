"""Live sessions and signaling over /ws without media (PROTOCOL §2.2, §3 sessions/attendance/
ice-servers; docs/PROTOCOL-ADDITIONS.md "Live calls"): every call.* / rtc.* / recording.* type,
the relay rules (participants only, per-pair order, negotiation_id carried, never dropped for a
slow reader), instructor-only controls, state broadcast and snapshot, leaving by closing a
socket, ending (explicitly or when the last instructor is gone for ``call_end_grace_s``),
attendance intervals / totals / CSV, and ICE server configuration with coturn-compatible TURN
REST credentials."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import hashlib
import hmac
import io
import json
import socket
import time
from datetime import datetime

import pytest
from sqlalchemy import func, select

from server.db.models import AttendanceInterval
from tests.wsclient import ProtocolError, WsClient

SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
CAND = {"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host", "sdpMid": "0",
        "sdpMLineIndex": 0}


# -- helpers (also used by tests/test_calls_rtc.py) ----------------------------------------------
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
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")


def union_seconds(intervals: list[dict], end: datetime) -> float:
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


# -- start ---------------------------------------------------------------------------------------
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


# -- join / leave / state --------------------------------------------------------------------------
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


async def test_newcomer_ack_carries_everyones_current_state(server):
    """A newcomer's call.join ack lists every participant with their current media and hand
    state, as set earlier by call.media / call.hand."""
    session, [(_, a_tok), (_, b_tok), (_, c_tok)] = await call_room(server, "ana", "ben", "cat")
    a, ack_a = await joined(server, a_tok, session)
    b, ack_b = await joined(server, b_tok, session)
    await a.request("call.media", session=session, audio=True, video=True)
    await b.request("call.media", session=session, screen=True)
    await b.request("call.hand", session=session, raised=True)
    _, ack_c = await joined(server, c_tok, session)
    state = {p["peer_id"]: (p["media"], p["hand"]) for p in ack_c["participants"]}
    assert state == {ack_a["peer_id"]: ({"audio": True, "video": True, "screen": False}, False),
                     ack_b["peer_id"]: ({"audio": False, "video": False, "screen": True}, True)}


async def test_media_and_hand_are_broadcast_to_the_session(server):
    """call.media and call.hand answer {participant} and broadcast call.media_changed /
    call.hand_changed with the whole participant to every participant (not to room members
    outside the call); malformed values are bad_request; non-participants are forbidden."""
    session, users = await call_room(server, "ana", "ben", "cat")
    (_, a_tok), (_, b_tok), (_, c_tok) = users
    a, ack_a = await joined(server, a_tok, session)
    b, _ = await joined(server, b_tok, session)
    watcher = await server.client(c_tok)  # a room member who is not in the call
    await watcher.request("room.join", room=(ack_a["session"]["room"]))
    me = (await a.request("call.media", session=session, audio=True, video=False))["participant"]
    assert me["peer_id"] == ack_a["peer_id"] and me["media"] == {"audio": True, "video": False, "screen": False}
    for c in (a, b):
        ev = await c.next_event("call.media_changed")
        assert ev["session"] == session and ev["participant"] == me
    me = (await a.request("call.hand", session=session, raised=True))["participant"]
    assert me["hand"] is True
    for c in (a, b):
        assert (await c.next_event("call.hand_changed"))["participant"] == me
    me = (await a.request("call.hand", session=session, raised=False))["participant"]
    assert (await b.next_event("call.hand_changed"))["participant"]["hand"] is False
    assert await watcher.no_event("call.media_changed", 0.1) and await watcher.no_event("call.hand_changed", 0.1)
    assert await error_code(a, "call.media", session=session, audio="yes") == "bad_request"
    assert await error_code(a, "call.media", session=session) == "bad_request"
    assert await error_code(a, "call.hand", session=session, raised=1) == "bad_request"
    assert await error_code(watcher, "call.media", session=session, audio=True) == "forbidden"
    assert await error_code(watcher, "call.hand", session=session, raised=True) == "forbidden"


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
    deadline = time.monotonic() + 3
    while await open_intervals(server) != 2 and time.monotonic() < deadline:  # a and the late b
        await asyncio.sleep(0.05)
    assert await open_intervals(server) == 2


# -- signaling relay ---------------------------------------------------------------------------------
async def test_offer_answer_ice_relayed_with_negotiation_id(server):
    """rtc.offer / rtc.answer (acked {}) and rtc.ice (object or null; no ack needed) reach only
    the target as {session, from, sdp|candidate, negotiation_id}."""
    session, [(_, a_tok), (_, b_tok), (_, c_tok)] = await call_room(server, "ana", "ben", "cat")
    a, ack_a = await joined(server, a_tok, session)
    b, ack_b = await joined(server, b_tok, session)
    c, _ = await joined(server, c_tok, session)
    pa, pb = ack_a["peer_id"], ack_b["peer_id"]
    assert await b.request("rtc.offer", session=session, to=pa, sdp=SDP, negotiation_id="n-1") == {}
    ev = await a.next_event("rtc.offer")
    assert ev == {"type": "rtc.offer", "session": session, "from": pb, "sdp": SDP, "negotiation_id": "n-1"}
    assert await a.request("rtc.answer", session=session, to=pb, sdp=SDP + "a=x\r\n", negotiation_id="n-1") == {}
    ev = await b.next_event("rtc.answer")
    assert ev == {"type": "rtc.answer", "session": session, "from": pa, "sdp": SDP + "a=x\r\n", "negotiation_id": "n-1"}
    b.send({"type": "rtc.ice", "session": session, "to": pa, "candidate": CAND, "negotiation_id": "n-1"})
    b.send({"type": "rtc.ice", "session": session, "to": pa, "candidate": None, "negotiation_id": "n-1"})
    ev1 = await a.next_event("rtc.ice")
    ev2 = await a.next_event("rtc.ice")
    assert ev1 == {"type": "rtc.ice", "session": session, "from": pb, "candidate": CAND, "negotiation_id": "n-1"}
    assert ev2["candidate"] is None and ev2["negotiation_id"] == "n-1" and ev2["from"] == pb
    assert await b.request("rtc.ice", session=session, to=pa, candidate=CAND, negotiation_id=7) == {}
    assert (await a.next_event("rtc.ice"))["negotiation_id"] == 7
    # Only the target hears it.
    for kind in ("rtc.offer", "rtc.answer", "rtc.ice"):
        assert await c.no_event(kind, 0.1)
    assert await error_code(b, "rtc.offer", session=session, to=pa, negotiation_id="n") == "bad_request"
    assert await error_code(b, "rtc.offer", session=session, to=pa, sdp=42, negotiation_id="n") == "bad_request"
    assert await error_code(b, "rtc.ice", session=session, to=pa, candidate=5, negotiation_id="n") == "bad_request"
    assert await error_code(b, "rtc.offer", session=session, to=pa, sdp="x" * (61 * 1024)) in ("bad_request", "too_large")


async def test_signals_only_between_current_participants_of_one_session(server):
    """Signals are refused (forbidden) from a non-participant, to a non-participant, to an
    unknown peer, to oneself, across sessions, and after the sender or the target left."""
    session, [(_, a_tok), (_, b_tok), (_, c_tok)] = await call_room(server, "ana", "ben", "cat")
    other_session, [(_, x_tok), (_, y_tok)] = await call_room(server, "xena", "yuri")
    a, ack_a = await joined(server, a_tok, session)
    b, ack_b = await joined(server, b_tok, session)
    x, ack_x = await joined(server, x_tok, other_session)
    c = await server.client(c_tok)  # a room member, not in the call
    pa, pb, px = ack_a["peer_id"], ack_b["peer_id"], ack_x["peer_id"]

    async def refused(client: WsClient, **fields) -> None:
        for kind, extra in (("rtc.offer", {"sdp": SDP}), ("rtc.answer", {"sdp": SDP}),
                            ("rtc.ice", {"candidate": CAND})):
            code = await error_code(client, kind, negotiation_id="n", **extra, **fields)
            assert code == "forbidden", (kind, fields, code)

    await refused(c, session=session, to=pa)  # sender not a participant
    await refused(a, session=session, to=c.hello["connection_id"])  # target not a participant
    await refused(a, session=session, to="nobody")
    await refused(a, session=session, to=pa)  # to oneself
    await refused(a, session=session, to=px)  # target in another session
    await refused(a, session=other_session, to=px)  # sender not in that session
    await refused(x, session=session, to=pa)
    await b.request("call.leave", session=session)
    await refused(a, session=session, to=pb)  # target left
    await refused(b, session=session, to=pa)  # sender left
    for cl in (a, b, x):
        for kind in ("rtc.offer", "rtc.answer", "rtc.ice"):
            assert await cl.no_event(kind, 0.05)


async def test_signals_keep_their_order_per_pair(server):
    """Interleaved bursts of offers, answers and ICE from two senders to one target arrive in
    each sender's order, with every negotiation_id intact."""
    session, [(_, a_tok), (_, b_tok), (_, c_tok)] = await call_room(server, "ana", "ben", "cat")
    a, ack_a = await joined(server, a_tok, session)
    b, ack_b = await joined(server, b_tok, session)
    c, ack_c = await joined(server, c_tok, session)
    pa = ack_a["peer_id"]
    n = 150
    kinds = ("rtc.offer", "rtc.ice", "rtc.ice", "rtc.answer", "rtc.ice")
    for i in range(n):
        for sender in (b, c):
            kind = kinds[i % len(kinds)]
            frame = {"type": kind, "session": session, "to": pa, "negotiation_id": f"{i}"}
            frame.update({"candidate": dict(CAND, sdpMLineIndex=i)} if kind == "rtc.ice" else {"sdp": f"{SDP}a=i:{i}\r\n"})
            sender.send(frame)
    got: dict[str, list[tuple[str, str]]] = {ack_b["peer_id"]: [], ack_c["peer_id"]: []}
    deadline = time.monotonic() + 15
    while sum(map(len, got.values())) < 2 * n and time.monotonic() < deadline:
        ev = await asyncio.wait_for(a.events.get(), 5)
        if ev["type"].startswith("rtc."):
            got[ev["from"]].append((ev["type"], ev["negotiation_id"]))
            if ev["type"] == "rtc.ice":
                assert ev["candidate"]["sdpMLineIndex"] == int(ev["negotiation_id"])
            else:
                assert ev["sdp"].endswith(f"a=i:{ev['negotiation_id']}\r\n")
    expected = [(kinds[i % len(kinds)], f"{i}") for i in range(n)]
    for sender, seen in got.items():
        assert seen == expected, sender


async def _raw_participant(server, token: str, session: str, room: str):
    """A hand-made socket (never reads unless told) that joined ``room`` and ``session``."""
    from tests.test_bounds import RawWs
    raw = await RawWs.connect(server.port, token, rcvbuf=4096)
    hello = await raw.read_event("hello")
    await raw.send_json({"type": "room.join", "id": "rj", "room": room})
    assert (await raw.read_event("ack"))["id"] == "rj"
    await raw.send_json({"type": "call.join", "id": "cj", "session": session})
    ack = await raw.read_event("ack")
    assert ack["id"] == "cj", ack
    return raw, hello["connection_id"]


@pytest.mark.parametrize("config_overrides", [{"outgoing_soft_bytes": 32 * 1024,
                                               "outgoing_max_bytes": 1024 * 1024}])
async def test_signals_survive_a_slow_reader_that_loses_typing(server):
    """For a participant that stops reading, typing events are dropped past the soft limit but
    every relayed signal is kept, and all of them arrive in order once it reads again."""
    rid, [(_, a_tok), (_, b_tok), (slow_user, s_tok)] = await room_with(server, "ana", "ben", "slowpoke")
    starter = await server.client(a_tok)
    session = (await starter.request("call.start", room=rid))["session"]["id"]
    a, _ = await joined(server, a_tok, session)
    await a.request("room.join", room=rid)
    raw, slow_peer = await _raw_participant(server, s_tok, session, rid)
    handler = next(iter(server.deps.registry.user_sockets(int(slow_user["id"]))))
    handler.ws_connection.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    stream = handler.ws_connection.stream
    cfg = server.deps.config
    big_sdp = SDP + "a=pad:" + "p" * 20000 + "\r\n"
    dropped0 = server.deps.stats["dropped"]
    sent: list[str] = []
    typing_sent_past_soft = 0
    for i in range(40):  # 40 x ~20 KB = ~800 KB, under the hard limit
        kind = ("rtc.offer", "rtc.answer")[i % 2]
        await a.request(kind, session=session, to=slow_peer, sdp=big_sdp, negotiation_id=f"s{i}")
        sent.append(f"s{i}")
        a.send({"type": "rtc.ice", "session": session, "to": slow_peer, "candidate": CAND, "negotiation_id": f"i{i}"})
        sent.append(f"i{i}")
        if stream._total_write_index - stream._total_write_done_index > cfg.outgoing_soft_bytes:
            await a.request("typing", room=rid, active=bool(i % 2))
            typing_sent_past_soft += 1
    await a.request("presence.list", room=rid)  # every frame above was handled
    queued = stream._total_write_index - stream._total_write_done_index
    assert queued > cfg.outgoing_soft_bytes, queued
    assert typing_sent_past_soft > 0 and server.deps.stats["dropped"] > dropped0
    assert not handler.ws_connection.is_closing()
    # Now read everything: all signals, in order; typing sent past the soft limit never came.
    got, typing_seen = [], 0
    deadline = time.monotonic() + 20
    while len(got) < len(sent) and time.monotonic() < deadline:
        frame = await raw.read_frame(timeout=5)
        assert frame is not None, "closed"
        if frame[0] != 0x1:
            continue
        ev = json.loads(frame[1])
        if ev["type"].startswith("rtc."):
            assert ev["from"] == a.hello["connection_id"]
            got.append(ev["negotiation_id"])
        elif ev["type"] == "typing":
            typing_seen += 1
    assert got == sent
    assert typing_seen < typing_sent_past_soft
    raw.close()


# -- instructor-only controls -------------------------------------------------------------------------
INSTRUCTOR_ONLY = [
    ("call.end", {}),
    ("call.mute", {"peer_id": "TARGET"}),
    ("call.remove", {"peer_id": "TARGET"}),
    ("recording.start", {}),
    ("recording.stop", {}),
    ("recording.mark", {"label": "Chapter"}),
]


@pytest.mark.parametrize("op,fields", INSTRUCTOR_ONLY, ids=[o for o, _ in INSTRUCTOR_ONLY])
async def test_students_are_forbidden_instructor_actions(server, op, fields):
    """A student participant (and a room member outside the call) gets forbidden for every
    instructor-only action, and nothing happens to the target or the session."""
    session, [(_, a_tok), (_, b_tok), (_, c_tok)] = await call_room(server, "ana", "ben", "cat")
    a, ack_a = await joined(server, a_tok, session)
    b, ack_b = await joined(server, b_tok, session)
    c = await server.client(c_tok)
    target = ack_a["peer_id"]
    args = {k: (target if v == "TARGET" else v) for k, v in fields.items()}
    assert await error_code(b, op, session=session, **args) == "forbidden"
    assert await error_code(c, op, session=session, **args) == "forbidden"
    assert await a.no_event("call.mute_requested", 0.1) and await a.no_event("call.removed", 0.05)
    assert await b.no_event("call.ended", 0.05)
    # The session and both participants are still there.
    _, ack = await joined(server, c_tok, session)
    assert {p["peer_id"] for p in ack["participants"]} == {ack_a["peer_id"], ack_b["peer_id"]}


async def test_mute_sends_a_request_to_the_target_only(server):
    """call.mute by an instructor answers {} and the target alone receives
    call.mute_requested {session, by}; nobody's media state is changed by the server; an
    unknown peer is not_found."""
    session, [(ana, a_tok), (_, b_tok), (_, c_tok)] = await call_room(server, "ana", "ben", "cat")
    a, _ = await joined(server, a_tok, session)
    b, ack_b = await joined(server, b_tok, session)
    c, _ = await joined(server, c_tok, session)
    await b.request("call.media", session=session, audio=True)
    assert await a.request("call.mute", session=session, peer_id=ack_b["peer_id"]) == {}
    ev = await b.next_event("call.mute_requested")
    assert ev == {"type": "call.mute_requested", "session": session, "by": ana["id"]}
    assert await c.no_event("call.mute_requested", 0.1)
    _, late = await joined(server, a_tok, session)  # a second device of ana's sees the state
    (pb,) = [p for p in late["participants"] if p["peer_id"] == ack_b["peer_id"]]
    assert pb["media"]["audio"] is True
    assert await error_code(a, "call.mute", session=session, peer_id="nobody") == "not_found"


async def test_remove_drops_the_target_and_bars_it(server):
    """call.remove by an instructor answers {}; the target receives call.removed {session, by}
    on every device, everyone gets call.participant_left, its intervals are closed, and it can
    neither signal nor join that session again."""
    session, [(ana, a_tok), (ben, b_tok), (_, c_tok)] = await call_room(server, "ana", "ben", "cat")
    a, ack_a = await joined(server, a_tok, session)
    b, ack_b = await joined(server, b_tok, session)
    b2, ack_b2 = await joined(server, b_tok, session)  # ben's second device
    c, _ = await joined(server, c_tok, session)
    assert await a.request("call.remove", session=session, peer_id=ack_b["peer_id"]) == {}
    for dev in (b, b2):
        assert (await dev.next_event("call.removed")) == {"type": "call.removed", "session": session, "by": ana["id"]}
    left = set()
    for _ in range(2):
        left.add((await c.next_event("call.participant_left"))["peer_id"])
    assert left == {ack_b["peer_id"], ack_b2["peer_id"]}
    assert await error_code(b, "rtc.offer", session=session, to=ack_a["peer_id"], sdp=SDP, negotiation_id="n") == "forbidden"
    assert await error_code(b, "call.join", session=session) == "forbidden"
    fresh = await server.client(b_tok)
    assert await error_code(fresh, "call.join", session=session) == "forbidden"
    status, body = await server.http("GET", f"/api/sessions/{session}/attendance", a_tok)
    (ben_row,) = [x for x in body["attendees"] if x["user"]["id"] == ben["id"]]
    assert len(ben_row["intervals"]) == 2 and all(i["left_at"] for i in ben_row["intervals"])


# -- ending ------------------------------------------------------------------------------------------------
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


@pytest.mark.parametrize("config_overrides", [{"call_end_grace_s": 0.6}])
async def test_last_instructor_leaving_ends_after_grace(server):
    """When the last instructor leaves, the session ends call_end_grace_s later (not at once)
    with call.ended to the remaining students and every interval closed."""
    session, [(_, a_tok), (_, b_tok)] = await call_room(server, "ana", "ben")
    a, _ = await joined(server, a_tok, session)
    b, _ = await joined(server, b_tok, session)
    t0 = time.monotonic()
    await a.request("call.leave", session=session)
    assert await b.no_event("call.ended", 0.3)
    ev = await b.next_event("call.ended", timeout=5)
    elapsed = time.monotonic() - t0
    assert ev["session"]["id"] == session and ev["session"]["ended_at"]
    assert 0.5 <= elapsed < 3, elapsed
    assert await open_intervals(server) == 0


@pytest.mark.parametrize("config_overrides", [{"call_end_grace_s": 1.5}])
async def test_instructor_reconnect_within_grace_keeps_the_session(server):
    """An instructor whose socket drops and who rejoins within the grace keeps the session
    alive; the reconnect opens a new attendance interval and the old one is kept, closed."""
    session, [(ana, a_tok), (_, b_tok)] = await call_room(server, "ana", "ben")
    a, _ = await joined(server, a_tok, session)
    b, _ = await joined(server, b_tok, session)
    a.close()
    await b.next_event("call.participant_left")
    await asyncio.sleep(0.2)
    a2, _ = await joined(server, a_tok, session)
    assert await b.no_event("call.ended", 2.0)  # past the grace counted from the drop
    status, body = await server.http("GET", f"/api/sessions/{session}/attendance", a_tok)
    (ana_row,) = [x for x in body["attendees"] if x["user"]["id"] == ana["id"]]
    first, second = ana_row["intervals"]
    assert first["left_at"] is not None and second["left_at"] is None
    assert parse_ts(first["left_at"]) <= parse_ts(second["joined_at"])


@pytest.mark.parametrize("config_overrides", [{"call_end_grace_s": 0.3}])
async def test_students_alone_do_not_end_a_session_an_instructor_is_in(server):
    """Students leaving never schedule the end: with the instructor present the session stays
    live past the grace."""
    session, [(_, a_tok), (_, b_tok), (_, c_tok)] = await call_room(server, "ana", "ben", "cat")
    a, _ = await joined(server, a_tok, session)
    b, _ = await joined(server, b_tok, session)
    b.close()
    await a.next_event("call.participant_left")
    assert await a.no_event("call.ended", 0.8)
    _, ack = await joined(server, c_tok, session)
    assert ack["session"]["ended_at"] is None


# -- attendance ------------------------------------------------------------------------------------------
async def test_attendance_intervals_totals_percent_and_csv(server):
    """GET /api/sessions/{id}/attendance lists per-user intervals (a reconnect is a second
    interval), total_s and percent of the session; students see only themselves; CSV is for
    instructors (students 403), one row per interval with the documented columns."""
    session, [(ana, a_tok), (ben, b_tok), (cat, c_tok)] = await call_room(server, "ana", "ben", "cat")
    _, out_tok = await server.user("outsider")
    a, _ = await joined(server, a_tok, session)
    b, _ = await joined(server, b_tok, session)
    await asyncio.sleep(0.4)
    b.close()  # ben's connection drops ...
    await a.next_event("call.participant_left")
    await asyncio.sleep(0.3)
    b, _ = await joined(server, b_tok, session)  # ... and he reconnects
    await asyncio.sleep(0.4)
    await a.request("call.end", session=session)
    status, body = await server.http("GET", f"/api/sessions/{session}/attendance", a_tok)
    assert status == 200 and body["session"]["id"] == session
    ended = parse_ts(body["session"]["ended_at"])
    span = (ended - parse_ts(body["session"]["started_at"])).total_seconds()
    rows = {r["user"]["id"]: r for r in body["attendees"]}
    assert set(rows) == {ana["id"], ben["id"]}  # cat never joined
    assert rows[ben["id"]]["user"]["username"] == "ben"
    ben_iv = rows[ben["id"]]["intervals"]
    assert len(ben_iv) == 2 and all(i["left_at"] for i in ben_iv)
    assert parse_ts(ben_iv[0]["left_at"]) < parse_ts(ben_iv[1]["joined_at"])
    for uid, r in rows.items():
        expected = union_seconds(r["intervals"], ended)
        assert abs(r["total_s"] - expected) <= 0.11, (uid, r["total_s"], expected)
        assert abs(r["percent"] - 100 * expected / span) <= 1.0, (uid, r["percent"], span)
    assert rows[ben["id"]]["total_s"] < rows[ana["id"]]["total_s"]
    assert 0.7 <= rows[ben["id"]]["total_s"] <= 3.0  # two stays of >= 0.4 s each
    # Students see only their own row; non-members are refused.
    status, mine = await server.http("GET", f"/api/sessions/{session}/attendance", b_tok)
    assert status == 200 and [r["user"]["id"] for r in mine["attendees"]] == [ben["id"]]
    status, none = await server.http("GET", f"/api/sessions/{session}/attendance", c_tok)
    assert status == 200 and none["attendees"] == []
    status, _ = await server.http("GET", f"/api/sessions/{session}/attendance", out_tok)
    assert status == 403
    status, _ = await server.http("GET", "/api/sessions/424242/attendance", a_tok)
    assert status == 404
    status, _ = await server.http("GET", f"/api/sessions/{session}/attendance")
    assert status == 401
    # CSV
    status, raw = await server.http("GET", f"/api/sessions/{session}/attendance?format=csv", a_tok)
    assert status == 200, raw
    table = list(csv.reader(io.StringIO(raw.decode())))
    assert table[0] == ["user_id", "username", "display_name", "joined_at", "left_at", "interval_s",
                        "total_s", "percent"]
    by_user: dict[str, list[list[str]]] = {}
    for row in table[1:]:
        by_user.setdefault(row[0], []).append(row)
    assert {k: len(v) for k, v in by_user.items()} == {ana["id"]: 1, ben["id"]: 2}
    for row, iv in zip(by_user[ben["id"]], ben_iv):
        assert row[1:5] == ["ben", "Ben", iv["joined_at"], iv["left_at"]]
        secs = (parse_ts(iv["left_at"]) - parse_ts(iv["joined_at"])).total_seconds()
        assert abs(float(row[5]) - secs) <= 0.11
        assert float(row[6]) == rows[ben["id"]]["total_s"] and float(row[7]) == rows[ben["id"]]["percent"]
    status, err = await server.http("GET", f"/api/sessions/{session}/attendance?format=csv", b_tok)
    assert status == 403 and err["error"]["code"] == "forbidden"


async def test_two_devices_are_two_peers_and_not_double_counted(server):
    """One user on two devices is two peers (two peer_ids, both listed, each reachable by
    signals on its own) and two intervals, but overlapping time counts once in total_s."""
    session, [(_, a_tok), (ben, b_tok)] = await call_room(server, "ana", "ben")
    a, ack_a = await joined(server, a_tok, session)
    phone, ack_phone = await joined(server, b_tok, session)
    await asyncio.sleep(0.3)
    laptop, ack_laptop = await joined(server, b_tok, session)
    assert ack_phone["peer_id"] != ack_laptop["peer_id"]
    assert {p["peer_id"] for p in ack_laptop["participants"]} == {ack_a["peer_id"], ack_phone["peer_id"]}
    for dev, ack in ((phone, ack_phone), (laptop, ack_laptop)):
        await a.request("rtc.offer", session=session, to=ack["peer_id"], sdp=SDP, negotiation_id=ack["peer_id"])
    assert (await phone.next_event("rtc.offer"))["negotiation_id"] == ack_phone["peer_id"]
    assert (await laptop.next_event("rtc.offer"))["negotiation_id"] == ack_laptop["peer_id"]
    assert await phone.no_event("rtc.offer", 0.1) and await laptop.no_event("rtc.offer", 0.05)
    # The two devices can signal each other too (they are two peers of one call).
    await phone.request("rtc.offer", session=session, to=ack_laptop["peer_id"], sdp=SDP, negotiation_id="self")
    assert (await laptop.next_event("rtc.offer"))["from"] == ack_phone["peer_id"]
    await asyncio.sleep(0.5)
    await phone.request("call.leave", session=session)
    await asyncio.sleep(0.3)
    await laptop.request("call.leave", session=session)
    await a.request("call.end", session=session)
    status, body = await server.http("GET", f"/api/sessions/{session}/attendance", a_tok)
    (row,) = [r for r in body["attendees"] if r["user"]["id"] == ben["id"]]
    assert len(row["intervals"]) == 2
    spans = [(parse_ts(i["joined_at"]), parse_ts(i["left_at"])) for i in row["intervals"]]
    summed = sum((e - s).total_seconds() for s, e in spans)
    union = union_seconds(row["intervals"], datetime.max)
    assert summed - union >= 0.25  # they really overlapped ...
    assert abs(row["total_s"] - union) <= 0.11, (row["total_s"], union, summed)  # ... and count once


# -- ICE servers --------------------------------------------------------------------------------------------
TURN_SECRET = "coturn-static-auth-secret"
ICE_CONFIG = {"ice_servers": ({"urls": ["stun:127.0.0.1:3478"]},),
              "turn_secret": TURN_SECRET,
              "turn_urls": ("turn:127.0.0.1:3478?transport=udp", "turn:127.0.0.1:3478?transport=tcp"),
              "turn_ttl_s": 600}


def check_turn_entry(entry: dict, user_id: str, ttl: int) -> None:
    """coturn use-auth-secret: username "<expiry>:<user id>", credential
    base64(HMAC-SHA1(secret, username)), computed here independently of server/ice.py."""
    expiry, _, uid = entry["username"].partition(":")
    assert uid == user_id
    assert abs(int(expiry) - (time.time() + ttl)) <= 5
    mac = hmac.new(TURN_SECRET.encode(), entry["username"].encode(), hashlib.sha1).digest()
    assert entry["credential"] == base64.b64encode(mac).decode()
    assert entry["urls"] == list(ICE_CONFIG["turn_urls"])


@pytest.mark.parametrize("config_overrides", [ICE_CONFIG])
async def test_ice_servers_with_turn_rest_credentials(server):
    """With ice_servers and turn_secret configured, call.join and GET /api/ice-servers both
    return the configured STUN entry plus a TURN entry with short-lived coturn-compatible
    credentials for the caller; ttl is turn_ttl_s; anonymous callers get 401."""
    session, [(ana, a_tok), (ben, b_tok)] = await call_room(server, "ana", "ben")
    _, ack = await joined(server, b_tok, session)
    stun, turn = ack["ice_servers"]
    assert stun == {"urls": ["stun:127.0.0.1:3478"]}
    check_turn_entry(turn, ben["id"], 600)
    assert ack["ice_ttl_s"] == 600
    status, body = await server.http("GET", "/api/ice-servers", a_tok)
    assert status == 200 and body["ttl_s"] == 600
    stun, turn = body["ice_servers"]
    assert stun == {"urls": ["stun:127.0.0.1:3478"]}
    check_turn_entry(turn, ana["id"], 600)
    status, _ = await server.http("GET", "/api/ice-servers")
    assert status == 401


@pytest.mark.parametrize("config_overrides", [{"ice_servers": ({"urls": ["stun:127.0.0.1:3478"]},),
                                               "turn_urls": ("turn:127.0.0.1:3478",)}])
async def test_ice_servers_without_turn_secret(server):
    """Without turn_secret no TURN credentials are minted: only the configured servers."""
    _, tok = await server.user("ana", "instructor")
    status, body = await server.http("GET", "/api/ice-servers", tok)
    assert status == 200 and body["ice_servers"] == [{"urls": ["stun:127.0.0.1:3478"]}]


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


# -- known gaps ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("config_overrides", [{"rate_per_s": 20.0, "rate_burst": 60}])
async def test_newcomer_signaling_to_a_class_is_not_rate_limited(server):
    """With the default rate limits, a newcomer joining a class of 12 can send each participant
    an offer and browser-like trickled ICE (4 candidates + end-of-candidates), and all arrive."""
    names = ["ana"] + [f"s{i:02d}" for i in range(12)]
    session, users = await call_room(server, *names)
    present = [await joined(server, tok, session) for _, tok in users[:12]]
    newcomer, ack = await joined(server, users[12][1], session)
    assert len(ack["participants"]) == 12
    errors = []
    for p in ack["participants"]:
        frame = await newcomer.request_raw("rtc.offer", session=session, to=p["peer_id"], sdp=SDP, negotiation_id="n")
        if frame["type"] == "error":
            errors.append(frame["code"])
        for k in range(4):
            newcomer.send({"type": "rtc.ice", "session": session, "to": p["peer_id"],
                           "candidate": dict(CAND, sdpMLineIndex=k), "negotiation_id": "n"})
        newcomer.send({"type": "rtc.ice", "session": session, "to": p["peer_id"], "candidate": None,
                       "negotiation_id": "n"})
    assert errors == []
    for c, _ in present:
        await c.next_event("rtc.offer", timeout=2)
        for _ in range(5):
            await c.next_event("rtc.ice", timeout=2)



async def test_member_removed_from_room_leaves_its_live_call(server):
    """A user removed from the room is dropped from the room's live call at once: the others
    get call.participant_left and the user's signals are refused."""
    session, [(ana, a_tok), (ben, b_tok)] = await call_room(server, "ana", "ben")
    a, ack_a = await joined(server, a_tok, session)
    b, ack_b = await joined(server, b_tok, session)
    rid = ack_a["session"]["room"]
    status, _ = await server.http("DELETE", f"/api/rooms/{rid}/members/{ben['id']}", a_tok)
    assert status == 200
    await b.next_event("room.removed", timeout=2)
    assert (await a.next_event("call.participant_left", timeout=2))["peer_id"] == ack_b["peer_id"]
    assert await error_code(b, "rtc.offer", session=session, to=ack_a["peer_id"], sdp=SDP,
                            negotiation_id="n") == "forbidden"

# -- races and transport -------------------------------------------------------------------------------
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
