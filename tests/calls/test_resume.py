"""Resuming a call after a dropped socket (server/calls/resume.py; docs/PROTOCOL-ADDITIONS.md
"Resuming a call"): a join with the ``resume`` token of an earlier join takes its peer id back,
so the others (and Janus, in SFU calls: tests/sfu/test_resume.py) see the same participant; the
token is the user's own for that session only."""
from __future__ import annotations

import os
from datetime import timedelta

import pytest
from sqlalchemy import select

from server.db import sfu_peers as q
from server.db.models import AttendanceInterval
from server.db.models import SfuPeer as SfuPeerRow
from server.kernel.clock import utcnow
from tests.calls.helpers import SDP, call_room, calls_settle, error_code, joined  # noqa: F401  (autouse fixture)


async def test_a_dropped_socket_rejoins_as_the_same_participant(server):
    session, [(_, a_tok), (ben, b_tok)] = await call_room(server, "ana", "ben")
    a, a_ack = await joined(server, a_tok, session)
    b, first = await joined(server, b_tok, session)
    assert first["resumed"] is False and isinstance(first["resume"], str)
    old = first["peer_id"]
    await a.next_event("call.participant_joined")
    b.close()
    assert (await a.next_event("call.participant_left"))["peer_id"] == old
    b2 = await server.client(b_tok)
    again = await b2.request("call.join", session=session, resume=first["resume"])
    assert again["peer_id"] == old and again["resumed"] is True
    assert again.get("sfu_resumed") is None  # no media router here: nothing else to take back
    assert again["resume"] == first["resume"]
    back = await a.next_event("call.participant_joined")
    assert back["participant"]["peer_id"] == old and back["participant"]["user"]["id"] == ben["id"]
    # Signals to that peer id reach the new socket; its own signals come from that peer id.
    await a.request("rtc.offer", session=session, to=old, sdp=SDP)
    assert (await b2.next_event("rtc.offer"))["from"] == a_ack["peer_id"]
    await b2.request("rtc.answer", session=session, to=a_ack["peer_id"], sdp=SDP)
    assert (await a.next_event("rtc.answer"))["from"] == old
    # Attendance: two stays of the same peer id, the first closed.
    async with server.deps.db.read() as s:
        stays = (await s.execute(select(AttendanceInterval).where(AttendanceInterval.user_id == int(ben["id"]))
                                 .order_by(AttendanceInterval.id))).scalars().all()
    assert [i.peer_id for i in stays] == [old, old]
    assert stays[0].left_at is not None and stays[1].left_at is None
    await b2.request("call.leave", session=session)
    assert (await a.next_event("call.participant_left"))["peer_id"] == old


async def test_resume_tokens_are_the_users_own_for_that_session(server):
    session, [(_, a_tok), (ben, b_tok), (_, c_tok)] = await call_room(server, "ana", "ben", "cleo")
    _, first = await joined(server, b_tok, session)
    cleo = await server.client(c_tok)
    assert await error_code(cleo, "call.join", session=session, resume=first["resume"]) == "bad_request"
    for bad in ("", "x", "a.b.c", 42, {"peer": first["peer_id"]}, first["resume"] + "A", "z" * 300):
        assert await error_code(cleo, "call.join", session=session, resume=bad) == "bad_request", bad
    # Another session of the same user: the token is not valid there.
    room = await server.room(a_tok, name="Another", members=[ben["id"]])
    ana = await server.client(a_tok)
    other = (await ana.request("call.start", room=room["id"]))["session"]["id"]
    ben2 = await server.client(b_tok)
    assert await error_code(ben2, "call.join", session=other, resume=first["resume"]) == "bad_request"
    # Nothing was joined by the refused attempts; a plain join gets a fresh peer id.
    fresh = await ben2.request("call.join", session=other)
    assert fresh["peer_id"] != first["peer_id"] and fresh["resumed"] is False
    assert (await cleo.request("call.join", session=session))["resumed"] is False


