"""An instructor's rules in a call (server/calls/policy.py, issue 16.4): lowering one hand or
every hand, and turning students' cameras and screen sharing off and on — enforced on the
server's side, announced to the participants and to the room; in one process here, across
processes in ``test_controls_across_processes``. At Janus: tests/sfu/test_policy.py."""
from __future__ import annotations

import os
import secrets

import pytest

from tests.calls.helpers import call_room, calls_settle, error_code, joined  # noqa: F401  (autouse fixture)
from tests.realtime.test_scaleout import cluster
from tests.procserver import procs  # noqa: F401,F811  (fixture)
from tests.wsclient import WsClient


async def test_an_instructor_lowers_one_hand_then_every_hand(server):
    session, [(ana, a_tok), _, _] = await call_room(server, "ana", "ben", "cleo")
    a, _ = await joined(server, a_tok, session)
    (b, b_ack), (c, c_ack) = [await joined(server, tok, session) for tok in await tokens(server, "ben", "cleo")]
    for x in (b, c):
        await x.request("call.hand", session=session, raised=True)
    assert await error_code(b, "call.lower_hands", session=session, peer_id=c_ack["peer_id"]) == "forbidden"
    assert await error_code(a, "call.lower_hands", session=session, peer_id=5) == "bad_request"
    assert await error_code(a, "call.lower_hands", session=session, peer_id="nobody") == "not_found"
    assert (await a.request("call.lower_hands", session=session, peer_id=b_ack["peer_id"])) == {"lowered": 1}
    notice = await b.next_event("call.hand_lowered")
    assert notice == {"type": "call.hand_lowered", "session": session, "by": ana["id"]}
    await hand_change(c, b_ack["peer_id"], False)  # (times out unless it comes)
    assert await c.no_event("call.hand_lowered")  # cleo's hand is still up
    assert (await a.request("call.lower_hands", session=session)) == {"lowered": 1}
    assert (await c.next_event("call.hand_lowered"))["by"] == ana["id"]
    assert (await a.request("call.lower_hands", session=session)) == {"lowered": 0}


async def test_students_cameras_and_screens_off_and_on_again(server):
    session, [(ana, a_tok), _] = await call_room(server, "ana", "ben")
    a, a_ack = await joined(server, a_tok, session)
    assert a_ack["session"]["students_video"] is True and a_ack["session"]["students_screen"] is True
    [b_tok] = await tokens(server, "ben")
    b, b_ack = await joined(server, b_tok, session)
    await b.request("call.media", session=session, video=True, screen=True)
    await a.next_event("call.media_changed")  # ben's own change
    assert await error_code(b, "call.permissions", session=session, video=False) == "forbidden"
    for bad in ({}, {"video": "no"}, {"screen": 1}):
        assert await error_code(a, "call.permissions", session=session, **bad) == "bad_request", bad
    ack = await a.request("call.permissions", session=session, video=False)
    assert ack["session"]["students_video"] is False and ack["session"]["students_screen"] is True
    told = await b.next_event("call.permissions_changed")
    assert told["by"] == ana["id"] and told["session"]["students_video"] is False
    stopped = await a.next_event("call.media_changed")
    assert stopped["participant"]["peer_id"] == b_ack["peer_id"]
    assert stopped["participant"]["media"]["video"] is False and stopped["participant"]["media"]["screen"] is True
    assert await error_code(b, "call.media", session=session, video=True) == "forbidden"
    await a.request("call.media", session=session, video=True)  # instructors always may
    await b.next_event("call.media_changed")
    await a.request("call.permissions", session=session, screen=False)
    assert (await a.next_event("call.media_changed"))["participant"]["media"]["screen"] is False
    assert await error_code(b, "call.media", session=session, screen=True) == "forbidden"
    # The rules are the session's: a (re)joiner's ack and the sessions listing carry them.
    _, again = await joined(server, b_tok, session)
    assert again["session"]["students_video"] is False and again["session"]["students_screen"] is False
    status, listing = await server.http("GET", f"/api/rooms/{again['session']['room']}/sessions", a_tok)
    assert status == 200 and listing["sessions"][0]["students_screen"] is False
    # The room is told, in its history.
    status, history = await server.http("GET", f"/api/rooms/{again['session']['room']}/messages", a_tok)
    texts = [m["content"] for m in history["messages"] if m["kind"] == "system"]
    assert "Ana turned students' cameras off" in texts and "Ana stopped students' screen sharing" in texts
    await a.request("call.permissions", session=session, video=True, screen=True)
    await b.request("call.media", session=session, video=True, screen=True)


async def tokens(server, *names: str) -> list[str]:
    """Tokens of users created by ``call_room`` (same names)."""
    from server.accounts.tokens import issue_token
    from server.db import users as uq
    out = []
    async with server.deps.db.read() as s:
        for name in names:
            u = await uq.get_user_by_username(s, name)
            out.append(issue_token(server.deps.config, u.id, u.display_name, u.role))
    return out


async def hand_change(c: WsClient, peer_id: str, hand: bool) -> dict:
    """The next call.hand_changed saying ``peer_id``'s hand is ``hand`` (others are skipped)."""
    while True:
        ev = await c.next_event("call.hand_changed")
        if ev["participant"]["peer_id"] == peer_id and ev["participant"]["hand"] is hand:
            return ev


async def video_change(c: WsClient, peer_id: str, video: bool) -> dict:
    """The next call.media_changed saying ``peer_id``'s video is ``video``."""
    while True:
        ev = await c.next_event("call.media_changed")
        if ev["participant"]["peer_id"] == peer_id and ev["participant"]["media"]["video"] is video:
            return ev


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="several processes need Redis")
async def test_controls_across_processes(procs):  # noqa: F811
    """The instructor on one process lowers a hand and turns cameras off for a student on
    another: the student's process applies both."""
    servers = cluster(procs, os.environ["TEST_REDIS_URL"], 2)
    (_, a_tok), (ben, b_tok) = [await servers[0].register(f"u{secrets.token_hex(3)}{i}") for i in range(2)]
    room = (await servers[0].room(a_tok, [ben["id"]]))["id"]
    a = await WsClient.connect(servers[0].ws_url, a_tok)
    b = await WsClient.connect(servers[1].ws_url, b_tok)
    session = (await a.request("call.start", room=room))["session"]["id"]
    await a.request("call.join", session=session)
    b_peer = (await b.request("call.join", session=session))["peer_id"]
    await b.request("call.hand", session=session, raised=True)
    await b.request("call.media", session=session, video=True)
    assert (await a.request("call.lower_hands", session=session, peer_id=b_peer)) == {"lowered": 0}
    await b.next_event("call.hand_lowered")
    await a.request("call.permissions", session=session, video=False)
    assert (await b.next_event("call.permissions_changed"))["session"]["students_video"] is False
    await video_change(a, b_peer, False)
    err = await b.request_raw("call.media", session=session, video=True)
    assert err["type"] == "error" and err["code"] == "forbidden"
    for c in (a, b):
        c.close()
