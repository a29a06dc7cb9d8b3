"""Classroom controls in a call (server/calls/controls.py; PROTOCOL §2.2): media state and raised
hands broadcast to the session and carried in a newcomer's ack, and the instructor-only mute and
remove (students are forbidden every instructor action)."""
from __future__ import annotations

import pytest

from tests.calls.helpers import SDP, call_room, calls_settle, error_code, joined  # noqa: F401  (autouse fixture)


# -- media and hands --------------------------------------------------------------------------
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


# -- instructor-only controls -----------------------------------------------------------------
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