async def test_a_resume_replaces_a_socket_whose_close_was_not_noticed(server):
    """The old socket still looks open to the server (a half-open TCP connection): the resume
    takes the peer id over; the old socket is no longer a participant, and its close later
    does not drop the resumed one."""
    session, [(_, a_tok), (_, b_tok)] = await call_room(server, "ana", "ben")
    a, _ = await joined(server, a_tok, session)
    b, first = await joined(server, b_tok, session)
    await a.next_event("call.participant_joined")
    b2 = await server.client(b_tok)
    again = await b2.request("call.join", session=session, resume=first["resume"])
    assert again["peer_id"] == first["peer_id"] and again["resumed"] is True
    assert (await a.next_event("call.participant_left"))["peer_id"] == first["peer_id"]
    assert (await a.next_event("call.participant_joined"))["participant"]["peer_id"] == first["peer_id"]
    assert await error_code(b, "call.hand", session=session, raised=True) == "forbidden"
    b.close()
    assert await a.no_event("call.participant_left", within=1.0)
    await b2.request("call.hand", session=session, raised=True)
    changed = await a.next_event("call.hand_changed")
    assert changed["participant"]["peer_id"] == first["peer_id"] and changed["participant"]["hand"] is True


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="instructor mutes span processes only with Redis")
async def test_a_mute_held_elsewhere_holds_in_a_process_that_loads_the_session_later(server):
    """An instructor's enforced mute is kept in Redis for the session (calls/controls.py):
    written there by the instructor's process — here by the directory, as that process would —
    it holds for a user who joins through a process that had not loaded the session when the
    mute was made (its SessionMute notice reached nobody there)."""
    session, [(_, a_tok), (ben, b_tok)] = await call_room(server, "ana", "ben")
    directory = server.deps.calls.directory
    await directory.set_mutes(int(session), {int(ben["id"])}, False)
    server.deps.calls.live.pop(int(session))  # this process forgets the session: it loads it anew
    _, ack = await joined(server, b_tok, session)
    assert ack["muted_by_instructor"] is True and ack["may_unmute"] is False
    await directory.unmute(int(session), int(ben["id"]))
    assert await directory.mute_of(int(session), int(ben["id"])) is None


async def test_sfu_peer_rows_go_to_their_holder_or_their_user_only(server):
    """``server/db/sfu_peers.py`` on this database (tests/sfu/test_resume.py runs its Janus tests
    on SQLite only: the namespace reaches no PostgreSQL): a participant's Janus session id (a
    53-bit Janus id) is stored and read back whole; only its holder parks or forgets the row;
    only its own user takes it, once, with the parked time; the call's end clears the rest."""
    session, [(ana, _), (ben, _)] = await call_room(server, "ana", "ben")
    sid, ben_id, janus_id = int(session), int(ben["id"]), 2 ** 53 - 7
    db = server.deps.db
    async with db.write() as s:
        await q.save(s, sid, "p-ben", ben_id, "ws://10.0.0.5:8188", janus_id, '{"feed": 1}', "h1", utcnow())
        await q.save(s, sid, "p-ana", int(ana["id"]), "ws://10.0.0.5:8188", 42, "{}", "h9", utcnow())
    parked_at = utcnow() + timedelta(seconds=1)
    async with db.write() as s:
        assert await q.park(s, sid, "p-ben", "h2", parked_at) is False  # not its holder
        assert await q.park(s, sid, "p-ben", "h1", parked_at) is True
        assert await q.take(s, sid, "p-ben", int(ana["id"])) is None  # not her participant
    async with db.write() as s:
        row = await q.take(s, sid, "p-ben", ben_id)
    assert (row.janus_url, row.janus_session, row.state, row.holder) == (
        "ws://10.0.0.5:8188", janus_id, '{"feed": 1}', "h1")
    assert row.parked_at == parked_at
    async with db.write() as s:
        assert await q.take(s, sid, "p-ben", ben_id) is None  # taken once
        assert await q.forget(s, sid, "p-ben", "h1") is False  # gone: the grace's end destroys nothing
        await q.save(s, sid, "p-ben", ben_id, "ws://10.0.0.5:8188", janus_id, "{}", "h3", utcnow())
        assert await q.forget(s, sid, "p-ben", "h1") is False  # held by h3 now
        assert await q.forget(s, sid, "p-ben", "h3") is True
        await q.forget_session(s, sid)
    async with db.read() as s:
        assert (await s.execute(select(SfuPeerRow).where(SfuPeerRow.session_id == sid))).first() is None
