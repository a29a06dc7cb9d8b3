"""The signaling relay (server/calls/signaling.py; PROTOCOL §2.2): rtc.offer / rtc.answer /
rtc.ice reach only their target, between current participants of one session, in order per
pair with negotiation_id carried, never dropped for a slow reader nor rate limited for a
newcomer greeting a class."""
from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

from server.realtime.tornado_stream import pending_write_bytes
from tests.calls.helpers import (CAND, SDP, call_room, calls_settle, error_code, joined,  # noqa: F401  (autouse fixture)
                                 room_with)
from tests.wsclient import RawWs, WsClient


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
        if pending_write_bytes(stream) > cfg.outgoing_soft_bytes:
            await a.request("typing", room=rid, active=bool(i % 2))
            typing_sent_past_soft += 1
    await a.request("presence.list", room=rid)  # every frame above was handled
    queued = pending_write_bytes(stream)
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
        await c.next_event("rtc.offer", timeout=10)
        for _ in range(5):
            await c.next_event("rtc.ice", timeout=10)
